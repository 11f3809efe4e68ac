// The bucket step against moto: node --import tsx --test tests/system/aws-bucket.test.ts
// main() runs in-process with the emulator's env; every AWS call it makes is recorded by a
// middleware on its clients, so "changes nothing" is checked on the calls, not only on the state.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, beforeEach, describe, it } from 'node:test'
import {
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketPolicyCommand,
  GetBucketTaggingCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  PutBucketTaggingCommand,
  DeleteBucketPolicyCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutPublicAccessBlockCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { PutPublicAccessBlockCommand as PutAccountPublicAccessBlockCommand } from '@aws-sdk/client-s3-control'
import { awsClients, type AwsClients } from '../../tasks/lib/aws/clients.ts'
import { main } from '../../tasks/bucket.ts'
import { deleteBucket } from '../../tasks/lib/aws/bucket.ts'
import { bucketPolicy } from '../../tasks/lib/aws/bucketpolicy.ts'
import type { Env } from '../../tasks/lib/main.ts'
import { startMoto, type Moto } from '../rig/moto.ts'
import { noDocker, testDeps } from '../unit/fakes.ts'

const BUCKET = 'mymdb-uploads-systest'
const BACKUPS = `${BUCKET}-backups`
const BACKUP_WRITES = ['CreateBucket', 'PutBucketOwnershipControls', 'PutPublicAccessBlock', 'PutBucketTagging', 'PutBucketEncryption', 'PutBucketVersioning', 'PutBucketLifecycleConfiguration']
const MUTATING = /^(Create|Put|Delete)/

let moto: Moto

function env(extra: Env = {}): Env {
  return { ...process.env, ...moto.env, DJANGO_UPLOAD_S3_BUCKET: BUCKET, MYMDB_STAGE: 'test', ...extra }
}

/** An S3 client of the test itself (not counted). */
function s3(region = 'us-west-2'): S3Client {
  return awsClients(region, moto.env).s3
}

/** Runs the step in-process; returns its exit code, output and the AWS calls it made. */
async function run(argv: string[] = [], extra: Env = {}) {
  const calls: string[] = []
  let madeClients = false
  const count = (c: { middlewareStack: { add: Function } }) =>
    c.middlewareStack.add(
      (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
        calls.push((context.commandName ?? '?').replace(/Command$/, ''))
        return next(args)
      },
      { step: 'initialize', name: 'countCalls' },
    )
  const clients = (region: string, e: Env): AwsClients => {
    madeClients = true
    const c = awsClients(region, e)
    for (const client of [c.s3, c.sts, c.s3control]) count(client)
    return c
  }
  const deps = { ...testDeps(noDocker()), awsClients: clients }
  const code = await main(argv, env(extra), deps)
  return { code, out: deps.log.out.join(''), err: deps.log.err.join(''), calls, mutating: calls.filter((c) => MUTATING.test(c)), madeClients }
}

async function bucketNames(): Promise<string[]> {
  const out = await s3().send(new ListBucketsCommand({}))
  return (out.Buckets ?? []).map((b) => b.Name ?? '')
}

before(async () => {
  moto = await startMoto('mymdb-rig-moto-bucket')
})

after(async () => {
  await moto?.stop()
})

beforeEach(async () => {
  await moto.reset()
})

describe('bucket step against moto', () => {
  it('creates the bucket in AWS_REGION with tags, ownership, public access block and the policy', async () => {
    const r = await run([], { AWS_REGION: 'eu-central-1' })
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /\[bucket\] bucket: create \(mymdb-uploads-systest in eu-central-1\)/)
    const c = s3('eu-central-1')
    assert.equal((await c.send(new GetBucketLocationCommand({ Bucket: BUCKET }))).LocationConstraint, 'eu-central-1')
    const tags = (await c.send(new GetBucketTaggingCommand({ Bucket: BUCKET }))).TagSet ?? []
    assert.deepEqual(
      tags.map((t) => `${t.Key}=${t.Value}`).sort(),
      ['Project=mymdb', 'Stage=test'],
    )
    assert.deepEqual((await c.send(new GetPublicAccessBlockCommand({ Bucket: BUCKET }))).PublicAccessBlockConfiguration, {
      BlockPublicAcls: true,
      IgnorePublicAcls: true,
      BlockPublicPolicy: false,
      RestrictPublicBuckets: false,
    })
    const own = await c.send(new GetBucketOwnershipControlsCommand({ Bucket: BUCKET }))
    assert.deepEqual(own.OwnershipControls?.Rules, [{ ObjectOwnership: 'BucketOwnerEnforced' }])
    const policy = (await c.send(new GetBucketPolicyCommand({ Bucket: BUCKET }))).Policy
    assert.deepEqual(JSON.parse(policy ?? '{}'), bucketPolicy(BUCKET))
    // the public access block is written before the policy
    assert.ok(r.mutating.indexOf('PutPublicAccessBlock') < r.mutating.indexOf('PutBucketPolicy'), r.mutating.join())
  })

  it('us-east-1: no LocationConstraint', async () => {
    const r = await run([], { AWS_REGION: 'us-east-1' })
    assert.equal(r.code, 0, r.err)
    const loc = await s3('us-east-1').send(new GetBucketLocationCommand({ Bucket: BUCKET }))
    assert.ok(!loc.LocationConstraint, `LocationConstraint: ${loc.LocationConstraint}`)
  })

  it('anyone can read uploads/*, nothing else of the bucket', async () => {
    assert.equal((await run()).code, 0)
    const bytes = randomBytes(2048)
    const c = s3()
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'uploads/x.png', Body: bytes, ContentType: 'image/png' }))
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'private/y.txt', Body: 'not public' }))
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'uploadsx.txt', Body: 'not public either' }))
    const pub = await fetch(`${moto.endpoint}/${BUCKET}/uploads/x.png`)
    assert.equal(pub.status, 200)
    assert.deepEqual(Buffer.from(await pub.arrayBuffer()), bytes)
    for (const key of ['private/y.txt', 'uploadsx.txt']) {
      const res = await fetch(`${moto.endpoint}/${BUCKET}/${key}`)
      await res.arrayBuffer()
      assert.equal(res.status, 403, key)
    }
    // (anonymous listing is not checked here: moto answers it for any bucket, policy or not; the
    // unit tests check that the policy grants no s3:ListBucket)
  })

  it('the upload bucket is versioned: a replaced or deleted poster stays readable as an old version, which expires after MYMDB_UPLOAD_KEEP_DAYS', async () => {
    const r = await run([], { MYMDB_UPLOAD_KEEP_DAYS: '45' })
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /lifecycle: create \(replaced or deleted uploads kept 45 day\(s\) as old versions, then deleted\)/)
    const c = s3()
    assert.equal((await c.send(new GetBucketVersioningCommand({ Bucket: BUCKET }))).Status, 'Enabled')
    const rules = (await c.send(new GetBucketLifecycleConfigurationCommand({ Bucket: BUCKET }))).Rules ?? []
    assert.deepEqual(
      rules.map((x) => [x.ID, x.Status, x.Filter?.Prefix, x.Expiration?.Days, x.NoncurrentVersionExpiration?.NoncurrentDays]),
      [['mymdb-expire-replaced-uploads', 'Enabled', '', undefined, 45]],
      'old versions expire; a poster in use never does',
    )
    const first = await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'uploads/p.png', Body: 'first' }))
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'uploads/p.png', Body: 'second' }))
    await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'uploads/p.png' }))
    const old = await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'uploads/p.png', VersionId: first.VersionId }))
    assert.equal(await old.Body?.transformToString(), 'first')
    // the default is 30 days; changing it rewrites the rule only
    const back = await run()
    assert.deepEqual(back.mutating, ['PutBucketLifecycleConfiguration'])
    assert.equal((await c.send(new GetBucketLifecycleConfigurationCommand({ Bucket: BUCKET }))).Rules?.[0]?.NoncurrentVersionExpiration?.NoncurrentDays, 30)
  })

  it('the backup bucket: all public access blocked and no policy, encrypted by default, versioned, expiring; no anonymous read', async () => {
    const r = await run([], { MYMDB_BACKUP_KEEP_DAYS: '21' })
    assert.equal(r.code, 0, r.err)
    const c = s3()
    assert.deepEqual((await c.send(new GetPublicAccessBlockCommand({ Bucket: BACKUPS }))).PublicAccessBlockConfiguration, {
      BlockPublicAcls: true,
      IgnorePublicAcls: true,
      BlockPublicPolicy: true,
      RestrictPublicBuckets: true,
    })
    await assert.rejects(c.send(new GetBucketPolicyCommand({ Bucket: BACKUPS })), /NoSuchBucketPolicy|does not exist/)
    const sse = await c.send(new GetBucketEncryptionCommand({ Bucket: BACKUPS }))
    assert.equal(sse.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm, 'AES256')
    assert.equal((await c.send(new GetBucketVersioningCommand({ Bucket: BACKUPS }))).Status, 'Enabled')
    const rules = (await c.send(new GetBucketLifecycleConfigurationCommand({ Bucket: BACKUPS }))).Rules ?? []
    // read back from the emulator: nothing of rolling/ expires while it is among the newest 7 of its key
    // (6 older versions besides the current one), nothing of kept/ expires at all, the flat names of before by age
    assert.deepEqual(
      rules.map((x) => [x.ID, x.Status, x.Filter?.Prefix, x.Expiration?.Days, x.Expiration?.ExpiredObjectDeleteMarker, x.NoncurrentVersionExpiration?.NoncurrentDays, x.NoncurrentVersionExpiration?.NewerNoncurrentVersions]),
      [
        ['mymdb-keep-newest-backups', 'Enabled', 'rolling/', undefined, undefined, 21, 6],
        ['mymdb-keep-final-backups', 'Enabled', 'kept/', undefined, true, 21, undefined],
        ['mymdb-expire-backups', 'Enabled', 'mymdb-', 21, undefined, 21, undefined],
      ],
    )
    assert.deepEqual(
      (await c.send(new GetBucketTaggingCommand({ Bucket: BACKUPS }))).TagSet?.map((t) => `${t.Key}=${t.Value}`).sort(),
      ['Project=mymdb', 'Stage=test'],
    )
    await c.send(new PutObjectCommand({ Bucket: BACKUPS, Key: 'mymdb-test-20261127T031700Z.tar', Body: 'x' }))
    assert.equal((await fetch(`${moto.endpoint}/${BACKUPS}/mymdb-test-20261127T031700Z.tar`)).status, 403)
    // keeping them longer later: only the rule changes
    const longer = await run([], { MYMDB_BACKUP_KEEP_DAYS: '30' })
    assert.deepEqual(longer.mutating, ['PutBucketLifecycleConfiguration'])
    const more = await run([], { MYMDB_BACKUP_KEEP_DAYS: '30', MYMDB_BACKUP_KEEP: '10' })
    assert.deepEqual(more.mutating, ['PutBucketLifecycleConfiguration'])
    const read = (await c.send(new GetBucketLifecycleConfigurationCommand({ Bucket: BACKUPS }))).Rules?.[0]?.NoncurrentVersionExpiration
    assert.deepEqual(read, { NoncurrentDays: 30, NewerNoncurrentVersions: 9 })
    assert.deepEqual((await run([], { MYMDB_BACKUP_KEEP_DAYS: '30', MYMDB_BACKUP_KEEP: '10' })).mutating, [], 'read back as written: nothing to change')
  })
  it('a second run prints unchanged and makes no mutating call', async () => {
    const first = await run()
    assert.equal(first.code, 0, first.err)
    assert.deepEqual(first.mutating, ['CreateBucket', 'PutBucketOwnershipControls', 'PutPublicAccessBlock', 'PutBucketTagging', 'PutBucketPolicy', 'PutBucketVersioning', 'PutBucketLifecycleConfiguration', ...BACKUP_WRITES])
    const policyBefore = (await s3().send(new GetBucketPolicyCommand({ Bucket: BUCKET }))).Policy

    const second = await run()
    assert.equal(second.code, 0, second.err)
    assert.deepEqual(second.mutating, [], second.calls.join())
    assert.match(second.out, /\[bucket\] bucket: exists/)
    for (const item of ['ownership', 'public-access-block', 'tags', 'policy', 'encryption', 'versioning', 'lifecycle']) assert.match(second.out, new RegExp(`\\[bucket\\] ${item}: unchanged`))
    assert.match(second.out, /nothing to change/)
    assert.equal((await s3().send(new GetBucketPolicyCommand({ Bucket: BUCKET }))).Policy, policyBefore)
    assert.deepEqual((await bucketNames()).sort(), [BUCKET, BACKUPS])
  })

  it('writes only what drifted, keeping other tags', async () => {
    assert.equal((await run()).code, 0)
    const c = s3()
    await c.send(new DeleteBucketPolicyCommand({ Bucket: BUCKET }))
    await c.send(
      new PutPublicAccessBlockCommand({
        Bucket: BUCKET,
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true },
      }),
    )
    await c.send(new PutBucketTaggingCommand({ Bucket: BUCKET, Tagging: { TagSet: [{ Key: 'CostCenter', Value: '42' }, { Key: 'Project', Value: 'mymdb' }] } }))
    const r = await run()
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /public-access-block: update/)
    assert.match(r.out, /policy: create/)
    assert.match(r.out, /tags: update/)
    assert.match(r.out, /ownership: unchanged/)
    assert.deepEqual(r.mutating, ['PutPublicAccessBlock', 'PutBucketTagging', 'PutBucketPolicy'])
    const tags = (await c.send(new GetBucketTaggingCommand({ Bucket: BUCKET }))).TagSet ?? []
    assert.deepEqual(tags.map((t) => `${t.Key}=${t.Value}`).sort(), ['CostCenter=42', 'Project=mymdb', 'Stage=test'])
    const res = await fetch(`${moto.endpoint}/${BUCKET}/uploads/none.png`)
    await res.arrayBuffer()
    assert.equal(res.status, 404) // public read is back (a missing key: 404, not 403)
  })

  it('--dry-run prints the plan and creates nothing', async () => {
    const r = await run(['--dry-run'])
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /bucket: create/)
    assert.match(r.out, /dry run: 14 change\(s\) planned, nothing changed/)
    assert.deepEqual(r.mutating, [])
    assert.deepEqual(await bucketNames(), [])
  })

  it('invalid bucket name: exit 2 naming DJANGO_UPLOAD_S3_BUCKET, no AWS call, no bucket', async () => {
    const r = await run([], { DJANGO_UPLOAD_S3_BUCKET: 'My_Bucket' })
    assert.equal(r.code, 2)
    assert.match(r.err, /DJANGO_UPLOAD_S3_BUCKET="My_Bucket" - not a valid S3 bucket name/)
    assert.equal(r.madeClients, false)
    assert.deepEqual(r.calls, [])
    assert.deepEqual(await bucketNames(), []) // (moto itself would accept My_Bucket)
  })

  it('bad region: exit 2, no bucket', async () => {
    const r = await run([], { AWS_REGION: 'us-west' })
    assert.equal(r.code, 2)
    assert.match(r.err, /AWS_REGION="us-west"/)
    assert.deepEqual(await bucketNames(), [])
  })

  it("another stage's bucket of the same name: exit 2, nothing written", async () => {
    assert.equal((await run([], { MYMDB_STAGE: 'production' })).code, 0)
    const r = await run([], { MYMDB_STAGE: 'test' })
    assert.equal(r.code, 2)
    assert.match(r.err, /belongs to stage production/)
    assert.deepEqual(r.mutating, [])
  })

  it('a bucket in another region: exit 2, set AWS_REGION', async () => {
    assert.equal((await run([], { AWS_REGION: 'eu-west-1' })).code, 0)
    const r = await run([], { AWS_REGION: 'us-west-2' })
    assert.equal(r.code, 2)
    assert.match(r.err, /exists in eu-west-1, not in AWS_REGION=us-west-2: set AWS_REGION=eu-west-1/)
    assert.deepEqual(r.mutating, [])
  })

  it('warns when the account-level Block Public Access blocks public policies (moto stores, does not enforce)', async () => {
    await awsClients('us-west-2', moto.env).s3control.send(
      new PutAccountPublicAccessBlockCommand({
        AccountId: '123456789012',
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: false, RestrictPublicBuckets: true },
      }),
    )
    const r = await run()
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /warning: account 123456789012 has Block Public Access RestrictPublicBuckets on/)
    assert.match(r.out, /aws s3control put-public-access-block --account-id 123456789012/)
    assert.ok(r.calls.includes('GetCallerIdentity') && r.calls.includes('GetPublicAccessBlock'))
  })

  it('deleteBucket empties every version and delete marker, then deletes the bucket', async () => {
    assert.equal((await run()).code, 0)
    const c = s3()
    await c.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }))
    for (const key of ['uploads/a.png', 'uploads/a.png', 'uploads/b.png']) await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: randomBytes(16) }))
    await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'uploads/b.png' }))
    // a stage that is not the bucket's: refused, nothing deleted
    await assert.rejects(deleteBucket(c, BUCKET, { stage: 'production' }), /refusing to delete bucket/)
    assert.deepEqual((await bucketNames()).sort(), [BUCKET, BACKUPS])

    const result = await deleteBucket(c, BUCKET, { stage: 'test' })
    assert.deepEqual(result, { deleted: true, objects: 4 }) // a.png x2, b.png, b's delete marker
    await assert.rejects(c.send(new HeadBucketCommand({ Bucket: BUCKET })), (e: unknown) => (e as Error).name === 'NotFound')
    assert.deepEqual(await bucketNames(), [BACKUPS])
    // again: nothing to delete
    assert.deepEqual(await deleteBucket(c, BUCKET), { deleted: false, objects: 0 })
  })
})
