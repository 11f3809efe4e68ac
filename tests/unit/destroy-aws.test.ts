// destroy:aws --delete-bucket with fake AWS clients: the name check, the plan line, dry run,
// the stage check and the delete itself.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { main } from '../../tasks/destroy-aws.ts'
import { checkDeleteBucket } from '../../tasks/lib/aws/teardown.ts'
import { removalLines } from '../../tasks/lib/aws/teardown.ts'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'
import { ConfigError } from '../../tasks/lib/errors.ts'
import { absentStageServices, fakeLockTable, noDocker, tempDir, testDeps } from './fakes.ts'

const BUCKET = 'mymdb-uploads-qa'

/** An awsClients factory that fails the test when called (no AWS call may happen). */
const noAws = () => {
  throw new Error('AWS clients were made')
}

interface FakeBucket {
  tags: { Key: string; Value: string }[]
  keys: string[]
  /** Answer ListObjectsV2 as if there were more than one page. */
  truncated?: boolean
}

/** Fake clients: no host resources of the stage; S3 holds `bucket` (undefined: no bucket). */
function fakeAws(bucket: FakeBucket | undefined, instance?: { id: string; state: string }): AwsClients & { sent: string[] } {
  const sent: string[] = []
  const state = { bucket }
  const name = (cmd: { constructor: { name: string } }) => cmd.constructor.name.replace(/Command$/, '')
  const ec2: Record<string, () => unknown> = {
    DescribeInstances: () =>
      instance
        ? { Reservations: [{ Instances: [{ InstanceId: instance.id, State: { Name: instance.state }, Tags: [{ Key: 'Name', Value: 'mymdb-qa' }] }] }] }
        : { Reservations: [] },
    DescribeSecurityGroups: () => ({ SecurityGroups: [] }),
    DescribeKeyPairs: () => ({ KeyPairs: [] }),
    DescribeAddresses: () => ({ Addresses: [] }),
    // (no database on RDS: the default VPC holds none of its network)
    DescribeVpcs: () => ({ Vpcs: [{ VpcId: 'vpc-1', CidrBlock: '172.31.0.0/16' }] }),
    DescribeSubnets: () => ({ Subnets: [] }),
    DescribeRouteTables: () => ({ RouteTables: [] }),
  }
  const notFound = (code: string) => Object.assign(new Error(code), { name: code, $metadata: { httpStatusCode: 404 } })
  const s3 = (n: string, input: Record<string, unknown>): unknown => {
    const b = state.bucket
    if (input.Bucket !== BUCKET || !b) throw notFound(n === 'HeadBucket' ? 'NotFound' : 'NoSuchBucket')
    switch (n) {
      case 'HeadBucket':
        return { BucketRegion: 'us-west-2' }
      case 'GetBucketTagging':
        return { TagSet: b.tags }
      case 'ListObjectsV2':
        return b.truncated ? { KeyCount: 1000, IsTruncated: true } : { KeyCount: b.keys.length, IsTruncated: false }
      case 'ListObjectVersions':
        return { Versions: b.keys.map((Key) => ({ Key, VersionId: 'null' })), IsTruncated: false }
      case 'DeleteObjects': {
        const gone = new Set(((input.Delete as { Objects: { Key: string }[] }).Objects ?? []).map((o) => o.Key))
        b.keys = b.keys.filter((k) => !gone.has(k))
        return {}
      }
      case 'DeleteBucket':
        if (b.keys.length > 0) throw Object.assign(new Error('not empty'), { name: 'BucketNotEmpty' })
        state.bucket = undefined
        return {}
    }
    throw new Error(`unexpected S3 call ${n}`)
  }
  return {
    region: 'us-west-2',
    ec2: {
      send: async (cmd: { constructor: { name: string } }) => {
        const n = name(cmd)
        sent.push(n)
        const a = ec2[n]
        if (!a) throw new Error(`unexpected EC2 call ${n}`)
        return a()
      },
    },
    iam: {
      send: async (cmd: { constructor: { name: string } }) => {
        sent.push(name(cmd))
        throw Object.assign(new Error('not found'), { name: 'NoSuchEntity' })
      },
    },
    s3: {
      send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const n = name(cmd)
        sent.push(n)
        return s3(n, cmd.input)
      },
    },
    ...absentStageServices(sent),
    dynamodb: fakeLockTable(),
    sent,
    get bucket() {
      return state.bucket
    },
  } as unknown as AwsClients & { sent: string[] }
}

