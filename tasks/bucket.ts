// The S3 bucket step of `npm run deploy:aws`: the upload bucket (DJANGO_UPLOAD_S3_BUCKET) in
// AWS_REGION, tagged for the stage, ACLs disabled (bucket owner enforced), public read on the
// uploads/ prefix only (bucket policy from AWS/mymdb-bucket-policy.json). Re-runnable: it reads
// the bucket's current settings and writes only what differs.
//
// Standalone: npm run bucket [-- --dry-run]
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { BucketLocationConstraint, LifecycleRule, ObjectIdentifier, PublicAccessBlockConfiguration, S3Client, Tag } from '@aws-sdk/client-s3'
import type { STSClient } from '@aws-sdk/client-sts'
import type { S3ControlClient } from '@aws-sdk/client-s3-control'
import { S3, S3Control, STS, aws, awsClients, awsErrorCode, explainAwsError, type AwsClients } from './lib/aws.ts'
import { checkEnv, loadEnv, type CleanEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import type { Log } from './lib/log.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { REPO_ROOT } from './lib/paths.ts'
import { retryUntil } from './lib/sh.ts'
import { awsVars, backupBucketName, backupBucketRules, backupBucketVars, bucketVars, PROJECT_TAG, stageTags } from './lib/vars.ts'

export const HELP = `Usage: npm run bucket -- [options]   (a step of npm run deploy:aws)

Creates or updates the S3 bucket for uploaded posters, DJANGO_UPLOAD_S3_BUCKET, in AWS_REGION:
  - tags Project=${PROJECT_TAG}, Stage=<MYMDB_STAGE>
  - object ownership "bucket owner enforced" (ACLs disabled; Django sets no ACL)
  - Block Public Access: BlockPublicAcls and IgnorePublicAcls on, BlockPublicPolicy and
    RestrictPublicBuckets off, so that the bucket policy below may be public
  - bucket policy from AWS/mymdb-bucket-policy.json: anyone may GET objects under uploads/,
    nothing else of the bucket is public (the bucket's policy is replaced by this one)
It reads the current settings first and changes only what differs; a second run changes
nothing. It warns when the account-wide Block Public Access setting would still block the
policy, and says how to fix that.

Settings (environment or .env): AWS_REGION, DJANGO_UPLOAD_S3_BUCKET, MYMDB_STAGE (default
production); credentials from the AWS SDK's default chain (aws configure, AWS_PROFILE, ...).

Options:
  --dry-run    print the plan (exists/create/update/unchanged per item), change nothing
  -h, --help   this help

Exit codes: 0 done, 1 AWS failed, 2 bad option or setting (also: bucket name taken by another
account, bucket in another region).`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run bucket',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
  },
} as const

export const UPLOAD_PREFIX = 'uploads/'
export const POLICY_TEMPLATE_FILE = resolve(REPO_ROOT, 'AWS/mymdb-bucket-policy.json')
export const OWNERSHIP = 'BucketOwnerEnforced'
/** ACLs stay blocked; bucket policies may be public (for the uploads/ read grant). */
export const PUBLIC_ACCESS_BLOCK: Required<Pick<PublicAccessBlockConfiguration, 'BlockPublicAcls' | 'IgnorePublicAcls' | 'BlockPublicPolicy' | 'RestrictPublicBuckets'>> = {
  BlockPublicAcls: true,
  IgnorePublicAcls: true,
  BlockPublicPolicy: false,
  RestrictPublicBuckets: false,
}

// --- the policy ---------------------------------------------------------------------------------

export type PolicyDocument = { Version: string; Statement: Record<string, unknown>[] } & Record<string, unknown>

let templateText: string | undefined

function substitute(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') return value.replace(/\$\{([A-Z_]+)\}/g, (m, name: string) => vars[name] ?? m)
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars))
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]))
  return value
}

/**
 * The bucket policy: the template AWS/mymdb-bucket-policy.json parsed, then `${BUCKET}` and
 * `${PREFIX}` replaced inside its strings (never in the JSON text, so a value cannot break the
 * JSON). Returns an object; send it with JSON.stringify. Deterministic (the template is read once).
 */
export function bucketPolicy(bucket: string, prefix = UPLOAD_PREFIX, template?: string): PolicyDocument {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`not an S3 bucket name: ${JSON.stringify(bucket)}`)
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/$/.test(prefix) || prefix.split('/').some((seg) => seg === '.' || seg === '..'))
    throw new Error(`the public prefix must be a path ending in / without wildcards, e.g. uploads/ (got ${JSON.stringify(prefix)})`)
  const text = template ?? (templateText ??= readFileSync(POLICY_TEMPLATE_FILE, 'utf8'))
  const policy = substitute(JSON.parse(text), { BUCKET: bucket, PREFIX: prefix }) as PolicyDocument
  const left = JSON.stringify(policy).match(/\$\{[A-Za-z_]+\}/)
  if (left) throw new Error(`the bucket policy template has an unknown placeholder ${left[0]}`)
  if (policy.Version !== '2012-10-17' || !Array.isArray(policy.Statement) || policy.Statement.length === 0)
    throw new Error('the bucket policy template needs Version 2012-10-17 and at least one Statement')
  return policy
}

