// deploy:aws without AWS: the input of the start step (startInput, pure), the options, and the
// check of every setting before any step runs.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { main } from '../../tasks/deploy-aws.ts'
import { hostsOf, planStart, startInput } from '../../tasks/lib/remote/plan.ts'
import { remoteSteps } from '../../tasks/lib/remote/up.ts'
import { deploySettings } from '../../tasks/lib/remote/settings.ts'
import { fakeLockTable, noDocker, tempDir, testDeps } from './fakes.ts'

const BACKUP = { bucket: 'mymdb-uploads-qa-backups', region: 'us-west-2', roleArn: 'arn:aws:iam::123456789012:role/mymdb-production-backup', externalId: 'e'.repeat(48) }
const HOST_1 = { instanceId: 'i-0abc', state: 'running', publicDns: 'ec2-203-0-113-5.us-west-2.compute.amazonaws.com', publicIp: '203.0.113.5' }
const HOST = {
  host: HOST_1,
  address: '203.0.113.5',
  nodes: [{ node: 1, host: HOST_1, address: '203.0.113.5' }],
  retire: [],
  keyFile: '/home/u/.ssh/mymdb-production.pem',
  launched: false,
  backup: BACKUP,
}
const PUSH = { tag: 'git-abc1234', prefix: '123456789012.dkr.ecr.us-west-2.amazonaws.com' }

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

