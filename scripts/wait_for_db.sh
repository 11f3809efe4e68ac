#!/usr/bin/env bash
# Waits until Django can open a connection to its database, retrying for a bounded time.
# Usage: wait_for_db.sh [SECONDS]   (default 60; run from the Django directory)
set -o errexit -o nounset -o pipefail

deadline=$(( $(date +%s) + ${1:-60} ))
until python3 - <<'PY' 2>/tmp/wait_for_db.err
import django
django.setup()
from django.db import connection
connection.ensure_connection()
PY
do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "wait_for_db: database not reachable after ${1:-60} s:" >&2
    tail -n 3 /tmp/wait_for_db.err >&2
    exit 1
  fi
  sleep 1
done
