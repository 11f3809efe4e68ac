import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import type { LifecycleRule, S3Client } from '@aws-sdk/client-s3'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'
import type { S3ControlClient } from '@aws-sdk/client-s3-control'
import type { STSClient } from '@aws-sdk/client-sts'
import { ConfigError, UserError } from '../../tasks/lib/errors.ts'
import { main } from '../../tasks/bucket.ts'
import { backupLifecycleRules, desiredBackupBucket, desiredBucket, mergedTags, planBucket, planLine, uploadLifecycleRules, type BucketState } from '../../tasks/lib/aws/bucketplan.ts'
import { accountBlockingFlags } from '../../tasks/lib/aws/accountblock.ts'
import { bucketPolicy, POLICY_TEMPLATE_FILE, samePolicy } from '../../tasks/lib/aws/bucketpolicy.ts'
import { createBucket, deleteBucket, explainBucketError, type BucketClients } from '../../tasks/lib/aws/bucket.ts'
import { fakeLockTable, noDocker, testDeps } from './fakes.ts'

// --- a fake AWS: answers by command name, records every call -----------------------------------

type Answer = Record<string, unknown> | Error | undefined
type Responder = (name: string, input: Record<string, any>) => Answer

interface FakeClient {
  calls: { name: string; input: Record<string, any> }[]
  send(cmd: { input: Record<string, any> }): Promise<unknown>
  config: Record<string, unknown>
}

function fakeClient(respond: Responder): FakeClient {
  const calls: FakeClient['calls'] = []
  return {
    calls,
    config: {},
    async send(cmd) {
      const name = cmd.constructor.name.replace(/Command$/, '')
      calls.push({ name, input: cmd.input })
      const a = respond(name, cmd.input)
      if (a instanceof Error) throw a
      return { $metadata: {}, ...(a ?? {}) }
    },
  }
}

function awsError(code: string, status = 400, message = code): Error {
  return Object.assign(new Error(message), { name: code, $metadata: { httpStatusCode: status } })
}

const BUCKET = 'mymdb-uploads-unit'
const BACKUP_BUCKET = `${BUCKET}-backups`
const MUTATING = /^(Create|Put|Delete)/

/** A bucket that is exactly as the step wants it (tags, PAB, ownership, policy). */
function goodState(extra: Partial<BucketState> = {}): BucketState {
  return {
    region: 'us-west-2',
    tags: [
      { Key: 'Project', Value: 'mymdb' },
      { Key: 'Stage', Value: 'test' },
    ],
    ownership: 'BucketOwnerEnforced',
    publicAccessBlock: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: false, RestrictPublicBuckets: false },
    policy: JSON.stringify(bucketPolicy(BUCKET)),
    versioning: 'Enabled',
    lifecycle: uploadLifecycleRules(30),
    ...extra,
  }
}

/** The backup bucket exactly as the step wants it (private, encrypted, versioned, expiring). */
function goodBackupState(extra: Partial<BucketState> = {}): BucketState {
  return {
    ...goodState({ policy: undefined }),
    publicAccessBlock: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true },
    encryption: 'AES256',
    versioning: 'Enabled',
    lifecycle: backupLifecycleRules({ days: 14, newest: 7 }),
    ...extra,
  }
}

/**
 * S3 answering reads from `initial` for the upload bucket and `backups` for the backup bucket
 * (undefined / null: no bucket; CreateBucket makes an empty one); writes succeed unless `writes` answers.
 */
