// The host's ~/mymdb/.env (what the stack runs with) and ~/mymdb/backup.env (where the host's
// backups go), written from checked settings. Values are single-quoted so that Compose
// interpolates nothing; a value such a file cannot hold exactly is refused.
import { envLine } from '../envformat.ts'
import { ConfigError } from '../errors.ts'
import { IMAGE_NAMES, localImages, type ImageName } from '../vars.ts'
import { registryImage } from '../awsvars.ts'
import type { BackupTarget } from '../aws/host.ts'
import type { RemoteSettings, StartSettings } from './settings.ts'
import { DB_CA_TARGET } from '../stackfile.ts'
import { UNUSED_POSTGRES_PASSWORD } from '../dbvars.ts'

/**
 * The keys of the production .env, in order, and whether the host cannot run without them
 * (optional ones are left out when unset). WEB_BIND/WEB_PORT/WEB_HTTPS_PORT: the host publishes
 * the site on all its addresses, ports 80 and 443. The db, proxy and cache images are pinned (by
 * digest when the deploy pushed them).
 */
const ENV_FILE = {
  COMPOSE_PROJECT_NAME: 'optional',
  WEB_BIND: 'required',
  WEB_PORT: 'required',
  WEB_HTTPS_PORT: 'required',
  MYMDB_WEB_IMAGE: 'required',
  MYMDB_DB_IMAGE: 'required',
  MYMDB_PROXY_IMAGE: 'required',
  MYMDB_CACHE_IMAGE: 'required',
  MYMDB_TAG: 'required',
  MYMDB_DB_REF: 'required',
  MYMDB_PROXY_REF: 'required',
  MYMDB_CACHE_REF: 'required',
  MYMDB_DOMAIN: 'optional',
  MYMDB_ACME_CA: 'optional',
  MYMDB_ACME_EMAIL: 'optional',
  MYMDB_ACME_CA_ROOT_B64: 'optional',
  MYMDB_ACME_RENEW_INTERVAL: 'optional',
  MYMDB_HSTS_SECONDS: 'optional',
  MYMDB_HSTS_SUBDOMAINS: 'optional',
  MYMDB_HSTS_PRELOAD: 'optional',
  MYMDB_FRONT_STORAGE: 'optional',
  DJANGO_SECRET_KEY: 'required',
  DJANGO_SECRET_KEY_FALLBACKS: 'optional',
  DJANGO_ALLOWED_HOSTS: 'required',
  DJANGO_LOG_LEVEL: 'optional',
  DJANGO_CACHE_TIMEOUT: 'optional',
  DJANGO_SECURE_SSL: 'optional',
  DJANGO_ADMIN_URL: 'required',
  DJANGO_DB_NAME: 'optional',
  DJANGO_DB_USER: 'optional',
  DJANGO_DB_PASSWORD: 'required',
  POSTGRES_PASSWORD: 'required',
  MYMDB_DATABASE: 'optional',
  DJANGO_DB_HOST: 'optional',
  DJANGO_DB_PORT: 'optional',
  DJANGO_DB_SSLMODE: 'optional',
  DJANGO_DB_SSLROOTCERT: 'optional',
  MYMDB_DB_CA_ID: 'optional',
  UWSGI_PROCESSES: 'optional',
  UWSGI_THREADS: 'optional',
  MYMDB_WEB_REPLICAS: 'optional',
  DJANGO_UPLOAD_S3_BUCKET: 'optional',
  AWS_S3_REGION_NAME: 'optional',
  AWS_S3_ENDPOINT_URL: 'optional',
  MYMDB_UPLOAD_AWS_ACCESS_KEY_ID: 'optional',
  MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY: 'optional',
} as const

export type EnvFileKey = keyof typeof ENV_FILE
export const ENV_FILE_KEYS = Object.keys(ENV_FILE) as EnvFileKey[]
const REQUIRED_KEYS = ENV_FILE_KEYS.filter((k) => ENV_FILE[k] === 'required')