const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v])
const sortedJson = (v: unknown[]): string[] => v.map((x) => JSON.stringify(x)).sort()

function normalizePrincipal(p: unknown): unknown {
  if (p === '*') return { AWS: ['"*"'] }
  if (p && typeof p === 'object')
    return Object.fromEntries(Object.entries(p).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, sortedJson(asList(v))]))
  return p
}

/** A policy in a canonical form: single values as lists, lists sorted, Principal "*" as {AWS: "*"}. */
export function normalizePolicy(policy: unknown): unknown {
  const doc = (typeof policy === 'string' ? JSON.parse(policy) : policy) as Record<string, unknown>
  const statements = asList(doc?.Statement).map((s) => {
    const st = s as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(st).sort()) {
      const v = st[key]
      if (key === 'Principal' || key === 'NotPrincipal') out[key] = normalizePrincipal(v)
      else if (['Action', 'NotAction', 'Resource', 'NotResource'].includes(key)) out[key] = sortedJson(asList(v))
      else out[key] = v
    }
    return JSON.stringify(out)
  })
  return { Version: doc?.Version, Statement: statements.sort() }
}

/** Whether two policies (objects or JSON text) say the same. */
export function samePolicy(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(normalizePolicy(a)) === JSON.stringify(normalizePolicy(b))
  } catch {
    return false
  }
}

// --- desired and current state, the plan ---------------------------------------------------------

export interface DesiredBucket {
  bucket: string
  /** The setting that names it (for messages). */
  setting: string
  region: string
  stage: string
  tags: Tag[]
  ownership: typeof OWNERSHIP
  publicAccessBlock: typeof PUBLIC_ACCESS_BLOCK
  /** The upload bucket: its public-read policy. */
  policy?: PolicyDocument
  /** The backup bucket: default encryption, versioning, and the days a backup is kept. */
  backups?: { keepDays: number }
}

export function desiredBucket(bucket: string, region: string, stage: string): DesiredBucket {
  return {
    bucket,
    setting: 'DJANGO_UPLOAD_S3_BUCKET',
    region,
    stage,
    tags: stageTags(stage),
    ownership: OWNERSHIP,
    publicAccessBlock: { ...PUBLIC_ACCESS_BLOCK },
    policy: bucketPolicy(bucket),
  }
}

/** Every public access blocked: nothing of the backup bucket can ever be made public. */
export const PRIVATE_ACCESS_BLOCK: typeof PUBLIC_ACCESS_BLOCK = { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true }
/** The id of the backup bucket's lifecycle rule. */
export const LIFECYCLE_RULE_ID = 'mymdb-expire-backups'
export const ENCRYPTION = 'AES256'

/**
 * The stage's backup bucket: private (all four Block Public Access flags, no policy), encrypted at
 * rest (SSE-S3 by default), versioned (an overwrite or delete keeps the old version), and a
 * lifecycle rule that deletes backups, and replaced versions, after `keepDays`.
 */
export function desiredBackupBucket(bucket: string, region: string, stage: string, keepDays: number): DesiredBucket {
  settingOfBucket.set(bucket, 'MYMDB_BACKUP_BUCKET')
  return {
    bucket,
    setting: 'MYMDB_BACKUP_BUCKET',
    region,
    stage,
    tags: stageTags(stage),
    ownership: OWNERSHIP,
    publicAccessBlock: { ...PRIVATE_ACCESS_BLOCK },
    backups: { keepDays },
  }
}

/** The lifecycle rule of the backup bucket (pure). */
export function backupLifecycleRule(keepDays: number): LifecycleRule {
  return {
    ID: LIFECYCLE_RULE_ID,
    Status: 'Enabled',
    Filter: { Prefix: '' },
    Expiration: { Days: keepDays },
    NoncurrentVersionExpiration: { NoncurrentDays: keepDays },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
  }
}

/** Whether the bucket's lifecycle rules are exactly ours for `keepDays` (pure). */
export function sameLifecycle(rules: LifecycleRule[] | undefined, keepDays: number): boolean {
  if (!rules || rules.length !== 1) return false
  const r = rules[0]!
  return (
    r.ID === LIFECYCLE_RULE_ID &&
    r.Status === 'Enabled' &&
    (r.Filter?.Prefix ?? r.Prefix ?? '') === '' &&
    r.Expiration?.Days === keepDays &&
    r.NoncurrentVersionExpiration?.NoncurrentDays === keepDays &&
    r.AbortIncompleteMultipartUpload?.DaysAfterInitiation === 1
  )
}

