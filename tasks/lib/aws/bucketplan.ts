// What a bucket should be (the upload bucket: public read on uploads/ only; the backup bucket:
// private, encrypted, versioned, expiring) and the plan from what it is now: one line per setting,
// each exists / create / update / unchanged. Pure: the S3 calls are in bucket.ts.
import type { LifecycleRule, PublicAccessBlockConfiguration, Tag } from '@aws-sdk/client-s3'
import { ConfigError } from '../errors.ts'
import { PROJECT_TAG, stageTags } from '../names.ts'
import { bucketPolicy, samePolicy, UPLOAD_PREFIX, type PolicyDocument } from './bucketpolicy.ts'
import { KEPT_PREFIX, LEGACY_PREFIX, ROLLING_PREFIX } from '../backupkeys.ts'

export const OWNERSHIP = 'BucketOwnerEnforced'
/** ACLs stay blocked; bucket policies may be public (for the uploads/ read grant). */
export const PUBLIC_ACCESS_BLOCK: Required<Pick<PublicAccessBlockConfiguration, 'BlockPublicAcls' | 'IgnorePublicAcls' | 'BlockPublicPolicy' | 'RestrictPublicBuckets'>> = {
  BlockPublicAcls: true,
  IgnorePublicAcls: true,
  BlockPublicPolicy: false,
  RestrictPublicBuckets: false,
}

export interface DesiredBucket {
  bucket: string
  /** The setting that names it (for messages). */
  setting: string
  /** What it holds, for the plan's heading. */
  kind: 'uploads' | 'backups, private'
  region: string
  stage: string
  tags: Tag[]
  ownership: typeof OWNERSHIP
  publicAccessBlock: typeof PUBLIC_ACCESS_BLOCK
  /** The upload bucket: its public-read policy. */
  policy?: PolicyDocument
  /** The backup bucket: default encryption (SSE-S3). */
  encryption?: typeof ENCRYPTION
  /** Versioned: an overwrite or a delete keeps the old version (until the lifecycle rules delete it). */
  versioned: true
  /** The lifecycle rules, and what they do in words (the plan line). */
  lifecycle: { rules: LifecycleRule[]; text: string }
}

/** The id of the upload bucket's lifecycle rule. */
export const UPLOAD_LIFECYCLE_RULE_ID = 'mymdb-expire-replaced-uploads'

/** The upload bucket's lifecycle: old versions (replaced or deleted uploads) go after `keepDays`; current ones never. */
export function uploadLifecycleRules(keepDays: number): LifecycleRule[] {
  return [
    {
      ID: UPLOAD_LIFECYCLE_RULE_ID,
      Status: 'Enabled',
      Filter: { Prefix: '' },
      NoncurrentVersionExpiration: { NoncurrentDays: keepDays },
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
    },
  ]
}

/**
 * The stage's upload bucket: public read on uploads/ only (its policy), versioned, and a
 * lifecycle rule that deletes old versions after `keepDays` (a poster in use is never deleted).
 */
export function desiredBucket(bucket: string, region: string, stage: string, keepDays: number): DesiredBucket {
  return {
    bucket,
    setting: 'DJANGO_UPLOAD_S3_BUCKET',
    kind: 'uploads',
    region,
    stage,
    tags: stageTags(stage),
    ownership: OWNERSHIP,
    publicAccessBlock: { ...PUBLIC_ACCESS_BLOCK },
    policy: bucketPolicy(bucket),
    versioned: true,
    lifecycle: { rules: uploadLifecycleRules(keepDays), text: `replaced or deleted uploads kept ${keepDays} day(s) as old versions, then deleted` },
  }
}

/** Every public access blocked: nothing of the backup bucket can ever be made public. */
export const PRIVATE_ACCESS_BLOCK: typeof PUBLIC_ACCESS_BLOCK = { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true }
/** The ids of the backup bucket's lifecycle rules (the legacy one kept its id from before). */
export const LIFECYCLE_RULE_IDS = { rolling: 'mymdb-keep-newest-backups', kept: 'mymdb-keep-final-backups', legacy: 'mymdb-expire-backups' } as const
export const ENCRYPTION = 'AES256'

/** How long the backup bucket keeps scheduled, manual and safety backups. */
export interface BackupRetention {
  /** Every backup younger than this many days stays. */
  days: number
  /** The newest this many of each kind stay, however old. */
  newest: number
}

/**
 * The stage's backup bucket: private (all four Block Public Access flags, no policy), encrypted at
 * rest (SSE-S3 by default), versioned (an overwrite or delete keeps the old version), and the
 * lifecycle rules of backupLifecycleRules.
 */