const ENV = { AWS_REGION: 'us-west-2', MYMDB_STAGE: 'qa', DJANGO_UPLOAD_S3_BUCKET: BUCKET }
const OURS = [
  { Key: 'Project', Value: 'mymdb' },
  { Key: 'Stage', Value: 'qa' },
]
const writes = (sent: string[]) => sent.filter((n) => /Delete|Terminate|Remove|Detach/.test(n))

async function destroy(argv: string[], c: AwsClients, env: Record<string, string> = ENV) {
  const deps = testDeps(noDocker())
  const code = await main(argv, { ...env, HOME: tempDir().dir }, { ...deps, awsClients: () => c })
  return { code, out: deps.log.text(), err: deps.log.err.join('') }
}

describe('destroy:aws --delete-bucket', () => {
  it('the help says it deletes every uploaded poster', async () => {
    const d = testDeps(noDocker())
    assert.equal(await main(['--help'], {}, d), 0)
    assert.match(d.log.text(), /--delete-bucket NAME/)
    assert.match(d.log.text(), /ALL\s+UPLOADED POSTERS/)
  })

  it('the name must be DJANGO_UPLOAD_S3_BUCKET exactly: else exit 2 before any AWS call', async () => {
    assert.equal(checkDeleteBucket(BUCKET, BUCKET), BUCKET)
    for (const wrong of ['mymdb-uploads', 'MYMDB-UPLOADS-QA', ` ${BUCKET}`, ''])
      assert.throws(() => checkDeleteBucket(wrong, BUCKET), (e: unknown) => e instanceof ConfigError && /exactly/.test(e.message))
    for (const argv of [['--delete-bucket', 'mymdb-uploads'], [`--delete-bucket=${BUCKET}x`], ['--delete-bucket=']]) {
      const d = testDeps(noDocker())
      assert.equal(await main(argv, { ...ENV, HOME: tempDir().dir }, { ...d, awsClients: noAws }), 2, argv.join(' '))
      assert.match(d.log.err.join(''), /--delete-bucket must be given the upload bucket's name exactly \(DJANGO_UPLOAD_S3_BUCKET=mymdb-uploads-qa\)/)
      assert.match(d.log.err.join(''), /nothing was removed/)
    }
  })

  it('without DJANGO_UPLOAD_S3_BUCKET: exit 2 naming it, before any AWS call', async () => {
    const d = testDeps(noDocker())
    const env = { AWS_REGION: 'us-west-2', HOME: tempDir().dir }
    assert.equal(await main(['--delete-bucket', BUCKET], env, { ...d, awsClients: noAws }), 2)
    assert.match(d.log.err.join(''), /DJANGO_UPLOAD_S3_BUCKET/)
  })

  it('the plan line counts the files; 1000+ beyond one page', () => {
    const base = { instances: [], securityGroup: null, keyPair: false, instanceProfile: null, role: false, backupRole: false, elasticIps: [] }
    assert.deepEqual(removalLines({ ...base, bucket: { name: BUCKET, objects: '3', ours: true, tags: '' } }, 'qa'), [
      `S3 bucket ${BUCKET} and all its files (3 objects)`,
    ])
    assert.deepEqual(removalLines({ ...base, bucket: null }, 'qa'), [])
  })

  it('--dry-run lists the bucket and its file count and deletes nothing', async () => {
    const c = fakeAws({ tags: OURS, keys: ['uploads/a.jpg', 'uploads/b.jpg', 'uploads/c.jpg'] })
    const r = await destroy(['--delete-bucket', BUCKET, '--dry-run'], c)
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /would remove:[\s\S]*S3 bucket mymdb-uploads-qa and all its files \(3 objects\)/)
    assert.match(r.out, /dry run: nothing was removed/)
    assert.deepEqual(writes(c.sent), [])
    assert.ok((c as unknown as { bucket?: FakeBucket }).bucket, 'the bucket is still there')

    const many = fakeAws({ tags: OURS, keys: [], truncated: true })
    const m = await destroy(['--delete-bucket', BUCKET, '--dry-run'], many)
    assert.equal(m.code, 0, m.out)
    assert.match(m.out, /and all its files \(1000\+ objects\)/)
  })

  it('deletes every file and the bucket; a second run has nothing to remove', async () => {
    const c = fakeAws({ tags: OURS, keys: ['uploads/a.jpg', 'uploads/b.jpg'] })
    const r = await destroy(['--delete-bucket', BUCKET], c)
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /S3 bucket mymdb-uploads-qa and all its files \(2 objects\)/)
    assert.match(r.out, /removed: S3 bucket mymdb-uploads-qa \(2 object versions\)/)
    assert.doesNotMatch(r.out, /the upload bucket is kept/)
    assert.deepEqual(writes(c.sent), ['DeleteObjects', 'DeleteBucket'])
    assert.equal((c as unknown as { bucket?: FakeBucket }).bucket, undefined)

    const again = await destroy(['--delete-bucket', BUCKET], c)
    assert.equal(again.code, 0, again.out)
    assert.match(again.out, /nothing to remove/)
  })

  it('a bucket not tagged for this stage is refused: exit 1, nothing removed', async () => {
    for (const tags of [[], [{ Key: 'Project', Value: 'mymdb' }, { Key: 'Stage', Value: 'production' }]]) {
      const c = fakeAws({ tags, keys: ['uploads/a.jpg'] })
      const r = await destroy(['--delete-bucket', BUCKET], c)
      assert.equal(r.code, 1, r.out)
      assert.match(r.err, /refusing to delete bucket mymdb-uploads-qa: it is not tagged Project=mymdb, Stage=qa/)
      assert.deepEqual(writes(c.sent), [])
      assert.ok((c as unknown as { bucket?: FakeBucket }).bucket)
    }
  })

  it('without the flag the bucket is not looked at', async () => {
    const c = fakeAws({ tags: OURS, keys: ['uploads/a.jpg'] })
    const r = await destroy([], c, { ...ENV, DJANGO_UPLOAD_S3_BUCKET: 'Not_A_Valid_Name' })
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /nothing to remove/)
    assert.ok(!c.sent.some((n) => /Bucket|Object/.test(n)), c.sent.join(' '))
  })
})