/** What the bucket has now (undefined fields: not set). */
export interface BucketState {
  region: string
  tags: Tag[]
  ownership?: string
  publicAccessBlock?: PublicAccessBlockConfiguration
  /** The policy JSON text. */
  policy?: string
  /** The default encryption's algorithm (AES256, aws:kms, ...). */
  encryption?: string
  /** Enabled, Suspended, or undefined (never enabled). */
  versioning?: string
  lifecycle?: LifecycleRule[]
}

export type PlanItemName = 'bucket' | 'ownership' | 'public-access-block' | 'tags' | 'policy' | 'encryption' | 'versioning' | 'lifecycle'
export type PlanAction = 'exists' | 'create' | 'update' | 'unchanged'

export interface PlanItem {
  item: PlanItemName
  action: PlanAction
  /** What it is / what changes, for the plan line. */
  detail: string
}

/** Whether an item needs a write. */
export function mutates(item: PlanItem): boolean {
  return item.action === 'create' || item.action === 'update'
}

/** The tag set to write: the bucket's other tags kept, the stage tags set. */
export function mergedTags(current: Tag[], wanted: Tag[]): Tag[] {
  const keys = new Set(wanted.map((t) => t.Key))
  return [...current.filter((t) => !keys.has(t.Key)), ...wanted]
}

const pabText = (c: PublicAccessBlockConfiguration) =>
  (['BlockPublicAcls', 'IgnorePublicAcls', 'BlockPublicPolicy', 'RestrictPublicBuckets'] as const)
    .map((k) => `${k}=${c[k] ? 'on' : 'off'}`)
    .join(' ')

/**
 * The plan, from the current state (undefined: no bucket) and the desired one. Pure. Throws a
 * ConfigError when the bucket is in another region or belongs to another stage.
 */
export function planBucket(current: BucketState | undefined, desired: DesiredBucket): PlanItem[] {
  const tagText = desired.tags.map((t) => `${t.Key}=${t.Value}`).join(', ')
  const policyText = `public GetObject on ${UPLOAD_PREFIX}* only`
  const keep = desired.backups?.keepDays
  const lifecycleText = `delete backups and replaced versions after ${keep} day(s)`
  const state = (now: unknown, same: boolean): PlanAction => (now === undefined ? 'create' : same ? 'unchanged' : 'update')
  const extra = (c: BucketState | undefined): PlanItem[] => [
    ...(desired.policy
      ? [
          {
            item: 'policy' as const,
            action: state(c?.policy, c?.policy !== undefined && samePolicy(c.policy, desired.policy)),
            detail: c?.policy !== undefined && !samePolicy(c.policy, desired.policy) ? `${policyText} (replaces the current policy)` : policyText,
          },
        ]
      : []),
    ...(keep !== undefined
      ? [
          {
            item: 'encryption' as const,
            action: state(c?.encryption, c?.encryption === ENCRYPTION),
            detail: c?.encryption && c.encryption !== ENCRYPTION ? `${c.encryption} -> SSE-S3 (${ENCRYPTION})` : `SSE-S3 (${ENCRYPTION}) by default`,
          },
          { item: 'versioning' as const, action: state(c?.versioning, c?.versioning === 'Enabled'), detail: 'Enabled' },
          {
            item: 'lifecycle' as const,
            action: state(c?.lifecycle, sameLifecycle(c?.lifecycle, keep)),
            detail: c?.lifecycle && !sameLifecycle(c.lifecycle, keep) ? `${lifecycleText} (replaces the current rules)` : lifecycleText,
          },
        ]
      : []),
  ]
  if (!current)
    return [
      { item: 'bucket', action: 'create', detail: `${desired.bucket} in ${desired.region}` },
      { item: 'ownership', action: 'create', detail: desired.ownership },
      { item: 'public-access-block', action: 'create', detail: pabText(desired.publicAccessBlock) },
      { item: 'tags', action: 'create', detail: tagText },
      ...extra(undefined),
    ]

  if (current.region !== desired.region)
    throw new ConfigError(
      `bucket ${desired.bucket} exists in ${current.region}, not in AWS_REGION=${desired.region}: ` +
        `set AWS_REGION=${current.region}, or choose another ${desired.setting}`,
    )
  const tag = (key: string) => current.tags.find((t) => t.Key === key)?.Value
  if (tag('Project') === PROJECT_TAG && tag('Stage') !== undefined && tag('Stage') !== desired.stage)
    throw new ConfigError(
      `bucket ${desired.bucket} belongs to stage ${tag('Stage')} (tag Stage=${tag('Stage')}), not MYMDB_STAGE=${desired.stage}: ` +
        `choose another ${desired.setting} for this stage`,
    )

  const pab = current.publicAccessBlock
  const pabSame = pab !== undefined && (Object.keys(desired.publicAccessBlock) as (keyof typeof PUBLIC_ACCESS_BLOCK)[]).every((k) => Boolean(pab[k]) === desired.publicAccessBlock[k])
  const tagsSame = desired.tags.every((t) => tag(t.Key!) === t.Value)
  return [
    { item: 'bucket', action: 'exists', detail: `${desired.bucket} in ${current.region}` },
    {
      item: 'ownership',
      action: state(current.ownership, current.ownership === desired.ownership),
      detail: current.ownership && current.ownership !== desired.ownership ? `${current.ownership} -> ${desired.ownership}` : desired.ownership,
    },
    {
      item: 'public-access-block',
      action: state(pab, pabSame),
      detail: pab && !pabSame ? `${pabText(pab)} -> ${pabText(desired.publicAccessBlock)}` : pabText(desired.publicAccessBlock),
    },
    { item: 'tags', action: current.tags.length === 0 ? 'create' : tagsSame ? 'unchanged' : 'update', detail: tagText },
    ...extra(current),
  ]
}

