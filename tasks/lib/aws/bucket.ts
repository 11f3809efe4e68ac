// S3 buckets: reading what a bucket has (each setting; "not set" is undefined), creating and
// setting it, applying a bucket plan (bucketplan.ts) in order, and emptying and deleting a bucket
// for destroy:aws. AWS errors about the name become a BucketNameError naming the setting to change.
import type { BucketLocationConstraint, LifecycleRule, ObjectIdentifier, PublicAccessBlockConfiguration, S3Client, Tag } from '@aws-sdk/client-s3'
import type { STSClient } from '@aws-sdk/client-sts'
import type { S3ControlClient } from '@aws-sdk/client-s3-control'
import { ConfigError, UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { PROJECT_TAG } from '../names.ts'
import { retryUntil } from '../sh.ts'
import { accountBlockFix, accountBlockingFlags, type AccountBlock } from './accountblock.ts'
import type { PolicyDocument } from './bucketpolicy.ts'
import { mergedTags, mutates, OWNERSHIP, PUBLIC_ACCESS_BLOCK, type BucketState, type DesiredBucket, type PlanItem, type PlanItemName } from './bucketplan.ts'
import { S3, awsErrorCode, explainAwsError, type AwsClients } from './clients.ts'

export interface BucketClients {
  region: string
  s3: S3Client
  sts: STSClient
  s3control: S3ControlClient
}

/** The bucket step's clients from clients made already (the deploy's). */
export function bucketClientsFrom(clients: Pick<AwsClients, 'region' | 's3' | 'sts' | 's3control'>): BucketClients {
  return { region: clients.region, s3: clients.s3, sts: clients.sts, s3control: clients.s3control }
}


/** A bucket name AWS refuses, or one another account holds: exit 2, naming the setting to change. */
export class BucketNameError extends ConfigError {
  constructor(
    readonly bucket: string,
    readonly problem: 'taken' | 'invalid',
    /** The setting that names the bucket (the step that knows says which: forSetting). */
    readonly setting = 'DJANGO_UPLOAD_S3_BUCKET',
  ) {
    super(
      problem === 'taken'
        ? `the bucket name ${bucket} is taken by another AWS account (bucket names are global): choose another ${setting}, e.g. with your name or account id in it`
        : `AWS does not accept the bucket name ${bucket}: choose another ${setting} (InvalidBucketName)`,
    )
  }

  /** The same error, naming the setting that names this bucket. */
  forSetting(setting: string): BucketNameError {
    return new BucketNameError(this.bucket, this.problem, setting)
  }
}

/**
 * AWS errors of the bucket calls as messages: a name taken by another account and an invalid
 * name are BucketNameErrors; the rest as explainAwsError.
 */
export function explainBucketError(err: unknown, bucket: string, doing: string): unknown {
  const code = awsErrorCode(err)
  if (code === 'BucketAlreadyExists') return new BucketNameError(bucket, 'taken')
  if (code === 'InvalidBucketName') return new BucketNameError(bucket, 'invalid')
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
    if (status === 403) throw new BucketNameError(bucket, 'taken')
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
export async function getBucketState(s3: S3Client, bucket: string, desired?: Pick<DesiredBucket, 'policy' | 'encryption'>): Promise<BucketState | undefined> {
  const region = await headBucket(s3, bucket)
  if (region === undefined) return undefined
  const [tags, ownership, publicAccessBlock, policy, encryption, versioning, lifecycle] = await Promise.all([
    getBucketTags(s3, bucket),
    getOwnershipControls(s3, bucket),
    getPublicAccessBlock(s3, bucket),
    desired?.policy ? getBucketPolicy(s3, bucket) : undefined,
    desired?.encryption ? getBucketEncryption(s3, bucket) : undefined,
    getBucketVersioning(s3, bucket),
    getBucketLifecycle(s3, bucket),
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
  if (todo.has('encryption') && desired.encryption) {
    const algorithm = desired.encryption
    await call(bucket, `set the default encryption of bucket ${bucket}`, () =>
      s3.send(
        new S3.PutBucketEncryptionCommand({
          Bucket: bucket,
          ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: algorithm } }] },
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
  if (todo.has('lifecycle')) {
    const rules = desired.lifecycle.rules
    await call(bucket, `set the lifecycle rules of bucket ${bucket}`, () =>
      s3.send(new S3.PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: rules } })),
    )
    done.push('lifecycle')
  }
  for (const item of done) if (item !== 'bucket') log.info(`[bucket] ${item}: ${plan.find((p) => p.item === item)?.action === 'create' ? 'set' : 'updated'}`)
  return done
}

/** The upload bucket, when destroy:aws --delete-bucket named it and it exists. */
export interface BucketInventory {
  name: string
  /** Objects on the first listing page: '0' .. '1000', or '1000+'. */
  objects: string
  /** Whether it is tagged Project=mymdb, Stage=<stage> (deleteBucket refuses it otherwise). */
  ours: boolean
  /** Its tags as text, for the refusal message. */
  tags: string
}

/** The bucket to delete (reads only): null when it does not exist. */
export async function bucketInventory(s3: S3Client, bucket: string, stage: string): Promise<BucketInventory | null> {
  if ((await headBucket(s3, bucket)) === undefined) return null
  const tags = await getBucketTags(s3, bucket)
  const tag = (k: string) => tags.find((t) => t.Key === k)?.Value
  const page = await call(bucket, `list the files of bucket ${bucket}`, () => s3.send(new S3.ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 })))
  const count = page.KeyCount ?? page.Contents?.length ?? 0
  return {
    name: bucket,
    objects: page.IsTruncated ? `${count}+` : String(count),
    ours: tag('Project') === PROJECT_TAG && tag('Stage') === stage,
    tags: tags.map((t) => `${t.Key}=${t.Value}`).join(', ') || 'no tags',
  }
}
