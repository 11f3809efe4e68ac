#!/usr/bin/env bash
# The front's first process after start.sh (as the user caddy): nginx, and with MYMDB_DOMAIN Caddy
# beside it. When either stops the other is stopped too and the container ends (Docker or Swarm
# starts a new one). On TERM or INT (docker stop), both stop gracefully: Caddy (TERM) first, the
# requests it passed on then finish at nginx (QUIT: closes what is left after 3 s, nginx.conf);
# then it exits 143 (128 + TERM; 130 on INT), as runit/boot does for web: not 0, so that a front
# Swarm stopped for being unhealthy shows as failed, not as complete.
set -o nounset

caddy_pid=''
if [ -n "${MYMDB_DOMAIN:-}" ]; then
  caddy run --config /etc/caddy/Caddyfile --adapter caddyfile &
  caddy_pid=$!
fi
nginx -e stderr -g 'daemon off;' &
nginx_pid=$!

stop() {
  [ -z "$caddy_pid" ] || { kill -TERM "$caddy_pid" 2>/dev/null; wait "$caddy_pid"; }
  kill -QUIT "$nginx_pid" 2>/dev/null
  wait "$nginx_pid"
}
trap 'stop; exit 143' TERM
trap 'stop; exit 130' INT

wait -n
status=$?
echo "mymdb-proxy: $( [ -n "$caddy_pid" ] && ! kill -0 "$caddy_pid" 2>/dev/null && echo caddy || echo nginx) stopped (exit $status); stopping the front" >&2
stop
exit 1