/** One plan line, e.g. `[bucket] policy: unchanged (public GetObject on uploads/* only)`. */
export function planLine(item: PlanItem): string {
  return `[bucket] ${item.item}: ${item.action} (${item.detail})`
}

// --- AWS calls ------------------------------------------------------------------------------------

export interface BucketClients {
  region: string
  s3: S3Client
  sts: STSClient
  s3control: S3ControlClient
}

export function bucketClients(region: string, env: Env = process.env): BucketClients {
  return bucketClientsFrom(awsClients(region, env))
}

/** The bucket step's clients from clients made already (the deploy's). */
export function bucketClientsFrom(clients: Pick<AwsClients, 'region' | 's3' | 'sts' | 's3control'>): BucketClients {
  return { region: clients.region, s3: clients.s3, sts: clients.sts, s3control: clients.s3control }
}

/** The setting that names a bucket, for messages: the backup bucket's is registered by desiredBucket. */
const settingOfBucket = new Map<string, string>()
const settingOf = (bucket: string) => settingOfBucket.get(bucket) ?? 'DJANGO_UPLOAD_S3_BUCKET'

/** The message for a bucket name owned by another account (BucketAlreadyExists, or 403 on HeadBucket). */
export function bucketTakenError(bucket: string): ConfigError {
  return new ConfigError(
    `the bucket name ${bucket} is taken by another AWS account (bucket names are global): ` +
      `choose another ${settingOf(bucket)}, e.g. with your name or account id in it`,
  )
}

/**
 * AWS errors of the bucket calls as messages: a name taken by another account and an invalid
 * name are ConfigErrors naming DJANGO_UPLOAD_S3_BUCKET; the rest as explainAwsError.
 */
export function explainBucketError(err: unknown, bucket: string, doing: string): unknown {
  const code = awsErrorCode(err)
  if (code === 'BucketAlreadyExists') return bucketTakenError(bucket)
  if (code === 'InvalidBucketName')
    return new ConfigError(`AWS does not accept the bucket name ${bucket}: choose another ${settingOf(bucket)} (InvalidBucketName)`)
  return explainAwsError(err, doing)
}

async function call<T>(bucket: string, doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw explainBucketError(err, bucket, doing)
  }
}

/** Runs a read; the error codes in `absent` (e.g. NoSuchBucketPolicy) mean "not set": undefined. */
async function read<T>(bucket: string, doing: string, absent: string[], fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn()
  } catch (err) {
    if (absent.includes(awsErrorCode(err))) return undefined
    throw explainBucketError(err, bucket, doing)
  }
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode
}

/** The bucket's region, or undefined when there is no such bucket. */
export async function headBucket(s3: S3Client, bucket: string): Promise<string | undefined> {
  try {
    const out = await s3.send(new S3.HeadBucketCommand({ Bucket: bucket }))
    if (out.BucketRegion) return out.BucketRegion
  } catch (err) {
    const status = httpStatus(err)
    if (awsErrorCode(err) === 'NotFound' || awsErrorCode(err) === 'NoSuchBucket' || status === 404) return undefined
    if (status === 403) throw bucketTakenError(bucket)
    if (status === 301) {
      const region = (err as { $response?: { headers?: Record<string, string> } }).$response?.headers?.['x-amz-bucket-region']
      if (region) return region
    }
    throw explainBucketError(err, bucket, `look up bucket ${bucket}`)
  }
  const loc = await call(bucket, `get the region of bucket ${bucket}`, () => s3.send(new S3.GetBucketLocationCommand({ Bucket: bucket })))
  const c = loc.LocationConstraint as string | undefined
  return !c ? 'us-east-1' : c === 'EU' ? 'eu-west-1' : c
}

