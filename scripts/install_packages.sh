#!/usr/bin/env bash
# Installs MyMDB's runtime into the web image from Debian packages (there is no PyPI here; a
# developer with PyPI installs the same stack from requirements.production.txt in a venv).
#   requirements.common.txt      Django, psycopg, Pillow  -> python3-django python3-psycopg python3-pil
#   requirements.production.txt  django-storages[s3], boto3, uWSGI, pymemcache -> python3-django-storages(-s3) python3-boto3 uwsgi-* python3-pymemcache
# libjs-jquery: the admin's jquery.js is a symlink into it; without it collectstatic fails.
set -o errexit -o nounset -o pipefail

log() { echo "install_packages: $*" >&2; }

# quietly COMMAND...: runs COMMAND with its output set aside, and shows that output (on stderr)
# only when it fails. apt and dpkg write dozens of lines per package (and one per 5 % of
# "Reading database"): an install that works says nothing, one that fails says why.
quietly() {
  local out status=0
  out=$(mktemp)
  "$@" >"$out" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    log "failed (exit code $status): $*"
    cat "$out" >&2
  fi
  rm -f "$out"
  return "$status"
}

packages=(
  python3 python3-django python3-psycopg python3-pil
  python3-django-storages python3-django-storages-s3 python3-boto3 python3-pymemcache
  uwsgi-core uwsgi-plugin-python3
  nginx runit libjs-jquery ca-certificates
)

export DEBIAN_FRONTEND=noninteractive
log "installing ${#packages[@]} packages and what they need (output shown only if it fails)"
quietly apt-get update
quietly apt-get install -y --no-install-recommends "${packages[@]}"
rm -rf /var/lib/apt/lists/*
log "installed: $(dpkg-query -W -f '${Package}=${Version} ' python3-django uwsgi-core nginx)"