function fakeS3(initial: BucketState | undefined, writes: Responder = () => undefined, backups: BucketState | null = goodBackupState()): FakeClient {
  const states = new Map<string, BucketState | undefined>([[BUCKET, initial], [BACKUP_BUCKET, backups ?? undefined]])
  return fakeClient((name, input) => {
    const state = states.get(input.Bucket) ?? (input.Bucket === BUCKET || input.Bucket === BACKUP_BUCKET ? undefined : initial)
    if (name === 'CreateBucket') {
      const answer = writes(name, input)
      if (!answer) states.set(input.Bucket, { region: input.CreateBucketConfiguration?.LocationConstraint ?? 'us-east-1', tags: [] })
      return answer
    }
    if (name === 'HeadBucket') return state ? { BucketRegion: state.region } : awsError('NotFound', 404)
    if (name === 'GetBucketTagging') return state?.tags.length ? { TagSet: state.tags } : awsError('NoSuchTagSet', 404)
    if (name === 'GetBucketOwnershipControls')
      return state?.ownership ? { OwnershipControls: { Rules: [{ ObjectOwnership: state.ownership }] } } : awsError('OwnershipControlsNotFoundError', 404)
    if (name === 'GetPublicAccessBlock')
      return state?.publicAccessBlock ? { PublicAccessBlockConfiguration: state.publicAccessBlock } : awsError('NoSuchPublicAccessBlockConfiguration', 404)
    if (name === 'GetBucketPolicy') return state?.policy ? { Policy: state.policy } : awsError('NoSuchBucketPolicy', 404)
    if (name === 'GetBucketEncryption')
      return state?.encryption
        ? { ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: state.encryption } }] } }
        : awsError('ServerSideEncryptionConfigurationNotFoundError', 404)
    if (name === 'GetBucketVersioning') return state?.versioning ? { Status: state.versioning } : {}
    if (name === 'GetBucketLifecycleConfiguration') return state?.lifecycle ? { Rules: state.lifecycle } : awsError('NoSuchLifecycleConfiguration', 404)
    return writes(name, input)
  })
}

function fakeClients(s3: FakeClient, s3control: Responder = () => awsError('NoSuchPublicAccessBlockConfiguration', 404)) {
  const sts = fakeClient(() => ({ Account: '123456789012' }))
  const control = fakeClient(s3control)
  // the lock of `npm run bucket` (lock.ts; its behaviour is tested on the emulator)
  const clients: BucketClients & { dynamodb: unknown } = {
    region: 'us-west-2',
    s3: s3 as unknown as S3Client,
    sts: sts as unknown as STSClient,
    s3control: control as unknown as S3ControlClient,
    dynamodb: fakeLockTable(),
  }
  return { clients, s3, sts, control }
}

const ENV = { AWS_REGION: 'us-west-2', DJANGO_UPLOAD_S3_BUCKET: BUCKET, MYMDB_STAGE: 'test' }

// --- the policy --------------------------------------------------------------------------------------

