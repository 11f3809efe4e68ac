// The project's settings model: every variable (see .env.example) as an env.ts spec, with all of
// its rules: format, allowed values, pairs that go together (rules), values production refuses.
// Tasks combine the groups they need and check them all at once, before anything happens.
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { homedir } from 'node:os'
import {
  awsRegion,
  bool,
  bucketName,
  cidr,
  hostAddress,
  hostList,
  imageName,
  imageRef,
  imageTag,
  int,
  ipAddress,
  isHostName,
  makeValidator,
  port,
  refine,
  str,
  url,
  type CleanEnv,
  type RawEnv,
  type Rule,
  type Spec,
  type Validator,
} from './env.ts'
import { inspectKeyFile, keyFilePath } from './sshkey.ts'
import { expandHome } from './paths.ts'

/**
 * Marks the secrets that `npm run up:local` generates for this checkout (and the fixed ones of
 * earlier versions): fine on 127.0.0.1, refused by everything that deploys.
 */
export const LOCAL_ONLY_PREFIX = 'local-only-'

/**
 * Every stack variable ends up in a .env file (here for Compose, and on the host), written in
 * single quotes so that nothing in it is interpolated: a value such a file cannot hold exactly is
 * refused up front.
 */
function envFileSafe(raw: string): string | null {
  if (/['\n\r\0]/.test(raw) || raw.endsWith('\\'))
    return 'contains a single quote, a line break or a trailing backslash, which a .env file cannot hold exactly'
  return null
}

/** `spec` with envFileSafe on each variable. */
function fileSafe<S extends Spec>(spec: S): S {
  return Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, refine(v, envFileSafe)])) as S
}

/** `spec` with each variable refusing the local-only values of up:local (for what deploys). */
export function productionOnly<S extends Spec>(spec: S): S {
  const notLocal = (raw: string) =>
    raw.startsWith(LOCAL_ONLY_PREFIX) ? `is a local-only value of npm run up:local; production needs its own secret` : null
  return Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, v.secret ? refine(v, notLocal) : v])) as S
}

const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'] as const

/** A Python log level name, any case (the Django settings accept the same); passed on in upper case. */
function logLevel(opts: { desc: string; example: string; default: (typeof LOG_LEVELS)[number] }): Validator<(typeof LOG_LEVELS)[number]> {
  const expected = `one of ${LOG_LEVELS.join(', ')}`
  return makeValidator(opts, expected, (raw) => {
    // ASCII first: 'ınfo'.toUpperCase() is 'INFO' too.
    const v = raw.trim().toUpperCase() as (typeof LOG_LEVELS)[number]
    if (!/^[A-Za-z]+$/.test(raw.trim()) || !LOG_LEVELS.includes(v)) throw new Error(`expected ${expected}`)
    return v
  })
}

export const djangoVars = fileSafe({
  DJANGO_SECRET_KEY: str({
    desc: 'secret key for signing sessions (50+ random characters)',
    example: "<output of: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'>",
    minLength: 50,
    secret: true,
  }),
  DJANGO_ALLOWED_HOSTS: hostList({
    desc: 'host names the site answers to, comma-separated',
    example: 'localhost,127.0.0.1',
  }),
  DJANGO_LOG_LEVEL: logLevel({ desc: "log level of Django's stdout logging", example: 'INFO', default: 'INFO' }),
  DJANGO_CACHE_TIMEOUT: int({ desc: 'seconds an anonymous visitor may see an older page (0: no caching)', example: '60', default: 60, min: 0, max: 86400 }),
  DJANGO_SECURE_SSL: bool({
    desc: 'true only when TLS terminates in front of the site (HTTPS redirect, HSTS, secure cookies)',
    example: 'false',
    default: false,
  }),
})

const DB_IDENT = { pattern: /^[A-Za-z_][A-Za-z0-9_]{0,62}$/, patternDesc: 'letters, digits and _ (not starting with a digit, at most 63)' }

