#!/usr/bin/env bash
# Entrypoint of the MyMDB PostgreSQL image: on first start initialises the data directory with
# the superuser POSTGRES_USER / POSTGRES_PASSWORD and runs /docker-entrypoint-initdb.d/* once; with
# MYMDB_DB_SET_PASSWORDS=1 (a deployed stack), on every later start sets the two roles' passwords
# to the environment's; then runs the server as the postgres user.
set -o errexit -o nounset -o pipefail

log() { echo "db-entrypoint: $*" >&2; }

# file_env VAR: lets VAR be given as VAR_FILE (a path, e.g. a Docker secret) instead. VAR_FILE is
# unset once read, so the second pass of this script (as postgres, below) sees only VAR.
file_env() {
  local var=$1 file_var="${1}_FILE"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    log "both $var and $file_var are set; set only one"
    exit 1
  fi
  if [ -n "${!file_var:-}" ]; then
    if [ ! -r "${!file_var}" ]; then
      log "cannot read $file_var (${!file_var})"
      exit 1
    fi
    export "$var"="$(<"${!file_var}")"
  fi
  unset "$file_var"
}

# init_database: initdb, then run the init scripts against a server on the local socket only,
# so nothing (and no health check) can connect before initialisation has finished.
init_database() {
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    log "the data directory is empty and POSTGRES_PASSWORD is not set; set POSTGRES_PASSWORD (see .env.example)"
    exit 1
  fi
  log "initialising $PGDATA"
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  {
    echo "host all all all scram-sha-256"
  } >>"$PGDATA/pg_hba.conf"
  {
    echo "listen_addresses = '*'"
    echo "jit = off"
  } >>"$PGDATA/postgresql.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) log "running $f"; PGUSER="$POSTGRES_USER" PGDATABASE=postgres bash "$f" ;;
      *.sql) log "running $f"; psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -f "$f" ;;
      *) [ -e "$f" ] && log "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  log "initialised"
}

# sync_passwords: the superuser's and MyMDB's role's passwords set to the environment's (a server
# on the local socket only, as for the initialisation), so a password changed in the host's .env
# (a rotation) is the database's from this start on. Values go in as psql variables, quoted by
# psql itself. Not for up:local: there a volume made with other passwords (another checkout's)
# is refused, not taken over.
sync_passwords() {
  [ -n "${POSTGRES_PASSWORD:-}" ] || return 0
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql -v ON_ERROR_STOP=1 --no-psqlrc -q -U "$POSTGRES_USER" -d postgres \
    --set=su="$POSTGRES_USER" --set=su_password="$POSTGRES_PASSWORD" \
    --set=db_user="${DJANGO_DB_USER:-}" --set=db_password="${DJANGO_DB_PASSWORD:-}" <<'EOSQL'
ALTER ROLE :"su" PASSWORD :'su_password';
SELECT (:'db_user' <> '' AND :'db_password' <> '' AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'db_user')) AS sync_app \gset
\if :sync_app
ALTER ROLE :"db_user" PASSWORD :'db_password';
\endif
EOSQL
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  log "passwords of $POSTGRES_USER${DJANGO_DB_USER:+ and $DJANGO_DB_USER} set from the environment"
}

if [ "${1:-}" = postgres ]; then
  file_env POSTGRES_PASSWORD
  file_env DJANGO_DB_PASSWORD  # read by /docker-entrypoint-initdb.d/make_database.sh
  export POSTGRES_USER=${POSTGRES_USER:-postgres}

  if [ "$(id -u)" = 0 ]; then
    # Volumes arrive owned by root: hand them to postgres, then run this script again as postgres.
    mkdir -p "$PGDATA" /run/postgresql
    chown postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi

  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    # An interrupted initialisation leaves a partial directory: clear it so the next start retries.
    trap 'log "initialisation failed; clearing $PGDATA so the next start retries"; find "$PGDATA" -mindepth 1 -delete' ERR
    init_database
    trap - ERR
  elif [ "${MYMDB_DB_SET_PASSWORDS:-0}" = 1 ]; then
    sync_passwords
  fi
fi

exec "$@"
