// The project's variables (see .env.example), as env.ts specs. Tasks combine the groups they need.
import { awsRegion, bool, bucketName, hostList, imageName, imageTag, int, ipAddress, oneOf, port, str, url } from './env.ts'

export const djangoVars = {
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
  DJANGO_LOG_LEVEL: oneOf(['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const, {
    desc: "log level of Django's stdout logging",
    example: 'INFO',
    default: 'INFO',
  }),
  DJANGO_CACHE_TIMEOUT: int({ desc: 'seconds pages stay cached', example: '60', default: 60, min: 0, max: 86400 }),
  DJANGO_SECURE_SSL: bool({
    desc: 'true only when TLS terminates in front of the site (HTTPS redirect, HSTS, secure cookies)',
    example: 'false',
    default: false,
  }),
}

const DB_IDENT = { pattern: /^[A-Za-z_][A-Za-z0-9_]{0,62}$/, patternDesc: 'letters, digits and _ (not starting with a digit, at most 63)' }

export const dbVars = {
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
}

export const uploadVars = {
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
}

export const serverVars = {
  UWSGI_PROCESSES: int({ desc: 'uWSGI worker processes', example: '2', default: 2, min: 1, max: 64 }),
  UWSGI_THREADS: int({ desc: 'threads per uWSGI process', example: '4', default: 4, min: 1, max: 64 }),
  WEB_BIND: ipAddress({ desc: 'host address the site is published on', example: '127.0.0.1', default: '127.0.0.1' }),
  WEB_PORT: port({ desc: 'host port the site is published on', example: '8080', default: 8080 }),
}

export const BASE_IMAGE_MODES = ['auto', 'pull', 'bootstrap'] as const

export const imageVars = {
  MYMDB_WEB_IMAGE: imageName({ desc: 'name of the web image', example: 'mymdb-web', default: 'mymdb-web' }),
  MYMDB_DB_IMAGE: imageName({ desc: 'name of the db image', example: 'mymdb-db', default: 'mymdb-db' }),
  MYMDB_TAG: imageTag({ desc: 'image tag Compose runs', example: 'latest', default: 'latest' }),
  MYMDB_BASE_IMAGE: str({
    desc: 'base image of both Dockerfiles: auto, pull, bootstrap, or an image tag',
    example: 'auto',
    default: 'auto',
    pattern: /^(auto|pull|bootstrap|[A-Za-z0-9][A-Za-z0-9._/:@-]*)$/,
    patternDesc: 'auto, pull, bootstrap or an image reference like debian:trixie-slim',
  }),
}

export const composeVars = {
  COMPOSE_PROJECT_NAME: str({
    desc: 'Compose project name (containers, network and volumes are prefixed with it)',
    example: 'mymdb',
    default: 'mymdb',
    pattern: /^[a-z0-9][a-z0-9_-]*$/,
    patternDesc: 'lowercase letters, digits, _ and - (starting with a letter or digit)',
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
