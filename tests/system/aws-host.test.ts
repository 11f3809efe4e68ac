// The host step, destroy:aws and stop --aws against moto (the AWS emulator of the rig). Nothing
// here dials the fake public addresses moto hands out: MYMDB_HOST_ADDRESS is 127.0.0.1 and the
// "SSH port" is a TCP listener this test opens.
import assert from 'node:assert/strict'
import { swarmRules } from '../rig/deployenv.ts'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { DescribeAddressesCommand, DescribeVolumesCommand, DescribeImagesCommand, DescribeInstanceAttributeCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, type Instance, type RunInstancesCommandInput } from '@aws-sdk/client-ec2'
import { GetInstanceProfileCommand, GetRoleCommand, GetRolePolicyCommand } from '@aws-sdk/client-iam'
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, PutBucketTaggingCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { AssumeRoleCommand } from '@aws-sdk/client-sts'
import { BatchGetImageCommand, CreateRepositoryCommand, DeleteRepositoryCommand, DescribeRepositoriesCommand, GetAuthorizationTokenCommand, InitiateLayerUploadCommand, PutImageCommand } from '@aws-sdk/client-ecr'
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm'
import { main as destroyMain } from '../../tasks/destroy-aws.ts'
import { main as hostMain } from '../../tasks/host.ts'
import { defaultVpcId, applySecurityGroup, flattenIngress } from '../../tasks/lib/aws/securitygroup.ts'
import { applyHostRole, backupPolicies, externalIdOf, hostPolicies, parsePolicyDocument } from '../../tasks/lib/aws/roles.ts'
import { applyKeyPair } from '../../tasks/lib/aws/keypair.ts'
import { applyHost, planHost, readHostState } from '../../tasks/lib/aws/host.ts'
import { renderUserData, withHostKey } from '../../tasks/lib/aws/userdata.ts'
import { deriveHostKey } from '../../tasks/lib/hostkey.ts'
import { sameJson } from '../../tasks/lib/aws/clients.ts'
import { inspectKeyFile } from '../../tasks/lib/sshkey.ts'
import { hostSettings, sshKeyPath } from '../../tasks/lib/hostvars.ts'
import { awsClients, type AwsClients } from '../../tasks/lib/aws/clients.ts'
import { main as stopMain } from '../../tasks/stop.ts'
import { startFaultProxy } from '../rig/faultproxy.ts'
import { startMoto, type Moto } from '../rig/moto.ts'
import { startPebble, type Pebble } from '../rig/pebble.ts'
import { captureLog, tempDir } from '../unit/fakes.ts'

const REPO = new URL('../..', import.meta.url).pathname
const BUCKET = 'mymdb-uploads-systest'
const SSH_CIDR = '198.51.100.7/32'

let moto: Moto
let pebble: Pebble
let sshServer: Server
const sshSockets = new Set<Socket>()
let sshPort = 0
let home = ''
let clients: AwsClients
/** Every RunInstances request the tasks sent (moto drops MetadataOptions, so check what was sent). */
const launches: RunInstancesCommandInput[] = []

/** awsClients with a middleware that records RunInstances requests. */
function recordingClients(region: string, env: Record<string, string | undefined>): AwsClients {
  const c = awsClients(region, env)
  c.ec2.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'RunInstancesCommand') launches.push(structuredClone(args.input as RunInstancesCommandInput))
      return next(args)
    },
    { step: 'initialize', name: 'recordRunInstances' },
  )
  return c
}

function envFor(stage: string, over: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    ...process.env,
    ...moto.env,
    HOME: home,
    MYMDB_STAGE: stage,
    DJANGO_UPLOAD_S3_BUCKET: BUCKET,
    MYMDB_SSH_CIDR: SSH_CIDR,
    MYMDB_AMI_SSM_PARAMETER: '/mymdb-test/ami',
    MYMDB_AMI_ID: '',
    MYMDB_SSH_KEY_FILE: '',
    MYMDB_HOST_ADDRESS: '127.0.0.1',
    MYMDB_HOST_SSH_PORT: String(sshPort),
    ...over,
  }
}

async function run(main: typeof hostMain, argv: string[], env: Record<string, string | undefined>) {
  const log = captureLog()
  const code = await main(argv, env, { log, envFile: tempDir().envFile, interactive: false, awsClients: recordingClients })
  return { code, out: log.text(), log }
}

async function instancesOf(stage: string): Promise<Instance[]> {
  const r = await clients.ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: 'tag:Stage', Values: [stage] },
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
      ],
    }),
  )
  return (r.Reservations ?? []).flatMap((x) => x.Instances ?? [])
}

async function groupsNamed(name: string) {
  const r = await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }] }))
  return r.SecurityGroups ?? []
}

/** The stage's elastic IPs (found by tag). */
async function stageAddresses(stage: string) {
  const r = await clients.ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'tag:Stage', Values: [stage] }] }))
  return r.Addresses ?? []
}

async function keyPairs(): Promise<string[]> {
  return ((await clients.ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs ?? []).map((k) => k.KeyName ?? '')
}

async function bucketExists(bucket: string): Promise<boolean> {
  try {
    await clients.s3.send(new HeadBucketCommand({ Bucket: bucket }))
    return true
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false
    throw err
  }
}

async function iamExists(fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn()
    return true
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchEntity' || (err as { name?: string }).name === 'NoSuchEntityException') return false
    throw err
  }
}

