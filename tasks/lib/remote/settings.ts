// The settings the start on the host reads (npm run remote:up, and step 4 of deploy:aws), and
// those of the whole deploy (npm run deploy:aws: its four steps' settings, checked at once).
import { createHmac } from 'node:crypto'
import { checkEnv, type CleanEnv, type RawEnv } from '../env.ts'
import { deployedDbVars, djangoVars, imageVars, productionOnly, serverVars, uploadVars } from '../vars.ts'
import { acmeCaRootRule, clusterVars, hostAddressRule, hstsRule, readAcmeCaRoot, sshKeyPath, sshKeyRule, hostVars, siteVars } from '../hostvars.ts'
import { awsVars, backupBucketRules, backupBucketVars, backupScheduleVars, bucketVars, registryRules, registryVars, releaseVars } from '../awsvars.ts'
import { hostList } from '../validators.ts'
import { clusterDatabaseRule, databaseVars, dbCaBundle, dbCaFileRule, postgresPasswordRule } from '../dbvars.ts'

/** What the start on the host reads; the secrets must be production ones (not up:local's). */
export const remoteSpec = {
  ...productionOnly({ ...djangoVars, ...deployedDbVars, ...uploadVars }),
  UWSGI_PROCESSES: serverVars.UWSGI_PROCESSES,
  UWSGI_THREADS: serverVars.UWSGI_THREADS,
  MYMDB_WEB_IMAGE: imageVars.MYMDB_WEB_IMAGE,
  MYMDB_DB_IMAGE: imageVars.MYMDB_DB_IMAGE,
  MYMDB_PROXY_IMAGE: imageVars.MYMDB_PROXY_IMAGE,
  MYMDB_CACHE_IMAGE: imageVars.MYMDB_CACHE_IMAGE,
  MYMDB_TAG: imageVars.MYMDB_TAG,
  ...siteVars,
  ...clusterVars,
  ...releaseVars,
  ...registryVars,
  MYMDB_STAGE: awsVars.MYMDB_STAGE,
  MYMDB_SSH_USER: hostVars.MYMDB_SSH_USER,
  MYMDB_SSH_KEY_FILE: hostVars.MYMDB_SSH_KEY_FILE,
  MYMDB_HOST_ADDRESS: hostVars.MYMDB_HOST_ADDRESS,
  MYMDB_HOST_SSH_PORT: hostVars.MYMDB_HOST_SSH_PORT,
  MYMDB_HOST_KEY: hostVars.MYMDB_HOST_KEY,
  MYMDB_HOST_HTTP_PORT: hostVars.MYMDB_HOST_HTTP_PORT,
  ...backupScheduleVars,
  ...databaseVars,
}

export type RemoteSettings = CleanEnv<typeof remoteSpec>

/**
 * The settings of a start, with what is derived from them: the private key file (under HOME), the
 * PEM text of MYMDB_ACME_CA_ROOT, Django's HTTPS settings on with MYMDB_DOMAIN, the upload
 * bucket's region (AWS_REGION unless AWS_S3_REGION_NAME says otherwise), and the admin's address.
 */
export type StartSettings = RemoteSettings & { sshKeyFile: string; caRoot?: string; DJANGO_ADMIN_URL: string; dbCa?: string }

/**
 * The admin's address on a deployed site unless DJANGO_ADMIN_URL says: admin- and 12 hex digits of
 * an HMAC of the secret key, the same on every deploy, not guessable without the key (scanners
 * that try /admin/ find nothing). A new secret key moves it.
 */
export function derivedAdminUrl(secretKey: string): string {
  return `admin-${createHmac('sha256', secretKey).update('mymdb admin address').digest('hex').slice(0, 12)}`
}

/** Derives the values of StartSettings from checked ones (and HOME, for ~ in paths). */
export function startSettings<V extends RemoteSettings & { AWS_REGION?: string }>(v: V, raw: RawEnv): V & StartSettings {
  const caRoot = v.MYMDB_ACME_CA_ROOT === undefined ? undefined : (readAcmeCaRoot(v.MYMDB_ACME_CA_ROOT, raw) ?? undefined)
  return {
    ...v,
    DJANGO_SECURE_SSL: v.MYMDB_DOMAIN ? true : v.DJANGO_SECURE_SSL,
    AWS_S3_REGION_NAME: v.AWS_S3_REGION_NAME ?? v.AWS_REGION,
    DJANGO_ADMIN_URL: v.DJANGO_ADMIN_URL ?? derivedAdminUrl(v.DJANGO_SECRET_KEY),
    sshKeyFile: sshKeyPath(v, raw),
    ...(caRoot ? { caRoot } : {}),
    // MYMDB_DATABASE=rds: the PEM bundle the site checks the database's certificate against
    ...(v.MYMDB_DATABASE === 'rds' ? { dbCa: dbCaBundle(v.MYMDB_DB_CA_FILE, raw) } : {}),
  }
}

/**
 * Everything the four steps read, checked at once. What the deploy requires differs from the start
 * alone in two settings, said last: the upload bucket is required (the deploy makes it), and the
 * allowed hosts are optional (the instance's public name and address are added).
 */
export const deploySpec = {
  ...remoteSpec,
  ...imageVars,
  ...awsVars,
  ...registryVars,
  ...hostVars,
  ...backupBucketVars,
  ...releaseVars,
  DJANGO_UPLOAD_S3_BUCKET: bucketVars.DJANGO_UPLOAD_S3_BUCKET,
  MYMDB_UPLOAD_KEEP_DAYS: bucketVars.MYMDB_UPLOAD_KEEP_DAYS,
  DJANGO_ALLOWED_HOSTS: hostList({ desc: 'extra host names of the site (the instance public DNS name and IP are added)', example: 'mymdb.example.com', optional: true }),
}

/** Rules across the settings of the four steps: the registry login, the SSH key file, the backup bucket. */
export const deployRules = [...registryRules, sshKeyRule, hostAddressRule, ...backupBucketRules, acmeCaRootRule, hstsRule, dbCaFileRule, clusterDatabaseRule, postgresPasswordRule]

export type DeploySettings = ReturnType<typeof deploySettings>

/** The deploy's settings: checked once, all problems at once (EnvError, exit 2), with the derived values. */
export function deploySettings(raw: RawEnv) {
  const values = checkEnv(deploySpec, raw, { rules: deployRules })
  return startSettings({ ...values, DJANGO_ALLOWED_HOSTS: values.DJANGO_ALLOWED_HOSTS ?? [] }, raw)
}