export async function getBucketTags(s3: S3Client, bucket: string): Promise<Tag[]> {
  const out = await read(bucket, `read the tags of bucket ${bucket}`, ['NoSuchTagSet'], () => s3.send(new S3.GetBucketTaggingCommand({ Bucket: bucket })))
  return out?.TagSet ?? []
}

export async function getOwnershipControls(s3: S3Client, bucket: string): Promise<string | undefined> {
  const out = await read(bucket, `read the ownership controls of bucket ${bucket}`, ['OwnershipControlsNotFoundError'], () =>
    s3.send(new S3.GetBucketOwnershipControlsCommand({ Bucket: bucket })),
  )
  return out?.OwnershipControls?.Rules?.[0]?.ObjectOwnership
}

export async function getPublicAccessBlock(s3: S3Client, bucket: string): Promise<PublicAccessBlockConfiguration | undefined> {
  const out = await read(bucket, `read the public access block of bucket ${bucket}`, ['NoSuchPublicAccessBlockConfiguration'], () =>
    s3.send(new S3.GetPublicAccessBlockCommand({ Bucket: bucket })),
  )
  return out?.PublicAccessBlockConfiguration
}

export async function getBucketPolicy(s3: S3Client, bucket: string): Promise<string | undefined> {
  const out = await read(bucket, `read the policy of bucket ${bucket}`, ['NoSuchBucketPolicy'], () => s3.send(new S3.GetBucketPolicyCommand({ Bucket: bucket })))
  return out?.Policy
}

/** The bucket's current settings, or undefined when it does not exist. Reads only. */
export async function getBucketEncryption(s3: S3Client, bucket: string): Promise<string | undefined> {
  const out = await read(bucket, `read the default encryption of bucket ${bucket}`, ['ServerSideEncryptionConfigurationNotFoundError'], () =>
    s3.send(new S3.GetBucketEncryptionCommand({ Bucket: bucket })),
  )
  return out?.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm
}

export async function getBucketVersioning(s3: S3Client, bucket: string): Promise<string | undefined> {
  const out = await call(bucket, `read the versioning of bucket ${bucket}`, () => s3.send(new S3.GetBucketVersioningCommand({ Bucket: bucket })))
  return out.Status
}

export async function getBucketLifecycle(s3: S3Client, bucket: string): Promise<LifecycleRule[] | undefined> {
  const out = await read(bucket, `read the lifecycle rules of bucket ${bucket}`, ['NoSuchLifecycleConfiguration'], () =>
    s3.send(new S3.GetBucketLifecycleConfigurationCommand({ Bucket: bucket })),
  )
  return out?.Rules
}

/** The bucket's current settings, those `desired` has (undefined: no such bucket). Reads only. */
export async function getBucketState(s3: S3Client, bucket: string, desired?: Pick<DesiredBucket, 'policy' | 'backups'>): Promise<BucketState | undefined> {
  const region = await headBucket(s3, bucket)
  if (region === undefined) return undefined
  const backups = desired?.backups !== undefined
  const [tags, ownership, publicAccessBlock, policy, encryption, versioning, lifecycle] = await Promise.all([
    getBucketTags(s3, bucket),
    getOwnershipControls(s3, bucket),
    getPublicAccessBlock(s3, bucket),
    backups ? undefined : getBucketPolicy(s3, bucket),
    backups ? getBucketEncryption(s3, bucket) : undefined,
    backups ? getBucketVersioning(s3, bucket) : undefined,
    backups ? getBucketLifecycle(s3, bucket) : undefined,
  ])
  return { region, tags, ownership, publicAccessBlock, policy, encryption, versioning, lifecycle }
}

/**
 * Creates the bucket in `region` (LocationConstraint outside us-east-1 only). 'exists' when this
 * account already owns it; a ConfigError when another account does.
 */
