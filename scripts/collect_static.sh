#!/usr/bin/env bash
# Collects static files into the image at build time. Production settings refuse to load without
# their variables, so throwaway values are set for this one command only: none of them is kept
# in any image layer, and no database is contacted.
# Usage: collect_static.sh DJANGO_DIR
set -o errexit -o nounset -o pipefail

cd "${1:?usage: collect_static.sh DJANGO_DIR}"
DJANGO_SETTINGS_MODULE=config.production_settings \
DJANGO_SECRET_KEY="build-time-only-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
DJANGO_ALLOWED_HOSTS=build.invalid \
DJANGO_DB_NAME=unused DJANGO_DB_USER=unused DJANGO_DB_PASSWORD=unused DJANGO_DB_HOST=unused.invalid \
  python3 manage.py collectstatic --noinput --verbosity 1
