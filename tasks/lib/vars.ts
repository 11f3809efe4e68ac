// The project's settings model, part 1: the site and its stack (Django, the database, uploads,
// uWSGI, the images, Compose, local backups). Every variable (see .env.example) is a spec with all
// of its rules: format, allowed values, values production refuses. The AWS deploy's settings are
// in awsvars.ts (region, stage, buckets, registry) and hostvars.ts (the host, HTTPS, the SSH key).
// Tasks combine the groups they need and check them all at once, before anything happens.
import type { CleanEnv, Spec, Validator } from './env.ts'
import { awsRegion, bool, bucketName, hostList, imageName, imageRef, imageTag, int, ipAddress, makeValidator, port, refine, str, url } from './validators.ts'
import { envValueProblem } from './envformat.ts'


/**
 * Marks the secrets that `npm run up:local` generates for this checkout (and the fixed ones of
 * earlier versions): fine on 127.0.0.1, refused by everything that deploys.
 */
export const LOCAL_ONLY_PREFIX = 'local-only-'

/**
 * Every stack variable ends up in a .env file (here for Compose, and on the host): a value such a
 * file cannot hold exactly is refused up front (envformat.ts).
 */
/** `spec` with the .env file's rule on each variable. */
export function fileSafe<S extends Spec>(spec: S): S {
  return Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, refine(v, envValueProblem)])) as S
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
  DJANGO_SECRET_KEY_FALLBACKS: str({
    desc: 'earlier secret keys, space-separated: sessions and password-reset links they signed stay valid after the key is changed (docs/security.md)',
    example: '<the previous DJANGO_SECRET_KEY>',
    optional: true,
    secret: true,
  }),
  DJANGO_ALLOWED_HOSTS: hostList({
    desc: 'host names the site answers to, comma-separated',
    example: 'localhost,127.0.0.1',
  }),
  DJANGO_LOG_LEVEL: logLevel({ desc: "log level of Django's stdout logging", example: 'INFO', default: 'INFO' }),
  DJANGO_CACHE_TIMEOUT: int({ desc: 'seconds an anonymous visitor may see an older page (0: no caching)', example: '60', default: 60, min: 0, max: 86400 }),
  DJANGO_SECURE_SSL: bool({
    desc: 'true only when TLS terminates in front of the site (HTTPS redirect, secure cookies)',
    example: 'false',
    default: false,
  }),
  DJANGO_ADMIN_URL: str({
    desc: "the admin site's address: /<this>/ (up:local: admin; deploy:aws: admin- and 12 characters derived from DJANGO_SECRET_KEY, printed at the end)",
    example: 'staff-7f3a9c',
    optional: true,
    pattern: /^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$/,
    patternDesc: 'one path segment: letters, digits and . _ ~ - (at most 64)',
  }),
})

const DB_IDENT = { pattern: /^[A-Za-z_][A-Za-z0-9_]{0,62}$/, patternDesc: 'letters, digits and _ (not starting with a digit, at most 63)' }

function postgresPassword(optional: boolean) {
  return str({
    desc: 'PostgreSQL superuser password (used only inside the db container; not with MYMDB_DATABASE=rds, whose master password AWS keeps)',
    example: '<output of: openssl rand -hex 24>',
    secret: true,
    ...(optional ? { optional: true as const } : {}),
  })
}

export const dbVars = fileSafe({
  DJANGO_DB_NAME: str({ desc: "the application's database", example: 'mymdb', default: 'mymdb', ...DB_IDENT }),
  DJANGO_DB_USER: str({ desc: "the application's database role", example: 'mymdb', default: 'mymdb', ...DB_IDENT }),
  DJANGO_DB_PASSWORD: str({
    desc: "password of the application's database role",
    example: '<output of: openssl rand -hex 24>',
    secret: true,
  }),
  POSTGRES_PASSWORD: postgresPassword(false),
})

/** The database settings of a deployed stack: POSTGRES_PASSWORD is the db container's, not used with MYMDB_DATABASE=rds (dbvars.ts postgresPasswordRule). */
export const deployedDbVars = { ...dbVars, POSTGRES_PASSWORD: fileSafe({ POSTGRES_PASSWORD: postgresPassword(true) }).POSTGRES_PASSWORD }

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

/** The stack's images: web (nginx + uWSGI + Django), db (PostgreSQL), proxy (the front: nginx, Caddy for HTTPS), cache (memcached). */
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
