// The private network of the stage's RDS database, in the default VPC beside the hosts: a route
// table with no route out (only the VPC's own), one subnet of it per zone in two zones (no public
// addresses), the DB subnet group over them, and the database's security group that admits
// PostgreSQL (5432) from the hosts' security group only. Found again by name and stage tags.
import { UserError } from '../errors.ts'
import { databaseResources, stageTagFilters, stageTags } from '../names.ts'
import { EC2, RDS, aws, awsErrorCode, type AwsClients } from './clients.ts'
import { HOSTS, applyHostsOnlyGroup, findHostsOnlyGroup, planHostsOnlyGroup, type HostsOnlyGroupFound } from './hostsonly.ts'
import type { PlanLine } from './plan.ts'

export { HOSTS }

/** How many zones the database's subnets span (RDS wants two at least, for a standby or a move). */
export const DB_ZONES = 2
const PORT = 5432

export interface DbSubnet {
  id: string
  zone: string
  cidr: string
}

export interface DbNetworkFound {
  vpc: { id: string; cidr: string }
  /** The zones of the VPC's subnets (the hosts'), sorted. */
  zones: string[]
  /** Every subnet's CIDR in the VPC (a new one must not overlap). */
  taken: string[]
  /** Our route table: the subnets on it, and its routes out of the VPC (destinations), which must go. */
  routeTable: { id: string; subnets: string[]; routesOut: string[] } | null
  subnets: DbSubnet[]
  subnetGroup: { subnets: string[] } | null
  /** The database's group and its ingress rules (source: HOSTS, another group's id, or a CIDR). */
  securityGroup: HostsOnlyGroupFound
}

export interface DbNetworkPlan {
  vpcId: string
  routeTable: string | null
  /** Routes out of the VPC (an internet gateway, a NAT) on the route table, by destination: they go. */
  removeRoutesOut: string[]
  /** Subnets already on the route table (the others are put on it). */
  associated: string[]
  /** Subnets to make (zone, CIDR); the ones kept are in `subnets`. */
  newSubnets: { zone: string; cidr: string }[]
  subnets: DbSubnet[]
  subnetGroup: 'create' | 'update' | 'exists'
  securityGroup: string | null
  /** Add the rule admitting 5432 from the hosts' group. */
  allowHosts: boolean
  /** Ingress rules to revoke, by id: anything but 5432 from the hosts' group. */
  revoke: string[]
  lines: PlanLine[]
}

const ipv4 = (a: string) => a.split('.').reduce((n, x) => n * 256 + Number(x), 0)
const dotted = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.')
const range = (cidr: string): [number, number] => {
  const [addr, bits] = cidr.split('/')
  const size = 2 ** (32 - Number(bits))
  const start = Math.floor(ipv4(addr!) / size) * size
  return [start, start + size - 1]
}

/** `count` /24 blocks of `vpcCidr`, from its top down, that overlap none of `taken` (pure). */
export function freeCidrs(vpcCidr: string, taken: readonly string[], count: number): string[] {
  const [low, high] = range(vpcCidr)
  const used = taken.map(range)
  const out: string[] = []
  for (let start = high - 255; start >= low && out.length < count; start -= 256) {
    if (!used.some(([a, b]) => a <= start + 255 && b >= start)) out.push(`${dotted(start)}/24`)
  }
  if (out.length < count) throw new Error(`the VPC ${vpcCidr} has no ${count} free /24 blocks for the database's subnets`)
  return out
}

/** What makes the database's network as wanted (pure). */
export function planDbNetwork(stage: string, found: DbNetworkFound): DbNetworkPlan {
  const names = databaseResources(stage)
  const zones = found.zones.slice(0, DB_ZONES)
  if (zones.length < DB_ZONES) throw new UserError(`the default VPC has subnets in ${zones.length} zone(s); RDS needs ${DB_ZONES}`)
  const kept = found.subnets.filter((s) => zones.includes(s.zone))
  const missing = zones.filter((z) => !kept.some((s) => s.zone === z))
  const cidrs = freeCidrs(found.vpc.cidr, found.taken, missing.length)
  const newSubnets = missing.map((zone, i) => ({ zone, cidr: cidrs[i]! }))
  const wanted = kept.map((s) => s.id)
  const subnetGroup = !found.subnetGroup ? 'create' : newSubnets.length > 0 || !sameSet(found.subnetGroup.subnets, wanted) ? 'update' : 'exists'
  const group = planHostsOnlyGroup(names.securityGroup, PORT, found.securityGroup)
  const lines: PlanLine[] = [
    found.routeTable
      ? { resource: `route table ${names.routeTable}`, action: found.routeTable.routesOut.length > 0 ? 'update' : 'exists', detail: found.routeTable.routesOut.length > 0 ? 'a route out of the VPC removed' : `${found.routeTable.id}; no route out of the VPC` }
      : { resource: `route table ${names.routeTable}`, action: 'create', detail: `in ${found.vpc.id}, no route out of the VPC` },
    ...zones.map((z): PlanLine => {
      const s = kept.find((x) => x.zone === z)
      const n = newSubnets.find((x) => x.zone === z)
      return { resource: `subnet ${names.subnet(z)}`, action: s ? 'exists' : 'create', detail: s ? `${s.id} ${s.cidr}` : `${n!.cidr} in ${z}, private` }
    }),
    { resource: `DB subnet group ${names.subnetGroup}`, action: subnetGroup, detail: `${zones.join(', ')}` },
    group.line,
  ]
  return {
    vpcId: found.vpc.id,
    routeTable: found.routeTable?.id ?? null,
    removeRoutesOut: found.routeTable?.routesOut ?? [],
    associated: found.routeTable?.subnets ?? [],
    newSubnets,
    subnets: kept,
    subnetGroup,
    securityGroup: group.securityGroup,
    allowHosts: group.allowHosts,
    revoke: group.revoke,
    lines,
  }
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x))