export function desiredBackupBucket(bucket: string, region: string, stage: string, keep: BackupRetention): DesiredBucket {
  return {
    bucket,
    setting: 'MYMDB_BACKUP_BUCKET',
    kind: 'backups, private',
    region,
    stage,
    tags: stageTags(stage),
    ownership: OWNERSHIP,
    publicAccessBlock: { ...PRIVATE_ACCESS_BLOCK },
    encryption: ENCRYPTION,
    versioned: true,
    lifecycle: {
      rules: backupLifecycleRules(keep),
      text:
        `scheduled, manual and safety backups: the newest ${keep.newest} of each kind and all from the last ${keep.days} day(s) kept; ` +
        `final and pre-migrate backups kept until deleted (then ${keep.days} day(s) as old versions)`,
    },
  }
}

/**
 * The backup bucket's lifecycle rules (pure). Nothing expires by age alone:
 * - `rolling/<kind>.tar` holds each scheduled, manual or safety backup as a new version of one key
 *   per kind. The newest is the current version and never expires; an older one is deleted only
 *   when it has been replaced for `days` days AND `newest - 1` newer old versions exist
 *   (NewerNoncurrentVersions), so the newest `newest` of each kind stay however long the host is off.
 * - `kept/<kind>/<name>`: final and pre-migrate backups, one key each, never expire; one deleted on
 *   purpose stays as an old version for `days` days, then goes (with its delete marker).
 * - `mymdb-*.tar` at the top: backups from before this layout, deleted `days` days after they were
 *   made, as they always were.
 */
export function backupLifecycleRules(keep: BackupRetention): LifecycleRule[] {
  const abort = { AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }
  return [
    {
      ID: LIFECYCLE_RULE_IDS.rolling,
      Status: 'Enabled',
      Filter: { Prefix: ROLLING_PREFIX },
      NoncurrentVersionExpiration: { NoncurrentDays: keep.days, ...(keep.newest > 1 ? { NewerNoncurrentVersions: keep.newest - 1 } : {}) },
      ...abort,
    },
    {
      ID: LIFECYCLE_RULE_IDS.kept,
      Status: 'Enabled',
      Filter: { Prefix: KEPT_PREFIX },
      Expiration: { ExpiredObjectDeleteMarker: true },
      NoncurrentVersionExpiration: { NoncurrentDays: keep.days },
      ...abort,
    },
    {
      ID: LIFECYCLE_RULE_IDS.legacy,
      Status: 'Enabled',
      Filter: { Prefix: LEGACY_PREFIX },
      Expiration: { Days: keep.days },
      NoncurrentVersionExpiration: { NoncurrentDays: keep.days },
      ...abort,
    },
  ]
}

/** What of a lifecycle rule counts, as S3 returns it or as we write it (pure). */
function ruleKey(r: LifecycleRule): string {
  return JSON.stringify([
    r.ID,
    r.Status,
    r.Filter?.Prefix ?? r.Prefix ?? '',
    Boolean(r.Filter?.Tag || r.Filter?.And || r.Filter?.ObjectSizeGreaterThan || r.Filter?.ObjectSizeLessThan),
    r.Expiration?.Days ?? null,
    r.Expiration?.ExpiredObjectDeleteMarker ?? null,
    r.NoncurrentVersionExpiration?.NoncurrentDays ?? null,
    r.NoncurrentVersionExpiration?.NewerNoncurrentVersions ?? null,
    r.AbortIncompleteMultipartUpload?.DaysAfterInitiation ?? null,
  ])
}

/** Whether the bucket's lifecycle rules are exactly `wanted`, in any order (pure). */
export function sameLifecycle(rules: LifecycleRule[] | undefined, wanted: LifecycleRule[]): boolean {
  if (!rules || rules.length !== wanted.length) return false
  const have = rules.map(ruleKey).sort()
  return wanted.map(ruleKey).sort().every((k, i) => k === have[i])
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
  const lifecycleText = desired.lifecycle.text
  const wantedRules = desired.lifecycle.rules
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
    ...(desired.encryption
      ? [
          {
            item: 'encryption' as const,
            action: state(c?.encryption, c?.encryption === desired.encryption),
            detail: c?.encryption && c.encryption !== desired.encryption ? `${c.encryption} -> SSE-S3 (${desired.encryption})` : `SSE-S3 (${desired.encryption}) by default`,
          },
        ]
      : []),
    { item: 'versioning' as const, action: state(c?.versioning, c?.versioning === 'Enabled'), detail: 'Enabled' },
    {
      item: 'lifecycle' as const,
      action: state(c?.lifecycle, sameLifecycle(c?.lifecycle, wantedRules)),
      detail: c?.lifecycle && !sameLifecycle(c.lifecycle, wantedRules) ? `${lifecycleText} (replaces the current rules)` : lifecycleText,
    },
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