describe('bucketPolicy (AWS/mymdb-bucket-policy.json)', () => {
  it('grants public s3:GetObject on <bucket>/uploads/* and nothing else', () => {
    const policy = bucketPolicy('my-bucket')
    assert.equal(policy.Version, '2012-10-17')
    assert.equal(policy.Statement.length, 1)
    const [st] = policy.Statement
    assert.equal(st!.Effect, 'Allow')
    assert.equal(st!.Principal, '*')
    assert.deepEqual([st!.Action].flat(), ['s3:GetObject'])
    assert.deepEqual([st!.Resource].flat(), ['arn:aws:s3:::my-bucket/uploads/*'])
    assert.equal(st!.NotResource, undefined)
    assert.equal(st!.NotAction, undefined)
    // no statement covers the whole bucket or anything outside uploads/
    const text = JSON.stringify(policy)
    assert.doesNotMatch(text, /arn:aws:s3:::my-bucket\/\*"/)
    assert.doesNotMatch(text, /arn:aws:s3:::my-bucket"/)
    assert.doesNotMatch(text, /s3:\*|s3:Put|s3:Delete|s3:List/)
  })
  it('round-trips through JSON (what PutBucketPolicy gets is valid JSON)', () => {
    const policy = bucketPolicy('my-bucket')
    assert.deepEqual(JSON.parse(JSON.stringify(policy)), policy)
  })
  it('the template file is valid JSON with the ${BUCKET} and ${PREFIX} placeholders', () => {
    const text = readFileSync(POLICY_TEMPLATE_FILE, 'utf8')
    assert.doesNotThrow(() => JSON.parse(text))
    assert.match(text, /\$\{BUCKET\}/)
    assert.match(text, /\$\{PREFIX\}/)
  })
  it('another prefix', () => {
    assert.deepEqual([bucketPolicy('b-1', 'media/posters/').Statement[0]!.Resource].flat(), ['arn:aws:s3:::b-1/media/posters/*'])
  })
  it('refuses a prefix that would widen the grant and a bad bucket name', () => {
    for (const prefix of ['', '/', '*', 'uploads', 'uploads/*', 'up*/', '../x/']) assert.throws(() => bucketPolicy('b-1', prefix), /prefix/, prefix)
    for (const bucket of ['My_Bucket', 'a', 'b"1', 'x/y']) assert.throws(() => bucketPolicy(bucket), /bucket name/, bucket)
  })
  it('substitutes inside parsed strings only; an unknown placeholder is an error', () => {
    const template = JSON.stringify({ Version: '2012-10-17', Statement: [{ Resource: 'arn:aws:s3:::${BUCKET}/${PREFIX}*', Sid: '${OTHER}' }] })
    assert.throws(() => bucketPolicy('b-1', 'uploads/', template), /unknown placeholder \$\{OTHER\}/)
    assert.throws(() => bucketPolicy('b-1', 'uploads/', '{"Statement": []}'), /Version 2012-10-17/)
  })
  it('samePolicy sees AWS-normalized forms as equal, another resource as different', () => {
    const ours = bucketPolicy('b-1')
    const awsForm = { Version: '2012-10-17', Statement: [{ Sid: 'PublicReadUploads', Effect: 'Allow', Principal: { AWS: '*' }, Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::b-1/uploads/*'] }] }
    assert.ok(samePolicy(JSON.stringify(awsForm), ours))
    assert.ok(samePolicy(JSON.stringify(ours), ours))
    assert.ok(!samePolicy(JSON.stringify(bucketPolicy('b-1', 'other/')), ours))
    assert.ok(!samePolicy('{not json', ours))
  })
})

// --- the plan (pure) ----------------------------------------------------------------------------------

describe('planBucket', () => {
  const desired = desiredBucket(BUCKET, 'us-west-2', 'test', 30)
  const actions = (plan: ReturnType<typeof planBucket>) => Object.fromEntries(plan.map((p) => [p.item, p.action]))

  it('no bucket: create everything, bucket first, policy after the public access block', () => {
    const plan = planBucket(undefined, desired)
    assert.deepEqual(plan.map((p) => p.item), ['bucket', 'ownership', 'public-access-block', 'tags', 'policy', 'versioning', 'lifecycle'])
    assert.ok(plan.every((p) => p.action === 'create'))
    assert.equal(planLine(plan[6]!), '[bucket] lifecycle: create (replaced or deleted uploads kept 30 day(s) as old versions, then deleted)')
    assert.equal(planLine(plan[0]!), `[bucket] bucket: create (${BUCKET} in us-west-2)`)
  })
  it('a bucket as wanted: exists, everything unchanged', () => {
    assert.deepEqual(actions(planBucket(goodState(), desired)), {
      bucket: 'exists',
      ownership: 'unchanged',
      'public-access-block': 'unchanged',
      tags: 'unchanged',
      policy: 'unchanged',
      versioning: 'unchanged',
      lifecycle: 'unchanged',
    })
  })
  it('a fresh AWS bucket (all public access blocked, no tags, no policy): update/create just those', () => {
    const fresh = goodState({
      tags: [],
      policy: undefined,
      publicAccessBlock: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true },
      versioning: undefined,
      lifecycle: undefined,
    })
    const plan = planBucket(fresh, desired)
    assert.deepEqual(actions(plan), { bucket: 'exists', ownership: 'unchanged', 'public-access-block': 'update', tags: 'create', policy: 'create', versioning: 'create', lifecycle: 'create' })
    assert.match(planLine(plan[2]!), /BlockPublicPolicy=on .*-> .*BlockPublicPolicy=off/)
  })
  it('ownership ObjectWriter, another policy, a missing stage tag: update', () => {
    const plan = planBucket(
      goodState({ ownership: 'ObjectWriter', policy: JSON.stringify(bucketPolicy(BUCKET, 'media/')), tags: [{ Key: 'Project', Value: 'mymdb' }] }),
      desired,
    )
    assert.deepEqual(actions(plan), { bucket: 'exists', ownership: 'update', 'public-access-block': 'unchanged', tags: 'update', policy: 'update', versioning: 'unchanged', lifecycle: 'unchanged' })
    assert.match(planLine(plan[4]!), /replaces the current policy/)
  })
  it('other tags of the bucket do not matter and are kept', () => {
    const tags = [{ Key: 'CostCenter', Value: '42' }, ...goodState().tags]
    assert.equal(actions(planBucket(goodState({ tags }), desired)).tags, 'unchanged')
    assert.deepEqual(mergedTags([{ Key: 'CostCenter', Value: '42' }, { Key: 'Stage', Value: 'old' }], desired.tags), [
      { Key: 'CostCenter', Value: '42' },
      { Key: 'Project', Value: 'mymdb' },
      { Key: 'Stage', Value: 'test' },
    ])
  })
  it('a bucket in another region: ConfigError naming AWS_REGION and DJANGO_UPLOAD_S3_BUCKET', () => {
    assert.throws(
      () => planBucket(goodState({ region: 'eu-west-1' }), desired),
      (e: unknown) => e instanceof ConfigError && /exists in eu-west-1.*AWS_REGION=eu-west-1.*DJANGO_UPLOAD_S3_BUCKET/.test(e.message),
    )
  })
  it("another stage's bucket: ConfigError", () => {
    const tags = [
      { Key: 'Project', Value: 'mymdb' },
      { Key: 'Stage', Value: 'production' },
    ]
    assert.throws(() => planBucket(goodState({ tags }), desired), (e: unknown) => e instanceof ConfigError && /stage production/.test(e.message))
  })
})

// --- error mapping --------------------------------------------------------------------------------

describe('explainBucketError', () => {
  it('BucketAlreadyExists (another account owns the name): exit 2, choose another DJANGO_UPLOAD_S3_BUCKET', () => {
    const e = explainBucketError(awsError('BucketAlreadyExists', 409), 'taken-name', 'create bucket')
    assert.ok(e instanceof ConfigError)
    assert.equal(e.exitCode, 2)
    assert.match(e.message, /taken-name is taken by another AWS account/)
    assert.match(e.message, /choose another DJANGO_UPLOAD_S3_BUCKET/)
  })
  it('InvalidBucketName names the variable', () => {
    const e = explainBucketError(awsError('InvalidBucketName'), 'x', 'create bucket')
    assert.ok(e instanceof ConfigError && /DJANGO_UPLOAD_S3_BUCKET/.test(e.message))
  })
  it('credentials and access problems become one-line UserErrors; others pass through', () => {
    const e = explainBucketError(awsError('CredentialsProviderError'), 'b', 'look up bucket b')
    assert.ok(e instanceof UserError && /^could not look up bucket b: no AWS credentials/.test(e.message))
    const other = awsError('InternalError', 500)
    assert.equal(explainBucketError(other, 'b', 'x'), other)
  })
})

describe('createBucket', () => {
  it('LocationConstraint outside us-east-1, none in us-east-1', async () => {
    const s3 = fakeS3(undefined)
    assert.equal(await createBucket(s3 as unknown as S3Client, 'b-1', 'eu-central-1'), 'created')
    assert.deepEqual(s3.calls[0], { name: 'CreateBucket', input: { Bucket: 'b-1', CreateBucketConfiguration: { LocationConstraint: 'eu-central-1' } } })
    assert.equal(s3.calls[1]?.name, 'HeadBucket') // waits until it exists
    const east = fakeS3(undefined)
    await createBucket(east as unknown as S3Client, 'b-1', 'us-east-1')
    assert.deepEqual(east.calls[0], { name: 'CreateBucket', input: { Bucket: 'b-1' } })
  })
  it('BucketAlreadyOwnedByYou: exists (re-runnable)', async () => {
    const s3 = fakeClient(() => awsError('BucketAlreadyOwnedByYou', 409))
    assert.equal(await createBucket(s3 as unknown as S3Client, 'b-1', 'us-west-2'), 'exists')
  })
  it('BucketAlreadyExists: ConfigError', async () => {
    const s3 = fakeClient(() => awsError('BucketAlreadyExists', 409))
    await assert.rejects(createBucket(s3 as unknown as S3Client, 'b-1', 'us-west-2'), (e: unknown) => e instanceof ConfigError && /DJANGO_UPLOAD_S3_BUCKET/.test(e.message))
  })
})

describe('accountBlockingFlags', () => {
  it('only BlockPublicPolicy and RestrictPublicBuckets block a public policy', () => {
    assert.deepEqual(accountBlockingFlags(undefined), [])
    assert.deepEqual(accountBlockingFlags({ BlockPublicAcls: true, IgnorePublicAcls: true }), [])
    assert.deepEqual(accountBlockingFlags({ BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true }), [
      'BlockPublicPolicy',
      'RestrictPublicBuckets',
    ])
  })
})

// --- deleteBucket ----------------------------------------------------------------------------------

describe('deleteBucket', () => {
  const tagged = { TagSet: [{ Key: 'Project', Value: 'mymdb' }, { Key: 'Stage', Value: 'test' }] }
  it('deletes every version and delete marker, page by page, then the bucket', async () => {
    const s3 = fakeClient((name, input) => {
      if (name === 'HeadBucket') return { BucketRegion: 'us-west-2' }
      if (name === 'GetBucketTagging') return tagged
      if (name === 'ListObjectVersions')
        return input.KeyMarker === undefined
          ? { IsTruncated: true, NextKeyMarker: 'b', NextVersionIdMarker: 'v2', Versions: [{ Key: 'a', VersionId: 'v1' }, { Key: 'b', VersionId: 'v2' }] }
          : { IsTruncated: false, Versions: [{ Key: 'c', VersionId: 'null' }], DeleteMarkers: [{ Key: 'b', VersionId: 'v3' }] }
      return undefined
    })
    const result = await deleteBucket(s3 as unknown as S3Client, 'b-1', { stage: 'test' })
    assert.deepEqual(result, { deleted: true, objects: 4 })
    const deletes = s3.calls.filter((c) => c.name === 'DeleteObjects').map((c) => c.input.Delete.Objects)
    assert.deepEqual(deletes, [
      [{ Key: 'a', VersionId: 'v1' }, { Key: 'b', VersionId: 'v2' }],
      [{ Key: 'c', VersionId: 'null' }, { Key: 'b', VersionId: 'v3' }],
    ])
    assert.equal(s3.calls.at(-1)?.name, 'DeleteBucket')
    assert.deepEqual(s3.calls.find((c) => c.name === 'ListObjectVersions' && c.input.KeyMarker)?.input, { Bucket: 'b-1', KeyMarker: 'b', VersionIdMarker: 'v2' })
  })
  it('no such bucket: nothing to do', async () => {
    const s3 = fakeClient((name) => (name === 'HeadBucket' ? awsError('NotFound', 404) : undefined))
    assert.deepEqual(await deleteBucket(s3 as unknown as S3Client, 'b-1'), { deleted: false, objects: 0 })
    assert.deepEqual(s3.calls.map((c) => c.name), ['HeadBucket'])
  })
  it("refuses a bucket that is not this stage's", async () => {
    const s3 = fakeClient((name) => (name === 'HeadBucket' ? {} : name === 'GetBucketLocation' ? {} : name === 'GetBucketTagging' ? awsError('NoSuchTagSet', 404) : undefined))
    await assert.rejects(deleteBucket(s3 as unknown as S3Client, 'b-1', { stage: 'test' }), /refusing to delete bucket b-1: .*no tags/)
    assert.ok(!s3.calls.some((c) => MUTATING.test(c.name)))
  })
  it('an object that cannot be deleted stops it before DeleteBucket', async () => {
    const s3 = fakeClient((name) => {
      if (name === 'HeadBucket') return { BucketRegion: 'us-west-2' }
      if (name === 'ListObjectVersions') return { IsTruncated: false, Versions: [{ Key: 'a', VersionId: 'v1' }] }
      if (name === 'DeleteObjects') return { Errors: [{ Key: 'a', Code: 'AccessDenied', Message: 'Access Denied' }] }
      return undefined
    })
    await assert.rejects(deleteBucket(s3 as unknown as S3Client, 'b-1'), /could not delete 1 object\(s\) of bucket b-1, e\.g\. a: AccessDenied/)
    assert.ok(!s3.calls.some((c) => c.name === 'DeleteBucket'))
  })
})

// --- main ------------------------------------------------------------------------------------------

describe('bucket main()', () => {
  const noAws = () => {
    throw new Error('no AWS call expected')
  }
  it('--help calls no AWS', async () => {
    const deps = { ...testDeps(noDocker()), awsClients: noAws }
    assert.equal(await main(['--help'], {}, deps), 0)
    assert.match(deps.log.text(), /Usage: npm run bucket/)
    assert.match(deps.log.text(), /--dry-run/)
  })
  it('an unknown option: exit 2', async () => {
    const deps = { ...testDeps(noDocker()), awsClients: noAws }
    assert.equal(await main(['--force'], ENV, deps), 2)
    assert.match(deps.log.err.join(''), /--force/)
  })
  it('invalid bucket name and region: exit 2 with the grouped message, before any AWS call', async () => {
    const deps = { ...testDeps(noDocker()), awsClients: noAws }
    assert.equal(await main([], { ...ENV, DJANGO_UPLOAD_S3_BUCKET: 'My_Bucket', AWS_REGION: 'mars' }, deps), 2)
    const err = deps.log.err.join('')
    assert.match(err, /^2 environment variables to fix:/)
    assert.match(err, /DJANGO_UPLOAD_S3_BUCKET="My_Bucket" - not a valid S3 bucket name/)
    assert.match(err, /AWS_REGION="mars"/)
  })
  it('missing DJANGO_UPLOAD_S3_BUCKET and AWS_REGION: exit 2', async () => {
    const deps = { ...testDeps(noDocker()), awsClients: noAws }
    assert.equal(await main([], {}, deps), 2)
    assert.match(deps.log.err.join(''), /Missing:[\s\S]*AWS_REGION[\s\S]*DJANGO_UPLOAD_S3_BUCKET/)
  })
  it('no bucket: plans and applies everything, in order', async () => {
    const s3b = fakeS3(undefined)
    const f = fakeClients(s3b)
    const deps = { ...testDeps(noDocker()), awsClients: () => f.clients as unknown as AwsClients }
    assert.equal(await main([], ENV, deps), 0)
    const writes = s3b.calls.filter((c) => MUTATING.test(c.name)).map((c) => c.name)
    assert.deepEqual(writes, ['CreateBucket', 'PutBucketOwnershipControls', 'PutPublicAccessBlock', 'PutBucketTagging', 'PutBucketPolicy', 'PutBucketVersioning', 'PutBucketLifecycleConfiguration'])
    const policy = s3b.calls.find((c) => c.name === 'PutBucketPolicy')!.input.Policy
    assert.deepEqual(JSON.parse(policy), bucketPolicy(BUCKET))
    assert.match(deps.log.text(), /\[bucket\] bucket: create/)
    assert.match(deps.log.text(), /7 change\(s\) made/)
  })
  it('a bucket name another account holds names the setting of that bucket: the upload or the backup bucket', async () => {
    for (const [taken, setting] of [
      [BUCKET, 'DJANGO_UPLOAD_S3_BUCKET'],
      [BACKUP_BUCKET, 'MYMDB_BACKUP_BUCKET'],
    ] as const) {
      const s3b = fakeS3(undefined, (name, input) => (name === 'CreateBucket' && input.Bucket === taken ? awsError('BucketAlreadyExists', 409) : undefined), null)
      const deps = { ...testDeps(noDocker()), awsClients: () => fakeClients(s3b).clients as unknown as AwsClients }
      assert.equal(await main([], ENV, deps), 2, deps.log.text())
      const err = deps.log.err.join('')
      assert.match(err, new RegExp(`${taken} is taken by another AWS account`))
      assert.match(err, new RegExp(`choose another ${setting},`))
    }
  })
  it('no backup bucket: made private (all public access blocked, no policy), encrypted, versioned, with rules that keep the newest MYMDB_BACKUP_KEEP and final backups', async () => {
    const s3b = fakeS3(goodState(), undefined, null)
    const f = fakeClients(s3b)
    const deps = { ...testDeps(noDocker()), awsClients: () => f.clients as unknown as AwsClients }
    assert.equal(await main([], { ...ENV, MYMDB_BACKUP_KEEP_DAYS: '30', MYMDB_BACKUP_KEEP: '5' }, deps), 0, deps.log.text())
    const writes = s3b.calls.filter((c) => MUTATING.test(c.name))
    assert.ok(writes.every((c) => c.input.Bucket === BACKUP_BUCKET), 'the upload bucket is as wanted')
    assert.deepEqual(writes.map((c) => c.name), [
      'CreateBucket',
      'PutBucketOwnershipControls',
      'PutPublicAccessBlock',
      'PutBucketTagging',
      'PutBucketEncryption',
      'PutBucketVersioning',
      'PutBucketLifecycleConfiguration',
    ])
    const input = (name: string) => writes.find((c) => c.name === name)!.input
    assert.deepEqual(input('PutPublicAccessBlock').PublicAccessBlockConfiguration, { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true })
    assert.equal(input('PutBucketEncryption').ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm, 'AES256')
    assert.equal(input('PutBucketVersioning').VersioningConfiguration.Status, 'Enabled')
    const rules = input('PutBucketLifecycleConfiguration').LifecycleConfiguration.Rules as LifecycleRule[]
    const show = (r: LifecycleRule) => [r.Filter?.Prefix, r.Status, r.Expiration ?? null, r.NoncurrentVersionExpiration ?? null]
    assert.deepEqual(rules.map(show), [
      // scheduled, manual, safety: one key per kind; only an old version both 30 days old and beyond the newest 5 goes
      ['rolling/', 'Enabled', null, { NoncurrentDays: 30, NewerNoncurrentVersions: 4 }],
      // final, pre-migrate: never expire; one deleted on purpose goes 30 days later
      ['kept/', 'Enabled', { ExpiredObjectDeleteMarker: true }, { NoncurrentDays: 30 }],
      // the flat names of before: as they were
      ['mymdb-', 'Enabled', { Days: 30 }, { NoncurrentDays: 30 }],
    ])
    assert.match(deps.log.text(), /private backups in s3:\/\/mymdb-uploads-unit-backups, the newest 5 of each kind and all from the last 30 day\(s\) kept, final and pre-migrate ones until deleted/)
  })
  it('a backup bucket that keeps backups 14 days while 7 are wanted, the newest 3 while 7 are, or lost its encryption: updated', () => {
    const desired = desiredBackupBucket(BACKUP_BUCKET, 'us-west-2', 'test', { days: 7, newest: 7 })
    const plan = planBucket(goodBackupState({ encryption: 'aws:kms' }), desired)
    assert.deepEqual(
      plan.filter((p) => p.action !== 'unchanged').map((p) => `${p.item}: ${p.action}`),
      ['bucket: exists', 'encryption: update', 'lifecycle: update'],
    )
    assert.ok(!plan.some((p) => p.item === 'policy'), 'the backup bucket has no policy at all')
    assert.throws(() => planBucket(goodBackupState({ region: 'eu-west-1' }), desired), /choose another MYMDB_BACKUP_BUCKET/)
    const fewer = planBucket(goodBackupState({ lifecycle: backupLifecycleRules({ days: 7, newest: 3 }) }), desired)
    assert.deepEqual(fewer.filter((p) => p.action === 'update').map((p) => p.item), ['lifecycle'])
    assert.deepEqual(planBucket(goodBackupState({ lifecycle: backupLifecycleRules({ days: 7, newest: 7 }) }), desired).filter((p) => p.action === 'update'), [])
  })
  it('MYMDB_BACKUP_KEEP 1 keeps the newest alone: no NewerNoncurrentVersions (S3 takes 1 to 100)', () => {
    assert.deepEqual(backupLifecycleRules({ days: 3, newest: 1 })[0]?.NoncurrentVersionExpiration, { NoncurrentDays: 3 })
    assert.deepEqual(backupLifecycleRules({ days: 3, newest: 101 })[0]?.NoncurrentVersionExpiration, { NoncurrentDays: 3, NewerNoncurrentVersions: 100 })
  })
  it('MYMDB_BACKUP_BUCKET: not the upload bucket; a derived name must fit 63 characters', async () => {
    const deps = { ...testDeps(noDocker()), awsClients: noAws }
    assert.equal(await main([], { ...ENV, MYMDB_BACKUP_BUCKET: BUCKET }, deps), 2)
    assert.match(deps.log.err.join(''), /MYMDB_BACKUP_BUCKET.*must not be the upload bucket/)
    assert.equal(await main([], { ...ENV, DJANGO_UPLOAD_S3_BUCKET: 'b'.repeat(60) }, deps), 2)
    assert.match(deps.log.err.join(''), /too long to name the backup bucket after it.*set MYMDB_BACKUP_BUCKET/)
  })
  it('--dry-run: the plan, no mutating call', async () => {
    const f = fakeClients(fakeS3(goodState({ tags: [] })))
    const deps = { ...testDeps(noDocker()), awsClients: () => f.clients as unknown as AwsClients }
    assert.equal(await main(['--dry-run'], ENV, deps), 0)
    assert.ok(!f.s3.calls.some((c) => MUTATING.test(c.name)), f.s3.calls.map((c) => c.name).join())
    assert.match(deps.log.text(), /tags: create/)
    assert.match(deps.log.text(), /policy: unchanged/)
    assert.match(deps.log.text(), /dry run: 1 change\(s\) planned, nothing changed/)
  })
  it('a bucket as wanted: unchanged, no mutating call', async () => {
    const f = fakeClients(fakeS3(goodState()))
    const deps = { ...testDeps(noDocker()), awsClients: () => f.clients as unknown as AwsClients }
    assert.equal(await main([], ENV, deps), 0)
    assert.ok(!f.s3.calls.some((c) => MUTATING.test(c.name)))
    // 6 of the upload bucket, 6 of the backup bucket
    assert.equal((deps.log.text().match(/: unchanged \(/g) ?? []).length, 12)
    assert.match(deps.log.text(), /nothing to change/)
  })
  it('account-level Block Public Access on: a warning with the fix; a refused policy is a warning too', async () => {
    const s3 = fakeS3(goodState({ policy: undefined }), (name) => (name === 'PutBucketPolicy' ? awsError('AccessDenied', 403) : undefined))
    const f = fakeClients(s3, () => ({ PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true } }))
    const deps = { ...testDeps(noDocker()), awsClients: () => f.clients as unknown as AwsClients }
    assert.equal(await main([], ENV, deps), 0)
    const text = deps.log.text()
    assert.match(text, /warning: account 123456789012 has Block Public Access BlockPublicPolicy and RestrictPublicBuckets on/)
    assert.match(text, /aws s3control put-public-access-block --account-id 123456789012 .*BlockPublicPolicy=false,RestrictPublicBuckets=false/)
    assert.match(text, /policy: NOT set/)
    assert.deepEqual(f.control.calls[0], { name: 'GetPublicAccessBlock', input: { AccountId: '123456789012' } })
  })
  it('AccessDenied on the policy without an account block is an error', async () => {
    const s3 = fakeS3(goodState({ policy: undefined }), (name) => (name === 'PutBucketPolicy' ? awsError('AccessDenied', 403) : undefined))
    const f = fakeClients(s3)
    const deps = { ...testDeps(noDocker()), awsClients: () => f.clients as unknown as AwsClients }
    assert.equal(await main([], ENV, deps), 1)
    assert.match(deps.log.err.join(''), /could not set the policy of bucket .*: these AWS credentials may not do this/)
  })
  it('AccessDenied on the policy right after opening the public access block: tried again', async () => {
    let refusals = 1
    const s3 = fakeS3(goodState({ policy: undefined, publicAccessBlock: undefined }), (name) =>
      name === 'PutBucketPolicy' && refusals-- > 0 ? awsError('AccessDenied', 403) : undefined,
    )
    const f = fakeClients(s3)
    const deps = { ...testDeps(noDocker()), awsClients: () => f.clients as unknown as AwsClients, policyRetryDelaysMs: [0, 0] }
    assert.equal(await main([], ENV, deps), 0, deps.log.text())
    assert.deepEqual(s3.calls.filter((c) => MUTATING.test(c.name)).map((c) => c.name), ['PutPublicAccessBlock', 'PutBucketPolicy', 'PutBucketPolicy'])
    assert.match(deps.log.text(), /trying again/)
    assert.match(deps.log.text(), /policy: set/)
  })
  it('the account setting cannot be read: a soft note, exit 0', async () => {
    const f = fakeClients(fakeS3(goodState()), () => new TypeError('Invalid URL'))
    const deps = { ...testDeps(noDocker()), awsClients: () => f.clients as unknown as AwsClients }
    assert.equal(await main([], ENV, deps), 0)
    assert.match(deps.log.text(), /note: could not read the account-level Block Public Access \(TypeError: Invalid URL\)/)
  })
  it('HeadBucket 403 (a bucket of another account): exit 2, choose another name', async () => {
    const s3 = fakeClient(() => awsError('Forbidden', 403))
    const f = fakeClients(s3)
    const deps = { ...testDeps(noDocker()), awsClients: () => f.clients as unknown as AwsClients }
    assert.equal(await main([], ENV, deps), 2)
    assert.match(deps.log.err.join(''), /taken by another AWS account.*DJANGO_UPLOAD_S3_BUCKET/)
  })
})
