// remote-up: starts (or updates) MyMDB on the deploy host over SSH. The host already has Docker
// (its user-data runs scripts/install-docker.sh) and the images are in a registry. Uploads
// docker-compose.yml and a production .env, pulls, deploys the Swarm stack rendered from them
// (lib/stack.ts: a new web version takes over only once healthy), checks the migrations, loads the
// sample catalogue into an empty database and checks the site over HTTP or HTTPS.
import { Resolver } from 'node:dns/promises'
import http from 'node:http'
import https from 'node:https'
import { isIP } from 'node:net'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { BackupTarget } from './lib/aws/host.ts'
import { BACKUP_ENV_FILE, BACKUP_SCRIPT_FILE, backupScript, cronLine, hostBackupOptions, installCronCmd, takeBackup } from './lib/backup.ts'
import { checkEnv, loadEnv, type CleanEnv, type RawEnv, type Rule } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { formatDuration, stripControls, type Log } from './lib/log.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { retryUntil, runChecked, showCommand, type Cmd } from './lib/sh.ts'
import { openRemote, type OpenRemote, type Remote } from './lib/ssh.ts'
import { whoRuns } from './lib/paths.ts'
import { appendDeployRecord, DEPLOY_LOG, deployRecord, IMAGE_LIST_FORMAT, pointEnvAt, pruneRefs, readDeployLog, releases } from './lib/releases.ts'
import { splitImageRef } from './lib/stackfile.ts'
import { hostRuns, hostStack, oneOffCmd, REMOTE_DIR, runIn, runInChecked, showStackCommand, STACK_DEPLOY, STACK_LABEL, stackCommands, stackPs, startStack, WAIT_TIMEOUT_SECONDS, type Stack } from './lib/stack.ts'
import { acmeCaRootRule, awsVars, backupScheduleVars, dbVars, djangoVars, hostVars, IMAGE_NAMES, imageVars, localImages, PINNED_IMAGES, productionOnly, readAcmeCaRoot, registryImage, releaseVars, registryRules, registryVars, serverVars, siteVars, sshKeyExistsRule, sshKeyPath, uploadVars, type ImageName } from './lib/vars.ts'

