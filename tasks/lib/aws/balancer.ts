// The front door of a stage with several hosts: one internet-facing Network Load Balancer with an
// Elastic IP in each zone the hosts run in (addresses that stay, for a DNS record), passing TCP 80
// and 443 through to the fronts on every host (TLS ends on the hosts, with the one certificate
// their shared storage holds). Cross-zone balancing on, so that each host gets its share however
// the hosts are spread. A target group per port checks each host's front (TCP, every 10 s, 2
// checks either way) and drains a host taken out for 30 s. Found again by name and tags.
import type { Log } from '../log.ts'
import { frontResources, nameTag, stageTagFilters, stageTags } from '../names.ts'
import { EC2, ELB, aws, awsErrorCode, type AwsClients } from './clients.ts'
import type { PlanLine } from './plan.ts'
import type { ZoneSubnet } from './zones.ts'

export const FRONT_PORTS = [80, 443] as const
export type FrontPort = (typeof FRONT_PORTS)[number]

/** How each target group checks a host's front, and drains one taken out. */
export const HEALTH_CHECK = { protocol: 'TCP', intervalSeconds: 10, healthy: 2, unhealthy: 2 } as const
export const DRAIN_SECONDS = 30

export interface BalancerFound {
  balancer: { arn: string; dnsName: string; state: string; zones: { zone: string; subnetId: string }[]; crossZone: boolean } | null
  /** The stage's front addresses, by zone (Name tag). */
  addresses: { zone: string; allocationId: string; publicIp: string }[]
  /** Each group with every target registered and its state (healthy, initial, draining, ...). */
  targetGroups: { port: FrontPort; arn: string; healthCheck: typeof HEALTH_CHECK | { protocol: string; intervalSeconds: number; healthy: number; unhealthy: number }; targets: { id: string; state: string }[] }[]
  listeners: { port: number; arn: string; targetGroupArn: string }[]
}

export interface BalancerPlan {
  vpcId: string
  /** The hosts' zones (and their subnets): the balancer's zones. */
  zones: ZoneSubnet[]
  /** The addresses it has (by zone), and the zones that need one. */
  addresses: BalancerFound['addresses']
  newAddresses: string[]
  /** The balancer's ARN (null: to be made); zones it lacks. */
  balancer: string | null
  addZones: ZoneSubnet[]
  crossZone: boolean
  targetGroups: { port: FrontPort; arn: string | null; fixHealthCheck: boolean; register: string[]; deregister: string[] }[]
  listeners: { port: FrontPort; arn: string | null; fix: boolean }[]
  lines: PlanLine[]
}

export interface BalancerResult {
  dnsName: string
  /** The balancer's public addresses (the Elastic IPs). */
  addresses: string[]
}

const sameCheck = (c: BalancerFound['targetGroups'][number]['healthCheck']) =>
  c.protocol === HEALTH_CHECK.protocol && c.intervalSeconds === HEALTH_CHECK.intervalSeconds && c.healthy === HEALTH_CHECK.healthy && c.unhealthy === HEALTH_CHECK.unhealthy

