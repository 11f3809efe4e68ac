// The settings the start on the host reads (npm run remote:up, and step 4 of deploy:aws).
import type { CleanEnv } from '../env.ts'
import { awsVars, backupScheduleVars, dbVars, djangoVars, hostVars, imageVars, productionOnly, registryVars, releaseVars, serverVars, siteVars, uploadVars } from '../vars.ts'

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
