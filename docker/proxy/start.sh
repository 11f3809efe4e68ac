#!/bin/sh
# Starts MyMDB's front (Caddy) with a Caddyfile written from the environment:
#   MYMDB_DOMAIN          empty: plain HTTP on :80 for any name. Set: HTTPS for that name with
#                         a certificate from the ACME CA, and HTTP redirects to HTTPS.
#   MYMDB_ACME_CA         the CA's directory URL (default: Let's Encrypt)
#   MYMDB_ACME_EMAIL      the account's email (optional: the CA warns there before expiry)
#   MYMDB_ACME_CA_ROOT_B64  base64 of the PEM root of the CA's own HTTPS (private CAs only)
#   MYMDB_ACME_RENEW_INTERVAL  how often Caddy looks for certificates to renew (default 10m)
#   MYMDB_HSTS_SECONDS    with a domain: the max-age of the Strict-Transport-Security header sent
#                         on every HTTPS response (default 86400, one day; 0: none)
#   MYMDB_HSTS_SUBDOMAINS true: the header also covers every subdomain (includeSubDomains)
#   MYMDB_HSTS_PRELOAD    true: the header asks browsers' preload lists for the name (preload;
#                         needs MYMDB_HSTS_SUBDOMAINS and a max-age of at least a year)
#   MYMDB_UPSTREAM        where the site is (default web:80)
#   DJANGO_ALLOWED_HOSTS  without a domain: the names passed on (Django's syntax: .example.com
#                         is the name and its subdomains, * any); requests for other names are
#                         dropped here, except the health probe /healthz
set -eu

fail() {
  echo "mymdb-proxy: $*" >&2
  exit 2
}

# Values go into the Caddyfile: no spaces, braces, quotes or line breaks.
plain() {
  case "$2" in
    *[[:space:]]* | *[{}\"\'\`\\]*) fail "$1 must not contain spaces, braces, quotes or backslashes: '$2'" ;;
  esac
}

domain=${MYMDB_DOMAIN:-}
upstream=${MYMDB_UPSTREAM:-web:80}
upstream_name=${upstream%:*}
upstream_port=${upstream##*:}
plain MYMDB_DOMAIN "$domain"
plain MYMDB_UPSTREAM "$upstream"
plain MYMDB_ACME_CA "${MYMDB_ACME_CA:-}"
plain MYMDB_ACME_EMAIL "${MYMDB_ACME_EMAIL:-}"
plain MYMDB_ACME_RENEW_INTERVAL "${MYMDB_ACME_RENEW_INTERVAL:-}"

# The Strict-Transport-Security header (HTTPS only).
hsts_seconds=${MYMDB_HSTS_SECONDS:-86400}
case "$hsts_seconds" in
  '' | *[!0-9]*) fail "MYMDB_HSTS_SECONDS must be a whole number of seconds: '$hsts_seconds'" ;;
esac
hsts="max-age=$hsts_seconds"
case "${MYMDB_HSTS_SUBDOMAINS:-false}" in
  true) hsts="$hsts; includeSubDomains" ;;
  false) ;;
  *) fail "MYMDB_HSTS_SUBDOMAINS must be true or false: '${MYMDB_HSTS_SUBDOMAINS}'" ;;
esac
case "${MYMDB_HSTS_PRELOAD:-false}" in
  true)
    if [ "${MYMDB_HSTS_SUBDOMAINS:-false}" != true ] || [ "$hsts_seconds" -lt 31536000 ]; then
      fail 'MYMDB_HSTS_PRELOAD=true needs MYMDB_HSTS_SUBDOMAINS=true and MYMDB_HSTS_SECONDS of at least 31536000'
    fi
    hsts="$hsts; preload"
    ;;
  false) ;;
  *) fail "MYMDB_HSTS_PRELOAD must be true or false: '${MYMDB_HSTS_PRELOAD}'" ;;
esac

# DJANGO_ALLOWED_HOSTS as the names of a Caddy host matcher; empty for "any name".
hosts=''
any=''
for h in $(echo "${DJANGO_ALLOWED_HOSTS:-}" | tr ',' ' '); do
  plain DJANGO_ALLOWED_HOSTS "$h"
  case "$h" in
    '*') any=yes ;;
    .*) hosts="$hosts ${h#.} *$h" ;;
    \[*\]) h=${h#[}; hosts="$hosts ${h%]}" ;;
    *) hosts="$hosts $h" ;;
  esac