export const dbVars = fileSafe({
  DJANGO_DB_NAME: str({ desc: "the application's database", example: 'mymdb', default: 'mymdb', ...DB_IDENT }),
  DJANGO_DB_USER: str({ desc: "the application's database role", example: 'mymdb', default: 'mymdb', ...DB_IDENT }),
  DJANGO_DB_PASSWORD: str({
    desc: "password of the application's database role",
    example: '<output of: openssl rand -hex 24>',
    secret: true,
  }),
  POSTGRES_PASSWORD: str({
    desc: 'PostgreSQL superuser password (used only inside the db container)',
    example: '<output of: openssl rand -hex 24>',
    secret: true,
  }),
})

export const uploadVars = fileSafe({
  DJANGO_UPLOAD_S3_BUCKET: bucketName({
    desc: 'S3 bucket for uploads (empty: the local media volume)',
    example: 'mymdb-uploads',
    optional: true,
  }),
  AWS_S3_REGION_NAME: awsRegion({ desc: 'region of the upload bucket', example: 'us-west-2', optional: true }),
  AWS_S3_ENDPOINT_URL: url({
    desc: 'endpoint URL, only for S3-compatible stores (MinIO, an emulator)',
    example: 'http://minio:9000',
    optional: true,
  }),
  MYMDB_UPLOAD_AWS_ACCESS_KEY_ID: str({
    desc: 'access key the web container uploads with, only where it has no instance role (the EC2 deploy gives it one)',
    example: 'AKIA...',
    optional: true,
  }),
  MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY: str({
    desc: 'secret key for MYMDB_UPLOAD_AWS_ACCESS_KEY_ID',
    example: '<secret>',
    optional: true,
    secret: true,
  }),
})

export const serverVars = fileSafe({
  UWSGI_PROCESSES: int({ desc: 'uWSGI worker processes', example: '2', default: 2, min: 1, max: 64 }),
  UWSGI_THREADS: int({ desc: 'threads per uWSGI process', example: '4', default: 4, min: 1, max: 64 }),
  WEB_BIND: ipAddress({ desc: 'host address the site is published on', example: '127.0.0.1', default: '127.0.0.1' }),
  WEB_PORT: port({ desc: 'host port the site is published on', example: '8080', default: 8080 }),
})

export const BASE_IMAGE_MODES = ['auto', 'pull', 'bootstrap'] as const

export const imageVars = fileSafe({
  MYMDB_WEB_IMAGE: imageName({ desc: 'name of the web image', example: 'mymdb-web', default: 'mymdb-web' }),
  MYMDB_DB_IMAGE: imageName({ desc: 'name of the db image', example: 'mymdb-db', default: 'mymdb-db' }),
  MYMDB_PROXY_IMAGE: imageName({ desc: 'name of the proxy image (the HTTPS front)', example: 'mymdb-proxy', default: 'mymdb-proxy' }),
  MYMDB_CACHE_IMAGE: imageName({ desc: 'name of the cache image (memcached)', example: 'mymdb-cache', default: 'mymdb-cache' }),
  MYMDB_TAG: imageTag({ desc: 'image tag Compose runs', example: 'latest', default: 'latest' }),
  MYMDB_BASE_IMAGE: imageRef(
    { desc: 'base image of the Dockerfiles: auto, pull, bootstrap, or an image', example: 'auto', default: 'auto' },
    BASE_IMAGE_MODES,
  ),
})

/** The stack's images: web (nginx + uWSGI + Django), db (PostgreSQL), proxy (Caddy, the front), cache (memcached). */
export const IMAGE_NAMES = ['web', 'db', 'proxy', 'cache'] as const
export type ImageName = (typeof IMAGE_NAMES)[number]

/**
 * The images the host pins by digest (MYMDB_<NAME>_REF in its .env): all but web, which a release
 * names by its tag. A new tag of the same image then does not restart them.
 */
export type PinnedImage = Exclude<ImageName, 'web'>
export const PINNED_IMAGES: readonly PinnedImage[] = IMAGE_NAMES.filter((n): n is PinnedImage => n !== 'web')

/** The .env key that pins an image on the host: MYMDB_DB_REF, MYMDB_PROXY_REF, MYMDB_CACHE_REF. */
export const refKey = <N extends PinnedImage>(name: N) => `MYMDB_${name.toUpperCase() as Uppercase<N>}_REF` as const

