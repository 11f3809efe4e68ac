#!/usr/bin/env bash
# Fills nginx's server_name from DJANGO_ALLOWED_HOSTS (comma-separated, like Django's setting),
# so that nginx itself drops requests for any other host.
# Usage: render_nginx_conf.sh TEMPLATE OUTPUT
set -o errexit -o nounset -o pipefail

template=${1:?usage: render_nginx_conf.sh TEMPLATE OUTPUT}
output=${2:?usage: render_nginx_conf.sh TEMPLATE OUTPUT}

names=()
IFS=',' read -r -a hosts <<<"${DJANGO_ALLOWED_HOSTS:-}"
for host in "${hosts[@]}"; do
  host=$(echo "$host" | tr -d '[:space:]')
  [ -n "$host" ] || continue
  if ! [[ $host =~ ^[][A-Za-z0-9.*:_-]+$ ]]; then
    echo "render_nginx_conf: DJANGO_ALLOWED_HOSTS entry '$host' is not a host name" >&2
    exit 1
  fi
  # Django's "*" allows every host: nginx spells that as a default server.
  [ "$host" = '*' ] && host='~.'
  names+=("$host")
done
if [ ${#names[@]} -eq 0 ]; then
  echo "render_nginx_conf: DJANGO_ALLOWED_HOSTS is empty; set it to the site's host names" >&2
  exit 1
fi
sed "s|@SERVER_NAMES@|${names[*]}|" "$template" >"$output"