export const HELP = `Usage: npm run remote:up -- [options]

Starts or updates MyMDB on the deploy host over SSH: uploads docker-compose.yml and a
production .env (mode 0600) to ~/mymdb/, logs in to the registry when MYMDB_REGISTRY_USERNAME
and MYMDB_REGISTRY_PASSWORD are set, runs \`docker compose pull\`, makes the host a
single-node Docker Swarm (once) and deploys the stack with \`docker stack deploy\`: a new web
version starts next to the running one and takes traffic only once healthy; one that does not
become healthy is rolled back by Swarm (exit 1, the old one keeps serving). Then checks that the
migrations ran, loads the sample catalogue into an empty database, records the deploy in
~/mymdb/deploys.log and checks /healthz and / over HTTP (or HTTPS with MYMDB_DOMAIN). Safe to run
again: the volumes stay, only changed services are replaced. A host that runs MyMDB with
Compose (an earlier deploy) is moved to the stack, its volumes kept.

Settings (environment and .env; see .env.example):
  MYMDB_HOST_ADDRESS      the host's address (required unless --address is given)
  MYMDB_HOST_SSH_PORT     SSH port (default 22); MYMDB_SSH_USER login user (default admin)
  MYMDB_SSH_KEY_FILE      private key (default ~/.ssh/mymdb-<MYMDB_STAGE>.pem)
  MYMDB_HOST_HTTP_PORT    port the site is checked on (default 80)
  MYMDB_REGISTRY          registry address, e.g. registry.example.com:5000 or 127.0.0.1:5000;
                          images are <MYMDB_REGISTRY>/<last part of MYMDB_WEB_IMAGE>:<MYMDB_TAG>
                          and the same for MYMDB_DB_IMAGE (as npm run push names them)
  MYMDB_TAG               image tag (default latest)
  DJANGO_SECRET_KEY, DJANGO_DB_PASSWORD, POSTGRES_PASSWORD   required, no defaults here
                          (up:local's local-only values are refused)
  DJANGO_ALLOWED_HOSTS    host names of the site (the first one is used for the check)
  DJANGO_UPLOAD_S3_BUCKET, AWS_S3_REGION_NAME, AWS_S3_ENDPOINT_URL   optional

Options:
  --address ADDR  the host's address (instead of MYMDB_HOST_ADDRESS)
  --dry-run       check the settings and show what would be done; connect to nothing
  -h, --help      this help

Exit codes: 0 running, 1 SSH or a remote command failed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run remote:up',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
    address: { type: 'string' },
  },
} as const

/** How long to wait for Docker on a host whose user-data may still be installing it. */
export const DOCKER_WAIT_SECONDS = 300

/** What the start on the host reads; the secrets must be production ones (not up:local's). */
export const remoteSpec = {
  ...productionOnly({ ...djangoVars, ...dbVars, ...uploadVars }),
  UWSGI_PROCESSES: serverVars.UWSGI_PROCESSES,
  UWSGI_THREADS: serverVars.UWSGI_THREADS,
  MYMDB_WEB_IMAGE: imageVars.MYMDB_WEB_IMAGE,
  MYMDB_DB_IMAGE: imageVars.MYMDB_DB_IMAGE,
  MYMDB_PROXY_IMAGE: imageVars.MYMDB_PROXY_IMAGE,
  MYMDB_CACHE_IMAGE: imageVars.MYMDB_CACHE_IMAGE,
  MYMDB_TAG: imageVars.MYMDB_TAG,
  ...siteVars,
  ...releaseVars,
  ...registryVars,
  MYMDB_STAGE: awsVars.MYMDB_STAGE,
  MYMDB_SSH_USER: hostVars.MYMDB_SSH_USER,
  MYMDB_SSH_KEY_FILE: hostVars.MYMDB_SSH_KEY_FILE,
  MYMDB_HOST_ADDRESS: hostVars.MYMDB_HOST_ADDRESS,
  MYMDB_HOST_SSH_PORT: hostVars.MYMDB_HOST_SSH_PORT,
  MYMDB_HOST_HTTP_PORT: hostVars.MYMDB_HOST_HTTP_PORT,
  ...backupScheduleVars,
}

export type RemoteSettings = CleanEnv<typeof remoteSpec>

// --- the production .env -------------------------------------------------------------------

/**
 * The keys of the production .env, in order. Values left out when unset (optional ones only).
 * WEB_BIND/WEB_PORT/WEB_HTTPS_PORT: the host publishes the site on all its addresses, ports 80
 * and 443. The db, proxy and cache images are pinned (by digest when the deploy pushed them).
 */
export const ENV_FILE_KEYS = [
  'COMPOSE_PROJECT_NAME',
  'WEB_BIND',
  'WEB_PORT',
  'WEB_HTTPS_PORT',
  'MYMDB_WEB_IMAGE',
  'MYMDB_DB_IMAGE',
  'MYMDB_PROXY_IMAGE',
  'MYMDB_CACHE_IMAGE',
  'MYMDB_TAG',
  'MYMDB_DB_REF',
  'MYMDB_PROXY_REF',
  'MYMDB_CACHE_REF',
  'MYMDB_DOMAIN',
  'MYMDB_ACME_CA',
  'MYMDB_ACME_EMAIL',
  'MYMDB_ACME_CA_ROOT_B64',
  'MYMDB_ACME_RENEW_INTERVAL',
  'DJANGO_SECRET_KEY',
  'DJANGO_ALLOWED_HOSTS',
  'DJANGO_LOG_LEVEL',
  'DJANGO_CACHE_TIMEOUT',
  'DJANGO_SECURE_SSL',
  'DJANGO_DB_NAME',
  'DJANGO_DB_USER',
  'DJANGO_DB_PASSWORD',
  'POSTGRES_PASSWORD',
  'UWSGI_PROCESSES',
  'UWSGI_THREADS',
  'DJANGO_UPLOAD_S3_BUCKET',
  'AWS_S3_REGION_NAME',
  'AWS_S3_ENDPOINT_URL',
  'MYMDB_UPLOAD_AWS_ACCESS_KEY_ID',
  'MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY',
] as const

export type EnvFileKey = (typeof ENV_FILE_KEYS)[number]

const REQUIRED_KEYS: readonly EnvFileKey[] = [
  'WEB_BIND',
  'WEB_PORT',
  'WEB_HTTPS_PORT',
  'MYMDB_WEB_IMAGE',
  'MYMDB_DB_IMAGE',
  'MYMDB_PROXY_IMAGE',
  'MYMDB_CACHE_IMAGE',
  'MYMDB_TAG',
  'MYMDB_DB_REF',
  'MYMDB_PROXY_REF',
  'MYMDB_CACHE_REF',
  'DJANGO_SECRET_KEY',
  'DJANGO_ALLOWED_HOSTS',
  'DJANGO_DB_PASSWORD',
  'POSTGRES_PASSWORD',
]

/**
 * One value in Compose's .env format: single-quoted, so that nothing in it is interpolated or
 * unescaped (`$`, `#`, `"`, `\` and spaces stay as they are). A value Compose cannot read back
 * exactly that way (a ' or a line break in it, or a trailing \) is refused: ConfigError.
 */
export function envFileValue(key: string, value: string): string {
  if (/['\n\r]/.test(value) || value.endsWith('\\') || value.includes('\0'))
    throw new ConfigError(`${key}: the value contains a single quote, a line break or a trailing backslash, which the host's .env cannot hold exactly; choose another value`)
  return `'${value}'`
}

/** The text of the host's ~/mymdb/.env. Pure. Throws ConfigError for a missing required key. */
export function productionEnvFile(values: Partial<Record<EnvFileKey, string | number | boolean | undefined>>): string {
  const missing = REQUIRED_KEYS.filter((k) => values[k] === undefined || String(values[k]).trim() === '')
  if (missing.length > 0) throw new ConfigError(`production .env: no value for ${missing.join(', ')}`)
  const lines = ['# Written by remote-up (MyMDB Deploy). Replaced on every deploy: change the settings where you deploy from.']
  for (const key of ENV_FILE_KEYS) {
    const v = values[key]
    if (v === undefined || String(v).trim() === '') continue
    lines.push(`${key}=${envFileValue(key, String(v))}`)
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
export function hostNames(s: Pick<RemoteSettings, 'DJANGO_ALLOWED_HOSTS' | 'MYMDB_DOMAIN'>): string[] {
  return [...new Set([...(s.MYMDB_DOMAIN ? [s.MYMDB_DOMAIN] : []), ...s.DJANGO_ALLOWED_HOSTS])]
}

/**
 * The .env values for checked settings and a registry address (the images as push names them).
 * With MYMDB_DOMAIN: the ACME settings for the front, and Django's HTTPS settings on
 * (DJANGO_SECURE_SSL: HSTS, secure cookies, the proxy's X-Forwarded-Proto trusted).
 */
export function envFileValues(s: RemoteSettings, registry: string, digests: Partial<Record<ImageName, string>> = {}, caRoot?: string): Record<EnvFileKey, string | undefined> {
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
    MYMDB_ACME_CA_ROOT_B64: domain && caRoot ? Buffer.from(caRoot).toString('base64') : undefined,
    MYMDB_ACME_RENEW_INTERVAL: domain ? s.MYMDB_ACME_RENEW_INTERVAL : undefined,
    DJANGO_SECRET_KEY: s.DJANGO_SECRET_KEY,
    DJANGO_ALLOWED_HOSTS: hostNames(s).join(','),
    DJANGO_LOG_LEVEL: s.DJANGO_LOG_LEVEL,
    DJANGO_CACHE_TIMEOUT: String(s.DJANGO_CACHE_TIMEOUT),
    DJANGO_SECURE_SSL: String(domain ? true : s.DJANGO_SECURE_SSL),
    DJANGO_DB_NAME: s.DJANGO_DB_NAME,
    DJANGO_DB_USER: s.DJANGO_DB_USER,
    DJANGO_DB_PASSWORD: s.DJANGO_DB_PASSWORD,
    POSTGRES_PASSWORD: s.POSTGRES_PASSWORD,
    UWSGI_PROCESSES: String(s.UWSGI_PROCESSES),
    UWSGI_THREADS: String(s.UWSGI_THREADS),
    DJANGO_UPLOAD_S3_BUCKET: s.DJANGO_UPLOAD_S3_BUCKET,
    AWS_S3_REGION_NAME: s.AWS_S3_REGION_NAME,
    AWS_S3_ENDPOINT_URL: s.AWS_S3_ENDPOINT_URL,
    MYMDB_UPLOAD_AWS_ACCESS_KEY_ID: s.MYMDB_UPLOAD_AWS_ACCESS_KEY_ID,
    MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY: s.MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY,
  }
}

// --- plan ---------------------------------------------------------------------------------

/** The Host header for the checks: the first allowed host (".example.com" -> example.com). */
export function checkHostName(allowed: string[]): string {
  const first = allowed[0] ?? 'localhost'
  if (first.startsWith('*.')) return `www.${first.slice(2)}`
  if (first.startsWith('.')) return first.slice(1)
  return first
}


export interface RemoteUpPlan {
  address: string
  sshPort: number
  user: string
  keyFile: string
  registry: string
  login?: { username: string; password: string }
  images: Record<ImageName, string>
  httpPort: number
  hostName: string
  /** With MYMDB_DOMAIN: the site over HTTPS, and the DNS record it waits for first. */
  https?: HttpsPlan
  /** Releases whose images the host keeps for rollbacks (MYMDB_KEEP_RELEASES). */
  keepReleases: number
  envFile: string
  /** ~/mymdb/backup.env: the backup bucket and role (the deploy passes them; not when run alone). */
  backupEnv?: string
  /** The host's backup script and its crontab line (null: MYMDB_BACKUP_SCHEDULE=off), with backupEnv. */
  schedule?: { script: string; line: string | null; stage: string }
}

/** The host's address is needed (MYMDB_HOST_ADDRESS or --address). */
const addressRule: Rule<RemoteSettings> = {
  names: ['MYMDB_HOST_ADDRESS'],
  check: (v) => (v.MYMDB_HOST_ADDRESS === undefined ? "is needed: the host's address (or pass --address)" : null),
}

/** Alone, this step cannot ask ECR for its address: the deploy passes it. */
const registryAddressRule: Rule<RemoteSettings> = {
  names: ['MYMDB_REGISTRY'],
  check: (v) =>
    v.MYMDB_REGISTRY === 'ecr'
      ? 'ecr: this step needs the registry address (<account>.dkr.ecr.<region>.amazonaws.com); npm run deploy:aws passes it'
      : null,
}

export interface HttpsPlan {
  domain: string
  /** The ACME directory the certificate comes from. */
  ca: string
  /** The port the HTTPS check goes to (MYMDB_HOST_HTTPS_PORT). */
  port: number
  /** The address the domain must resolve to (the host's public IP), when known. */
  ip?: string
  /** Seconds to wait for the DNS record (MYMDB_DNS_WAIT). */
  dnsWait: number
  /** MYMDB_DNS_SERVER, or the system resolver. */
  dnsServer?: string
}

export interface PlanOptions {
  /** The host address (from --address, or the host the deploy found). */
  address?: string
  /** True when `address` came from the --address option (problems then name the option). */
  addressFromOption?: boolean
  /** The registry prefix the images were pushed to (the deploy passes it). */
  registry?: string
  /** More rules to check with the settings (e.g. that the key file exists). */
  rules?: readonly Rule<RemoteSettings>[]
  /** Where and as whom the host writes backups (the host step's result). */
  backup?: BackupTarget
  /** The digests push reported (the host pins the db, proxy and cache images by them). */
  digests?: Partial<Record<ImageName, string>>
  /** The host's public IP: MYMDB_DOMAIN must resolve to it (default: the address, when it is an IP). */
  publicIp?: string
}

/** The host's ~/mymdb/backup.env (pure): read by the backup script, never by a container. */
export function backupEnvFile(b: BackupTarget): string {
  return [
    '# Written by the deploy (MyMDB Deploy): where the host writes its backups, and as whom.',
    '# The external id lets the host role assume the backup role; no container is given this file.',
    `MYMDB_BACKUP_BUCKET=${envFileValue('MYMDB_BACKUP_BUCKET', b.bucket)}`,
    `MYMDB_BACKUP_REGION=${envFileValue('MYMDB_BACKUP_REGION', b.region)}`,
    `MYMDB_BACKUP_ROLE_ARN=${envFileValue('MYMDB_BACKUP_ROLE_ARN', b.roleArn)}`,
    `MYMDB_BACKUP_EXTERNAL_ID=${envFileValue('MYMDB_BACKUP_EXTERNAL_ID', b.externalId)}`,
    '',
  ].join('\n')
}

/** Checks the settings, all problems at once (EnvError, exit 2), and works out what to do. Pure but for `rules`. */
export function planRemoteUp(raw: RawEnv, opts: PlanOptions = {}): RemoteUpPlan {
  const env: RawEnv = {
    ...raw,
    ...(opts.address !== undefined ? { MYMDB_HOST_ADDRESS: opts.address } : {}),
    ...(opts.registry !== undefined ? { MYMDB_REGISTRY: opts.registry } : {}),
  }
  const s = checkEnv(remoteSpec, env, {
    rules: [addressRule, registryAddressRule, acmeCaRootRule, ...registryRules, ...(opts.rules ?? [])],
    options: opts.addressFromOption ? { MYMDB_HOST_ADDRESS: '--address' } : {},
  })
  const address = s.MYMDB_HOST_ADDRESS as string
  const registry = s.MYMDB_REGISTRY
  const { MYMDB_REGISTRY_USERNAME: username, MYMDB_REGISTRY_PASSWORD: password } = s
  const caRoot = s.MYMDB_ACME_CA_ROOT === undefined ? undefined : (readAcmeCaRoot(s.MYMDB_ACME_CA_ROOT, env) ?? undefined)
  const values = envFileValues(s, registry, opts.digests, caRoot)
  const ip = opts.publicIp ?? (isIP(address) !== 0 ? address : undefined)
  return {
    address,
    sshPort: s.MYMDB_HOST_SSH_PORT,
    user: s.MYMDB_SSH_USER,
    // the same file the host step creates or imports, with the same HOME
    keyFile: sshKeyPath(s, env),
    registry,
    login: username !== undefined && password !== undefined ? { username, password } : undefined,
    images: hostImages(s, registry, opts.digests),
    keepReleases: s.MYMDB_KEEP_RELEASES,
    httpPort: s.MYMDB_HOST_HTTP_PORT,
    hostName: checkHostName(hostNames(s)),
    ...(s.MYMDB_DOMAIN
      ? { https: { domain: s.MYMDB_DOMAIN, ca: s.MYMDB_ACME_CA, port: s.MYMDB_HOST_HTTPS_PORT, ...(ip ? { ip } : {}), dnsWait: s.MYMDB_DNS_WAIT, ...(s.MYMDB_DNS_SERVER ? { dnsServer: s.MYMDB_DNS_SERVER } : {}) } }
      : {}),
    envFile: productionEnvFile(values),
    ...(opts.backup
      ? {
          backupEnv: backupEnvFile(opts.backup),
          schedule: {
            script: `${backupScript(hostStack({ where: 'the host', run: planOnly }), hostBackupOptions(s.MYMDB_STAGE, 'scheduled'))}\n`,
            line: cronLine(s.MYMDB_BACKUP_SCHEDULE),
            stage: s.MYMDB_STAGE,
          },
        }
      : {}),
  }
}

/** The runner of a plan: a plan runs nothing. */
const planOnly = () => Promise.reject(new Error('a plan runs nothing'))

/** The registry host of an image prefix (docker.io/yourname -> docker.io) for `docker login`. */
export function registryHost(registry: string): string {
  return registry.split('/')[0] ?? registry
}

/** The remote commands of a run, in order (for --dry-run and the tests). */
export function remoteSteps(plan: RemoteUpPlan): string[] {
  const stack = hostStack({ where: 'the host', run: planOnly })
  const steps = [
    ...(plan.https ? [`wait until ${plan.https.domain} resolves to ${plan.https.ip ?? 'an address'} (DNS record: ${dnsRecord(plan.https)})`] : []),
    'docker info; docker compose version',
    `upload ${REMOTE_DIR}/docker-compose.yml (0644), ${REMOTE_DIR}/.env (0600)${plan.backupEnv ? `, ${REMOTE_DIR}/${BACKUP_ENV_FILE} (0600)` : ''}`]
  if (plan.login) steps.push(showCommand(['docker', 'login', '--username', plan.login.username, '--password-stdin', registryHost(plan.registry)]) + ' (password on stdin)')
  steps.push(
    showStackCommand(stack, stack.compose('pull', '--quiet')),
    ...(plan.schedule ? [`manage.py migrate --check in a throw-away container of ${plan.images.web}; when it fails: a backup into the backup bucket first`] : []),
    'docker swarm init, unless the host is a Swarm node already; a host still on Compose: docker compose down first (the volumes stay)',
    `${showStackCommand(stack, stack.compose('config', '--format', 'json'))} | (the stack file) | ${showCommand(STACK_DEPLOY)}`,
    'wait until every service runs its new image, healthy (a web version that is not is rolled back by Swarm: exit 1)',
    ...[stackCommands.migrateCheck(stack), stackCommands.sampleData(stack)].map((c) => showStackCommand(stack, c)),
    `append a line to ${DEPLOY_LOG} (when, who, which images)`,
    `remove the stack's images that none of the last ${plan.keepReleases} releases in ${DEPLOY_LOG} uses`,
  )
  if (plan.schedule)
    steps.push(
      plan.schedule.line
        ? `upload ${REMOTE_DIR}/${BACKUP_SCRIPT_FILE}; crontab: ${plan.schedule.line}`
        : `remove the backup schedule from the crontab (MYMDB_BACKUP_SCHEDULE=off)`,
    )
  return steps
}

// --- HTTP check ---------------------------------------------------------------------------

export interface HttpReply {
  status: number
  body: string
  location?: string
}
export type HttpGet = (url: string, hostHeader: string) => Promise<HttpReply>

/**
 * GET with an explicit Host header (fetch cannot set one), 10 s timeout; for https:// URLs the
 * certificate must be valid for that name (Node's CAs, and NODE_EXTRA_CA_CERTS).
 */
export const httpGet: HttpGet = (url, hostHeader) =>
  new Promise((resolvePromise, reject) => {
    const u = new URL(url)
    const secure = u.protocol === 'https:'
    const options = { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || (secure ? 443 : 80), path: u.pathname + u.search, method: 'GET', headers: { host: hostHeader }, timeout: 10_000 }
    const req = (secure ? https : http).request(
      secure ? { ...options, servername: hostHeader } : options,
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), location: res.headers.location }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
    req.on('error', reject)
    req.end()
  })

/** Polls `url` until it answers 200, for up to `seconds`. Throws UserError with the last answer. */
export async function waitFor200(get: HttpGet, url: string, hostHeader: string, seconds: number, pauseMs = 2_000, hint?: string): Promise<HttpReply> {
  return retryUntil(
    Math.max(1, Math.ceil((seconds * 1000) / Math.max(pauseMs, 50))),
    pauseMs,
    async () => {
      const r = await get(url, hostHeader)
      if (r.status === 200) return r
      throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 200).trim()}`)
    },
    (last) =>
      new UserError(
        `the site does not answer ${url} (Host: ${hostHeader}) with 200 within ${seconds} s; last: ${last}. ${hint ?? `Is the port open to you (security group), and does DJANGO_ALLOWED_HOSTS hold ${hostHeader}?`}`,
      ),
  )
}

// --- DNS ----------------------------------------------------------------------------------

/** The IPv4 addresses of a name ([] when it has none); `server` is ip[:port] or the system resolver. */
export type ResolveA = (name: string, server?: string) => Promise<string[]>

export const resolveA: ResolveA = async (name, server) => {
  const r = new Resolver({ timeout: 5_000, tries: 2 })
  if (server) r.setServers([server])
  try {
    return await r.resolve4(name)
  } catch (e) {
    const code = (e as { code?: string }).code
    if (code === 'ENOTFOUND' || code === 'ENODATA') return []
    throw e
  }
}

/** The DNS record the site needs (pure), as a DNS provider shows it. */
export function dnsRecord(h: Pick<HttpsPlan, 'domain' | 'ip'>): string {
  return `${h.domain}.  A  ${h.ip ?? "<the host's public IP>"}`
}

/**
 * Waits until MYMDB_DOMAIN resolves to the host's address (to anything, when the address is not
 * known), so the CA's check of the name reaches this host: asking for a certificate before that
 * fails and counts against the CA's rate limits. Says which record to create, and what the name
 * resolves to meanwhile. Throws UserError after `dnsWait` seconds.
 */
export async function waitForDns(h: HttpsPlan, log: Log, resolve: ResolveA = resolveA, pollMs = 5_000): Promise<void> {
  const via = h.dnsServer ? ` (asking ${h.dnsServer})` : ''
  const look = async () => {
    try {
      return { ips: await resolve(h.domain, h.dnsServer) }
    } catch (e) {
      return { ips: [], error: e instanceof Error ? e.message : String(e) }
    }
  }
  const ok = (ips: string[]) => (h.ip ? ips.includes(h.ip) : ips.length > 0)
  const describe = (r: { ips: string[]; error?: string }) => (r.error ? `the lookup failed: ${r.error}` : r.ips.length > 0 ? `it resolves to ${r.ips.join(', ')}` : 'it does not resolve yet')
  let last = await look()
  if (ok(last.ips)) {
    log.info(`[dns] ${h.domain} resolves to ${last.ips.join(', ')}${via}`)
    return
  }
  log.info(`[dns] create this DNS record at your DNS provider (${describe(last)}):`)
  log.info(`[dns]   ${dnsRecord(h)}`)
  log.info(`[dns] waiting up to ${h.dnsWait} s for it${via} before asking for a certificate (MYMDB_DNS_WAIT) ...`)
  const deadline = Date.now() + h.dnsWait * 1000
  let shown = describe(last)
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))))
    last = await look()
    if (ok(last.ips)) {
      log.info(`[dns] ${h.domain} resolves to ${last.ips.join(', ')}`)
      return
    }
    if (describe(last) !== shown) log.info(`[dns] ${h.domain}: ${(shown = describe(last))}`)
  }
  throw new UserError(
    `${h.domain} does not resolve to ${h.ip ?? 'an address'} after ${h.dnsWait} s (${describe(last)}). Create the DNS record "${dnsRecord(h)}", then run the deploy again (the host and its data stay); MYMDB_DNS_WAIT sets how long to wait`,
  )
}

// --- apply --------------------------------------------------------------------------------

export interface RemoteUpDeps extends Partial<Deps> {
  /** Opens the SSH session (default: ssh2). */
  openRemote?: OpenRemote
  /** The HTTP client of the final check. */
  httpGet?: HttpGet
  /** Reads the private key file. */
  readKey?: (path: string) => string
  /** Seconds between polls (Docker on the host, HTTP, DNS); tests use 0. */
  pollSeconds?: number
  /** Looks up the domain's addresses (default: DNS). */
  resolveA?: ResolveA
  /** When the whole deploy started (epoch ms; default: when this step started), for the history. */
  startedAt?: number
}

/** Waits until Docker and Compose v2 answer on the host (its user-data may still be installing them). */
async function waitForDocker(remote: Remote, deps: Deps, pollSeconds: number): Promise<void> {
  let told = false
  const times = Math.max(1, Math.ceil(DOCKER_WAIT_SECONDS / Math.max(pollSeconds, 0.05)))
  await retryUntil(
    times,
    pollSeconds * 1000,
    async () => {
      const r = await remote.run(['sh', '-c', 'docker info --format "{{.ServerVersion}}" && docker compose version --short'])
      if (r.ok) return true
      if (!told) deps.log.info('[remote] waiting for Docker on the host (the host may still be installing it)')
      told = true
      throw new Error(stripControls(r.stderr).trim().split('\n').slice(-3).join(' '))
    },
    (last) =>
      new UserError(
        `Docker or Compose v2 is not working on the host after ${DOCKER_WAIT_SECONDS} s (its user-data runs scripts/install-docker.sh; see /var/log/cloud-init-output.log there): ${last}`,
      ),
  )
}

/**
 * Removes the images of the stack's repositories that none of the last `keepReleases` releases
 * of the deploy history uses (a rollback goes back to those). Best effort: an image a container
 * still uses stays, and a failure here does not fail the deploy.
 */
export async function pruneImages(stack: Stack, plan: Pick<RemoteUpPlan, 'images' | 'keepReleases'>, log: Log): Promise<void> {
  // the containers of replaced Swarm tasks hold their images: they go first
  await runIn(stack, ['docker', 'container', 'prune', '--force', '--filter', STACK_LABEL])
  const kept = releases(await readDeployLog(stack)).slice(0, plan.keepReleases)
  const keptRefs = [...new Set([...Object.values(plan.images), ...kept.flatMap((r) => Object.values(r.images))])]
  const ids = await runIn(stack, ['sh', '-c', 'for r in "$@"; do docker image inspect --format "{{.Id}}" "$r" 2>/dev/null; done', 'sh', ...keptRefs])
  const keptIds = new Set(ids.stdout.split('\n').map((l) => l.trim()).filter(Boolean))
  const repositories = [...new Set(Object.values(plan.images).map((ref) => splitImageRef(ref).repository))]
  const listing = await runIn(stack, ['docker', 'image', 'ls', '--no-trunc', '--format', IMAGE_LIST_FORMAT])
  const old = listing.ok && keptIds.size > 0 ? pruneRefs(listing.stdout, repositories, keptIds) : []
  if (old.length === 0) return
  const removed = await runIn(stack, ['sh', '-c', 'for r in "$@"; do docker rmi "$r" >/dev/null 2>&1 && echo "$r"; done; true', 'sh', ...old])
  const gone = removed.stdout.split('\n').filter(Boolean)
  log.info(`[prune] removed ${gone.length} image(s) of releases older than the last ${plan.keepReleases} (${kept.map((r) => r.tag).join(', ')} kept for rollbacks)${gone.length > 0 ? `: ${gone.join(', ')}` : ''}`)
}

/**
 * The db, proxy and cache images by the digest the registry gave them (read from the pulled images), when
 * the deploy named them by tag (this step run alone: push passes the digests otherwise). Swarm
 * compares the reference as written: the same image under a new tag would restart PostgreSQL.
 */
export async function pinToDigests(stack: Stack, images: Record<ImageName, string>): Promise<Record<ImageName, string>> {
  const tagged = PINNED_IMAGES.filter((n) => !images[n].includes('@'))
  if (tagged.length === 0) return images
  const r = await runIn(stack, ['sh', '-c', 'for r in "$@"; do docker image inspect --format "{{range .RepoDigests}}{{println .}}{{end}}" "$r" 2>/dev/null; done', 'sh', ...tagged.map((n) => images[n])])
  const digests = r.stdout.split('\n').map((l) => l.trim())
  const out = { ...images }
  for (const n of tagged) {
    const pinned = digests.find((d) => d.startsWith(`${splitImageRef(images[n]).repository}@sha256:`))
    if (pinned) out[n] = pinned
  }
  return out
}

/** manage.py migrate --check with the web image just pulled (the running web stays as it is). */
export function migrateCheckNew(stack: Stack, web: string): Cmd {
  return oneOffCmd(stack, ['manage.py', 'migrate', '--check'], { image: web })
}

/**
 * Before a version whose migrations change the schema starts: a backup into the backup bucket
 * (reason pre-migrate). A database that does not run yet has nothing to lose. When the backup
 * fails, the deploy stops here and the running version keeps serving.
 */
export async function backupBeforeMigrations(stack: Stack, web: string, stage: string, log: Log): Promise<void> {
  const ps = await stackPs(stack)
  if (!ps.some((p) => p.Service === 'db' && p.State === 'running')) return
  const check = await runIn(stack, migrateCheckNew(stack, web))
  if (check.ok) {
    log.info('[backup] the new version has no migrations to apply: no backup needed before it starts')
    return
  }
  log.info('[backup] the new version changes the database (manage.py migrate --check): a backup first')
  const r = await takeBackup(stack, hostBackupOptions(stage, 'pre-migrate'), log).catch((e: unknown) => {
    throw new UserError(`the backup before the migrations failed, so the new version was not started (the old one still runs): ${e instanceof Error ? e.message : String(e)}`)
  })
  log.info(`[backup] before the migrations: ${r.file}`)
}

/** The whole run against an already checked plan: SSH, files, compose, checks. Returns the site URL. */
export async function remoteUp(plan: RemoteUpPlan, deps: Deps, extra: RemoteUpDeps = {}): Promise<string> {
  const { log } = deps
  const poll = extra.pollSeconds ?? 2
  const read = extra.readKey ?? ((p: string) => readFileSync(p, 'utf8'))
  let privateKey: string
  try {
    privateKey = read(plan.keyFile)
  } catch (e) {
    throw new ConfigError(`cannot read the SSH key ${plan.keyFile} (${e instanceof Error ? e.message : String(e)}): set MYMDB_SSH_KEY_FILE`)
  }
  const composeFile = readFileSync(resolve(deps.root, 'docker-compose.yml'))
  if (plan.https) await log.step('dns', `${plan.https.domain} resolves to ${plan.https.ip ?? 'an address'}`, () => waitForDns(plan.https!, log, extra.resolveA, poll * 1000 || 50))
  const open = extra.openRemote ?? openRemote
  const where = `${plan.user}@${plan.address}:${plan.sshPort}`
  const remote = await log.step('ssh', `connect to ${where}`, () =>
    open({
      host: plan.address,
      port: plan.sshPort,
      username: plan.user,
      privateKey,
      attempts: 15,
      retryDelayMs: poll * 1000,
      onRetry: (n, e) => log.info(`[ssh] not reachable yet (${e.message}); attempt ${n + 1} ...`),
    }),
  )
  try {
    await waitForDocker(remote, deps, poll)

    await log.step('files', `upload ${REMOTE_DIR}/docker-compose.yml and ${REMOTE_DIR}/.env`, async () => {
      await remote.upload(`${REMOTE_DIR}/docker-compose.yml`, composeFile, 0o644)
      await remote.upload(`${REMOTE_DIR}/.env`, plan.envFile, 0o600)
      if (plan.backupEnv) await remote.upload(`${REMOTE_DIR}/${BACKUP_ENV_FILE}`, plan.backupEnv, 0o600)
    })

    if (plan.login) {
      const host = registryHost(plan.registry)
      await log.step('login', `docker login ${host}`, () =>
        runChecked(remote.run, ['docker', 'login', '--username', plan.login!.username, '--password-stdin', host], {
          input: plan.login!.password,
          doing: `log in to the registry ${host}`,
        }),
      )
    }

    const stack = hostStack(remote)
    const before = await hostRuns(remote)
    const startedAt = new Date(extra.startedAt ?? Date.now())
    let images = plan.images
    const record = (end: { ok: boolean; error?: string }) =>
      appendDeployRecord(stack, deployRecord(images, whoRuns(), startedAt, { ...end, seconds: (Date.now() - startedAt.getTime()) / 1000 }))
    try {
      await log.step('pull', `docker compose pull (${Object.values(plan.images).join(', ')})`, () =>
        runInChecked(stack, stack.compose('pull', '--quiet'), {
          stream: log.prefixed('pull'),
          doing: `pull the images from ${plan.registry}`,
        }),
      )
      images = await pinToDigests(stack, plan.images)
      if (PINNED_IMAGES.some((n) => images[n] !== plan.images[n])) {
        await runInChecked(stack, pointEnvAt(images), { doing: `pin the ${PINNED_IMAGES.join(', ')} images by digest in the .env` })
        log.info(`[pull] ${PINNED_IMAGES.join(', ')} pinned by digest in the .env (${PINNED_IMAGES.map((n) => images[n]).join(', ')}): a new tag of the same image does not restart them`)
      }
      if (plan.schedule && before !== 'none') await backupBeforeMigrations(hostStack(remote, before), plan.images.web, plan.schedule.stage, log)
      await startStack(stack, log, WAIT_TIMEOUT_SECONDS, poll * 1000 || 50)
    } catch (e) {
      // the history keeps failed deploys too (best effort: the connection may be what failed)
      await record({ ok: false, error: e instanceof Error ? e.message : String(e) }).catch(() => undefined)
      throw e
    }
    await record({ ok: true })
    await pruneImages(stack, { ...plan, images }, log)
    if (plan.schedule) {
      const { script, line } = plan.schedule
      await log.step('schedule', line ? `backups on the host: ${line.split(' cd ')[0]} (cron)` : 'no scheduled backups (MYMDB_BACKUP_SCHEDULE=off)', async () => {
        await remote.upload(`${REMOTE_DIR}/${BACKUP_SCRIPT_FILE}`, script, 0o700)
        await runChecked(remote.run, installCronCmd(line), { doing: 'set the backup schedule in the crontab' })
      })
    }
  } finally {
    remote.close()
  }

  const host = plan.address.includes(':') ? `[${plan.address}]` : plan.address
  const base = `http://${host}:${plan.httpPort}`
  const get = extra.httpGet ?? httpGet
  if (plan.https) {
    const { domain, port } = plan.https
    const secure = `https://${host}:${port}`
    await log.step('check', `GET ${secure}/healthz and / (${domain}, its certificate checked); http:// redirects to https://`, async () => {
      const hint = `Did the certificate come (npm run logs -- --aws proxy)? Are ports 80 and 443 open, and does ${domain} resolve to the host?`
      await waitFor200(get, `${secure}/healthz`, domain, CERTIFICATE_WAIT_SECONDS, poll * 1000, hint)
      await waitFor200(get, `${secure}/`, domain, 30, poll * 1000, hint)
      const plain = await get(`${base}/`, domain)
      if (![301, 302, 307, 308].includes(plain.status) || !plain.location?.startsWith(`https://${domain}`))
        throw new UserError(`http://${domain}/ does not redirect to https:// (HTTP ${plain.status}${plain.location ? `, to ${plain.location}` : ''})`)
    })
    return `https://${domain}/`
  }
  await log.step('check', `GET ${base}/healthz and / (Host: ${plan.hostName})`, async () => {
    await waitFor200(get, `${base}/healthz`, plan.hostName, 60, poll * 1000)
    await waitFor200(get, `${base}/`, plan.hostName, 30, poll * 1000)
  })
  return plan.httpPort === 80 ? `http://${plan.hostName}/` : `http://${plan.hostName}:${plan.httpPort}/`
}

/** How long the final check waits for the site over HTTPS (the first certificate included). */
export const CERTIFICATE_WAIT_SECONDS = 300

export async function main(argv: string[], env: Env, partial?: RemoteUpDeps): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { log } = deps
    // check: options and settings (before any connection)
    const plan = planRemoteUp(loadEnv(env, deps.envFile), { address: flags.address, addressFromOption: flags.address !== undefined, rules: [sshKeyExistsRule] })

    // plan
    log.info(`[remote] host ${plan.user}@${plan.address}:${plan.sshPort} (key ${plan.keyFile})`)
    log.info(`[remote] images ${Object.values(plan.images).join(', ')}${plan.login ? ` (login as ${plan.login.username})` : ''}`)
    log.info(
      plan.https
        ? `[remote] site checked at https://${plan.address}:${plan.https.port}/ as ${plan.https.domain} (its certificate from ${plan.https.ca})`
        : `[remote] site checked at http://${plan.address}:${plan.httpPort}/ with Host: ${plan.hostName}`,
    )
    if (flags['dry-run']) {
      log.info('[remote] dry run: would run on the host, in order:')
      for (const step of remoteSteps(plan)) log.info(`  ${step}`)
      log.info('[remote] nothing was done')
      return 0
    }

    // apply
    const start = Date.now()
    const url = await remoteUp(plan, deps, partial)

    // summary
    log.info('')
    log.info(`MyMDB is running on ${plan.address} (${formatDuration(Date.now() - start)}): ${url}`)
    if (plan.address !== plan.hostName) log.info(`(checked at http://${plan.address}:${plan.httpPort}/ with Host: ${plan.hostName})`)
    return 0
  })
}

runMain(import.meta.url, main)