/** The local name of each image (without a tag), from the checked settings: the one source of image names. */
export function localImages(values: Pick<CleanEnv<typeof imageVars>, 'MYMDB_WEB_IMAGE' | 'MYMDB_DB_IMAGE' | 'MYMDB_PROXY_IMAGE' | 'MYMDB_CACHE_IMAGE'>): Record<ImageName, string> {
  return { web: values.MYMDB_WEB_IMAGE, db: values.MYMDB_DB_IMAGE, proxy: values.MYMDB_PROXY_IMAGE, cache: values.MYMDB_CACHE_IMAGE }
}

export const composeVars = fileSafe({
  COMPOSE_PROJECT_NAME: str({
    desc: 'Compose project name (containers, network and volumes are prefixed with it)',
    example: 'mymdb',
    default: 'mymdb',
    pattern: /^[a-z0-9][a-z0-9_-]*$/,
    patternDesc: 'lowercase letters, digits, _ and - (starting with a letter or digit)',
  }),
})

export const backupVars = {
  MYMDB_BACKUP_DIR: str({
    desc: 'folder of local backups (npm run backup writes there, npm run backups lists it, npm run restore puts its safety backup there)',
    example: 'backups',
    default: 'backups',
  }),
}

/** Everything the stack (docker-compose.yml) needs to run. */
export const stackVars = {
  ...djangoVars,
  ...dbVars,
  ...uploadVars,
  ...serverVars,
  ...imageVars,
  ...composeVars,
}

// --- AWS deploy (npm run deploy:aws and its steps) -----------------------------------------

export const awsVars = {
  AWS_REGION: awsRegion({ desc: 'AWS region to deploy to', example: 'us-west-2' }),
  MYMDB_STAGE: str({
    desc: 'stage name: every AWS resource is named mymdb-<stage> and tagged Project=mymdb, Stage=<stage>',
    example: 'production',
    default: 'production',
    pattern: /^[a-z][a-z0-9-]{0,19}$/,
    patternDesc: 'lowercase letters, digits and - (starting with a letter, at most 20)',
  }),
}

/** The upload bucket, required by the deploy (optional for the local stack: see uploadVars). */
export const bucketVars = {
  DJANGO_UPLOAD_S3_BUCKET: bucketName({
    desc: 'S3 bucket for uploaded posters (created by the deploy if missing)',
    example: 'mymdb-uploads-yourname',
  }),
}

const CRON_FIELDS: [string, number, number][] = [
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['day of month', 1, 31],
  ['month', 1, 12],
  ['day of week', 0, 7],
]

/** A cron schedule (5 fields of numbers, *, ranges, lists and steps, or @hourly/@daily/@weekly/@monthly), or off. */
function cronSchedule(opts: { desc: string; example: string; default: string }): Validator<string> {
  const expected = 'a cron schedule like "17 3 * * *" (minute hour day-of-month month day-of-week, UTC), @daily, or off'
  return makeValidator(opts, expected, (raw) => {
    const v = raw.trim().replace(/\s+/g, ' ')
    if (v === 'off' || ['@hourly', '@daily', '@weekly', '@monthly'].includes(v)) return v
    const fields = v.split(' ')
    if (fields.length !== 5) throw new Error(`has ${fields.length} field(s); expected ${expected}`)
    fields.forEach((f, i) => {
      const [name, min, max] = CRON_FIELDS[i]!
      for (const part of f.split(',')) {
        const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part)
        const nums = m ? [m[2], m[3]].filter((x): x is string => x !== undefined).map(Number) : []
        if (!m || nums.some((n) => n < min || n > max) || (m[4] !== undefined && Number(m[4]) === 0))
          throw new Error(`the ${name} field "${f}" is not ${min}-${max}, *, a range, a list or a step; expected ${expected}`)
      }
    })
    return v
  })
}

/** When the host backs itself up, without the deployer's machine. */
export const backupScheduleVars = {
  MYMDB_BACKUP_SCHEDULE: cronSchedule({
    desc: "when the host backs itself up into the backup bucket (cron, the host's time, UTC on EC2), or off",
    example: '17 3 * * *',
    default: '17 3 * * *',
  }),
}

