// The front door of a stage of several hosts (npm run front: tasks/lib/aws/balancer.ts,
// sharedfs.ts) against moto, read back with the SDK: the load balancer, its addresses, target
// groups and listeners, the fronts' EFS with a mount target per zone admitting the hosts only;
// a re-run makes no twins, what drifted is put back, a host added or taken away is registered or
// drained, and destroy's removal leaves nothing (and never takes a host's address for the front's).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { AuthorizeSecurityGroupIngressCommand, CreateSecurityGroupCommand, DescribeAddressesCommand, DescribeSecurityGroupsCommand, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2'
import { DescribeFileSystemsCommand, DescribeMountTargetSecurityGroupsCommand, DescribeMountTargetsCommand } from '@aws-sdk/client-efs'
import {
  DescribeListenersCommand,
  DescribeLoadBalancerAttributesCommand,
  DescribeLoadBalancersCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  DeregisterTargetsCommand,
  ModifyTargetGroupCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2'
import { awsClients, type AwsClients } from '../../tasks/lib/aws/clients.ts'
import { readElasticIps } from '../../tasks/lib/aws/address.ts'
import { frontInventory, removeFront } from '../../tasks/lib/aws/frontteardown.ts'
import { defaultVpcId } from '../../tasks/lib/aws/securitygroup.ts'
import { readZoneSubnets, type ZoneSubnet } from '../../tasks/lib/aws/zones.ts'
import { nodeTags } from '../../tasks/lib/names.ts'
import { main } from '../../tasks/front.ts'
import { startMoto, type Moto } from '../rig/moto.ts'
import { buildSshHostImage } from '../rig/sshhost.ts'
import { mountScript } from '../../tasks/lib/remote/frontstore.ts'
import { $ } from 'zx'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { captureLog } from '../unit/fakes.ts'

const STAGE = 'fronttest'
const REGION = 'us-west-2'

describe('the front door of several hosts (moto)', { timeout: 5 * 60_000 }, () => {
  let moto: Moto
  let clients: AwsClients
  let vpcId = ''
  let hosts = ''
  let zones: ZoneSubnet[] = []
  const instances: string[] = []

  /** npm run front with the stage's settings (no .env file). */
  const runTask = async (argv: string[], extra: Record<string, string> = {}) => {
    const log = captureLog()
    const code = await main(argv, { PATH: process.env.PATH, HOME: process.env.HOME, ...moto.env, AWS_REGION: REGION, MYMDB_STAGE: STAGE, MYMDB_HOSTS: '2', ...extra }, { log, envFile: '/nonexistent/.env', interactive: false, pollSeconds: 0 })
    return { code, text: log.text() }
  }
  /** A host of the stage (as the host step tags it) in a zone. */
  const launch = async (node: number, zone: ZoneSubnet) => {
    const r = await clients.ec2.send(
      new RunInstancesCommand({ ImageId: 'ami-12c6146b', MinCount: 1, MaxCount: 1, InstanceType: 't3.small', SubnetId: zone.subnetId, SecurityGroupIds: [hosts], TagSpecifications: [{ ResourceType: 'instance', Tags: nodeTags(STAGE, node) }] }),
    )
    return r.Instances![0]!.InstanceId!
  }
  const lb = async () => (await clients.elb.send(new DescribeLoadBalancersCommand({ Names: ['mymdb-fronttest'] }))).LoadBalancers![0]!
  const group = async (name: string) => (await clients.elb.send(new DescribeTargetGroupsCommand({ Names: [name] }))).TargetGroups![0]!
  const targets = async (name: string) => {
    const h = await clients.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: (await group(name)).TargetGroupArn }))
    return (h.TargetHealthDescriptions ?? []).map((d) => `${d.Target!.Id}:${d.Target!.Port}`).sort()
  }
  const actions = (text: string) => [...text.matchAll(/^\[front\] {3}(.+?) {2,}(exists|create|update) /gm)].map((m) => `${m[1]!.trim()} ${m[2]}`)

  before(async () => {
    moto = await startMoto('mymdb-rig-moto-front')
    clients = awsClients(REGION, moto.env)
    vpcId = await defaultVpcId(clients)
    zones = await readZoneSubnets(clients, vpcId)
    hosts = (await clients.ec2.send(new CreateSecurityGroupCommand({ GroupName: `mymdb-${STAGE}-web`, Description: 'the hosts', VpcId: vpcId }))).GroupId!
    instances.push(await launch(1, zones[0]!), await launch(2, zones[1]!))
  })
  after(async () => {
    await moto?.stop()
  })

  it('made from nothing: a network load balancer on an address per zone, TCP 80 and 443 to both hosts, the fronts\' storage encrypted and admitting the hosts only', async () => {
    const dry = await runTask(['--dry-run'])
    assert.equal(dry.code, 0, dry.text)
    assert.ok(actions(dry.text).every((a) => a.endsWith(' create')), dry.text)
    assert.equal(actions(dry.text).length, 11, dry.text)
    assert.equal((await clients.elb.send(new DescribeLoadBalancersCommand({}))).LoadBalancers?.length ?? 0, 0, 'a dry run makes nothing')

    const r = await runTask([])
    assert.equal(r.code, 0, r.text)
    const b = await lb()
    assert.deepEqual([b.Type, b.Scheme, b.AvailabilityZones!.map((z) => z.ZoneName).sort()], ['network', 'internet-facing', [zones[0]!.zone, zones[1]!.zone]])
    assert.match(r.text, new RegExp(`\\[front\\] mymdb-fronttest: ${b.DNSName!.replace(/\./g, '\\.')} at \\d+\\.\\d+\\.\\d+\\.\\d+, \\d+\\.`))
    const attrs = await clients.elb.send(new DescribeLoadBalancerAttributesCommand({ LoadBalancerArn: b.LoadBalancerArn }))
    assert.equal(attrs.Attributes!.find((a) => a.Key === 'load_balancing.cross_zone.enabled')?.Value, 'true')
    const eips = (await clients.ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }] }))).Addresses!
    assert.deepEqual(eips.map((a) => a.Tags!.find((t) => t.Key === 'Name')!.Value).sort(), [`mymdb-fronttest-front-${zones[0]!.zone}`, `mymdb-fronttest-front-${zones[1]!.zone}`])
    for (const [name, port] of [['mymdb-fronttest-http', 80], ['mymdb-fronttest-https', 443]] as const) {
      const g = await group(name)
      assert.deepEqual([g.Protocol, g.Port, g.TargetType, g.HealthCheckProtocol, g.HealthCheckIntervalSeconds, g.HealthyThresholdCount, g.UnhealthyThresholdCount], ['TCP', port, 'instance', 'TCP', 10, 2, 2])
      const ga = await clients.elb.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: g.TargetGroupArn }))
      assert.equal(ga.Attributes!.find((a) => a.Key === 'deregistration_delay.timeout_seconds')?.Value, '30')
      assert.deepEqual(await targets(name), instances.map((i) => `${i}:${port}`).sort())
    }
    const listeners = (await clients.elb.send(new DescribeListenersCommand({ LoadBalancerArn: b.LoadBalancerArn }))).Listeners!
    assert.deepEqual(listeners.map((l) => [l.Protocol, l.Port, l.DefaultActions![0]!.TargetGroupArn]).sort((x, y) => Number(x[1]) - Number(y[1])), [
      ['TCP', 80, (await group('mymdb-fronttest-http')).TargetGroupArn],
      ['TCP', 443, (await group('mymdb-fronttest-https')).TargetGroupArn],
    ])

    const fs = (await clients.efs.send(new DescribeFileSystemsCommand({ CreationToken: 'mymdb-fronttest-front' }))).FileSystems!
    assert.equal(fs.length, 1)
    assert.equal(fs[0]!.Encrypted, true)
    const mts = (await clients.efs.send(new DescribeMountTargetsCommand({ FileSystemId: fs[0]!.FileSystemId }))).MountTargets!
    assert.deepEqual(mts.map((m) => m.SubnetId).sort(), [zones[0]!.subnetId, zones[1]!.subnetId].sort())
    const nfs = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['mymdb-fronttest-front-nfs'] }] }))).SecurityGroups![0]!
    for (const m of mts) assert.deepEqual((await clients.efs.send(new DescribeMountTargetSecurityGroupsCommand({ MountTargetId: m.MountTargetId }))).SecurityGroups, [nfs.GroupId])
    assert.deepEqual(nfs.IpPermissions!.map((p) => [p.IpProtocol, p.FromPort, p.ToPort, p.UserIdGroupPairs!.map((u) => u.GroupId), p.IpRanges!.length]), [['tcp', 2049, 2049, [hosts], 0]])
    // the hosts' own addresses are not confused with the balancer's
    assert.deepEqual(await readElasticIps(clients, STAGE), [])
  })

  it('run again: nothing to do and no twins', async () => {
    const r = await runTask([])
    assert.equal(r.code, 0, r.text)
    assert.deepEqual(actions(r.text).filter((a) => !a.endsWith(' exists')), [])
    assert.equal((await clients.ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }] }))).Addresses!.length, 2)
    assert.equal((await clients.elb.send(new DescribeTargetGroupsCommand({}))).TargetGroups!.length, 2)
  })

  it('drift put back: a host deregistered, the health check changed, SSH opened to the world on the storage', async () => {
    const https = await group('mymdb-fronttest-https')
    await clients.elb.send(new DeregisterTargetsCommand({ TargetGroupArn: https.TargetGroupArn, Targets: [{ Id: instances[1]!, Port: 443 }] }))
    await clients.elb.send(new ModifyTargetGroupCommand({ TargetGroupArn: https.TargetGroupArn, HealthCheckIntervalSeconds: 30 }))
    const nfs = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['mymdb-fronttest-front-nfs'] }] }))).SecurityGroups![0]!
    await clients.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: nfs.GroupId, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] }))
    const r = await runTask([])
    assert.equal(r.code, 0, r.text)
    assert.deepEqual(actions(r.text).filter((a) => !a.endsWith(' exists')), ['target group mymdb-fronttest-https update', 'security group mymdb-fronttest-front-nfs update'])
    assert.match(r.text, new RegExp(`health check put back, register ${instances[1]}`))
    assert.deepEqual(await targets('mymdb-fronttest-https'), instances.map((i) => `${i}:443`).sort())
    assert.equal((await group('mymdb-fronttest-https')).HealthCheckIntervalSeconds, 10)
    const after = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [nfs.GroupId!] }))).SecurityGroups![0]!
    assert.deepEqual(after.IpPermissions!.map((p) => p.FromPort), [2049])
  })

  it('a third host in a third zone: its zone, address and mount target added, it is registered; taken away again: drained from both groups', async () => {
    instances.push(await launch(3, zones[2]!))
    const three = await runTask([], { MYMDB_HOSTS: '3' })
    assert.equal(three.code, 0, three.text)
    assert.deepEqual(actions(three.text).filter((a) => !a.endsWith(' exists')).sort(), [
      `EFS mount target in ${zones[2]!.zone} create`,
      `Elastic IP mymdb-fronttest-front-${zones[2]!.zone} create`,
      'load balancer mymdb-fronttest update',
      'target group mymdb-fronttest-http update',
      'target group mymdb-fronttest-https update',
    ])
    assert.equal((await lb()).AvailabilityZones!.length, 3)
    assert.deepEqual(await targets('mymdb-fronttest-http'), instances.map((i) => `${i}:80`).sort())

    const two = await runTask([], { MYMDB_HOSTS: '2' })
    assert.equal(two.code, 0, two.text)
    assert.match(two.text, new RegExp(`drain and deregister ${instances[2]}`))
    assert.deepEqual(await targets('mymdb-fronttest-http'), instances.slice(0, 2).map((i) => `${i}:80`).sort())
    assert.deepEqual(await targets('mymdb-fronttest-https'), instances.slice(0, 2).map((i) => `${i}:443`).sort())
    await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instances[2]!] }))
  })

  it('npm run front is refused for one host (exit 2), before any AWS call', async () => {
    const r = await runTask([], { MYMDB_HOSTS: '1', AWS_ENDPOINT_URL: 'http://127.0.0.1:9' })
    assert.equal(r.code, 2, r.text)
    assert.match(r.text, /MYMDB_HOSTS is 1: .*the front door is for several hosts/)
  })

  it("destroy's removal: balancer, groups, addresses, mount targets, file system and NFS group gone; nothing left to find", async () => {
    const inv = await frontInventory(clients, STAGE, hosts)
    assert.ok(inv)
    const log = captureLog()
    const removed = await removeFront(clients, STAGE, inv, log, 0)
    assert.deepEqual(removed.map((r) => r.split(' ').slice(0, 2).join(' ')), [
      'load balancer mymdb-fronttest',
      'target group mymdb-fronttest-http',
      'target group mymdb-fronttest-https',
      'elastic IP mymdb-fronttest-front-' + zones[0]!.zone,
      'elastic IP mymdb-fronttest-front-' + zones[1]!.zone,
      'elastic IP mymdb-fronttest-front-' + zones[2]!.zone,
      'EFS file system mymdb-fronttest-front',
      'security group mymdb-fronttest-front-nfs',
    ].map((r) => r.split(' ').slice(0, 2).join(' ')))
    assert.equal(await frontInventory(clients, STAGE, hosts), null)
    assert.equal((await clients.ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }] }))).Addresses!.length, 0)
    assert.equal((await clients.efs.send(new DescribeFileSystemsCommand({}))).FileSystems!.length, 0)
  })

  it("on a host (Debian, the rig's host image; mount and sudo stand-ins: no NFS here): the storage goes into /etc/fstab once and is mounted, the front's directory made; run again, nothing changes", async () => {
    const image = await buildSshHostImage()
    const script = mountScript('fs-0123abcd.efs.us-west-2.amazonaws.com')
    // sudo runs the command (as root already); mount records and marks; mountpoint reads the mark
    const shims = mkdtempSync(join(tmpdir(), 'mymdb-shims-'))
    const shim = (name: string, body: string) => writeFileSync(join(shims, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 })
    shim('sudo', '[ "$1" = -n ] && shift\nexec "$@"')
    shim('mount', 'echo "$@" >>/tmp/mounts; touch /tmp/mounted')
    shim('mountpoint', '[ -e /tmp/mounted ]')
    shim('findmnt', 'echo fs-0123abcd.efs.us-west-2.amazonaws.com:/')
    shim('mount.nfs4', 'exit 0')
    const steps = `echo "# the image's own" >>/etc/fstab; sh -c "$1" && sh -c "$1" && echo --- && cat /etc/fstab && echo --- && cat /tmp/mounts && echo --- && stat -c %a /mnt/mymdb-front/caddy`
    const r = await $({ nothrow: true, quiet: true })`docker run --rm -v ${`${shims}:/shim:ro`} -e PATH=/shim:/usr/sbin:/usr/bin:/sbin:/bin --entrypoint sh ${image} -c ${steps} sh ${script}`
    rmSync(shims, { recursive: true, force: true })
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const [said, fstab, mounts, mode] = r.stdout.split('---\n')
    assert.deepEqual(said!.trim().split('\n'), [
      '/mnt/mymdb-front: fs-0123abcd.efs.us-west-2.amazonaws.com mounted (NFS 4.1, in /etc/fstab)',
      '/mnt/mymdb-front: fs-0123abcd.efs.us-west-2.amazonaws.com:/ is mounted there',
    ])
    const lines = fstab!.trim().split('\n')
    assert.ok(lines.includes("# the image's own"), fstab)
    assert.deepEqual(lines.filter((l) => l.includes('/mnt/mymdb-front')), ['fs-0123abcd.efs.us-west-2.amazonaws.com:/ /mnt/mymdb-front nfs4 nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,_netdev 0 0'])
    assert.deepEqual(mounts!.trim().split('\n'), ['/mnt/mymdb-front'])
    assert.equal(mode!.trim(), '700')
    assert.throws(() => mountScript('fs-1; rm -rf /'), /not a file system address/)
  })
})
