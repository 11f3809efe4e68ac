#!/bin/sh
# Starts MyMDB's front (Caddy) with a Caddyfile written from the environment:
#   MYMDB_DOMAIN          empty: plain HTTP on :80 for any name. Set: HTTPS for that name with
#                         a certificate from the ACME CA, and HTTP redirects to HTTPS.
#   MYMDB_ACME_CA         the CA's directory URL (default: Let's Encrypt)
#   MYMDB_ACME_EMAIL      the account's email (optional: the CA warns there before expiry)
#   MYMDB_ACME_CA_ROOT_B64  base64 of the PEM root of the CA's own HTTPS (private CAs only)
#   MYMDB_ACME_RENEW_INTERVAL  how often Caddy looks for certificates to renew (default 10m)
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
plain MYMDB_DOMAIN "$domain"
plain MYMDB_UPSTREAM "$upstream"
plain MYMDB_ACME_CA "${MYMDB_ACME_CA:-}"
plain MYMDB_ACME_EMAIL "${MYMDB_ACME_EMAIL:-}"
plain MYMDB_ACME_RENEW_INTERVAL "${MYMDB_ACME_RENEW_INTERVAL:-}"

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
  # Requests wait up to 10 s for the site (a web container being replaced) instead of failing.
  # Connections to the site are kept for reuse, up to 1024 idle (Caddy's default keeps 32: under
  # more concurrent requests it opened a new connection per request, and the closed ones piled up
  # in TIME_WAIT until the ports ran out). Idle ones are closed after 60 s, before nginx's 65 s.
  echo "	reverse_proxy $upstream {"
  echo '		lb_try_duration 10s'
  echo '		lb_try_interval 250ms'
  echo '		transport http {'
  echo '			keepalive 60s'
  echo '			keepalive_idle_conns_per_host 1024'
  echo '		}'
  echo '	}'
  echo '}'
} >"$config"

caddy validate --config "$config" --adapter caddyfile >/dev/null 2>&1 || {
  caddy validate --config "$config" --adapter caddyfile >&2 || true
  fail "the Caddyfile written from the environment is not valid (above)"
}
exec caddy run --config "$config" --adapter caddyfile