/** How many releases are kept for rollbacks. */
export const releaseVars = {
  MYMDB_KEEP_RELEASES: int({ desc: 'releases (images) kept for rollbacks: ECR expires older ones by a lifecycle policy that push sets', example: '3', default: 3, min: 1, max: 100 }),
}

/** The stage's private backup bucket (npm run backup -- --aws and the host's schedule write there). */
export const backupBucketVars = {
  MYMDB_BACKUP_BUCKET: bucketName({
    desc: "private S3 bucket for the stage's backups, created by the deploy (default: <DJANGO_UPLOAD_S3_BUCKET>-backups)",
    example: 'mymdb-uploads-yourname-backups',
    optional: true,
  }),
  MYMDB_BACKUP_KEEP_DAYS: int({ desc: 'days a backup stays in the backup bucket (a lifecycle rule deletes older ones)', example: '14', default: 14, min: 1, max: 3650 }),
}

/** What reaches the backup bucket: region, stage, the bucket names, and the endpoint of an emulator. */
export const backupBucketSpec = { ...awsVars, ...bucketVars, ...backupBucketVars, AWS_S3_ENDPOINT_URL: uploadVars.AWS_S3_ENDPOINT_URL }

type BackupBucketValues = { MYMDB_BACKUP_BUCKET?: string; DJANGO_UPLOAD_S3_BUCKET: string }

/** The backup bucket: MYMDB_BACKUP_BUCKET, or the upload bucket's name with -backups. */
export function backupBucketName(v: BackupBucketValues): string {
  return v.MYMDB_BACKUP_BUCKET ?? `${v.DJANGO_UPLOAD_S3_BUCKET}-backups`
}

/** The backup bucket is a bucket of its own, and its derived name fits S3's 63 characters. */
export const backupBucketRules: Rule<BackupBucketValues>[] = [
  {
    names: ['MYMDB_BACKUP_BUCKET', 'DJANGO_UPLOAD_S3_BUCKET'],
    check: (v) =>
      v.MYMDB_BACKUP_BUCKET === undefined && v.DJANGO_UPLOAD_S3_BUCKET.length > 55
        ? `is too long to name the backup bucket after it (${v.DJANGO_UPLOAD_S3_BUCKET}-backups is over 63 characters): set MYMDB_BACKUP_BUCKET`
        : v.MYMDB_BACKUP_BUCKET === v.DJANGO_UPLOAD_S3_BUCKET
          ? 'must not be the upload bucket: backups need a private bucket of their own'
          : null,
  },
]

export type Registry =
  | { kind: 'ecr' }
  | { kind: 'dockerhub'; namespace: string }
  | { kind: 'generic'; host: string; path: string }

const REGISTRY_FIX = 'use ecr, docker.io/<user> (your Docker Hub user), or <host[:port]>[/path]'

