// The front door of several hosts, the pure parts: what status says about it, and the plans'
// refusals (the resources against the emulator: tests/system/aws-front.test.ts).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { frontDoorLines, planBalancer } from '../../tasks/lib/aws/balancer.ts'
import { planSharedFs } from '../../tasks/lib/aws/sharedfs.ts'
import { UserError } from '../../tasks/lib/errors.ts'

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

  it('an EFS file system that is not encrypted: refused, naming the fix (EFS cannot encrypt one in place)', () => {
    assert.throws(
      () => planSharedFs('prod', 'vpc-1', { fileSystem: { id: 'fs-1', encrypted: false, state: 'available' }, mountTargets: [], securityGroup: null }, ZONES),
      (e: unknown) => e instanceof UserError && /mymdb-prod-front \(fs-1\) is not encrypted, and EFS cannot encrypt one in place: delete it/.test(e.message),
    )
  })
})