/** The text of the host's ~/mymdb/.env. Pure. Throws ConfigError for a missing required key. */
export function productionEnvFile(values: Partial<Record<EnvFileKey, string | number | boolean | undefined>>): string {
  const missing = REQUIRED_KEYS.filter((k) => values[k] === undefined || String(values[k]).trim() === '')
  if (missing.length > 0) throw new ConfigError(`production .env: no value for ${missing.join(', ')}`)
  const lines = ['# Written by remote-up (MyMDB Deploy). Replaced on every deploy: change the settings where you deploy from.']
  for (const key of ENV_FILE_KEYS) {
    const v = values[key]
    if (v === undefined || String(v).trim() === '') continue
    lines.push(envLine(key, String(v)))
  }
  return `${lines.join('\n')}\n`
}

/**
 * The image each service runs on the host: web by the commit's tag, db, proxy and cache by the digest
 * the push reported (the same digest on the next deploy leaves the container running), or by
 * the tag when no digest is known (this step run alone).
 */
export function hostImages(s: Pick<RemoteSettings, 'MYMDB_WEB_IMAGE' | 'MYMDB_DB_IMAGE' | 'MYMDB_PROXY_IMAGE' | 'MYMDB_CACHE_IMAGE' | 'MYMDB_TAG'>, registry: string, digests: Partial<Record<ImageName, string>> = {}): Record<ImageName, string> {
  const local = localImages(s)
  const ref = (name: ImageName) => {
    const image = registryImage(registry, local[name])
    const digest = name === 'web' ? undefined : digests[name]
    return digest ? `${image}@${digest}` : `${image}:${s.MYMDB_TAG}`
  }
  return Object.fromEntries(IMAGE_NAMES.map((n) => [n, ref(n)])) as Record<ImageName, string>
}

/** DJANGO_ALLOWED_HOSTS on the host: the domain first (the checks use the first name), then the others. */
export function siteHostNames(s: Pick<RemoteSettings, 'DJANGO_ALLOWED_HOSTS' | 'MYMDB_DOMAIN'>): string[] {
  return [...new Set([...(s.MYMDB_DOMAIN ? [s.MYMDB_DOMAIN] : []), ...s.DJANGO_ALLOWED_HOSTS])]
}

/**
 * The .env values for checked settings and a registry address (the images as push names them).
 * With MYMDB_DOMAIN: the ACME settings for the front, and Django's HTTPS settings on
 * (DJANGO_SECURE_SSL: HTTPS redirect, secure cookies, the proxy's X-Forwarded-Proto trusted).
 */
