// A host's Elastic IP (`mymdb-<stage>` for the first host): its fixed address across stops,
// restarts and new instances (DNS points at it). Found by its tags (stage and host number);
// allocated when missing; associated with the host's instance unless it already is.
import type { Log } from '../log.ts'
import { frontResources, nameTag, nodeName, nodeOf, nodeTags, stageTagFilters } from '../names.ts'
import { EC2, aws, type AwsClients } from './clients.ts'
import type { PlanLine } from './plan.ts'

export interface ElasticIp {
  /** The host it belongs to (its Node tag). */
  node: number
  allocationId: string
  publicIp: string
  /** The instance it is associated with, if any. */
  instanceId?: string
  associationId?: string
}

/** Every Elastic IP of the stage's hosts, found by its Project/Stage tags (the load balancer's, balancer.ts, are not theirs). */
export async function readElasticIps(clients: AwsClients, stage: string): Promise<ElasticIp[]> {
  const r = await aws('look up the elastic IP', () =>
    clients.ec2.send(new EC2.DescribeAddressesCommand({ Filters: stageTagFilters(stage) })),
  )
  const front = frontResources(stage)
  return (r.Addresses ?? []).flatMap((a) =>
    a.AllocationId && a.PublicIp && front.addressZone(nameTag(a.Tags)) === undefined
      ? [
          {
            node: nodeOf(a.Tags),
            allocationId: a.AllocationId,
            publicIp: a.PublicIp,
            ...(a.InstanceId ? { instanceId: a.InstanceId } : {}),
            ...(a.AssociationId ? { associationId: a.AssociationId } : {}),
          },
        ]
      : [],
  )
}

export interface ElasticIpPlan {
  /** null: allocate one. Associated with the instance unless it is already. */
  existing: ElasticIp | null
}

/** What to do about host `node`'s address, given the instance it should point at, and its plan line (pure). */
export function planElasticIp(stage: string, node: number, found: ElasticIp | null, instanceId: string | undefined): ElasticIpPlan & { line: PlanLine } {
  const resource = `elastic IP ${nodeName(stage, node)}`
  const withInstance = found !== null && instanceId !== undefined && found.instanceId === instanceId
  return {
    existing: found,
    line: {
      resource,
      action: !found ? 'create' : withInstance ? 'exists' : 'update',
      detail: !found ? 'a fixed public address for the instance' : withInstance ? found.publicIp : `${found.publicIp}, associate with the instance`,
    },
  }
}

/**
 * Host `node`'s fixed address: allocated (tagged) when there is none, associated with the
 * instance unless it is already. Returns the address.
 */
export async function applyElasticIp(clients: AwsClients, plan: { stage: string; node: number; elasticIp: ElasticIpPlan }, instanceId: string, log: Log): Promise<string> {
  const name = nodeName(plan.stage, plan.node)
  let eip = plan.elasticIp.existing
  if (!eip) {
    const a = await aws('allocate the elastic IP', () =>
      clients.ec2.send(
        new EC2.AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: [{ ResourceType: 'elastic-ip', Tags: nodeTags(plan.stage, plan.node) }] }),
      ),
    )
    eip = { node: plan.node, allocationId: a.AllocationId ?? '', publicIp: a.PublicIp ?? '' }
    log.info(`[host] elastic IP ${name}: allocated ${eip.publicIp}`)
  }
  if (eip.instanceId !== instanceId) {
    const { allocationId } = eip
    // from the instance it was on, if any (one of the stage's, replaced)
    await aws('associate the elastic IP with the instance', () => clients.ec2.send(new EC2.AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId, AllowReassociation: true })))
    log.info(`[host] elastic IP ${name}: ${eip.publicIp} now points at ${instanceId}`)
  }
  return eip.publicIp
}

/** Takes the address off its instance, if it is on one (it stays the stage's, for the next instance). */
export async function disassociateElasticIp(clients: AwsClients, eip: ElasticIp): Promise<void> {
  const { associationId } = eip
  if (associationId) await aws('disassociate the elastic IP', () => clients.ec2.send(new EC2.DisassociateAddressCommand({ AssociationId: associationId })))
}

/** Releases the address for good (an association with an instance that is not being terminated is ended first). */
export async function releaseElasticIp(clients: AwsClients, eip: ElasticIp, terminated: readonly string[]): Promise<void> {
  // terminating the instance ended its association; one with another instance is ended here
  if (eip.instanceId && !terminated.includes(eip.instanceId)) await disassociateElasticIp(clients, eip)
  const { allocationId } = eip
  await aws('release the elastic IP', () => clients.ec2.send(new EC2.ReleaseAddressCommand({ AllocationId: allocationId })))
}