/** What makes the front door as wanted for the hosts `instances` in `zones` (pure). */
export function planBalancer(stage: string, vpcId: string, found: BalancerFound, zones: readonly ZoneSubnet[], instances: readonly string[]): BalancerPlan {
  const n = frontResources(stage)
  const newAddresses = zones.filter((z) => !found.addresses.some((a) => a.zone === z.zone)).map((z) => z.zone)
  const lb = found.balancer
  const addZones = lb ? zones.filter((z) => !lb.zones.some((x) => x.zone === z.zone)) : []
  const targetGroups = FRONT_PORTS.map((port) => {
    const tg = found.targetGroups.find((t) => t.port === port)
    // (a host being drained is on its way out already)
    const live = tg?.targets.filter((t) => t.state !== 'draining').map((t) => t.id) ?? []
    return {
      port,
      arn: tg?.arn ?? null,
      fixHealthCheck: tg ? !sameCheck(tg.healthCheck) : false,
      register: instances.filter((i) => !live.includes(i)),
      deregister: live.filter((i) => !instances.includes(i)),
    }
  })
  const listeners = FRONT_PORTS.map((port) => {
    const l = found.listeners.find((x) => x.port === port)
    const tg = targetGroups.find((t) => t.port === port)!
    return { port, arn: l?.arn ?? null, fix: l ? l.targetGroupArn !== tg.arn : false }
  })
  const addressOf = (zone: string) => found.addresses.find((a) => a.zone === zone)
  const lines: PlanLine[] = [
    ...zones.map((z): PlanLine => {
      const a = addressOf(z.zone)
      return { resource: `Elastic IP ${n.address(z.zone)}`, action: a ? 'exists' : 'create', detail: a ? `${a.publicIp} (${a.allocationId})` : `the balancer's address in ${z.zone}` }
    }),
    lb
      ? {
          resource: `load balancer ${n.balancer}`,
          action: addZones.length > 0 || !lb.crossZone ? 'update' : 'exists',
          detail: [addZones.length > 0 ? `add ${addZones.map((z) => z.zone).join(', ')}` : '', lb.crossZone ? '' : 'cross-zone on'].filter(Boolean).join(', ') || `${lb.dnsName} (${lb.state})`,
        }
      : { resource: `load balancer ${n.balancer}`, action: 'create', detail: `network, internet-facing, in ${zones.map((z) => z.zone).join(', ')}, cross-zone` },
    ...targetGroups.map((t): PlanLine => {
      const changes = [t.fixHealthCheck ? 'health check put back' : '', t.register.length > 0 ? `register ${t.register.join(', ')}` : '', t.deregister.length > 0 ? `drain and deregister ${t.deregister.join(', ')}` : ''].filter(Boolean)
      return {
        resource: `target group ${n.targetGroup(t.port)}`,
        action: !t.arn ? 'create' : changes.length > 0 ? 'update' : 'exists',
        detail: !t.arn ? `TCP ${t.port} on ${instances.length > 0 ? instances.join(', ') : "the stage's hosts"}, checked every ${HEALTH_CHECK.intervalSeconds} s` : changes.join(', ') || `${instances.length} host(s)`,
      }
    }),
    ...listeners.map((l): PlanLine => ({ resource: `listener TCP ${l.port}`, action: !l.arn ? 'create' : l.fix ? 'update' : 'exists', detail: `to ${n.targetGroup(l.port)}` })),
  ]
  return { vpcId, zones: [...zones], addresses: found.addresses, newAddresses, balancer: lb?.arn ?? null, addZones, crossZone: lb?.crossZone ?? false, targetGroups, listeners, lines }
}

/** A catch that turns one of AWS's `codes` (not found) into undefined and throws anything else. */
export const notFound = (codes: string[]) => (err: unknown) => {
  if (codes.includes(awsErrorCode(err))) return undefined
  throw err
}

/** The front door as it is (reads only). */
export async function findBalancer(clients: AwsClients, stage: string): Promise<BalancerFound> {
  const n = frontResources(stage)
  const [lbs, tgs, eips] = await Promise.all([
    aws('look up the load balancer', () => clients.elb.send(new ELB.DescribeLoadBalancersCommand({ Names: [n.balancer] })).catch(notFound(['LoadBalancerNotFoundException']))),
    aws('look up the target groups', () => clients.elb.send(new ELB.DescribeTargetGroupsCommand({ Names: FRONT_PORTS.map(n.targetGroup) })).catch(notFound(['TargetGroupNotFoundException']))),
    aws("look up the front's Elastic IPs", () => clients.ec2.send(new EC2.DescribeAddressesCommand({ Filters: stageTagFilters(stage) }))),
  ])
  // one name missing makes AWS refuse the whole list: then each is looked up alone
  const groups = tgs?.TargetGroups ?? (await Promise.all(FRONT_PORTS.map((p) => clients.elb.send(new ELB.DescribeTargetGroupsCommand({ Names: [n.targetGroup(p)] })).catch(notFound(['TargetGroupNotFoundException']))))).flatMap((r) => r?.TargetGroups ?? [])
  const lb = lbs?.LoadBalancers?.[0]
  const [attributes, listeners] = lb?.LoadBalancerArn
    ? await Promise.all([
        aws('look up the load balancer attributes', () => clients.elb.send(new ELB.DescribeLoadBalancerAttributesCommand({ LoadBalancerArn: lb.LoadBalancerArn }))),
        aws('look up the listeners', () => clients.elb.send(new ELB.DescribeListenersCommand({ LoadBalancerArn: lb.LoadBalancerArn }))),
      ])
    : [undefined, undefined]
  const targetGroups = await Promise.all(
    FRONT_PORTS.flatMap((port) => {
      const g = groups.find((x) => x.TargetGroupName === n.targetGroup(port))
      if (!g?.TargetGroupArn) return []
      return [
        aws('look up the targets', () => clients.elb.send(new ELB.DescribeTargetHealthCommand({ TargetGroupArn: g.TargetGroupArn }))).then((h) => ({
          port,
          arn: g.TargetGroupArn!,
          healthCheck: { protocol: g.HealthCheckProtocol ?? '', intervalSeconds: g.HealthCheckIntervalSeconds ?? 0, healthy: g.HealthyThresholdCount ?? 0, unhealthy: g.UnhealthyThresholdCount ?? 0 },
          targets: (h.TargetHealthDescriptions ?? []).flatMap((d) => (d.Target?.Id ? [{ id: d.Target.Id, state: d.TargetHealth?.State ?? '?' }] : [])),
        })),
      ]
    }),
  )
  return {
    balancer: lb?.LoadBalancerArn
      ? {
          arn: lb.LoadBalancerArn,
          dnsName: lb.DNSName ?? '',
          state: lb.State?.Code ?? '',
          zones: (lb.AvailabilityZones ?? []).map((z) => ({ zone: z.ZoneName ?? '', subnetId: z.SubnetId ?? '' })),
          crossZone: attributes?.Attributes?.find((a) => a.Key === 'load_balancing.cross_zone.enabled')?.Value === 'true',
        }
      : null,
    addresses: frontAddresses(eips.Addresses, stage),
    targetGroups,
    listeners: (listeners?.Listeners ?? []).map((l) => ({ port: l.Port ?? 0, arn: l.ListenerArn ?? '', targetGroupArn: l.DefaultActions?.[0]?.TargetGroupArn ?? '' })),
  }
}

