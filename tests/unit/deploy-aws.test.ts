// deploy:aws without AWS: the settings of the start step (remoteEnv, pure), the options, and the
// check of every setting before any step runs.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { main, remoteEnv } from '../../tasks/deploy-aws.ts'
import { fakeSsm, noDocker, testDeps } from './fakes.ts'

const HOST = { publicDns: 'ec2-203-0-113-5.us-west-2.compute.amazonaws.com', publicIp: '203.0.113.5' }
const PUSH = { tag: 'git-abc1234' }

/** An awsClients factory that fails the test when called (no AWS call may happen). */
const noAws = () => {
  throw new Error('AWS clients were made')
}
const noSsh = async () => {
  throw new Error('an SSH connection was opened')
}

/** Every setting deploy:aws needs, valid. */
const GOOD = {
  DJANGO_SECRET_KEY: 'k'.repeat(60),
  DJANGO_DB_PASSWORD: 'db-password-0123456789',
  POSTGRES_PASSWORD: 'pg-password-0123456789',
  DJANGO_UPLOAD_S3_BUCKET: 'mymdb-uploads-qa',
  MYMDB_REGISTRY: 'ecr',
  AWS_REGION: 'us-west-2',
}

describe('deploy:aws remoteEnv', () => {
  it("adds the public DNS name and IP after the user's hosts, without duplicates", () => {
    const env = remoteEnv({ DJANGO_ALLOWED_HOSTS: 'mymdb.example.com, www.example.com' }, PUSH, HOST)
    assert.equal(env.DJANGO_ALLOWED_HOSTS, `mymdb.example.com,www.example.com,${HOST.publicDns},${HOST.publicIp}`)
    const dup = remoteEnv({ DJANGO_ALLOWED_HOSTS: `${HOST.publicIp},mymdb.example.com,mymdb.example.com` }, PUSH, HOST)
    assert.equal(dup.DJANGO_ALLOWED_HOSTS, `${HOST.publicIp},mymdb.example.com,${HOST.publicDns}`)
  })

  it('empty or missing allowed hosts: just the instance names; a host without a DNS name is fine', () => {
    for (const raw of [{}, { DJANGO_ALLOWED_HOSTS: '' }, { DJANGO_ALLOWED_HOSTS: ' , ' }])
      assert.equal(remoteEnv(raw, PUSH, HOST).DJANGO_ALLOWED_HOSTS, `${HOST.publicDns},${HOST.publicIp}`)
    assert.equal(remoteEnv({}, PUSH, { publicIp: '203.0.113.5' }).DJANGO_ALLOWED_HOSTS, '203.0.113.5')
  })

  it('sets MYMDB_TAG to the pushed tag and keeps the other settings', () => {
    const env = remoteEnv({ MYMDB_TAG: 'old', DJANGO_SECRET_KEY: 's', AWS_REGION: 'eu-west-1' }, PUSH, HOST)
    assert.equal(env.MYMDB_TAG, 'git-abc1234')
    assert.equal(env.DJANGO_SECRET_KEY, 's')
  })

  it('AWS_S3_REGION_NAME defaults to AWS_REGION, an explicit one is kept', () => {
    assert.equal(remoteEnv({ AWS_REGION: 'eu-west-1' }, PUSH, HOST).AWS_S3_REGION_NAME, 'eu-west-1')
    assert.equal(remoteEnv({ AWS_REGION: 'eu-west-1', AWS_S3_REGION_NAME: 'us-east-1' }, PUSH, HOST).AWS_S3_REGION_NAME, 'us-east-1')
  })

  it('an ECR login becomes MYMDB_REGISTRY_USERNAME/PASSWORD; without one they are left as they are', () => {
    const ecr = remoteEnv({ MYMDB_REGISTRY: 'ecr' }, { ...PUSH, login: { username: 'AWS', password: 'token' } }, HOST)
    assert.equal(ecr.MYMDB_REGISTRY_USERNAME, 'AWS')
    assert.equal(ecr.MYMDB_REGISTRY_PASSWORD, 'token')
    const hub = remoteEnv({ MYMDB_REGISTRY_USERNAME: 'me', MYMDB_REGISTRY_PASSWORD: 'pw' }, PUSH, HOST)
    assert.equal(hub.MYMDB_REGISTRY_USERNAME, 'me')
    assert.equal(hub.MYMDB_REGISTRY_PASSWORD, 'pw')
    assert.equal(remoteEnv({}, PUSH, HOST).MYMDB_REGISTRY_USERNAME, undefined)
  })

  it('does not change its input', () => {
    const raw = { DJANGO_ALLOWED_HOSTS: 'a.example.com' }
    remoteEnv(raw, PUSH, HOST)
    assert.deepEqual(raw, { DJANGO_ALLOWED_HOSTS: 'a.example.com' })
  })
})