export async function createBucket(s3: S3Client, bucket: string, region: string): Promise<'created' | 'exists'> {
  try {
    await s3.send(
      new S3.CreateBucketCommand({
        Bucket: bucket,
        ...(region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
      }),
    )
  } catch (err) {
    if (awsErrorCode(err) === 'BucketAlreadyOwnedByYou') return 'exists'
    throw explainBucketError(err, bucket, `create bucket ${bucket} in ${region}`)
  }
  await call(bucket, `wait for bucket ${bucket}`, () => S3.waitUntilBucketExists({ client: s3, maxWaitTime: 60, minDelay: 1 }, { Bucket: bucket }))
  return 'created'
}

export async function putOwnershipControls(s3: S3Client, bucket: string, ownership: string = OWNERSHIP): Promise<void> {
  await call(bucket, `set the ownership controls of bucket ${bucket}`, () =>
    s3.send(new S3.PutBucketOwnershipControlsCommand({ Bucket: bucket, OwnershipControls: { Rules: [{ ObjectOwnership: ownership as typeof OWNERSHIP }] } })),
  )
}

export async function putPublicAccessBlock(s3: S3Client, bucket: string, config: PublicAccessBlockConfiguration = PUBLIC_ACCESS_BLOCK): Promise<void> {
  await call(bucket, `set the public access block of bucket ${bucket}`, () =>
    s3.send(new S3.PutPublicAccessBlockCommand({ Bucket: bucket, PublicAccessBlockConfiguration: config })),
  )
}

export async function putBucketTags(s3: S3Client, bucket: string, tags: Tag[]): Promise<void> {
  await call(bucket, `tag bucket ${bucket}`, () => s3.send(new S3.PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: tags } })))
}

/** Sets the policy (an object, sent as JSON.stringify: never hand-written JSON text). */
export async function putBucketPolicy(s3: S3Client, bucket: string, policy: PolicyDocument): Promise<void> {
  await s3.send(new S3.PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }))
}

// --- account-level Block Public Access -------------------------------------------------------------

export type AccountBlock =
  | { known: true; account: string; config?: PublicAccessBlockConfiguration }
  | { known: false; reason: string }

/** The account's Block Public Access setting (S3 Control), or why it cannot be told. Reads only. */
export async function getAccountPublicAccessBlock(sts: STSClient, s3control: S3ControlClient): Promise<AccountBlock> {
  const id = await aws('find the AWS account id (STS GetCallerIdentity)', () => sts.send(new STS.GetCallerIdentityCommand({})))
  const account = id.Account ?? ''
  try {
    const out = await s3control.send(new S3Control.GetPublicAccessBlockCommand({ AccountId: account }))
    return { known: true, account, config: out.PublicAccessBlockConfiguration }
  } catch (err) {
    if (awsErrorCode(err) === 'NoSuchPublicAccessBlockConfiguration') return { known: true, account }
    const code = awsErrorCode(err)
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err)
    return { known: false, reason: `${code && code !== 'Error' ? `${code}: ` : ''}${msg}` }
  }
}

/** The account-level flags that keep a public bucket policy from working (pure). */
export function accountBlockingFlags(config: PublicAccessBlockConfiguration | undefined): string[] {
  if (!config) return []
  return (['BlockPublicPolicy', 'RestrictPublicBuckets'] as const).filter((k) => config[k])
}

export function accountBlockFix(account: string): string {
  return (
    `aws s3control put-public-access-block --account-id ${account} --public-access-block-configuration ` +
    'BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=false,RestrictPublicBuckets=false ' +
    '(or S3 console > "Block Public Access settings for this account"), then run this step again'
  )
}

// --- delete (for the destroy step) ----------------------------------------------------------------

export interface DeleteResult {
  /** false: there was no such bucket. */
  deleted: boolean
  /** Object versions and delete markers removed. */
  objects: number
}

/**
 * Empties the bucket (every object version and delete marker) and deletes it. A missing bucket is
 * fine ({deleted: false}). With `stage`, refuses a bucket not tagged Project=mymdb, Stage=<stage>.
 * The caller decides whether it may: the destroy step requires a flag naming the bucket.
 */
export async function deleteBucket(s3: S3Client, bucket: string, opts: { stage?: string; log?: Log } = {}): Promise<DeleteResult> {
  const exists = (await headBucket(s3, bucket)) !== undefined
  if (!exists) return { deleted: false, objects: 0 }
  if (opts.stage !== undefined) {
    const tags = await getBucketTags(s3, bucket)
    const tag = (k: string) => tags.find((t) => t.Key === k)?.Value
    if (tag('Project') !== PROJECT_TAG || tag('Stage') !== opts.stage)
      throw new UserError(
        `refusing to delete bucket ${bucket}: it is not tagged Project=${PROJECT_TAG}, Stage=${opts.stage} ` +
          `(it has ${tags.map((t) => `${t.Key}=${t.Value}`).join(', ') || 'no tags'})`,
      )
  }
  let objects = 0
  let keyMarker: string | undefined
  let versionMarker: string | undefined
  for (;;) {
    const page = await call(bucket, `list the objects of bucket ${bucket}`, () =>
      s3.send(new S3.ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker })),
    )
    const ids: ObjectIdentifier[] = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]
      .filter((v) => v.Key !== undefined)
      .map((v) => ({ Key: v.Key!, ...(v.VersionId ? { VersionId: v.VersionId } : {}) }))
    for (let i = 0; i < ids.length; i += 1000) {
      const batch = ids.slice(i, i + 1000)
      const out = await call(bucket, `delete objects of bucket ${bucket}`, () =>
        s3.send(new S3.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } })),
      )
      if (out.Errors && out.Errors.length > 0) {
        const e = out.Errors[0]!
        throw new UserError(`could not delete ${out.Errors.length} object(s) of bucket ${bucket}, e.g. ${e.Key}: ${e.Code} ${e.Message ?? ''}`.trim())
      }
      objects += batch.length
    }
    if (!page.IsTruncated) break
    keyMarker = page.NextKeyMarker
    versionMarker = page.NextVersionIdMarker
  }
  opts.log?.info(`[bucket] emptied ${bucket}: ${objects} object version(s) deleted`)
  await call(bucket, `delete bucket ${bucket}`, () => s3.send(new S3.DeleteBucketCommand({ Bucket: bucket })))
  opts.log?.info(`[bucket] deleted ${bucket}`)
  return { deleted: true, objects }
}

