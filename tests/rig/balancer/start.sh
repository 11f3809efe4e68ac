#!/bin/sh
# Writes HAProxy's configuration for the targets given as arguments (host names or addresses on
# the rig network) and runs it in the foreground: TCP 80 and 443, round robin, TCP health checks.
set -eu
[ "$#" -gt 0 ] || { echo "start-balancer: name at least one target" >&2; exit 2; }
conf=/etc/haproxy/rig.cfg
{
  echo 'global'
  echo '  maxconn 4096'
  echo 'defaults'
  echo '  mode tcp'
  echo '  timeout connect 2s'
  echo '  timeout client 60s'
  echo '  timeout server 60s'
  echo 'resolvers docker'
  echo '  nameserver dns 127.0.0.11:53'
  echo '  hold valid 1s'
  for port in 80 443; do
    echo "frontend in$port"
    echo "  bind :$port"
    echo "  default_backend out$port"
    echo "backend out$port"
    echo '  balance roundrobin'
    echo '  default-server check inter 1s fall 2 rise 1 resolvers docker init-addr none'
    i=0
    for t in "$@"; do
      i=$((i + 1))
      echo "  server t$i $t:$port"
    done
  done
} >"$conf"
exec haproxy -W -db -f "$conf"