/** Makes the front door as planned (the targets registered last); returns its name and addresses. */
export async function applyBalancer(clients: AwsClients, stage: string, plan: BalancerPlan, log: Log): Promise<BalancerResult> {
  const n = frontResources(stage)
  const addresses = new Map(plan.addresses.map((a) => [a.zone, a]))
  for (const zone of plan.newAddresses) {
    const r = await aws(`allocate the front's Elastic IP in ${zone}`, () =>
      clients.ec2.send(new EC2.AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: [{ ResourceType: 'elastic-ip', Tags: [{ Key: 'Name', Value: n.address(zone) }, ...stageTags(stage)] }] })),
    )
    addresses.set(zone, { zone, allocationId: r.AllocationId ?? '', publicIp: r.PublicIp ?? '' })
  }
  const mapping = (z: ZoneSubnet) => ({ SubnetId: z.subnetId, AllocationId: addresses.get(z.zone)?.allocationId })
  let arn = plan.balancer
  let dnsName = ''
  if (!arn) {
    const r = await aws('create the load balancer', () =>
      clients.elb.send(new ELB.CreateLoadBalancerCommand({ Name: n.balancer, Type: 'network', Scheme: 'internet-facing', IpAddressType: 'ipv4', SubnetMappings: plan.zones.map(mapping), Tags: [{ Key: 'Name', Value: n.balancer }, ...stageTags(stage)] })),
    )
    arn = r.LoadBalancers?.[0]?.LoadBalancerArn ?? ''
    dnsName = r.LoadBalancers?.[0]?.DNSName ?? ''
    log.info(`[front] load balancer ${n.balancer} created: ${dnsName} (AWS takes a few minutes to make it active)`)
  } else if (plan.addZones.length > 0) {
    await aws('add zones to the load balancer', () => clients.elb.send(new ELB.SetSubnetsCommand({ LoadBalancerArn: arn!, SubnetMappings: plan.zones.map(mapping) })))
  }
  const lbArn = arn
  if (!plan.crossZone)
    await aws('turn cross-zone balancing on', () => clients.elb.send(new ELB.ModifyLoadBalancerAttributesCommand({ LoadBalancerArn: lbArn, Attributes: [{ Key: 'load_balancing.cross_zone.enabled', Value: 'true' }] })))
  const healthCheck = { HealthCheckProtocol: HEALTH_CHECK.protocol, HealthCheckIntervalSeconds: HEALTH_CHECK.intervalSeconds, HealthyThresholdCount: HEALTH_CHECK.healthy, UnhealthyThresholdCount: HEALTH_CHECK.unhealthy }
  const groups = new Map<FrontPort, string>()
  for (const t of plan.targetGroups) {
    let tg = t.arn
    if (!tg) {
      const r = await aws(`create the target group ${n.targetGroup(t.port)}`, () =>
        clients.elb.send(new ELB.CreateTargetGroupCommand({ Name: n.targetGroup(t.port), Protocol: 'TCP', Port: t.port, VpcId: plan.vpcId, TargetType: 'instance', ...healthCheck, Tags: stageTags(stage) })),
      )
      tg = r.TargetGroups?.[0]?.TargetGroupArn ?? ''
      const created = tg
      await aws('set how a host is drained', () =>
        clients.elb.send(new ELB.ModifyTargetGroupAttributesCommand({ TargetGroupArn: created, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: String(DRAIN_SECONDS) }] })),
      )
    } else if (t.fixHealthCheck) {
      const existing = tg
      await aws(`put back the health check of ${n.targetGroup(t.port)}`, () => clients.elb.send(new ELB.ModifyTargetGroupCommand({ TargetGroupArn: existing, ...healthCheck })))
    }
    groups.set(t.port, tg)
  }
  for (const l of plan.listeners) {
    const tg = groups.get(l.port)!
    const action = [{ Type: 'forward' as const, TargetGroupArn: tg }]
    if (!l.arn) await aws(`create the listener on ${l.port}`, () => clients.elb.send(new ELB.CreateListenerCommand({ LoadBalancerArn: lbArn, Protocol: 'TCP', Port: l.port, DefaultActions: action })))
    else if (l.fix) await aws(`point the listener on ${l.port} at ${n.targetGroup(l.port)}`, () => clients.elb.send(new ELB.ModifyListenerCommand({ ListenerArn: l.arn!, DefaultActions: action })))
  }
  for (const t of plan.targetGroups) {
    const tg = groups.get(t.port)!
    if (t.register.length > 0)
      await aws(`register the hosts in ${n.targetGroup(t.port)}`, () => clients.elb.send(new ELB.RegisterTargetsCommand({ TargetGroupArn: tg, Targets: t.register.map((Id) => ({ Id, Port: t.port })) })))
    if (t.deregister.length > 0)
      await aws(`deregister hosts from ${n.targetGroup(t.port)}`, () => clients.elb.send(new ELB.DeregisterTargetsCommand({ TargetGroupArn: tg, Targets: t.deregister.map((Id) => ({ Id, Port: t.port })) })))
  }
  if (!dnsName) {
    const r = await aws('look up the load balancer', () => clients.elb.send(new ELB.DescribeLoadBalancersCommand({ LoadBalancerArns: [lbArn] })))
    dnsName = r.LoadBalancers?.[0]?.DNSName ?? ''
  }
  return { dnsName, addresses: plan.zones.map((z) => addresses.get(z.zone)?.publicIp ?? '').filter(Boolean) }
}