done
[ -z "$any" ] || hosts=''

# The site's reverse_proxy for the requests of matcher $1 ($2: an extra transport line): every address of the
# upstream's name, looked up again each second (on Swarm one per running web task, whatever its
# node; a task is there once healthy and gone once it stops), taken in turn. An address that
# fails (refused, no answer) is left out for 5 s; meanwhile, and while the site has no address
# (a web container being replaced), a request waits up to 10 s instead of failing. Connections
# to the site are kept for reuse, up to 1024 idle (Caddy's default keeps 32: under more
# concurrent requests it opened a new connection per request, and the closed ones piled up in
# TIME_WAIT until the ports ran out). Idle ones are closed after 60 s, before nginx's 65 s.
site_proxy() {
  echo "	reverse_proxy $1 {"
  echo "		dynamic a $upstream_name $upstream_port {"
  echo '			refresh 1s'
  echo '		}'
  echo '		lb_policy round_robin'
  echo '		lb_try_duration 10s'
  echo '		lb_try_interval 250ms'
  echo '		fail_duration 5s'
  echo '		transport http {'
  [ -z "$2" ] || echo "$2"
  echo '			dial_timeout 2s'
  echo '			keepalive 60s'
  echo '			keepalive_idle_conns_per_host 1024'
  echo '		}'
  echo '	}'
}

config=/etc/caddy/Caddyfile
root=/etc/caddy/acme-ca-root.pem
{
  echo '{'
  if [ -z "$domain" ]; then
    echo '	auto_https off'
  else
    [ -z "${MYMDB_ACME_CA:-}" ] || echo "	acme_ca $MYMDB_ACME_CA"
    [ -z "${MYMDB_ACME_EMAIL:-}" ] || echo "	email $MYMDB_ACME_EMAIL"
    if [ -n "${MYMDB_ACME_CA_ROOT_B64:-}" ]; then
      echo "$MYMDB_ACME_CA_ROOT_B64" | base64 -d >"$root" || fail 'MYMDB_ACME_CA_ROOT_B64 is not base64'
      echo "	acme_ca_root $root"
    fi
    [ -z "${MYMDB_ACME_RENEW_INTERVAL:-}" ] || echo "	renew_interval $MYMDB_ACME_RENEW_INTERVAL"
    # Clients that send no server name (a visit by IP address) get the site's certificate.
    echo "	default_sni $domain"
  fi
  echo '}'
  echo
  if [ -n "$domain" ]; then
    echo "$domain {"
    # On every HTTPS response, the site's and Caddy's own (an error while web is replaced);
    # Caddy's redirect from HTTP to HTTPS is not in this block.
    [ "$hsts_seconds" = 0 ] || echo "	header Strict-Transport-Security \"$hsts\""
  elif [ -n "$hosts" ]; then
    echo ':80 {'
    echo '	@other {'
    echo "		not host$hosts"
    echo '		not path /healthz'
    echo '	}'
    echo '	abort @other'
  else
    echo ':80 {'
  fi
  # Reads (GET, HEAD) that get no answer head within 4 s are tried at another address (a web
  # task on a host that died answers nothing, not even a refusal); writes never go twice.
  # (reverse_proxy, not handle: Caddy runs handle before abort, which must come first)
  echo '	@read method GET HEAD'
  echo '	@write not method GET HEAD'
  site_proxy @read '			response_header_timeout 4s'
  site_proxy @write ''
  echo '}'
} >"$config"

caddy validate --config "$config" --adapter caddyfile >/dev/null 2>&1 || {
  caddy validate --config "$config" --adapter caddyfile >&2 || true
  fail "the Caddyfile written from the environment is not valid (above)"
}
# Caddy runs as the user caddy, with only the right to listen on ports below 1024. This script
# runs as root to hand it the volumes: certificates written by an older proxy, which ran as
# root, become caddy's.
if [ "$(id -u)" != 0 ]; then
  exec caddy run --config "$config" --adapter caddyfile
fi
find /data /config ! -user caddy -exec chown -h caddy:caddy {} +
exec setpriv --reuid=caddy --regid=caddy --init-groups \
  --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service --bounding-set=-all,+net_bind_service \
  caddy run --config "$config" --adapter caddyfile
