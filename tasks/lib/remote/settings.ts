// The settings the start on the host reads (npm run remote:up, and step 4 of deploy:aws).
import type { CleanEnv, RawEnv } from '../env.ts'
import { dbVars, djangoVars, imageVars, productionOnly, serverVars, uploadVars } from '../vars.ts'
import { readAcmeCaRoot, sshKeyPath, hostVars, siteVars } from '../hostvars.ts'
import { awsVars, backupScheduleVars, registryVars, releaseVars } from '../awsvars.ts'

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

/**
 * The settings of a start, with what is derived from them: the private key file (under HOME), the
 * PEM text of MYMDB_ACME_CA_ROOT, Django's HTTPS settings on with MYMDB_DOMAIN, and the upload
 * bucket's region (AWS_REGION unless AWS_S3_REGION_NAME says otherwise).
 */
export type StartSettings = RemoteSettings & { sshKeyFile: string; caRoot?: string }

/** Derives the values of StartSettings from checked ones (and HOME, for ~ in paths). */
export function startSettings<V extends RemoteSettings & { AWS_REGION?: string }>(v: V, raw: RawEnv): V & StartSettings {
  const caRoot = v.MYMDB_ACME_CA_ROOT === undefined ? undefined : (readAcmeCaRoot(v.MYMDB_ACME_CA_ROOT, raw) ?? undefined)
  return {
    ...v,
    DJANGO_SECURE_SSL: v.MYMDB_DOMAIN ? true : v.DJANGO_SECURE_SSL,
    AWS_S3_REGION_NAME: v.AWS_S3_REGION_NAME ?? v.AWS_REGION,
    sshKeyFile: sshKeyPath(v, raw),
    ...(caRoot ? { caRoot } : {}),
  }
}
