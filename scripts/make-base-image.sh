#!/usr/bin/env bash
# Bootstraps a slim Debian base image from a Debian mirror, for hosts that cannot pull
# debian:trixie-slim (no registry reachable). Needs root and debootstrap (installed if missing).
#
# Usage: make-base-image.sh TAG [SUITE] [MIRROR]
#   TAG     image tag to create, e.g. mymdb-base:trixie
#   SUITE   Debian suite (default: trixie)
#   MIRROR  Debian mirror URL (default: the one this host's apt sources use)
set -o errexit -o nounset -o pipefail

log() { echo "make-base-image: $*" >&2; }

tag=${1:?usage: make-base-image.sh TAG [SUITE] [MIRROR]}
suite=${2:-trixie}
mirror=${3:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -oE 'https?://[^ ]+' | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi
mirror=${mirror%/}

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
    || { apt-get update -qq || true; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi

root=$(mktemp -d /var/tmp/mymdb-base.XXXXXX)
trap 'rm -rf "$root"' EXIT

log "debootstrap $suite from $mirror (about a minute)"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

log "trimming apt lists, caches, docs, man pages and locales"
security=${mirror%/debian}/debian-security
cat >"$root/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SRC
# Like debian:*-slim: later package installs leave docs and caches out as well.
cat >"$root/etc/dpkg/dpkg.cfg.d/excludes" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Install-Recommends "false";
Acquire::Languages "none";
CFG
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/var/log/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/*
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true

log "importing as $tag"
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$tag" >/dev/null
log "done: $tag ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
