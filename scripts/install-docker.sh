#!/usr/bin/env bash
# Installs and starts a Docker engine and Compose v2 on a Debian or Ubuntu host, as root.
# The same script runs in three places: `npm run up:local` preflight on a bare host, the test
# rig's SSH host image, and the EC2 host's user-data. Safe to run again: it only does what is
# missing.
#
# Usage: install-docker.sh [LOGIN_USER]   (a deploy host: LOGIN_USER is added to the docker group,
#                                          and cron is installed for the scheduled backups)
# INSTALL_DOCKER_NO_START=1 installs only (e.g. in an image build); the engine is not started.
set -o errexit -o nounset -o pipefail

log() { echo "install-docker: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "must run as root (try: sudo $0)"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# shellcheck source=/dev/null
. /etc/os-release
codename=${VERSION_CODENAME:-}

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

apt_updated=false
apt_install() {
  if [ "$apt_updated" = false ]; then
    quietly apt-get update -qq || log "apt-get update reported problems (above); trying to install anyway"
    apt_updated=true
  fi
  quietly apt-get install -y -qq --no-install-recommends "$@"
}

# Debian bookworm has no Compose v2 or buildx package: take trixie's (they depend only on libc6),
# pinned low so nothing else on the host is upgraded from trixie.
add_trixie_source() {
  [ -f /etc/apt/sources.list.d/trixie.sources ] && return 0
  log "adding the Debian trixie source (pinned low) for Compose v2"
  mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -oE 'https?://[^ ]+' | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  cat >/etc/apt/sources.list.d/trixie.sources <<SRC
Types: deb
URIs: ${mirror%/}
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat >/etc/apt/preferences.d/trixie-low <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: docker-compose docker-buildx
Pin: release n=trixie
Pin-Priority: 500
PIN
  apt_updated=false
}

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing the Docker engine (docker.io)"
  apt_install docker.io ca-certificates iptables
fi
if ! command -v docker >/dev/null 2>&1; then
  apt_install docker-cli
fi

# Compose v2, and buildx so that `docker build` uses BuildKit (cached, fast code-only rebuilds).
if ! docker compose version >/dev/null 2>&1 || ! docker buildx version >/dev/null 2>&1; then
  if [ "$ID" = debian ] && [ "$codename" = bookworm ]; then
    add_trixie_source
    log "installing Compose v2 and buildx (docker-compose, docker-buildx from trixie)"
    apt_install docker-compose/trixie docker-buildx/trixie
  else
    log "installing Compose v2 and buildx"
    apt_install docker-compose-v2 docker-buildx 2>/dev/null || apt_install docker-compose docker-buildx
  fi
fi

# On a deploy host (a LOGIN_USER given), cron runs the scheduled backups (the deploy puts the job
# into the login user's crontab).
if [ $# -ge 1 ] && ! command -v cron >/dev/null 2>&1; then
  log "installing cron (for the scheduled backups)"
  apt_install cron
fi

# On a deploy host, the ECR credential helper: the host pulls from Amazon ECR with tokens it gets
# with its own instance role (the deploy names the helper in the login user's Docker configuration).
if [ $# -ge 1 ] && ! command -v docker-credential-ecr-login >/dev/null 2>&1; then
  log "installing amazon-ecr-credential-helper (pulls from ECR with the instance role)"
  apt_install amazon-ecr-credential-helper || log "amazon-ecr-credential-helper could not be installed; a deploy with MYMDB_REGISTRY=ecr installs it again"
fi

# Start the engine: systemd where it runs, else in the background (containers, CI machines).
no_start=${INSTALL_DOCKER_NO_START:-0}
if [ "$no_start" != 1 ] && ! docker info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    systemctl enable --now docker
  else
    log "starting dockerd in the background (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    log "the Docker engine did not answer within 60 s; see /var/log/dockerd.log"
    exit 1
  fi
fi

if [ $# -ge 1 ] && id "$1" >/dev/null 2>&1; then
  usermod -aG docker "$1"
fi

# cron: systemd starts it where it runs; elsewhere (the test rig's host) it is started here.
if [ $# -ge 1 ] && [ "$no_start" != 1 ]; then
  if [ -d /run/systemd/system ]; then
    systemctl enable --now cron
  elif ! { [ -f /var/run/crond.pid ] && kill -0 "$(cat /var/run/crond.pid)" 2>/dev/null; }; then
    log "starting cron"
    cron
  fi
fi

if [ "$no_start" = 1 ]; then
  log "installed; engine not started (INSTALL_DOCKER_NO_START=1)"
  exit 0
fi

log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short 2>/dev/null || echo 'compose ?')"