describe('deploy:aws startInput: the start step from the settings and the earlier results', () => {
  const settings = (extra: Record<string, string> = {}) => deploySettings({ ...GOOD, HOME: tempDir().dir, ...extra })
  const input = (extra: Record<string, string> = {}, push: Parameters<typeof startInput>[1] = PUSH, host: Parameters<typeof startInput>[2] = HOST) => startInput(settings(extra), push, host)

  it("adds the public DNS name and IP after the user's hosts, without duplicates", () => {
    const names = input({ DJANGO_ALLOWED_HOSTS: 'mymdb.example.com, www.example.com' }).settings.DJANGO_ALLOWED_HOSTS
    assert.deepEqual(names, ['mymdb.example.com', 'www.example.com', HOST.host.publicDns, HOST.host.publicIp])
    const dup = input({ DJANGO_ALLOWED_HOSTS: `${HOST.host.publicIp},mymdb.example.com,mymdb.example.com` }).settings.DJANGO_ALLOWED_HOSTS
    assert.deepEqual(dup, [HOST.host.publicIp, 'mymdb.example.com', HOST.host.publicDns])
  })

  it('empty or missing allowed hosts: just the instance names; a host without a DNS name is fine', () => {
    for (const extra of [{}, { DJANGO_ALLOWED_HOSTS: '' }] as Record<string, string>[]) assert.deepEqual(input(extra).settings.DJANGO_ALLOWED_HOSTS, [HOST.host.publicDns, HOST.host.publicIp])
    const noDns = { ...HOST, host: { instanceId: 'i-1', state: 'running', publicIp: '203.0.113.5' } }
    assert.deepEqual(input({}, PUSH, noDns).settings.DJANGO_ALLOWED_HOSTS, ['203.0.113.5'])
  })

  it('sets MYMDB_TAG to the pushed tag and keeps the other settings; the images come from the pushed registry', () => {
    const { settings: s, context } = input({ MYMDB_TAG: 'old' })
    assert.equal(s.MYMDB_TAG, 'git-abc1234')
    assert.equal(s.DJANGO_SECRET_KEY, GOOD.DJANGO_SECRET_KEY)
    assert.equal(context.registry, PUSH.prefix)
    assert.equal(context.address, HOST.address)
    assert.equal(context.publicIp, HOST.host.publicIp)
    assert.match(planStart(s, context).images.web, /^123456789012\.dkr\.ecr\.us-west-2\.amazonaws\.com\/mymdb-web:git-abc1234$/)
  })

  it('AWS_S3_REGION_NAME defaults to AWS_REGION, an explicit one is kept', () => {
    assert.equal(input({ AWS_REGION: 'eu-west-1' }).settings.AWS_S3_REGION_NAME, 'eu-west-1')
    assert.equal(input({ AWS_REGION: 'eu-west-1', AWS_S3_REGION_NAME: 'us-east-1' }).settings.AWS_S3_REGION_NAME, 'us-east-1')
  })

  it("the deployer's registry login never reaches the host: ECR pulls with the instance role, other registries with the pull-only login or none", () => {
    const ecr = input()
    assert.deepEqual(planStart(ecr.settings, ecr.context).pull, { kind: 'role', host: '123456789012.dkr.ecr.us-west-2.amazonaws.com' })
    const hub = input({ MYMDB_REGISTRY: 'docker.io/me', MYMDB_REGISTRY_USERNAME: 'me', MYMDB_REGISTRY_PASSWORD: 'pw' }, { ...PUSH, prefix: 'docker.io/me' })
    const anonymous = planStart(hub.settings, hub.context)
    assert.deepEqual(anonymous.pull, { kind: 'anonymous', host: 'docker.io' })
    assert.ok(!JSON.stringify(anonymous).includes('"pw"'), 'the push password is nowhere in the plan')
    assert.match(anonymous.pullWarning ?? '', /MYMDB_PULL_USERNAME and MYMDB_PULL_PASSWORD/)
    const pull = input({ MYMDB_REGISTRY: 'docker.io/me', MYMDB_REGISTRY_USERNAME: 'me', MYMDB_REGISTRY_PASSWORD: 'pw', MYMDB_PULL_USERNAME: 'reader', MYMDB_PULL_PASSWORD: 'ro' }, { ...PUSH, prefix: 'docker.io/me' })
    const p = planStart(pull.settings, pull.context)
    assert.deepEqual(p.pull, { kind: 'login', host: 'docker.io', username: 'reader', password: 'ro' })
    assert.equal(p.pullWarning, undefined)
    assert.ok(!JSON.stringify(p).includes('"pw"'))
  })

  it('several hosts: hosts 2..N reach the start with their addresses and host keys (each pinned by its own tag, known_hosts entry by its number); one host: none', () => {
    assert.equal(input().context.others, undefined)
    assert.equal(planStart(input().settings, input().context).others, undefined)
    const key = (n: number) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${String(n).repeat(43)}`
    const nodes = [1, 2, 3].map((node) => ({ node, host: { ...HOST_1, instanceId: `i-${node}`, publicIp: `203.0.113.${node}`, hostKey: key(node) }, address: `10.0.0.${node}` }))
    const three = input({ MYMDB_HOST_KEY: key(9) }, PUSH, { ...HOST, host: nodes[0]!.host, address: '10.0.0.1', nodes })
    assert.deepEqual(three.context.others, [{ node: 2, address: '10.0.0.2', hostKey: key(2) }, { node: 3, address: '10.0.0.3', hostKey: key(3) }])
    const plan = planStart(three.settings, three.context)
    assert.equal(plan.address, '10.0.0.1')
    assert.deepEqual(plan.others?.map((o) => [o.node, o.address, o.hostKey.node, o.hostKey.tagged, o.hostKey.setting]), [
      [2, '10.0.0.2', 2, key(2), undefined],
      [3, '10.0.0.3', 3, key(3), undefined],
    ])
    // MYMDB_HOST_KEY is host 1's alone
    assert.equal(plan.hostKey.setting, key(9))
    // a host that did not answer the host step: marked so (the start leaves the swarm as it is and does not check it)
    const withDown = input({}, PUSH, { ...HOST, host: nodes[0]!.host, address: '10.0.0.1', nodes: [nodes[0]!, { ...nodes[1]!, down: true }, nodes[2]!] })
    assert.deepEqual(planStart(withDown.settings, withDown.context).others?.map((o) => [o.node, o.down ?? false]), [[2, true], [3, false]])
    assert.match(remoteSteps(planStart(withDown.settings, withDown.context)).at(-1) ?? '', /\/healthz on hosts 3 too/)
    // a host beyond MYMDB_HOSTS: taken out of the swarm before the others are joined (the deploy terminates it after)
    const fewer = input({}, PUSH, { ...HOST, host: nodes[0]!.host, address: '10.0.0.1', nodes: nodes.slice(0, 2), retire: [nodes[2]!] })
    const p2 = planStart(fewer.settings, fewer.context)
    assert.deepEqual(p2.retire?.map((o) => [o.node, o.address, o.hostKey.node, o.hostKey.tagged]), [[3, '10.0.0.3', 3, key(3)]])
    const steps = remoteSteps(p2)
    const out = steps.findIndex((l) => /^hosts 3 \(10\.0\.0\.3\), beyond MYMDB_HOSTS: drained \(Swarm moves their tasks to the other hosts\), demoted, docker swarm leave, docker node rm on host 1/.test(l))
    const join = steps.findIndex((l) => l.startsWith('hosts 2 (10.0.0.2): docker info; then one Docker Swarm with host 1, 1 manager'))
    assert.ok(out > 0 && join > out, steps.join('\n'))
  })

  it('remote:up alone: MYMDB_HOST_ADDRESS names host 1, then the others', () => {
    assert.deepEqual(hostsOf({ MYMDB_HOST_ADDRESS: ['10.0.0.1'] }), { address: '10.0.0.1' })
    assert.deepEqual(hostsOf({ MYMDB_HOST_ADDRESS: ['10.0.0.1', 'b.example.com'] }), { address: '10.0.0.1', others: [{ node: 2, address: 'b.example.com' }] })
  })

  it('does not change its input', () => {
    const s = settings({ DJANGO_ALLOWED_HOSTS: 'a.example.com' })
    startInput(s, PUSH, HOST)
    assert.deepEqual(s.DJANGO_ALLOWED_HOSTS, ['a.example.com'])
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
      // one host: is there a front door left from more?
      if (name === 'DescribeLoadBalancers') throw Object.assign(new Error('not found'), { name: 'LoadBalancerNotFoundException' })
      if (name === 'DescribeFileSystems') return { FileSystems: [] }
      throw new Error(`unexpected AWS call ${name}`)
    }
    const clients = () => ({ region: 'us-west-2', sts: { send }, s3: { send }, s3control: { send }, ec2: { send }, iam: { send }, elb: { send }, efs: { send }, dynamodb: fakeLockTable(), ecr: { send } }) as never
    const d = testDeps(run)
    const code = await main(['--dry-run'], { ...GOOD, MYMDB_REGISTRY: '127.0.0.1:5000', MYMDB_SSH_CIDR: '203.0.113.7/32' }, { ...d, awsClients: clients, openRemote: noSsh })
    assert.equal(code, 2, d.log.text())
    assert.match(d.log.text(), /\[deploy\] step bucket failed/)
    assert.match(d.log.text(), /mymdb-uploads-qa/)
    assert.deepEqual(sent, ['GetCallerIdentity', 'DescribeLoadBalancers', 'DescribeFileSystems', 'HeadBucket'])
  })
})
