#!/usr/bin/env bash
# Creates MyMDB's role and a database that the role OWNS (on PostgreSQL 15+ a mere
# GRANT ALL ON DATABASE cannot create tables in schema public, so migrations would fail).
# Values go in as psql variables, quoted by psql itself (:"name" and :'literal'), never pasted
# into SQL. CREATEDB lets `manage.py test` create its test database.
set -o errexit -o nounset -o pipefail

missing=()
for var in DJANGO_DB_NAME DJANGO_DB_USER DJANGO_DB_PASSWORD; do
  [ -n "${!var:-}" ] || missing+=("$var")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "make_database: set ${missing[*]} for the db service (see .env.example)" >&2
  exit 1
fi

psql -v ON_ERROR_STOP=1 --no-psqlrc \
  --set=db_name="$DJANGO_DB_NAME" \
  --set=db_user="$DJANGO_DB_USER" \
  --set=db_password="$DJANGO_DB_PASSWORD" <<'EOSQL'
CREATE ROLE :"db_user" LOGIN CREATEDB PASSWORD :'db_password';
CREATE DATABASE :"db_name" OWNER :"db_user";
EOSQL