before(async () => {
  // pebble's DNS server stands in for public DNS (the domain destroy --release-address looks up)
  ;[moto, pebble] = await Promise.all([startMoto('mymdb-rig-moto-host'), startPebble({ name: 'mymdb-rig-pebble-host', hosts: {} })])
  clients = awsClients('us-west-2', moto.env)
  home = mkdtempSync(join(tmpdir(), 'mymdb-host-home-'))
  // The "SSH port": answers like an SSH server would, never anything else.
  sshServer = createServer((s) => {
    sshSockets.add(s)
    s.on('close', () => sshSockets.delete(s))
    s.on('error', () => {}) // the task hangs up as soon as it connected
    s.end('SSH-2.0-test\r\n')
  })
  await new Promise<void>((r) => sshServer.listen(0, '127.0.0.1', r))
  sshPort = (sshServer.address() as { port: number }).port
  // moto has no public SSM parameters: seed the AMI parameter with one of its (old) AMIs.
  const images = (await clients.ec2.send(new DescribeImagesCommand({}))).Images ?? []
  const ami = images.find((i) => /ubuntu|debian/i.test(i.Name ?? '')) ?? images[0]
  assert.ok(ami?.ImageId, 'moto lists AMIs')
  await clients.ssm.send(new PutParameterCommand({ Name: '/mymdb-test/ami', Value: ami.ImageId, Type: 'String' }))
  // the upload bucket (made by the bucket step): destroy must leave it alone
  await clients.s3.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: 'us-west-2' } }))
})

after(async () => {
  await Promise.all([moto?.stop(), pebble?.stop()])
  // close() waits for open connections: end those a task left half-open.
  for (const s of sshSockets) s.destroy()
  await new Promise((r) => sshServer?.close(r))
  if (home) rmSync(home, { recursive: true, force: true })
})