describe('deploy:aws main', () => {
  it('--help: exit 0, nothing run', async () => {
    const run = noDocker()
    const d = testDeps(run)
    assert.equal(await main(['--help'], {}, { ...d, awsClients: noAws, openRemote: noSsh }), 0)
    assert.match(d.log.text(), /Usage: npm run deploy:aws/)
    assert.deepEqual(run.commands(), [])
  })

  it('an unknown option: exit 2, nothing run', async () => {
    const run = noDocker()
    const d = testDeps(run)
    assert.equal(await main(['--force'], GOOD, { ...d, awsClients: noAws, openRemote: noSsh }), 2)
    assert.match(d.log.err.join(''), /--force/)
    assert.match(d.log.err.join(''), /npm run deploy:aws -- --help/)
    assert.deepEqual(run.commands(), [])
  })

  it('bad and missing settings: exit 2 naming all of them, before any command, AWS or SSH call', async () => {
    const run = noDocker()
    const d = testDeps(run)
    const env = { ...GOOD, DJANGO_SECRET_KEY: undefined, DJANGO_UPLOAD_S3_BUCKET: 'Bad_Bucket', MYMDB_REGISTRY: '' }
    assert.equal(await main([], env, { ...d, awsClients: noAws, openRemote: noSsh }), 2, d.log.text())
    const text = d.log.text()
    assert.match(text, /3 environment variables to fix/)
    for (const name of ['DJANGO_SECRET_KEY', 'DJANGO_UPLOAD_S3_BUCKET', 'MYMDB_REGISTRY']) assert.match(text, new RegExp(name))
    assert.doesNotMatch(text, /\[deploy\] 1\/4/, 'no step started')
    assert.deepEqual(run.commands(), [])
  })

  it('--dry-run with bad settings: still exit 2 before anything', async () => {
    const run = noDocker()
    const d = testDeps(run)
    assert.equal(await main(['--dry-run'], { ...GOOD, AWS_REGION: 'nowhere' }, { ...d, awsClients: noAws, openRemote: noSsh }), 2)
    assert.match(d.log.text(), /AWS_REGION/)
    assert.deepEqual(run.commands(), [])
  })
})

describe('deploy:aws keeps a step exit code', () => {
  it('a bucket name taken by another account (a setting to fix, exit 2 in npm run bucket) is exit 2 here too', async () => {
    const { fakeRunner, dockerOk } = await import('./fakes.ts')
    // git says which commit is pushed; the dry run pushes nothing
    const run = fakeRunner((c) => (c.startsWith('git rev-parse') ? { stdout: 'abc1234\n' } : c.startsWith('git status') ? { stdout: '' } : dockerOk(c)))
    const sent: string[] = []
    const send = async (cmd: { constructor: { name: string } }) => {
      const name = cmd.constructor.name.replace(/Command$/, '')
      sent.push(name)
      if (name === 'GetCallerIdentity') return { Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/ada' }
      if (name === 'HeadBucket') throw Object.assign(new Error('Forbidden'), { name: 'Forbidden', $metadata: { httpStatusCode: 403 } })
      throw new Error(`unexpected AWS call ${name}`)
    }
    const clients = () => ({ region: 'us-west-2', sts: { send }, s3: { send }, s3control: { send }, ec2: { send }, iam: { send }, ssm: fakeSsm(), ecr: { send } }) as never
    const d = testDeps(run)
    const code = await main(['--dry-run'], { ...GOOD, MYMDB_REGISTRY: '127.0.0.1:5000', MYMDB_SSH_CIDR: '203.0.113.7/32' }, { ...d, awsClients: clients, openRemote: noSsh })
    assert.equal(code, 2, d.log.text())
    assert.match(d.log.text(), /\[deploy\] step bucket failed/)
    assert.match(d.log.text(), /mymdb-uploads-qa/)
    assert.deepEqual(sent, ['GetCallerIdentity', 'HeadBucket'])
  })
})