/** The database network as it is (with `hostsGroupId` named HOSTS in the security group's sources). */
export async function findDbNetwork(clients: AwsClients, stage: string, vpcId: string, hostsGroupId: string | null): Promise<DbNetworkFound> {
  const names = databaseResources(stage)
  const [vpcs, all, tables, securityGroup] = await Promise.all([
    aws('look up the VPC', () => clients.ec2.send(new EC2.DescribeVpcsCommand({ VpcIds: [vpcId] }))),
    aws('look up the subnets', () => clients.ec2.send(new EC2.DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }))),
    aws('look up the route table', () => clients.ec2.send(new EC2.DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'tag:Name', Values: [names.routeTable] }, ...stageTagFilters(stage)] }))),
    findHostsOnlyGroup(clients, vpcId, names.securityGroup, hostsGroupId),
  ])
  const subnets = all.Subnets ?? []
  const ours = subnets.filter((s) => s.Tags?.some((t) => t.Key === 'Name' && t.Value === names.subnet(s.AvailabilityZone ?? '')) && s.Tags?.some((t) => t.Key === 'Stage' && t.Value === stage))
  const table = tables.RouteTables?.[0]
  let subnetGroup: DbNetworkFound['subnetGroup'] = null
  try {
    const r = await clients.rds.send(new RDS.DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: names.subnetGroup }))
    const g = r.DBSubnetGroups?.[0]
    if (g) subnetGroup = { subnets: (g.Subnets ?? []).map((s) => s.SubnetIdentifier ?? '') }
  } catch (err) {
    if (awsErrorCode(err) !== 'DBSubnetGroupNotFoundFault') throw err
  }
  return {
    vpc: { id: vpcId, cidr: vpcs.Vpcs?.[0]?.CidrBlock ?? '172.31.0.0/16' },
    zones: [...new Set(subnets.filter((s) => !ours.includes(s)).map((s) => s.AvailabilityZone ?? ''))].filter(Boolean).sort(),
    taken: subnets.map((s) => s.CidrBlock ?? '').filter(Boolean),
    routeTable: table?.RouteTableId
      ? { id: table.RouteTableId, subnets: (table.Associations ?? []).map((a) => a.SubnetId ?? '').filter(Boolean), routesOut: (table.Routes ?? []).filter((r) => ((r.GatewayId && r.GatewayId !== 'local') || r.NatGatewayId) && r.DestinationCidrBlock).map((r) => r.DestinationCidrBlock!) }
      : null,
    subnets: ours.map((s) => ({ id: s.SubnetId ?? '', zone: s.AvailabilityZone ?? '', cidr: s.CidrBlock ?? '' })),
    subnetGroup,
    securityGroup,
  }
}

/** Makes the network as planned; returns the subnet group's name and the database's security group. */
export async function applyDbNetwork(clients: AwsClients, stage: string, plan: DbNetworkPlan, hostsGroupId: string): Promise<{ subnetGroup: string; securityGroup: string }> {
  const names = databaseResources(stage)
  const tags = (name: string) => [{ Key: 'Name', Value: name }, ...stageTags(stage)]
  let table = plan.routeTable
  if (!table) {
    const r = await aws('create the route table', () =>
      clients.ec2.send(new EC2.CreateRouteTableCommand({ VpcId: plan.vpcId, TagSpecifications: [{ ResourceType: 'route-table', Tags: tags(names.routeTable) }] })),
    )
    table = r.RouteTable?.RouteTableId ?? ''
  }
  const subnets = [...plan.subnets]
  for (const n of plan.newSubnets) {
    const r = await aws('create a subnet for the database', () =>
      clients.ec2.send(new EC2.CreateSubnetCommand({ VpcId: plan.vpcId, AvailabilityZone: n.zone, CidrBlock: n.cidr, TagSpecifications: [{ ResourceType: 'subnet', Tags: tags(names.subnet(n.zone)) }] })),
    )
    subnets.push({ id: r.Subnet?.SubnetId ?? '', zone: n.zone, cidr: n.cidr })
  }
  for (const destination of plan.removeRoutesOut)
    await aws('remove a route out of the VPC', () => clients.ec2.send(new EC2.DeleteRouteCommand({ RouteTableId: table, DestinationCidrBlock: destination })))
  // every subnet of ours on the route table with no way out (a subnet has one route table: this replaces the main one)
  for (const s of subnets.filter((x) => !plan.associated.includes(x.id)))
    await aws('make the subnet private', () => clients.ec2.send(new EC2.AssociateRouteTableCommand({ RouteTableId: table, SubnetId: s.id })))
  const ids = subnets.map((s) => s.id)
  if (plan.subnetGroup === 'create')
    await aws('create the DB subnet group', () =>
      clients.rds.send(new RDS.CreateDBSubnetGroupCommand({ DBSubnetGroupName: names.subnetGroup, DBSubnetGroupDescription: `MyMDB ${stage}: the database's private subnets`, SubnetIds: ids, Tags: stageTags(stage) })),
    )
  else if (plan.subnetGroup === 'update')
    await aws('update the DB subnet group', () => clients.rds.send(new RDS.ModifyDBSubnetGroupCommand({ DBSubnetGroupName: names.subnetGroup, SubnetIds: ids })))
  const groupId = await applyHostsOnlyGroup(clients, { stage, vpcId: plan.vpcId, name: names.securityGroup, port: PORT, purpose: 'PostgreSQL from the hosts only', hostsGroupId }, plan)
  return { subnetGroup: names.subnetGroup, securityGroup: groupId }
}