describe('host step on moto', () => {
  it('invalid settings: exit 2 and nothing is created', async () => {
    const junk = join(home, 'junk.pem')
    writeFileSync(junk, 'not a key')
    const dirAsKey = join(home, 'a-dir.pem')
    mkdirSync(dirAsKey)
    const bad: Record<string, string>[] = [{ MYMDB_SSH_CIDR: '1.2.3.4' }, { MYMDB_SSH_KEY_FILE: junk }, { MYMDB_SSH_KEY_FILE: dirAsKey }, { DJANGO_UPLOAD_S3_BUCKET: 'Bad_Bucket' }]
    for (const over of bad) {
      const r = await run(hostMain, [], envFor('bad', over))
      assert.equal(r.code, 2, `${JSON.stringify(over)}: ${r.out}`)
    }
    assert.deepEqual(await instancesOf('bad'), [])
    assert.deepEqual(await groupsNamed('mymdb-bad-web'), [])
    assert.deepEqual(await keyPairs(), [])
    assert.equal(await iamExists(() => clients.iam.send(new GetRoleCommand({ RoleName: 'mymdb-bad-host' }))), false)
    assert.equal(launches.length, 0)
  })

  it('no AMI (the SSM parameter is missing): says to set MYMDB_AMI_ID, before creating anything', async () => {
    const r = await run(hostMain, [], envFor('bad', { MYMDB_AMI_SSM_PARAMETER: '/no/such/parameter' }))
    assert.equal(r.code, 1, r.out)
    assert.match(r.out, /SSM parameter \/no\/such\/parameter does not exist in us-west-2: set MYMDB_AMI_ID=/)
    assert.deepEqual(await keyPairs(), [])
    assert.deepEqual(await groupsNamed('mymdb-bad-web'), [])
    assert.equal(await iamExists(() => clients.iam.send(new GetRoleCommand({ RoleName: 'mymdb-bad-host' }))), false)
    assert.ok(!existsSync(join(home, '.ssh', 'mymdb-bad.pem')))
  })

  it('the private key cannot be saved: the new key pair is deleted again, nothing else is created', async () => {
    const notADir = join(home, 'plain-file')
    writeFileSync(notADir, '')
    const r = await run(hostMain, [], envFor('bad', { MYMDB_SSH_KEY_FILE: join(notADir, 'k.pem') }))
    assert.equal(r.code, 1, r.out)
    assert.match(r.out, /could not save the private key of mymdb-bad to .*plain-file\/k\.pem .*the key pair was deleted again/)
    assert.deepEqual(await keyPairs(), [])
    assert.deepEqual(await groupsNamed('mymdb-bad-web'), [])
  })

  it('--dry-run: the plan, and nothing changes', async () => {
    const r = await run(hostMain, ['--dry-run'], envFor('one'))
    assert.equal(r.code, 0, r.out)
    for (const res of ['key pair mymdb-one', 'security group mymdb-one-web', 'IAM role mymdb-one-host', 'instance profile mymdb-one-host', 'instance mymdb-one'])
      assert.match(r.out, new RegExp(`${res}\\s+create`))
    assert.match(r.out, /AMI ami-\w+ \(from \/mymdb-test\/ami\)/)
    assert.match(r.out, /\[cost\] about \$\d+\.\d\d a month: 1 x t3\.\w+ instance \$\d+\.\d\d; 1 x \d+ GiB gp3 disk/)
    assert.deepEqual(await keyPairs(), [])
    assert.deepEqual(await groupsNamed('mymdb-one-web'), [])
    assert.equal(launches.length, 0)
    assert.ok(!existsSync(join(home, '.ssh', 'mymdb-one.pem')))
  })

  let firstId = ''
  let firstEip = ''

  it('first run creates key pair, security group, role, profile and a running IMDSv2 instance', async () => {
    const r = await run(hostMain, [], envFor('one'))
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /waiting for SSH on 127\.0\.0\.1:\d+ done/)

    // key file: written 0600 in a 0700 ~/.ssh, and EC2 has the key pair
    const keyFile = join(home, '.ssh', 'mymdb-one.pem')
    assert.equal(statSync(keyFile).mode & 0o777, 0o600)
    assert.equal(statSync(join(home, '.ssh')).mode & 0o777, 0o700)
    assert.match(readFileSync(keyFile, 'utf8'), /PRIVATE KEY/)
    assert.deepEqual(await keyPairs(), ['mymdb-one'])

    // security group: exactly 80/443 from anywhere, 22 from the deployer only; no Docker API
    const groups = await groupsNamed('mymdb-one-web')
    assert.equal(groups.length, 1)
    assert.equal(groups[0]?.VpcId, await defaultVpcId(clients))
    const rules = flattenIngress(groups[0]?.IpPermissions).map((x) => `${x.port} ${x.cidr}`).sort()
    assert.deepEqual(rules, ['22 198.51.100.7/32', '443 0.0.0.0/0', '443 ::/0', '80 0.0.0.0/0', '80 ::/0'])
    assert.ok(!(groups[0]?.IpPermissions ?? []).some((p) => (p.FromPort ?? 0) <= 2376 && (p.ToPort ?? 0) >= 2375))

    // role: EC2 trust, bucket-only inline policy; profile holds the role
    const role = await clients.iam.send(new GetRoleCommand({ RoleName: 'mymdb-one-host' }))
    assert.ok(sameJson(parsePolicyDocument(role.Role?.AssumeRolePolicyDocument), hostPolicies(BUCKET).trust))
    const pol = await clients.iam.send(new GetRolePolicyCommand({ RoleName: 'mymdb-one-host', PolicyName: 'mymdb-one-bucket' }))
    const account = role.Role?.Arn?.split(':')[4] ?? ''
    assert.ok(sameJson(parsePolicyDocument(pol.PolicyDocument), hostPolicies(BUCKET, `arn:aws:iam::${account}:role/mymdb-one-backup`).bucket))
    // the backup role: trusted by the host role with an external id, writes the backup bucket only
    const backupRole = await clients.iam.send(new GetRoleCommand({ RoleName: 'mymdb-one-backup' }))
    const trust = parsePolicyDocument(backupRole.Role?.AssumeRolePolicyDocument)
    const externalId = externalIdOf(trust)
    assert.ok(externalId, JSON.stringify(trust))
    const backupPolicy = await clients.iam.send(new GetRolePolicyCommand({ RoleName: 'mymdb-one-backup', PolicyName: 'mymdb-one-backup-write' }))
    const expected = backupPolicies(`arn:aws:iam::${account}:role/mymdb-one-host`, externalId, `${BUCKET}-backups`, "one")
    assert.ok(sameJson(trust, expected.trust))
    assert.ok(sameJson(parsePolicyDocument(backupPolicy.PolicyDocument), expected.write))
    const profile = await clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: 'mymdb-one-host' }))
    assert.deepEqual(profile.InstanceProfile?.Roles?.map((x) => x.RoleName), ['mymdb-one-host'])

    // instance: running, tagged, key, group, profile, user-data
    const insts = await instancesOf('one')
    assert.equal(insts.length, 1)
    const i = insts[0] as Instance
    firstId = i.InstanceId ?? ''
    assert.equal(i.State?.Name, 'running')
    assert.equal(i.KeyName, 'mymdb-one')
    assert.equal(i.InstanceType, 't3.micro')
    assert.deepEqual(i.SecurityGroups?.map((g) => g.GroupName), ['mymdb-one-web'])
    assert.match(i.IamInstanceProfile?.Arn ?? '', /instance-profile\/mymdb-one-host$/)
    const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key, t.Value]))
    assert.deepEqual({ Name: tags.Name, Project: tags.Project, Stage: tags.Stage }, { Name: 'mymdb-one', Project: 'mymdb', Stage: 'one' })
    const ud = await clients.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: firstId, Attribute: 'userData' }))
    const install = readFileSync(join(REPO, 'scripts', 'install-docker.sh'), 'utf8')
    // the install script, and the SSH host key derived for this launch; its public half is the HostKey tag
    const groupId = i.SecurityGroups?.[0]?.GroupId ?? ''
    const hostKey = deriveHostKey(readFileSync(join(home, '.ssh', 'mymdb-one.pem')), 'one', 1, groupId)
    assert.equal(Buffer.from(ud.UserData?.Value ?? '', 'base64').toString(), withHostKey(renderUserData(install, 'admin'), hostKey))
    assert.equal(tags.HostKey, hostKey.publicLine)
    // its disk: the AMI's root device, encrypted, 8 GiB (MYMDB_DISK_GB), removed with the instance
    const amiRoot = (await clients.ec2.send(new DescribeImagesCommand({ ImageIds: [i.ImageId ?? ''] }))).Images?.[0]?.RootDeviceName
    assert.deepEqual(i.BlockDeviceMappings?.map((b) => b.DeviceName), [amiRoot])
    const root = i.BlockDeviceMappings?.[0]
    assert.equal(root?.Ebs?.DeleteOnTermination, true)
    const volume = (await clients.ec2.send(new DescribeVolumesCommand({ VolumeIds: [root?.Ebs?.VolumeId ?? ''] }))).Volumes?.[0]
    assert.deepEqual([volume?.Encrypted, volume?.Size], [true, 8])

    // the request sent: IMDSv2 required, hop limit 2, a client token, tags on instance + volume
    assert.equal(launches.length, 1)
    const req = launches[0] as RunInstancesCommandInput
    assert.deepEqual(req.MetadataOptions, { HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' })
    assert.ok(req.ClientToken)
    assert.deepEqual(req.TagSpecifications?.map((t) => t.ResourceType), ['instance', 'volume'])

    // the fixed address: one elastic IP, tagged, associated with the instance, its public address
    const eips = await stageAddresses('one')
    assert.equal(eips.length, 1)
    firstEip = eips[0]?.PublicIp ?? ''
    assert.equal(eips[0]?.InstanceId, firstId)
    assert.equal(i.PublicIpAddress, firstEip)
  })

  it('second run creates nothing: same instance, one group, one key pair', async () => {
    const r = await run(hostMain, [], envFor('one'))
    assert.equal(r.code, 0, r.out)
    assert.doesNotMatch(r.out, /\s(create|update|import|start)\s/)
    assert.equal(launches.length, 1, 'no second RunInstances')
    const insts = await instancesOf('one')
    assert.deepEqual(insts.map((i) => i.InstanceId), [firstId])
    assert.equal((await groupsNamed('mymdb-one-web')).length, 1)
    assert.deepEqual(await keyPairs(), ['mymdb-one'])
    assert.deepEqual((await stageAddresses('one')).map((a) => [a.PublicIp, a.InstanceId]), [[firstEip, firstId]])
  })

  it('a new deployer IP: the old SSH rule is revoked, the new one added, the rest untouched', async () => {
    const r = await run(hostMain, ['--no-wait-ssh'], envFor('one', { MYMDB_SSH_CIDR: '203.0.113.9/32' }))
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /security group mymdb-one-web\s+update\s+add 22 from 203\.0\.113\.9\/32, revoke 22 from 198\.51\.100\.7\/32/)
    const rules = flattenIngress((await groupsNamed('mymdb-one-web'))[0]?.IpPermissions).map((x) => `${x.port} ${x.cidr}`).sort()
    assert.deepEqual(rules, ['22 203.0.113.9/32', '443 0.0.0.0/0', '443 ::/0', '80 0.0.0.0/0', '80 ::/0'])
    assert.equal(launches.length, 1)
  })

  it('key pair in EC2 but no local key file: a clear error, nothing launched', async () => {
    const r = await run(hostMain, [], envFor('one', { MYMDB_SSH_KEY_FILE: join(home, 'elsewhere.pem') }))
    assert.equal(r.code, 1, r.out)
    assert.match(r.out, /key pair mymdb-one exists in EC2 but its private key file .*elsewhere\.pem does not/)
    assert.deepEqual((await instancesOf('one')).map((i) => i.InstanceId), [firstId])
  })

  it('stop --aws stops the instance (disk kept); again is a no-op; the host step starts it again', async () => {
    const s1 = await run(stopMain, ['--aws'], envFor('one'))
    assert.equal(s1.code, 0, s1.out)
    // The "SSH port" here hangs up at once: the containers cannot be stopped first, the instance is.
    assert.match(s1.out, /could not stop the containers first \(.+\); stopping the instance anyway/)
    assert.match(s1.out, new RegExp(`instance ${firstId} stopped`))
    assert.equal((await instancesOf('one'))[0]?.State?.Name, 'stopped')
    const s2 = await run(stopMain, ['--aws'], envFor('one'))
    assert.equal(s2.code, 0, s2.out)
    assert.match(s2.out, /already stopped/)

    const r = await run(hostMain, [], envFor('one'))
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /instance mymdb-one\s+start/)
    const insts = await instancesOf('one')
    assert.deepEqual(insts.map((i) => [i.InstanceId, i.State?.Name]), [[firstId, 'running']])
    assert.equal(launches.length, 1)
    // the address survived the stop: the same one, on the same instance
    assert.deepEqual((await stageAddresses('one')).map((a) => [a.PublicIp, a.InstanceId]), [[firstEip, firstId]])
    // (moto gives a restarted instance a new public IP despite its elastic IP; AWS keeps the elastic
    // one, and the host step reports the elastic IP either way)
    assert.match(r.out, new RegExp(`ready: ${firstId} at ${firstEip.replace(/\./g, '\\.')}`))
  })

  it('destroy --dry-run lists and keeps; destroy removes all but the address, the bucket and the key file; again: nothing to remove', async () => {
    const dry = await run(destroyMain, ['--dry-run'], envFor('one'))
    assert.equal(dry.code, 0, dry.out)
    assert.match(dry.out, new RegExp(`instance mymdb-one ${firstId}`))
    assert.equal((await instancesOf('one')).length, 1)

    // the host here answers the SSH port but is no SSH server: no final backup, so nothing goes
    const refused = await run(destroyMain, [], envFor('one'))
    assert.equal(refused.code, 1, refused.out)
    assert.match(refused.out, /no final backup \(cannot reach the host: .*\), so nothing was removed: .*--no-final-backup/)
    assert.equal((await instancesOf('one')).length, 1)
    assert.equal(await iamExists(() => clients.iam.send(new GetRoleCommand({ RoleName: 'mymdb-one-backup' }))), true)

    const d1 = await run(destroyMain, ['--no-final-backup'], envFor('one'))
    assert.equal(d1.code, 0, d1.out)
    assert.match(d1.out, /removed: instance i-\w+, security group mymdb-one-web, key pair mymdb-one, instance profile mymdb-one-host, IAM role mymdb-one-host, IAM role mymdb-one-backup\n/)
    assert.match(d1.out, new RegExp(`the elastic IP ${firstEip.replace(/\./g, '\\.')} is kept: the next deploy of stage one uses it again \\(--release-address releases it\\)`))
    assert.deepEqual((await stageAddresses('one')).map((a) => [a.PublicIp, a.InstanceId || null]), [[firstEip, null]], 'the elastic IP is kept, on no instance')
    assert.match(d1.out, /local private key .*mymdb-one\.pem is kept/)
    const all = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [firstId] }))).Reservations?.[0]?.Instances?.[0]
    assert.equal(all?.State?.Name, 'terminated')
    assert.deepEqual(await groupsNamed('mymdb-one-web'), [])
    assert.deepEqual(await keyPairs(), [])
    assert.equal(await iamExists(() => clients.iam.send(new GetRoleCommand({ RoleName: 'mymdb-one-host' }))), false)
    assert.equal(await iamExists(() => clients.iam.send(new GetRoleCommand({ RoleName: 'mymdb-one-backup' }))), false)
    assert.equal(await iamExists(() => clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: 'mymdb-one-host' }))), false)
    assert.ok(existsSync(join(home, '.ssh', 'mymdb-one.pem')))
    await clients.s3.send(new HeadBucketCommand({ Bucket: BUCKET })) // still there

    const d2 = await run(destroyMain, ['--no-final-backup'], envFor('one'))
    assert.equal(d2.code, 0, d2.out)
    assert.match(d2.out, /nothing to remove/)
  })

  it('after a destroy the kept key file is imported, a new instance launched at the kept address; the address is released only once the domain points elsewhere', async () => {
    const r = await run(hostMain, [], envFor('one'))
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /key pair mymdb-one: imported the public key of/)
    const insts = await instancesOf('one')
    assert.equal(insts.length, 1)
    assert.notEqual(insts[0]?.InstanceId, firstId)
    assert.equal(launches.length, 2)
    assert.notEqual(launches[1]?.ClientToken, launches[0]?.ClientToken, 'a new launch gets a new client token')
    assert.deepEqual((await stageAddresses('one')).map((a) => [a.PublicIp, a.InstanceId]), [[firstEip, insts[0]?.InstanceId]], 'the same address, now on the new instance')

    // the site's name still points at the address: releasing it is refused, nothing removed
    const dns = { MYMDB_DOMAIN: 'one.mymdb.test', MYMDB_DNS_SERVER: pebble.dnsServer }
    await pebble.addA('one.mymdb.test', firstEip)
    const refused = await run(destroyMain, ['--release-address', '--no-final-backup'], envFor('one', dns))
    assert.equal(refused.code, 1, refused.out)
    assert.match(refused.out, new RegExp(`refusing to release the elastic IP ${firstEip.replace(/\./g, '\\.')}: MYMDB_DOMAIN one\\.mymdb\\.test still resolves to it[\\s\\S]*Point the DNS record elsewhere[\\s\\S]*Nothing was removed`))
    assert.equal((await instancesOf('one')).length, 1)
    assert.equal((await stageAddresses('one')).length, 1)

    await pebble.clearA('one.mymdb.test')
    await pebble.addA('one.mymdb.test', '192.0.2.44')
    const d = await run(destroyMain, ['--release-address', '--delete-key-file', '--no-final-backup'], envFor('one', dns))
    assert.equal(d.code, 0, d.out)
    assert.match(d.out, new RegExp(`removed: instance i-\\w+, .*elastic IP ${firstEip.replace(/\./g, '\\.')}`))
    assert.deepEqual(await stageAddresses('one'), [], 'released')
    assert.ok(!existsSync(join(home, '.ssh', 'mymdb-one.pem')))
  })

  it('an interrupted run (stopped after the security group) converges with no twins', async () => {
    const env = envFor('two')
    const { raw, values } = hostSettings(env, tempDir().envFile)
    const log = captureLog()
    const vpcId = await defaultVpcId(clients)
    const keyFile = inspectKeyFile(sshKeyPath(values, raw), 'mymdb-two')
    const plan = planHost(await readHostState(clients, 'two', keyFile, vpcId), { stage: 'two', sshCidr: values.MYMDB_SSH_CIDR ?? '', bucket: BUCKET, backupBucket: `${BUCKET}-backups`, vpcId })
    await applyKeyPair(clients, plan, log)
    await applySecurityGroup(clients, plan, log)
    await applyHostRole(clients, plan, log) // created, but the launch never happened

    const r = await run(hostMain, [], env)
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /key pair mymdb-two\s+exists/)
    assert.match(r.out, /security group mymdb-two-web\s+exists/)
    assert.match(r.out, /IAM role mymdb-two-host\s+exists/)
    assert.match(r.out, /instance mymdb-two\s+create/)
    const again = await run(hostMain, ['--no-wait-ssh'], env)
    assert.equal(again.code, 0, again.out)
    assert.equal((await instancesOf('two')).length, 1)
    assert.equal((await groupsNamed('mymdb-two-web')).length, 1)
    assert.deepEqual(await keyPairs(), ['mymdb-two'])

    const d = await run(destroyMain, ['--no-final-backup'], env)
    assert.equal(d.code, 0, d.out)
    assert.equal((await instancesOf('two')).length, 0)
  })

  it("three hosts in one plan: shared key pair, group and roles, an instance and an address each, in three zones, Swarm's ports open between them only; planned again nothing changes; destroy removes them all", async () => {
    const env = envFor('pair')
    const { raw, values } = hostSettings(env, tempDir().envFile)
    const vpcId = await defaultVpcId(clients)
    const keyFile = () => inspectKeyFile(sshKeyPath(values, raw), 'mymdb-pair')
    const want = { stage: 'pair', sshCidr: SSH_CIDR, bucket: BUCKET, backupBucket: `${BUCKET}-backups`, vpcId }
    const ami = (await clients.ssm.send(new GetParameterCommand({ Name: '/mymdb-test/ami' }))).Parameter?.Value ?? ''
    const launch = async (node: number, securityGroupId: string) => ({ stage: 'pair', node, amiId: ami, instanceType: 't3.micro', keyName: 'mymdb-pair', securityGroupId, instanceProfile: 'mymdb-pair-host', userData: '#!/bin/bash\n', hostKey: deriveHostKey('k', 'pair', node, securityGroupId).publicLine, rootDevice: '/dev/xvda', diskGb: 8 })
    const plan = planHost(await readHostState(clients, 'pair', keyFile(), vpcId, 3), want)
    assert.deepEqual(plan.nodes.map((h) => h.instance.action), ['create', 'create', 'create'])
    const hosts = await applyHost(clients, plan, launch, captureLog())
    assert.equal(hosts.length, 3)
    assert.equal(new Set(hosts.map((h) => h.instanceId)).size, 3)
    const insts = await instancesOf('pair')
    assert.deepEqual(insts.map((i) => i.Tags?.find((t) => t.Key === 'Name')?.Value).sort(), ['mymdb-pair', 'mymdb-pair-2', 'mymdb-pair-3'])
    assert.equal(new Set(insts.map((i) => i.SecurityGroups?.[0]?.GroupId)).size, 1, 'one security group for all')
    assert.equal(new Set(insts.map((i) => i.Placement?.AvailabilityZone)).size, 3, `three zones: ${insts.map((i) => i.Placement?.AvailabilityZone).join(', ')}`)
    // Swarm's ports from the group itself, as the emulator keeps them, and from nowhere else
    const groupId = insts[0]!.SecurityGroups![0]!.GroupId!
    assert.deepEqual(await swarmRules(clients, groupId), [
      `2377/tcp ${groupId} 0`,
      `4789/udp ${groupId} 0`,
      `7946/tcp ${groupId} 0`,
      `7946/udp ${groupId} 0`,
    ])
    const addresses = await stageAddresses('pair')
    assert.deepEqual(addresses.map((a) => a.InstanceId).sort(), hosts.map((h) => h.instanceId).sort(), 'an address each, on its own instance')
    assert.deepEqual(hosts.map((h) => h.publicIp).sort(), addresses.map((a) => a.PublicIp).sort())

    const again = planHost(await readHostState(clients, 'pair', keyFile(), vpcId, 3), want)
    assert.ok(again.items.every((p) => p.action === 'exists'), JSON.stringify(again.items))
    assert.deepEqual(again.nodes.map((h) => h.instance.existing?.instanceId), hosts.map((h) => h.instanceId))
    // fewer hosts than there are: host 1 kept, the others planned for removal (after the start step has taken them out of the swarm), Swarm's ports open till then
    const one = planHost(await readHostState(clients, 'pair', keyFile(), vpcId), want)
    assert.deepEqual(one.nodes.map((h) => h.instance.existing?.instanceId), [hosts[0]?.instanceId])
    assert.deepEqual(one.retire.map((r) => `${r.node} ${r.instance.instanceId}`), [`2 ${hosts[1]?.instanceId}`, `3 ${hosts[2]?.instanceId}`])
    assert.deepEqual(one.items.filter((i) => i.action === 'remove').map((i) => i.resource), ['instance mymdb-pair-2', 'instance mymdb-pair-3'])
    assert.deepEqual(one.securityGroup.self, { add: [], revoke: [] })

    const d = await run(destroyMain, ['--no-final-backup', '--delete-key-file', '--release-address'], env)
    assert.equal(d.code, 0, d.out)
    assert.match(d.out, /no MYMDB_DOMAIN to check: make sure no DNS record points at [\d.]+, [\d.]+, [\d.]+ before it is released/)
    assert.match(d.out, /instance mymdb-pair i-\S+ \(and its disk\)/)
    assert.match(d.out, /instance mymdb-pair-2 i-\S+ \(and its disk\)/)
    assert.match(d.out, /instance mymdb-pair-3 i-\S+ \(and its disk\)/)
    assert.equal((await instancesOf('pair')).length, 0)
    assert.deepEqual(await stageAddresses('pair'), [])
  })

  it('the answer to the launch is lost (connection reset mid-call): exit 1 saying run again; the next run finds the instance, no twin', async () => {
    // Between the task and moto: RunInstances reaches moto (the instance exists), its answer never
    // comes back, and the SDK's retries are cut before they reach moto (moto ignores the ClientToken
    // that makes retries safe on AWS).
    const proxy = await startFaultProxy(Number(new URL(moto.endpoint).port))
    try {
      const lost = proxy.loseAnswerTo('Action=RunInstances')
      const broken = await run(hostMain, ['--no-wait-ssh'], envFor('three', { AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}`, AWS_MAX_ATTEMPTS: '3' }))
      assert.equal(broken.code, 1, broken.out)
      assert.match(broken.out, /could not launch the instance: the connection to AWS broke \(.+\)\. .*run the same npm command again/)
      assert.doesNotMatch(broken.out, /\n\s+at /, 'a one-line message, not a stack trace')
      assert.equal(lost.count(), 3, 'the SDK tried three times')
      assert.equal((await instancesOf('three')).length, 1, 'the first launch happened')

      const again = await run(hostMain, ['--no-wait-ssh'], envFor('three'))
      assert.equal(again.code, 0, again.out)
      assert.match(again.out, /instance mymdb-three\s+exists/)
      assert.equal((await instancesOf('three')).length, 1)
      assert.equal((await groupsNamed('mymdb-three-web')).length, 1)
    } finally {
      await proxy.close()
    }
    const d = await run(destroyMain, ['--delete-key-file', '--no-final-backup'], envFor('three'))
    assert.equal(d.code, 0, d.out)
    assert.equal((await instancesOf('three')).length, 0)
  })

  it('destroy --delete-bucket: wrong name exit 2, dry run keeps, another stage refused, then bucket and files gone', async () => {
    const bucket = 'mymdb-uploads-systest-del'
    await clients.s3.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: 'us-west-2' } }))
    await clients.s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: 'Project', Value: 'mymdb' }, { Key: 'Stage', Value: 'three' }] } }))
    for (const key of ['uploads/a.jpg', 'uploads/b.jpg', 'other/c.txt'])
      await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'poster' }))
    const env = envFor('three', { DJANGO_UPLOAD_S3_BUCKET: bucket })

    const wrong = await run(destroyMain, ['--delete-bucket', 'mymdb-uploads-systest'], env)
    assert.equal(wrong.code, 2, wrong.out)
    assert.match(wrong.out, /--delete-bucket must be given the upload bucket's name exactly/)
    assert.ok(await bucketExists(bucket))

    const dry = await run(destroyMain, ['--delete-bucket', bucket, '--dry-run'], env)
    assert.equal(dry.code, 0, dry.out)
    assert.match(dry.out, /S3 bucket mymdb-uploads-systest-del and all its files \(3 objects\)/)
    assert.ok(await bucketExists(bucket))

    // the same bucket seen from another stage: refused by its tags
    const other = await run(destroyMain, ['--delete-bucket', bucket, '--no-final-backup'], envFor('four', { DJANGO_UPLOAD_S3_BUCKET: bucket }))
    assert.equal(other.code, 1, other.out)
    assert.match(other.out, /refusing to delete bucket mymdb-uploads-systest-del: it is not tagged Project=mymdb, Stage=four/)
    assert.ok(await bucketExists(bucket))

    const d = await run(destroyMain, ['--delete-bucket', bucket, '--no-final-backup'], env)
    assert.equal(d.code, 0, d.out)
    assert.match(d.out, /removed: S3 bucket mymdb-uploads-systest-del \(3 object versions\)/)
    assert.equal(await bucketExists(bucket), false)
    assert.ok(await bucketExists(BUCKET), 'the other bucket is untouched')

    const again = await run(destroyMain, ['--delete-bucket', bucket, '--no-final-backup'], env)
    assert.equal(again.code, 0, again.out)
    assert.match(again.out, /nothing to remove/)
  })
})

describe('the host and backup roles, with IAM enforced by the emulator', { timeout: 5 * 60_000 }, () => {
  // moto checks identity policies once its auth is switched on (POST /moto-api/reset-auth); it
  // does not check a trust policy's conditions, so the external id itself is not exercised here.
  let moto: Moto
  before(async () => {
    moto = await startMoto('mymdb-rig-moto-iam')
  })
  after(async () => {
    await moto?.stop()
  })

  it("the host role reads and writes uploads/ only and deletes nothing; it pulls the stage's ECR repositories and cannot push or read others; the backup role may write backups under rolling/ and kept/ and nothing else: not read, list or delete them", async () => {
    const admin = awsClients('us-west-2', { ...process.env, ...moto.env })
    const put = (c: AwsClients, Bucket: string, Key: string) => c.s3.send(new PutObjectCommand({ Bucket, Key, Body: 'x' }))
    for (const Bucket of ['iam-uploads', 'iam-uploads-backups', 'someone-else']) await admin.s3.send(new CreateBucketCommand({ Bucket, CreateBucketConfiguration: { LocationConstraint: 'us-west-2' } }))
    await put(admin, 'iam-uploads-backups', 'mymdb-iam-20261127T031700Z.tar')
    // the roles exactly as the host step plans and applies them
    const state = await readHostState(admin, 'iam', inspectKeyFile(join(tempDir().dir, 'none.pem'), 'mymdb-iam'), '')
    for (const repositoryName of ['mymdb-web', 'mymdb-db', 'someone-elses']) await admin.ecr.send(new CreateRepositoryCommand({ repositoryName }))
    const plan = planHost(state, { stage: 'iam', sshCidr: '203.0.113.7/32', bucket: 'iam-uploads', backupBucket: 'iam-uploads-backups', ecrPull: { region: 'us-west-2', repositories: ['mymdb-web', 'mymdb-db'] } })
    await applyHostRole(admin, plan, captureLog())
    // what the instance gets from IMDS: the host role's credentials
    const creds = async (c: AwsClients, RoleArn: string, ExternalId?: string) => {
      const cr = (await c.sts.send(new AssumeRoleCommand({ RoleArn, RoleSessionName: 'test', ExternalId }))).Credentials!
      return awsClients('us-west-2', { ...process.env, ...moto.env, AWS_ACCESS_KEY_ID: cr.AccessKeyId, AWS_SECRET_ACCESS_KEY: cr.SecretAccessKey, AWS_SESSION_TOKEN: cr.SessionToken })
    }
    const host = await creds(admin, plan.backup.hostRoleArn)
    const enforce = await fetch(`${moto.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' })
    assert.equal(enforce.status, 200)
    try {
      const denied = (p: Promise<unknown>) => assert.rejects(p, /AccessDenied|not authorized/)
      await put(host, 'iam-uploads', 'uploads/p.png')
      assert.equal(await (await host.s3.send(new GetObjectCommand({ Bucket: 'iam-uploads', Key: 'uploads/p.png' }))).Body?.transformToString(), 'x')
      // a compromised container cannot wipe the posters, nor write beside them
      await denied(host.s3.send(new DeleteObjectCommand({ Bucket: 'iam-uploads', Key: 'uploads/p.png' })))
      await denied(put(host, 'iam-uploads', 'elsewhere.txt'))
      await denied(put(host, 'someone-else', 'x'))
      await denied(put(host, 'iam-uploads-backups', 'x.tar'))
      // the registry: a token, and the stage's repositories read-only (the emulator answers ECR's
      // denials in a form the SDK cannot read: the HTTP status says it)
      const deniedEcr = async (p: Promise<unknown>) => {
        const e = (await p.then(() => null, (err: unknown) => err)) as { $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number } } | null
        assert.ok(e, 'denied')
        assert.equal(e.$metadata?.httpStatusCode ?? e.$response?.statusCode, 403, String(e))
      }
      assert.ok((await host.ecr.send(new GetAuthorizationTokenCommand({}))).authorizationData?.[0]?.authorizationToken)
      const image = { repositoryName: 'mymdb-web', imageIds: [{ imageTag: 'v1' }] }
      assert.deepEqual((await host.ecr.send(new BatchGetImageCommand(image))).images, [])
      await host.ecr.send(new BatchGetImageCommand({ ...image, repositoryName: 'mymdb-db' }))
      await deniedEcr(host.ecr.send(new BatchGetImageCommand({ ...image, repositoryName: 'someone-elses' })))
      await deniedEcr(host.ecr.send(new PutImageCommand({ repositoryName: 'mymdb-web', imageManifest: '{}', imageTag: 'evil' })))
      await deniedEcr(host.ecr.send(new InitiateLayerUploadCommand({ repositoryName: 'mymdb-web' })))
      await deniedEcr(host.ecr.send(new DeleteRepositoryCommand({ repositoryName: 'mymdb-web', force: true })))
      await deniedEcr(host.ecr.send(new DescribeRepositoriesCommand({})))
      await denied(host.s3.send(new GetObjectCommand({ Bucket: 'iam-uploads-backups', Key: 'mymdb-iam-20261127T031700Z.tar' })))
      const backup = await creds(host, plan.backup.roleArn, plan.backup.externalId)
      // only where lifecycle rules keep what it writes: rolling/ and kept/
      await put(backup, 'iam-uploads-backups', 'rolling/scheduled.tar')
      await put(backup, 'iam-uploads-backups', 'kept/final/mymdb-iam-20261128T031700Z.tar')
      await denied(put(backup, 'iam-uploads-backups', 'mymdb-iam-20261128T031700Z.tar'))
      await denied(backup.s3.send(new GetObjectCommand({ Bucket: 'iam-uploads-backups', Key: 'mymdb-iam-20261127T031700Z.tar' })))
      await denied(backup.s3.send(new DeleteObjectCommand({ Bucket: 'iam-uploads-backups', Key: 'mymdb-iam-20261127T031700Z.tar' })))
      await denied(backup.s3.send(new DeleteObjectCommand({ Bucket: 'iam-uploads-backups', Key: 'rolling/scheduled.tar' })))
      await denied(backup.s3.send(new ListObjectsV2Command({ Bucket: 'iam-uploads-backups' })))
      await denied(put(backup, 'iam-uploads', 'uploads/q.png'))
      await denied(put(backup, 'someone-else', 'x'))
    } finally {
      await fetch(`${moto.endpoint}/moto-api/reset-auth`, { method: 'POST', body: 'inf' })
    }
  })
})