/** Reads MYMDB_REGISTRY (pure). Throws an Error for a value that names no registry. */
export function parseRegistry(value: string): Registry {
  const v = value.trim().replace(/\/+$/, '')
  if (v === 'ecr') return { kind: 'ecr' }
  const hub = /^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)(?:\/([a-z0-9]+(?:[._-][a-z0-9]+)*))?$/.exec(v)
  if (hub?.[1]) return { kind: 'dockerhub', namespace: hub[1] }
  if (hub) throw new Error(`Docker Hub needs your user: docker.io/<user>`)
  const generic = /^((?:[a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+(?::\d{1,5})?)((?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)$/.exec(v)
  if (generic?.[1] && (generic[1].includes('.') || generic[1].includes(':') || generic[1] === 'localhost'))
    return { kind: 'generic', host: generic[1], path: (generic[2] ?? '').replace(/^\//, '') }
  if (/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(v)) throw new Error(`names no registry (a user name alone? for Docker Hub: docker.io/${v}); ${REGISTRY_FIX}`)
  throw new Error(`names no registry; ${REGISTRY_FIX}`)
}

/** The repository of a local image on a registry: its last path part (team/movies-web -> movies-web). */
export function repositoryName(localImage: string): string {
  return localImage.split('/').pop() ?? localImage
}

/** The name of a local image on a registry: `<prefix>/<repository>`; push pushes it, the host pulls it. */
export function registryImage(prefix: string, localImage: string): string {
  return `${prefix.replace(/\/+$/, '')}/${repositoryName(localImage)}`
}

export const registryVars = {
  MYMDB_REGISTRY: makeValidator<string>(
    {
      desc: 'where images are pushed: ecr (Amazon ECR of this account), docker.io/<user>, or <host[:port]>[/path]',
      example: 'ecr',
    },
    'ecr, docker.io/<user>, or <host[:port]>[/path]',
    (raw) => {
      parseRegistry(raw)
      return raw.trim().replace(/\/+$/, '')
    },
  ),
  MYMDB_REGISTRY_USERNAME: str({ desc: 'registry user (Docker Hub or another registry; not for ecr)', example: 'yourname', optional: true }),
  MYMDB_REGISTRY_PASSWORD: str({ desc: 'registry password or access token (not for ecr)', example: '<token>', optional: true, secret: true }),
}

type RegistryValues = { MYMDB_REGISTRY: string; MYMDB_REGISTRY_USERNAME?: string; MYMDB_REGISTRY_PASSWORD?: string }

/** The registry login: both or neither; none with ecr (its login comes from the AWS credentials). */
export const registryRules: Rule<RegistryValues>[] = [
  {
    names: ['MYMDB_REGISTRY_USERNAME', 'MYMDB_REGISTRY'],
    check: (v) =>
      v.MYMDB_REGISTRY === 'ecr' && v.MYMDB_REGISTRY_USERNAME !== undefined
        ? 'is not used with MYMDB_REGISTRY=ecr (the login comes from your AWS credentials): remove it'
        : null,
  },
  {
    names: ['MYMDB_REGISTRY_PASSWORD', 'MYMDB_REGISTRY_USERNAME'],
    check: (v) =>
      v.MYMDB_REGISTRY_USERNAME !== undefined && v.MYMDB_REGISTRY_PASSWORD === undefined
        ? 'is needed with MYMDB_REGISTRY_USERNAME: set both (or neither, after docker login)'
        : null,
  },
  {
    names: ['MYMDB_REGISTRY_USERNAME', 'MYMDB_REGISTRY_PASSWORD'],
    check: (v) =>
      v.MYMDB_REGISTRY !== 'ecr' && v.MYMDB_REGISTRY_USERNAME === undefined && v.MYMDB_REGISTRY_PASSWORD !== undefined
        ? 'is needed with MYMDB_REGISTRY_PASSWORD: set both (or neither)'
        : null,
  },
]

// Sizes EC2 has; families: letters, a generation digit, options (t3, t3a, m7i-flex, c6in, u-6tb1).
const INSTANCE_TYPE = /^([a-z]+(?:-[a-z0-9]+)?\d[a-z0-9]*(?:-[a-z0-9]+)?)\.(nano|micro|small|medium|large|xlarge|[1-9]\d*xlarge|metal(?:-\d+xl)?)$/
// Graviton (arm64) families: a "g" among the option letters after the generation (t4g, m7gd, c6gn), or a1.
const ARM_FAMILY = /^(a1|[a-z]+\d+[a-z]*g[a-z]*)$/

/** An EC2 instance type of a family and size that exist, for amd64 (the images are built here for amd64). */
function instanceType(opts: { desc: string; example: string; default: string }): Validator<string> {
  const expected = 'an EC2 instance type like t3.micro'
  return makeValidator(opts, expected, (raw) => {
    const m = INSTANCE_TYPE.exec(raw.trim())
    if (!m) throw new Error(`expected ${expected} (a family like t3, m7i and a size like micro, large, 2xlarge)`)
    if (ARM_FAMILY.test(m[1] ?? '')) throw new Error('is an arm64 (Graviton) type, but the images are built for amd64: use e.g. t3.micro or t3a.small')
    return raw.trim()
  })
}

export const hostVars = {
  MYMDB_INSTANCE_TYPE: instanceType({ desc: 'EC2 instance type of the host', example: 't3.micro', default: 't3.micro' }),
  MYMDB_AMI_SSM_PARAMETER: str({
    desc: 'public SSM parameter naming the AMI of the host (Debian 13 by default)',
    example: '/aws/service/debian/release/13/latest/amd64',
    default: '/aws/service/debian/release/13/latest/amd64',
    pattern: /^\/[A-Za-z0-9_./-]+$/,
    patternDesc: 'an SSM parameter path starting with /',
  }),
  MYMDB_AMI_ID: str({ desc: 'AMI of the host, instead of the SSM lookup', example: 'ami-0123456789abcdef0', optional: true, pattern: /^ami-[0-9a-f]{8,17}$/, patternDesc: 'ami- and 8 to 17 hex digits' }),
  MYMDB_SSH_USER: str({ desc: 'login user of the AMI', example: 'admin', default: 'admin', pattern: /^[a-z_][a-z0-9_-]{0,31}$/, patternDesc: 'a Unix user name' }),
  MYMDB_SSH_KEY_FILE: str({ desc: 'private key for SSH to the host (created with the key pair when the file does not exist; default ~/.ssh/mymdb-<stage>.pem)', example: '~/.ssh/mymdb-production.pem', optional: true }),
  MYMDB_SSH_CIDR: cidr({ desc: 'who may SSH to the host (default: your current public IP /32)', example: '203.0.113.7/32', optional: true, minPrefix: 8 }),
  MYMDB_HOST_ADDRESS: hostAddress({ desc: 'address to reach the host at instead of its public IP (a bastion, or the test rig)', example: '127.0.0.1', optional: true }),
  MYMDB_HOST_SSH_PORT: port({ desc: 'SSH port of the host', example: '22', default: 22 }),
  MYMDB_HOST_HTTP_PORT: port({ desc: 'HTTP port the site is checked on', example: '80', default: 80 }),
}

/** The site's DNS name: two labels at least, no wildcard, not an IP address; lowercase. */
function domainName<O extends { desc: string; example: string; optional: true }>(opts: O): Validator<string | undefined> {
  const expected = 'a DNS name like movies.example.com (no wildcard, not an IP address)'
  return makeValidator<string | undefined>(opts, expected, (raw) => {
    const v = raw.trim().toLowerCase().replace(/\.$/, '')
    if (isIP(v) !== 0) throw new Error(`is an IP address; certificates are for names: expected ${expected}`)
    if (!v.includes('.') || !isHostName(v)) throw new Error(`expected ${expected}`)
    return v
  })
}

/** An IP address with an optional port: 1.1.1.1, 127.0.0.1:8053, [::1]:53. */
function dnsServer(opts: { desc: string; example: string; optional: true }): Validator<string | undefined> {
  const expected = 'an IP address with an optional port, e.g. 1.1.1.1 or 127.0.0.1:8053'
  return makeValidator<string | undefined>(opts, expected, (raw) => {
    const v = raw.trim()
    // [v6]:port, v4:port, or a bare address of either kind
    const [, ip = '', p = '53'] = /^\[(.+)\](?::(\d{1,5}))?$/.exec(v) ?? /^([0-9.]+):(\d{1,5})$/.exec(v) ?? [v, v]
    if (isIP(ip) === 0 || Number(p) < 1 || Number(p) > 65535) throw new Error(`expected ${expected}`)
    return v
  })
}

export const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory'
export const LETS_ENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory'

/** HTTPS for the site: its name, the CA its certificate comes from, and the wait for its DNS record. */
export const siteVars = fileSafe({
  MYMDB_DOMAIN: domainName({
    desc: "the site's DNS name; with it the host serves HTTPS with a certificate from MYMDB_ACME_CA (without it: plain HTTP at the host's public name)",
    example: 'movies.example.com',
    optional: true,
  }),
  MYMDB_ACME_CA: url({
    desc: `ACME directory the certificate comes from (Let's Encrypt; its staging CA for trials: ${LETS_ENCRYPT_STAGING})`,
    example: LETS_ENCRYPT,
    default: LETS_ENCRYPT,
  }),
  MYMDB_ACME_EMAIL: str({
    desc: 'email for the ACME account (the CA writes there before a certificate expires unrenewed)',
    example: 'ops@example.com',
    optional: true,
    pattern: /^[^\s@'"{}]+@[^\s@'"{}]+\.[^\s@'"{}]+$/,
    patternDesc: 'an email address',
  }),
  MYMDB_ACME_CA_ROOT: str({
    desc: "PEM file with the root certificate of a private ACME CA's own HTTPS (step-ca, the test rig's pebble); not for Let's Encrypt",
    example: '~/ca/root.pem',
    optional: true,
  }),
  MYMDB_ACME_RENEW_INTERVAL: str({
    desc: 'how often the host looks for certificates to renew (Caddy renews when a third of the lifetime is left)',
    example: '10m',
    default: '10m',
    pattern: /^[1-9][0-9]*(s|m|h)$/,
    patternDesc: 'a number and s, m or h, e.g. 10m',
  }),
  MYMDB_DNS_WAIT: int({ desc: "seconds the deploy waits for MYMDB_DOMAIN to resolve to the host's address before it asks for a certificate", example: '900', default: 900, min: 0, max: 86400 }),
  MYMDB_DNS_SERVER: dnsServer({ desc: 'DNS server the deploy asks about MYMDB_DOMAIN (default: the system resolver)', example: '1.1.1.1', optional: true }),
  MYMDB_HOST_HTTPS_PORT: port({ desc: 'HTTPS port the site is checked on (with MYMDB_DOMAIN)', example: '443', default: 443 }),
})

/** MYMDB_ACME_CA_ROOT, when set, is a readable PEM certificate. */
export const acmeCaRootRule: Rule<{ MYMDB_ACME_CA_ROOT?: string }> = {
  names: ['MYMDB_ACME_CA_ROOT'],
  check: (v, raw) => {
    if (v.MYMDB_ACME_CA_ROOT === undefined) return null
    try {
      return readAcmeCaRoot(v.MYMDB_ACME_CA_ROOT, raw) === null ? 'is not a PEM certificate (-----BEGIN CERTIFICATE-----)' : null
    } catch (e) {
      return `cannot be read: ${e instanceof Error ? e.message : String(e)}`
    }
  },
}

/** The PEM text of MYMDB_ACME_CA_ROOT (~ is HOME), or null when the file holds no certificate. */
export function readAcmeCaRoot(path: string, raw: RawEnv): string | null {
  const text = readFileSync(expandHome(path, raw.HOME || homedir()), 'utf8')
  return text.includes('-----BEGIN CERTIFICATE-----') ? text : null
}

type KeyValues = { MYMDB_SSH_KEY_FILE?: string; MYMDB_STAGE: string }

/** The private key file of a stage's host: MYMDB_SSH_KEY_FILE, or ~/.ssh/mymdb-<stage>.pem under HOME. */
export function sshKeyPath(v: KeyValues, raw: RawEnv): string {
  return keyFilePath(v.MYMDB_SSH_KEY_FILE, v.MYMDB_STAGE, raw.HOME || homedir())
}

/** The key file, when it exists, is an unencrypted private key (not the .pub, not a certificate). */
export const sshKeyRule: Rule<KeyValues> = {
  names: ['MYMDB_SSH_KEY_FILE', 'MYMDB_STAGE'],
  check: (v, raw) => {
    try {
      inspectKeyFile(sshKeyPath(v, raw))
      return null
    } catch (e) {
      return e instanceof Error ? e.message : String(e)
    }
  },
}

/** The key file must exist (for the steps that only use it: the start over SSH, stop, ssh). */
export const sshKeyExistsRule: Rule<KeyValues> = {
  names: ['MYMDB_SSH_KEY_FILE', 'MYMDB_STAGE'],
  check: (v, raw) => {
    const path = sshKeyPath(v, raw)
    try {
      return inspectKeyFile(path).exists ? null : `${path} does not exist: run npm run host (it creates the key), or point MYMDB_SSH_KEY_FILE at your key`
    } catch (e) {
      return e instanceof Error ? e.message : String(e)
    }
  },
}
