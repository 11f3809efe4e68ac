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

export const registryVars = {
  MYMDB_REGISTRY: str({
    desc: 'where images are pushed: ecr (Amazon ECR of this account), docker.io/<user>, or <host[:port]>[/path]',
    example: 'ecr',
  }),
  MYMDB_REGISTRY_USERNAME: str({ desc: 'registry user (Docker Hub or another registry; not for ecr)', example: 'yourname', optional: true }),
  MYMDB_REGISTRY_PASSWORD: str({ desc: 'registry password or access token (not for ecr)', example: '<token>', optional: true, secret: true }),
}

export const hostVars = {
  MYMDB_INSTANCE_TYPE: str({
    desc: 'EC2 instance type of the host',
    example: 't3.micro',
    default: 't3.micro',
    pattern: /^[a-z][a-z0-9-]*\.[a-z0-9]+$/,
    patternDesc: 'an instance type like t3.micro',
  }),
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
  MYMDB_SSH_CIDR: str({ desc: 'who may SSH to the host (default: your current public IP /32)', example: '203.0.113.7/32', optional: true, pattern: /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/(3[0-2]|[12]?\d)$/, patternDesc: 'an IPv4 CIDR like 203.0.113.7/32' }),
  MYMDB_HOST_ADDRESS: str({ desc: 'address to reach the host at instead of its public IP (a bastion, or the test rig)', example: '127.0.0.1', optional: true, pattern: /^[A-Za-z0-9][A-Za-z0-9.:-]*$/, patternDesc: 'a host name or IP address' }),
  MYMDB_HOST_SSH_PORT: port({ desc: 'SSH port of the host', example: '22', default: 22 }),
  MYMDB_HOST_HTTP_PORT: port({ desc: 'HTTP port the site is checked on', example: '80', default: 80 }),
}