export function envFileValues(
  s: StartSettings,
  registry: string,
  digests: Partial<Record<ImageName, string>> = {},
  db?: RdsEndpoint & { caId: string },
  /** Several hosts: the front's /data on the shared storage (lib/remote/frontstore.ts). */
  frontStorage?: string,
): Record<EnvFileKey, string | undefined> {
  const images = hostImages(s, registry, digests)
  const domain = s.MYMDB_DOMAIN
  return {
    COMPOSE_PROJECT_NAME: 'mymdb',
    WEB_BIND: '0.0.0.0',
    WEB_PORT: '80',
    WEB_HTTPS_PORT: '443',
    MYMDB_WEB_IMAGE: registryImage(registry, s.MYMDB_WEB_IMAGE),
    MYMDB_DB_IMAGE: registryImage(registry, s.MYMDB_DB_IMAGE),
    MYMDB_PROXY_IMAGE: registryImage(registry, s.MYMDB_PROXY_IMAGE),
    MYMDB_CACHE_IMAGE: registryImage(registry, s.MYMDB_CACHE_IMAGE),
    MYMDB_TAG: s.MYMDB_TAG,
    MYMDB_DB_REF: images.db,
    MYMDB_PROXY_REF: images.proxy,
    MYMDB_CACHE_REF: images.cache,
    MYMDB_DOMAIN: domain,
    MYMDB_ACME_CA: domain ? s.MYMDB_ACME_CA : undefined,
    MYMDB_ACME_EMAIL: domain ? s.MYMDB_ACME_EMAIL : undefined,
    MYMDB_ACME_CA_ROOT_B64: domain && s.caRoot ? Buffer.from(s.caRoot).toString('base64') : undefined,
    MYMDB_ACME_RENEW_INTERVAL: domain ? s.MYMDB_ACME_RENEW_INTERVAL : undefined,
    MYMDB_HSTS_SECONDS: domain ? String(s.MYMDB_HSTS_SECONDS) : undefined,
    MYMDB_HSTS_SUBDOMAINS: domain ? String(s.MYMDB_HSTS_SUBDOMAINS) : undefined,
    MYMDB_HSTS_PRELOAD: domain ? String(s.MYMDB_HSTS_PRELOAD) : undefined,
    MYMDB_FRONT_STORAGE: frontStorage,
    DJANGO_SECRET_KEY: s.DJANGO_SECRET_KEY,
    DJANGO_SECRET_KEY_FALLBACKS: s.DJANGO_SECRET_KEY_FALLBACKS,
    DJANGO_ALLOWED_HOSTS: siteHostNames(s).join(','),
    DJANGO_LOG_LEVEL: s.DJANGO_LOG_LEVEL,
    DJANGO_CACHE_TIMEOUT: String(s.DJANGO_CACHE_TIMEOUT),
    DJANGO_SECURE_SSL: String(s.DJANGO_SECURE_SSL),
    DJANGO_ADMIN_URL: s.DJANGO_ADMIN_URL,
    DJANGO_DB_NAME: s.DJANGO_DB_NAME,
    DJANGO_DB_USER: s.DJANGO_DB_USER,
    DJANGO_DB_PASSWORD: s.DJANGO_DB_PASSWORD,
    POSTGRES_PASSWORD: s.POSTGRES_PASSWORD ?? (db ? UNUSED_POSTGRES_PASSWORD : undefined),
    ...databaseEnv(db),
    UWSGI_PROCESSES: String(s.UWSGI_PROCESSES),
    UWSGI_THREADS: String(s.UWSGI_THREADS),
    MYMDB_WEB_REPLICAS: s.MYMDB_WEB_REPLICAS === undefined ? undefined : String(s.MYMDB_WEB_REPLICAS),
    DJANGO_UPLOAD_S3_BUCKET: s.DJANGO_UPLOAD_S3_BUCKET,
    AWS_S3_REGION_NAME: s.AWS_S3_REGION_NAME,
    AWS_S3_ENDPOINT_URL: s.AWS_S3_ENDPOINT_URL,
    MYMDB_UPLOAD_AWS_ACCESS_KEY_ID: s.MYMDB_UPLOAD_AWS_ACCESS_KEY_ID,
    MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY: s.MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY,
  }
}

const DB_KEYS = ['MYMDB_DATABASE', 'DJANGO_DB_HOST', 'DJANGO_DB_PORT', 'DJANGO_DB_SSLMODE', 'DJANGO_DB_SSLROOTCERT', 'MYMDB_DB_CA_ID'] as const satisfies readonly EnvFileKey[]

/** Where the site's database answers on RDS. */
export interface RdsEndpoint {
  address: string
  port: number
}

/** The database lines of the host's .env: none for the stack's own db; on RDS its endpoint, TLS verified against the bundle (caId: its id). */
function databaseEnv(db: (RdsEndpoint & { caId: string }) | undefined): Record<(typeof DB_KEYS)[number], string | undefined> {
  if (!db) return Object.fromEntries(DB_KEYS.map((k) => [k, undefined])) as Record<(typeof DB_KEYS)[number], undefined>
  return {
    MYMDB_DATABASE: 'rds',
    DJANGO_DB_HOST: db.address,
    DJANGO_DB_PORT: String(db.port),
    DJANGO_DB_SSLMODE: 'verify-full',
    DJANGO_DB_SSLROOTCERT: DB_CA_TARGET,
    MYMDB_DB_CA_ID: db.caId,
  }
}

/** The host's ~/mymdb/backup.env (pure): read by the backup script, never by a container. */
export function backupEnvFile(b: BackupTarget): string {
  return [
    '# Written by the deploy (MyMDB Deploy): where the host writes its backups, and as whom.',
    '# The external id lets the host role assume the backup role; no container is given this file.',
    envLine('MYMDB_BACKUP_BUCKET', b.bucket),
    envLine('MYMDB_BACKUP_REGION', b.region),
    envLine('MYMDB_BACKUP_ROLE_ARN', b.roleArn),
    envLine('MYMDB_BACKUP_EXTERNAL_ID', b.externalId),
    '',
  ].join('\n')
}