// --- apply ---------------------------------------------------------------------------------------

export const POLICY_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000]

/**
 * Writes what the plan says differs, in order: bucket, ownership, public access block, tags,
 * then the policy (after the public access block allows it). Returns the items written.
 */
export async function applyBucketPlan(
  clients: BucketClients,
  desired: DesiredBucket,
  plan: PlanItem[],
  current: BucketState | undefined,
  opts: { log: Log; account?: AccountBlock; retryDelaysMs?: number[] },
): Promise<PlanItemName[]> {
  const { s3 } = clients
  const { bucket } = desired
  const { log } = opts
  const todo = new Set(plan.filter(mutates).map((p) => p.item))
  const done: PlanItemName[] = []
  if (todo.has('bucket')) {
    const result = await createBucket(s3, bucket, desired.region)
    log.info(`[bucket] bucket: ${result === 'created' ? `created ${bucket} in ${desired.region}` : 'already ours'}`)
    done.push('bucket')
  }
  if (todo.has('ownership')) {
    await putOwnershipControls(s3, bucket, desired.ownership)
    done.push('ownership')
  }
  if (todo.has('public-access-block')) {
    await putPublicAccessBlock(s3, bucket, desired.publicAccessBlock)
    done.push('public-access-block')
  }
  if (todo.has('tags')) {
    await putBucketTags(s3, bucket, mergedTags(current?.tags ?? [], desired.tags))
    done.push('tags')
  }
  if (todo.has('policy') && desired.policy) {
    const policy = desired.policy
    // Right after the public access block was opened, AWS may still refuse a public policy for a
    // few seconds (AccessDenied): then the policy is tried again.
    const delays = done.includes('public-access-block') ? (opts.retryDelaysMs ?? POLICY_RETRY_DELAYS_MS) : []
    const accountBlocks = opts.account?.known === true && accountBlockingFlags(opts.account.config).includes('BlockPublicPolicy')
    const retryable = (err: unknown) => !accountBlocks && awsErrorCode(err) === 'AccessDenied'
    try {
      await retryUntil(
        delays.length + 1,
        delays,
        async (n) => {
          try {
            await putBucketPolicy(s3, bucket, policy)
            return true
          } catch (err) {
            const delay = delays[n - 1]
            if (delay !== undefined && retryable(err))
              log.info(`[bucket] policy: AccessDenied just after the public access block changed; trying again in ${delay / 1000} s`)
            throw err
          }
        },
        (_last, err) => err,
        (err) => !retryable(err),
      )
      done.push('policy')
    } catch (err) {
      // With the account-level BlockPublicPolicy on, AWS refuses a public policy (AccessDenied).
      const account = opts.account
      if (account?.known && accountBlockingFlags(account.config).includes('BlockPublicPolicy') && awsErrorCode(err) === 'AccessDenied')
        log.warn(`[bucket] policy: NOT set: the account's Block Public Access (BlockPublicPolicy) refuses it. Fix: ${accountBlockFix(account.account)}`)
      else throw explainBucketError(err, bucket, `set the policy of bucket ${bucket}`)
    }
  }
  if (todo.has('encryption')) {
    await call(bucket, `set the default encryption of bucket ${bucket}`, () =>
      s3.send(
        new S3.PutBucketEncryptionCommand({
          Bucket: bucket,
          ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: ENCRYPTION } }] },
        }),
      ),
    )
    done.push('encryption')
  }
  if (todo.has('versioning')) {
    await call(bucket, `turn on versioning of bucket ${bucket}`, () =>
      s3.send(new S3.PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } })),
    )
    done.push('versioning')
  }
  if (todo.has('lifecycle') && desired.backups) {
    const rule = backupLifecycleRule(desired.backups.keepDays)
    await call(bucket, `set the lifecycle rule of bucket ${bucket}`, () =>
      s3.send(new S3.PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [rule] } })),
    )
    done.push('lifecycle')
  }
  for (const item of done) if (item !== 'bucket') log.info(`[bucket] ${item}: ${plan.find((p) => p.item === item)?.action === 'create' ? 'set' : 'updated'}`)
  return done
}

