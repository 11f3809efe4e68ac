// The project's settings model, part 2: the AWS deploy (npm run deploy:aws and its steps):
// region and stage, the upload and backup buckets, the backup schedule, releases kept, and the
// registry the images go to.
import type { Rule, Validator } from './env.ts'
import { awsRegion, bucketName, int, makeValidator, str } from './validators.ts'
import { uploadVars } from './vars.ts'


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
  MYMDB_UPLOAD_KEEP_DAYS: int({
    desc: 'days a replaced or deleted upload stays in the versioned upload bucket as an old version (a lifecycle rule deletes it then)',
    example: '30',
    default: 30,
    min: 1,
    max: 3650,
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

/** The stage a task alone may belong to (remote:up towards a host of your own has none: no lock). */
export const stageRegionVars = {
  AWS_REGION: awsRegion({ desc: 'AWS region of the stage (its lock is taken there; unset: a host of your own, no lock)', example: 'us-west-2', optional: true }),
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
  MYMDB_BACKUP_KEEP_DAYS: int({
    desc: 'days a scheduled, manual or safety backup is kept at least (the newest MYMDB_BACKUP_KEEP of each kind stay whatever their age; final and pre-migrate backups stay until deleted)',
    example: '14',
    default: 14,
    min: 1,
    max: 3650,
  }),
  MYMDB_BACKUP_KEEP: int({ desc: 'the newest scheduled, manual and safety backups kept (of each kind) however old they are', example: '7', default: 7, min: 1, max: 101 }),
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

/** The registry host of an image prefix (docker.io/yourname -> docker.io): what `docker login` names, here and on the host. */
export function registryHost(prefix: string): string {
  return prefix.split('/')[0] ?? prefix
}

/** The prefix of the pushed image names, and the registry host for `docker login` (pure). */
export function registryPrefix(registry: Registry, ecrHost?: string): { loginHost: string; prefix: string } {
  const prefix = ((): string => {
    switch (registry.kind) {
      case 'ecr':
        if (!ecrHost) throw new Error('ECR host unknown')
        return ecrHost
      case 'dockerhub':
        return `docker.io/${registry.namespace}`
      case 'generic':
        return registry.path ? `${registry.host}/${registry.path}` : registry.host
    }
  })()
  return { loginHost: registryHost(prefix), prefix }
}

const REGISTRY_DESC = 'where images are pushed: ecr (Amazon ECR of this account), docker.io/<user>, or <host[:port]>[/path]'
const REGISTRY_EXPECTED = 'ecr, docker.io/<user>, or <host[:port]>[/path]'
function registryValue(raw: string): string {
  parseRegistry(raw)
  return raw.trim().replace(/\/+$/, '')
}

/** MYMDB_REGISTRY where only ecr changes anything (the host step: the role's pull rights). */
export const optionalRegistryVar = makeValidator<string | undefined>({ desc: REGISTRY_DESC, example: 'ecr', optional: true }, REGISTRY_EXPECTED, registryValue)

export const registryVars = {
  MYMDB_REGISTRY: makeValidator<string>({ desc: REGISTRY_DESC, example: 'ecr' }, REGISTRY_EXPECTED, registryValue),
  MYMDB_REGISTRY_USERNAME: str({ desc: 'registry user (Docker Hub or another registry; not for ecr)', example: 'yourname', optional: true }),
  MYMDB_REGISTRY_PASSWORD: str({ desc: 'registry password or access token for pushing, used on this machine only (not for ecr)', example: '<token>', optional: true, secret: true }),
  MYMDB_PULL_USERNAME: str({ desc: 'the host\'s own registry user, with read-only rights (not for ecr: the host pulls with its instance role)', example: 'yourname', optional: true }),
  MYMDB_PULL_PASSWORD: str({ desc: 'the host\'s read-only registry token (MYMDB_PULL_USERNAME); without them the host pulls anonymously', example: '<read-only token>', optional: true, secret: true }),
}

type RegistryValues = { MYMDB_REGISTRY: string; MYMDB_REGISTRY_USERNAME?: string; MYMDB_REGISTRY_PASSWORD?: string; MYMDB_PULL_USERNAME?: string; MYMDB_PULL_PASSWORD?: string }

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
  // the host's own pull credential: both or neither; none with ecr (the instance role pulls)
  {
    names: ['MYMDB_PULL_USERNAME', 'MYMDB_REGISTRY'],
    check: (v) =>
      v.MYMDB_REGISTRY === 'ecr' && (v.MYMDB_PULL_USERNAME !== undefined || v.MYMDB_PULL_PASSWORD !== undefined)
        ? 'is not used with MYMDB_REGISTRY=ecr (the host pulls with its instance role): remove MYMDB_PULL_USERNAME and MYMDB_PULL_PASSWORD'
        : null,
  },
  {
    names: ['MYMDB_PULL_PASSWORD', 'MYMDB_PULL_USERNAME'],
    check: (v) =>
      v.MYMDB_REGISTRY !== 'ecr' && (v.MYMDB_PULL_USERNAME === undefined) !== (v.MYMDB_PULL_PASSWORD === undefined)
        ? 'set both MYMDB_PULL_USERNAME and MYMDB_PULL_PASSWORD (a read-only token), or neither'
        : null,
  },
]

/**
 * How the host gets into the registry (pure): ECR with its instance role (amazon-ecr-credential-
 * helper asks for its own tokens), another registry with the pull-only login, or anonymously. The
 * deployer's own login never goes to the host.
 */
export type PullAccess =
  | { kind: 'role'; host: string }
  | { kind: 'login'; host: string; username: string; password: string }
  | { kind: 'anonymous'; host: string }

export function pullAccess(v: RegistryValues, host: string): PullAccess {
  if (v.MYMDB_REGISTRY === 'ecr') return { kind: 'role', host }
  if (v.MYMDB_PULL_USERNAME !== undefined && v.MYMDB_PULL_PASSWORD !== undefined)
    return { kind: 'login', host, username: v.MYMDB_PULL_USERNAME, password: v.MYMDB_PULL_PASSWORD }
  return { kind: 'anonymous', host }
}

// Sizes EC2 has; families: letters, a generation digit, options (t3, t3a, m7i-flex, c6in, u-6tb1).
