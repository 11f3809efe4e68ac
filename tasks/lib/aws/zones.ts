// The availability zones a stage's hosts are spread over: the default VPC's default subnet in
// each zone (one per zone, made by AWS with the VPC; public, so a host gets its address).
import { UserError } from '../errors.ts'
import { EC2, aws, type AwsClients } from './clients.ts'

export interface ZoneSubnet {
  subnetId: string
  zone: string
}

/** The VPC's default subnet of each zone, by zone name. */
export async function readZoneSubnets(clients: AwsClients, vpcId: string): Promise<ZoneSubnet[]> {
  const r = await aws('look up the subnets of the VPC', () =>
    clients.ec2.send(new EC2.DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'default-for-az', Values: ['true'] }] })),
  )
  const subnets = (r.Subnets ?? []).flatMap((s) => (s.SubnetId && s.AvailabilityZone ? [{ subnetId: s.SubnetId, zone: s.AvailabilityZone }] : []))
  return subnets.sort((a, b) => a.zone.localeCompare(b.zone))
}

/**
 * Where each new host goes (pure): `zones[i]` is host i's zone, undefined for a host to launch.
 * A host that exists stays where it is (undefined in the answer); each new one goes to the zone
 * with the fewest hosts so far (the first such zone by name), so that hosts are spread evenly
 * however many there were before.
 */
export function spreadOverZones(zones: readonly (string | undefined)[], subnets: readonly ZoneSubnet[]): (ZoneSubnet | undefined)[] {
  if (subnets.length === 0) throw new UserError('the VPC has no default subnet in any availability zone: several hosts need them (aws ec2 create-default-subnet --availability-zone <zone>)')
  const count = new Map(subnets.map((s) => [s.zone, 0]))
  for (const z of zones) if (z && count.has(z)) count.set(z, (count.get(z) ?? 0) + 1)
  return zones.map((z) => {
    if (z) return undefined
    const least = subnets.reduce((best, s) => ((count.get(s.zone) ?? 0) < (count.get(best.zone) ?? 0) ? s : best))
    count.set(least.zone, (count.get(least.zone) ?? 0) + 1)
    return least
  })
}