// --- the task ------------------------------------------------------------------------------------

export interface BucketDeps extends Partial<Deps> {
  /** Makes the AWS clients (tests wrap them, e.g. to count calls). */
  clients?: (region: string, env: Env) => BucketClients
  /** Waits before trying the policy again (default POLICY_RETRY_DELAYS_MS). */
  policyRetryDelaysMs?: number[]
}

/** The settings the bucket step reads. */
export const bucketSpec = { ...awsVars, ...bucketVars, ...backupBucketVars }
export type BucketSettings = Pick<CleanEnv<typeof bucketSpec>, 'AWS_REGION' | 'DJANGO_UPLOAD_S3_BUCKET' | 'MYMDB_STAGE' | 'MYMDB_BACKUP_BUCKET' | 'MYMDB_BACKUP_KEEP_DAYS'>

/**
 * The bucket step for checked settings: reads both buckets' current settings (once), shows the
 * plan, and unless a dry run applies exactly that plan. Returns the number of changes made.
 */
export async function bucketStep(v: BucketSettings, clients: BucketClients, log: Log, opts: { dryRun?: boolean; retryDelaysMs?: number[] } = {}): Promise<number> {
  const { AWS_REGION: region, DJANGO_UPLOAD_S3_BUCKET: bucket, MYMDB_STAGE: stage } = v
  const buckets = [desiredBucket(bucket, region, stage), desiredBackupBucket(backupBucketName(v), region, stage, v.MYMDB_BACKUP_KEEP_DAYS)]

  // plan: current state (reads only), then what differs
  const plans: { desired: DesiredBucket; current: BucketState | undefined; plan: PlanItem[] }[] = []
  for (const desired of buckets) {
    const current = await getBucketState(clients.s3, desired.bucket, desired)
    plans.push({ desired, current, plan: planBucket(current, desired) })
  }
  for (const { desired, plan } of plans) {
    log.info(`[bucket] ${desired.bucket} (${desired.backups ? 'backups, private' : 'uploads'}; region ${region}, stage ${stage})${opts.dryRun ? ' - dry run' : ''}`)
    for (const item of plan) log.info(planLine(item))
  }

  // plan: would the account-wide Block Public Access still block the upload bucket's policy?
  const account = await getAccountPublicAccessBlock(clients.sts, clients.s3control)
  if (!account.known) {
    log.info(
      `[bucket] note: could not read the account-level Block Public Access (${account.reason}); ` +
        'if uploads are not publicly readable, check "Block Public Access settings for this account" in the S3 console',
    )
  } else {
    const flagsOn = accountBlockingFlags(account.config)
    if (flagsOn.length > 0)
      log.warn(
        `[bucket] warning: account ${account.account} has Block Public Access ${flagsOn.join(' and ')} on: ` +
          `the bucket policy cannot make ${UPLOAD_PREFIX} public. Fix: ${accountBlockFix(account.account)}`,
      )
  }

  const changes = plans.flatMap((p) => p.plan.filter(mutates))
  if (opts.dryRun) {
    log.info(`[bucket] dry run: ${changes.length} change(s) planned, nothing changed`)
    return 0
  }

  // apply
  let made = 0
  for (const { desired, current, plan } of plans)
    if (plan.some(mutates)) made += (await applyBucketPlan(clients, desired, plan, current, { log, account, retryDelaysMs: opts.retryDelaysMs })).length

  // summary
  const base = region === 'us-east-1' ? `https://${bucket}.s3.amazonaws.com` : `https://${bucket}.s3.${region}.amazonaws.com`
  log.info(
    `[bucket] ${made === 0 ? 'nothing to change' : `${made} change(s) made`}; ` +
      `public uploads at ${base}/${UPLOAD_PREFIX}... (Django: DJANGO_UPLOAD_S3_BUCKET=${bucket} AWS_S3_REGION_NAME=${region}); ` +
      `private backups in s3://${buckets[1]!.bucket}, kept ${v.MYMDB_BACKUP_KEEP_DAYS} day(s)`,
  )
  return made
}

export async function main(argv: string[], env: Env, partial?: BucketDeps): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: settings (before any AWS call)
    const raw = loadEnv(env, deps.envFile)
    const values = checkEnv(bucketSpec, raw, { rules: backupBucketRules })

    // plan + apply
    const clients = (partial?.clients ?? bucketClients)(values.AWS_REGION, raw)
    await bucketStep(values, clients, deps.log, { dryRun: flags['dry-run'] ?? false, retryDelaysMs: partial?.policyRetryDelaysMs })
    return 0
  })
}

runMain(import.meta.url, main)
