// Reaching the stack's database with a shell script: in the db container (the stack's own
// PostgreSQL), or on a host whose database is on RDS, from a throw-away container of the db image
// on the host's network. Backups, restores and status go through inDb.
import type { Cmd } from './sh.ts'
import { execCmd, swarmContainer, type Stack } from './stack.ts'

/** Shell, in the host's stack directory: true when its .env puts the database on RDS (MYMDB_DATABASE=rds). */
export const RDS_TEST = `grep -qx "MYMDB_DATABASE='rds'" .env 2>/dev/null`

/**
 * Shell: "$@" in a throw-away container of the db image (MYMDB_DB_REF) on the host's network,
 * logged in to the RDS database as the site's role over TLS verified against db-ca.pem (libpq's
 * PG* variables), the role's values as DJANGO_DB_NAME, _USER, _PASSWORD; from the host's .env,
 * handed to docker through a pipe (on no command line).
 */
const RDS_CLIENT = [
  '  set -a; . ./.env; set +a',
  '  cmd=$1; shift',
  '  exec docker run --rm --interactive --network host --volume "$PWD/db-ca.pem:/ca.pem:ro" --env-file /dev/fd/3 --entrypoint "$cmd" "$MYMDB_DB_REF" "$@" 3<<EOF',
  'PGHOST=$DJANGO_DB_HOST',
  'PGPORT=${DJANGO_DB_PORT:-5432}',
  'PGUSER=${DJANGO_DB_USER:-mymdb}',
  'PGPASSWORD=$DJANGO_DB_PASSWORD',
  'PGDATABASE=${DJANGO_DB_NAME:-mymdb}',
  'PGSSLMODE=verify-full',
  'PGSSLROOTCERT=/ca.pem',
  'DJANGO_DB_NAME=${DJANGO_DB_NAME:-mymdb}',
  'DJANGO_DB_USER=${DJANGO_DB_USER:-mymdb}',
  'DJANGO_DB_PASSWORD=$DJANGO_DB_PASSWORD',
  'EOF',
].join('\n')

/**
 * A shell script against the database, with its environment (DJANGO_DB_NAME, ...): in the db
 * container as postgres (local socket, peer authentication); on a host whose database is on RDS,
 * in a throw-away container of the db image, as the site's role (RDS_CLIENT).
 */
export function inDb(s: Stack, script: string): Cmd {
  if (s.kind === 'compose') return execCmd(s, 'db', ['sh', '-c', script], { user: 'postgres' })
  return ['sh', '-c', `if ${RDS_TEST}; then\n${RDS_CLIENT}\nfi\n${swarmContainer('db')}; exec docker exec -i --user postgres "$c" "$@"`, 'sh', 'sh', '-c', script]
}
