#!/bin/sh
# Healthy when the front's nginx answers and, with a domain, Caddy's admin API does.
set -eu
curl --silent --fail --output /dev/null http://127.0.0.1:8082/front-health
[ -z "${MYMDB_DOMAIN:-}" ] || curl --silent --fail --output /dev/null http://127.0.0.1:2019/config/
