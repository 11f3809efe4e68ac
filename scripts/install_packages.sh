#!/usr/bin/env bash
# Installs MyMDB's runtime into the web image from Debian packages (there is no PyPI here; a
# developer with PyPI installs the same stack from requirements.production.txt in a venv).
#   requirements.common.txt      Django, psycopg, Pillow  -> python3-django python3-psycopg python3-pil
#   requirements.production.txt  django-storages[s3], boto3, uWSGI, pymemcache -> python3-django-storages(-s3) python3-boto3 uwsgi-* python3-pymemcache
# libjs-jquery: the admin's jquery.js is a symlink into it; without it collectstatic fails.
set -o errexit -o nounset -o pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  python3 python3-django python3-psycopg python3-pil \
  python3-django-storages python3-django-storages-s3 python3-boto3 python3-pymemcache \
  uwsgi-core uwsgi-plugin-python3 \
  nginx runit libjs-jquery ca-certificates
rm -rf /var/lib/apt/lists/*
