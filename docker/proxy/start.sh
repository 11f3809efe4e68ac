#!/bin/sh
# Starts MyMDB's front, nginx (the request path, a one-second cache of shared anonymous pages)
# and, with a domain, Caddy (HTTPS) in front of it, with their configuration written from the
# environment (run.sh then runs them):
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

# Where the site is: every address of the upstream's name (nginx's resolver: Docker's DNS).
dns=$(awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf)
[ -n "$dns" ] || fail 'no nameserver in /etc/resolv.conf'
case "$dns" in *:*) dns="[$dns]" ;; esac

# nginx's servers (nginx.conf includes them; site.conf is the request path).
front=/etc/nginx/conf.d/front.conf
mkdir -p /etc/nginx/conf.d
{
  echo "resolver $dns valid=1s ipv6=off;"
  echo
  echo '# The health check (healthcheck.sh): nginx answers.'
  echo 'server {'
  echo '    listen 127.0.0.1:8082;'
  echo '    location = /front-health { return 204; }'
  echo '}'
  echo
  if [ -n "$domain" ]; then
    echo '# Behind Caddy (HTTPS) in this container: the scheme and the address are what Caddy saw.'
    echo 'server {'
    echo '    listen 127.0.0.1:8081;'
    echo "    set \$mymdb_upstream $upstream;"
    echo "    set \$mymdb_proto \$http_x_forwarded_proto;"
    echo "    set \$mymdb_client \$http_x_forwarded_for;"
    echo '    include /etc/nginx/mymdb-site.conf;'
    echo '}'
  else
    # DJANGO_ALLOWED_HOSTS as nginx server names (.example.com is the name and its subdomains in
    # both); "*" or nothing: any name.
    names=''
    any=''
    # (split without the shell's globbing, set -f: a * would become the names of the files in /)
    set -f
    for h in $(echo "${DJANGO_ALLOWED_HOSTS:-}" | tr ',' ' '); do
      plain DJANGO_ALLOWED_HOSTS "$h"
      case "$h" in
        '*') any=yes ;;
        *[!][A-Za-z0-9.:_-]*) fail "DJANGO_ALLOWED_HOSTS entry '$h' is not a host name" ;;
        *) names="$names $h" ;;
      esac
    done
    set +f
    [ -z "$any" ] || names=''
    site_server() {
      echo 'server {'
      echo "    listen 80$1;"
      echo "    listen [::]:80$1;"
      echo "    server_name ${2:-_};"
      echo "    set \$mymdb_upstream $upstream;"
      echo "    set \$mymdb_proto http;"
      echo "    set \$mymdb_client \$remote_addr;"
      if [ -n "$3" ]; then
        echo "    location = /healthz { proxy_pass http://\$mymdb_upstream; }"
        echo '    location / { return 444; }'
      else
        echo '    include /etc/nginx/mymdb-site.conf;'
      fi
      echo '}'
    }
    if [ -n "$names" ]; then
      echo '# Requests for other names are dropped here, except the health probe /healthz.'
      site_server ' default_server' _ drop
      site_server '' "${names# }" ''
    else
      site_server ' default_server' _ ''
    fi
  fi
} >"$front"

# With a domain, Caddy owns ports 80 and 443: the certificate, HTTPS, the redirect from HTTP,
# HSTS; it passes every request to nginx above, over kept-alive connections (up to 1024 idle:
# Caddy's default keeps 32, and under more concurrent requests the closed ones piled up in
# TIME_WAIT). Idle ones are closed after 60 s, before nginx's 65 s.
config=/etc/caddy/Caddyfile
root=/etc/caddy/acme-ca-root.pem
if [ -n "$domain" ]; then
  {
    echo '{'
    [ -z "${MYMDB_ACME_CA:-}" ] || echo "	acme_ca $MYMDB_ACME_CA"
    [ -z "${MYMDB_ACME_EMAIL:-}" ] || echo "	email $MYMDB_ACME_EMAIL"
    if [ -n "${MYMDB_ACME_CA_ROOT_B64:-}" ]; then
      echo "$MYMDB_ACME_CA_ROOT_B64" | base64 -d >"$root" || fail 'MYMDB_ACME_CA_ROOT_B64 is not base64'
      echo "	acme_ca_root $root"
    fi
    [ -z "${MYMDB_ACME_RENEW_INTERVAL:-}" ] || echo "	renew_interval $MYMDB_ACME_RENEW_INTERVAL"
    # Clients that send no server name (a visit by IP address) get the site's certificate.
    echo "	default_sni $domain"
    echo '}'
    echo
    echo "$domain {"
    # On every HTTPS response, the site's and Caddy's own; Caddy's redirect from HTTP to HTTPS is
    # not in this block.
    [ "$hsts_seconds" = 0 ] || echo "	header Strict-Transport-Security \"$hsts\""
    echo '	reverse_proxy 127.0.0.1:8081 {'
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
fi

mkdir -p /tmp/mymdb-front
nginx -t -q -e stderr || fail "the nginx configuration written from the environment is not valid (above)"

# `mymdb-proxy check`: the configuration only (written and validated above), nothing started.
if [ "${1:-}" = check ]; then
  echo "mymdb-proxy: the configuration is valid"
  exit 0
fi

# Caddy and nginx run as the user caddy, with only the right to listen on ports below 1024. This
# script runs as root to hand it the volumes: certificates written by an older proxy, which ran
# as root, become caddy's.
if [ "$(id -u)" != 0 ]; then
  exec /usr/local/sbin/mymdb-proxy-run
fi
find /data /config /tmp/mymdb-front ! -user caddy -exec chown -h caddy:caddy {} +
# nginx's log of server errors (nginx.conf) opens /dev/stderr: the pipe Docker gave this container
# becomes caddy's, as runc does for a container started as its user.
[ ! -p /proc/self/fd/2 ] || chown caddy:caddy /proc/self/fd/2
exec setpriv --reuid=caddy --regid=caddy --init-groups \
  --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service --bounding-set=-all,+net_bind_service \
  /usr/local/sbin/mymdb-proxy-run