/** The balancer's Elastic IPs among the stage's addresses, by the zone in their Name tag (the hosts' own are not). */
function frontAddresses(addresses: { AllocationId?: string; PublicIp?: string; Tags?: { Key?: string; Value?: string }[] }[] | undefined, stage: string): BalancerFound['addresses'] {
  const n = frontResources(stage)
  return (addresses ?? []).flatMap((a) => {
    const zone = n.addressZone(nameTag(a.Tags))
    return a.AllocationId && zone ? [{ zone, allocationId: a.AllocationId, publicIp: a.PublicIp ?? '' }] : []
  })
}

/** The load balancer's public addresses, when the stage has one (remote:up alone looks them up: MYMDB_DOMAIN points there). */
export async function findFrontAddresses(clients: AwsClients, stage: string): Promise<string[]> {
  const r = await aws("look up the front's Elastic IPs", () => clients.ec2.send(new EC2.DescribeAddressesCommand({ Filters: stageTagFilters(stage) })))
  return frontAddresses(r.Addresses, stage).map((a) => a.publicIp).filter(Boolean).sort()
}

/** The front door as `status --aws` shows it: the balancer's name and addresses, and each target's health on each port (null: the stage has none). */
export async function frontDoorStatus(clients: AwsClients, stage: string): Promise<{ dnsName: string; addresses: string[]; targets: { id: string; port: number; state: string }[] } | null> {
  const found = await findBalancer(clients, stage)
  if (!found.balancer) return null
  return {
    dnsName: found.balancer.dnsName,
    addresses: found.addresses.map((a) => a.publicIp).filter(Boolean).sort(),
    targets: found.targetGroups.flatMap((g) => g.targets.map((t) => ({ id: t.id, port: g.port, state: t.state }))),
  }
}

/** `status --aws`'s lines for the front door (pure): its name and addresses, then each host's health behind it (a target that is no host of the stage by its id). */
export function frontDoorLines(door: NonNullable<Awaited<ReturnType<typeof frontDoorStatus>>>, hosts: ReadonlyMap<number, { instanceId: string }>): string[] {
  const hostOf = new Map([...hosts].map(([node, h]) => [h.instanceId, node]))
  const ids = [...new Set(door.targets.map((t) => t.id))].sort((a, b) => (hostOf.get(a) ?? 99) - (hostOf.get(b) ?? 99))
  const each = ids.map((id) => {
    const states = FRONT_PORTS.map((port) => ({ port, state: door.targets.find((t) => t.id === id && t.port === port)?.state ?? 'not registered' }))
    const name = hostOf.has(id) ? `host ${hostOf.get(id)}` : id
    return states.every((s) => s.state === states[0]!.state) ? `${name} ${states[0]!.state}` : `${name} ${states.map((s) => `${s.port} ${s.state}`).join(', ')}`
  })
  return [`  front door: ${door.dnsName} at ${door.addresses.join(', ') || '(no address)'}`, `    behind it: ${each.join('; ') || 'no host'}`]
}
