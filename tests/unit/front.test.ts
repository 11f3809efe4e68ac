// The front door of several hosts, the pure parts: what status says about it, and the plans'
// refusals (the resources against the emulator: tests/system/aws-front.test.ts).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { frontDoorLines, planBalancer } from '../../tasks/lib/aws/balancer.ts'
import { removeFront, type FrontInventory } from '../../tasks/lib/aws/frontteardown.ts'
import { planSharedFs } from '../../tasks/lib/aws/sharedfs.ts'
import { UserError } from '../../tasks/lib/errors.ts'
import { frontResources } from '../../tasks/lib/names.ts'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'
import { captureLog } from './fakes.ts'

const ZONES = [
  { zone: 'us-west-2a', subnetId: 'subnet-a' },
  { zone: 'us-west-2b', subnetId: 'subnet-b' },
]

describe('the front door', () => {
  it('status: its name and addresses, then each host by number with its health on both ports (one word when they agree)', () => {
    const hosts = new Map([
      [1, { instanceId: 'i-1' }],
      [2, { instanceId: 'i-2' }],
    ])
    const door = {
      dnsName: 'mymdb-prod-1.elb.example',
      addresses: ['198.51.100.7', '198.51.100.8'],
      targets: [
        { id: 'i-2', port: 80, state: 'healthy' },
        { id: 'i-1', port: 80, state: 'healthy' },
        { id: 'i-1', port: 443, state: 'healthy' },
        { id: 'i-2', port: 443, state: 'unhealthy' },
        { id: 'i-9', port: 80, state: 'draining' },
      ],
    }
    assert.deepEqual(frontDoorLines(door, hosts), [
      '  front door: mymdb-prod-1.elb.example at 198.51.100.7, 198.51.100.8',
      '    behind it: host 1 healthy; host 2 80 healthy, 443 unhealthy; i-9 80 draining, 443 not registered',
    ])
    assert.deepEqual(frontDoorLines({ ...door, addresses: [], targets: [] }, hosts)[1], '    behind it: no host')
  })

  it('a new balancer: every zone, an address each, both groups with every host, both listeners', () => {
    const p = planBalancer('prod', 'vpc-1', { balancer: null, addresses: [], targetGroups: [], listeners: [] }, ZONES, ['i-1', 'i-2'])
    assert.deepEqual(p.newAddresses, ['us-west-2a', 'us-west-2b'])
    assert.deepEqual(p.targetGroups.map((t) => [t.port, t.arn, t.register]), [[80, null, ['i-1', 'i-2']], [443, null, ['i-1', 'i-2']]])
    assert.deepEqual(p.lines.map((l) => l.action), ['create', 'create', 'create', 'create', 'create', 'create', 'create'])
  })

  it('the hosts registered: a missing one registered, one no longer wanted deregistered, one being drained but wanted again registered again', () => {
    const healthCheck = { protocol: 'TCP', intervalSeconds: 10, healthy: 2, unhealthy: 2 }
    const group = (port: 80 | 443) => ({ port, arn: `arn:${port}`, healthCheck, targets: [{ id: 'i-1', state: 'healthy' }, { id: 'i-3', state: 'healthy' }, { id: 'i-2', state: 'draining' }] })
    const p = planBalancer('prod', 'vpc-1', { balancer: null, addresses: [], targetGroups: [group(80), group(443)], listeners: [] }, ZONES, ['i-1', 'i-2', 'i-4'])
    assert.deepEqual(p.targetGroups.map((t) => [t.port, t.register, t.deregister]), [[80, ['i-2', 'i-4'], ['i-3']], [443, ['i-2', 'i-4'], ['i-3']]])
  })

  it("the balancer's addresses are told from the hosts' by their Name tag", () => {
    const n = frontResources('prod')
    assert.equal(n.addressZone(n.address('us-west-2a')), 'us-west-2a')
    for (const other of ['mymdb-prod', 'mymdb-prod-2', 'mymdb-prod-front-', 'mymdb-qa-front-us-west-2a', undefined]) assert.equal(n.addressZone(other), undefined, String(other))
  })

  it('an EFS file system that is not encrypted: refused, naming the fix (EFS cannot encrypt one in place)', () => {
    assert.throws(
      () => planSharedFs('prod', 'vpc-1', { fileSystem: { id: 'fs-1', encrypted: false, state: 'available' }, mountTargets: [], securityGroup: null }, ZONES),
      (e: unknown) => e instanceof UserError && /mymdb-prod-front \(fs-1\) is not encrypted, and EFS cannot encrypt one in place: delete it/.test(e.message),
    )
  })
})

describe("destroy: the balancer's addresses", () => {
  const inventory = { balancer: { balancer: null, targetGroups: [], addresses: [{ allocationId: 'eipalloc-1', publicIp: '198.51.100.7', zone: 'us-east-1a' }] }, sharedFs: { fileSystem: null, mountTargets: [], securityGroup: null } } as unknown as FrontInventory
  /** An EC2 client whose ReleaseAddress fails with `failures` in turn, then succeeds; DescribeAddresses shows the address on an interface while `held()`. */
  function ec2(failures: string[], held: () => boolean) {
    const sent: string[] = []
    const client = {
      send: async (cmd: { constructor: { name: string } }) => {
        const name = cmd.constructor.name.replace(/Command$/, '')
        sent.push(name)
        if (name === 'DescribeAddresses') return { Addresses: [{ AllocationId: 'eipalloc-1', ...(held() ? { NetworkInterfaceId: 'eni-elb' } : {}) }] }
        const code = failures.shift()
        if (code) throw Object.assign(new Error(code), { name: code, $metadata: { httpStatusCode: 400 } })
        return {}
      },
    }
    return { sent, clients: { ec2: client } as unknown as AwsClients }
  }

  it("waits while AWS refuses to release an address still on the deleted balancer's interface (AuthFailure or InUse), then releases it", async () => {
    let holds = 2
    const { sent, clients } = ec2(['AuthFailure', 'InvalidIPAddress.InUse', 'AuthFailure'], () => holds-- > 0)
    const removed = await removeFront(clients, 'qa', inventory, captureLog(), 1)
    assert.deepEqual(removed, ['elastic IP mymdb-qa-front-us-east-1a 198.51.100.7'])
    assert.deepEqual(sent, ['ReleaseAddress', 'DescribeAddresses', 'ReleaseAddress', 'ReleaseAddress', 'DescribeAddresses', 'ReleaseAddress'])
  })

  it('an AuthFailure for an address on no interface is a real refusal: reported at once, not waited out', async () => {
    const { sent, clients } = ec2(['AuthFailure', 'AuthFailure'], () => false)
    await assert.rejects(removeFront(clients, 'qa', inventory, captureLog(), 1), /could not release the elastic IP 198\.51\.100\.7: AWS refused the credentials.*\(AuthFailure\)/)
    assert.deepEqual(sent, ['ReleaseAddress', 'DescribeAddresses'])
  })
})