describe('destroy: a security group still held by a terminated instance', () => {
  /** removeAll of just the group, with DeleteSecurityGroup answered by `answer` (attempt number). */
  const removeGroup = async (answer: (n: number) => unknown) => {
    const { removeAll } = await import('../../tasks/lib/aws/teardown.ts')
    const { captureLog } = await import('./fakes.ts')
    let tries = 0
    const ec2 = { send: async () => answer(++tries) }
    const log = captureLog()
    const inv = { instances: [], securityGroup: 'sg-1', keyPair: false, instanceProfile: null, role: false, backupRole: false, elasticIps: [] }
    const removed = removeAll({ region: 'us-west-2', ec2 } as unknown as AwsClients, 'qa', inv, log, 0)
    return { removed, log, tries: () => tries }
  }
  const fail = (name: string) => {
    throw Object.assign(new Error(`${name}: refused`), { name })
  }

  it('is deleted again until it goes (DependencyViolation), then reported removed', async () => {
    const r = await removeGroup((n) => (n < 3 ? fail('DependencyViolation') : {}))
    assert.deepEqual(await r.removed, ['security group mymdb-qa-web'])
    assert.equal(r.tries(), 3)
    assert.match(r.log.text(), /security group sg-1 is still in use; retrying in 0 s \(2\/20\)/)
  })
  it('another error ends it at once', async () => {
    const r = await removeGroup(() => fail('UnauthorizedOperation'))
    await assert.rejects(r.removed, /could not delete the security group sg-1: these AWS credentials may not do this.*\(UnauthorizedOperation\)/)
    assert.equal(r.tries(), 1)
  })
})

describe('destroy:aws: the final backup', () => {
  it('a stopped host cannot be backed up: exit 1 naming --no-final-backup, nothing removed', async () => {
    const c = fakeAws(undefined, { id: 'i-1', state: 'stopped' })
    const r = await destroy(['--yes'], c)
    assert.equal(r.code, 1, r.out)
    assert.match(r.err, /no final backup \(the host i-1 is stopped; start it with npm run deploy:aws\), so nothing was removed: .*--no-final-backup/)
    assert.deepEqual(writes(c.sent), [])
  })
  it('a running host without the SSH key: exit 1, nothing removed', async () => {
    const c = fakeAws(undefined, { id: 'i-1', state: 'running' })
    const r = await destroy(['--yes'], c, { ...ENV, MYMDB_HOST_ADDRESS: '127.0.0.1', MYMDB_SSH_KEY_FILE: '/nonexistent/k.pem' })
    assert.equal(r.code, 1, r.out)
    assert.match(r.err, /no final backup \(.*\/nonexistent\/k\.pem does not exist.*\), so nothing was removed/)
    assert.deepEqual(writes(c.sent), [])
  })
  it('--dry-run says whether a final backup comes first', async () => {
    const c = fakeAws(undefined, { id: 'i-1', state: 'running' })
    assert.match((await destroy(['--dry-run'], c)).out, /first a final backup of the host into the backup bucket/)
    assert.match((await destroy(['--dry-run', '--no-final-backup'], c)).out, /no final backup \(--no-final-backup\): the database on the host is lost/)
    assert.deepEqual(writes(c.sent), [])
  })
})
