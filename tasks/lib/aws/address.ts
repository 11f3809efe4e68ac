// The stage's Elastic IP `mymdb-<stage>`: the site's fixed address across stops, restarts and new
// instances (DNS points at it). Found by its tags; allocated when missing; associated with the
// instance unless it already is.
import type { Log } from '../log.ts'
import { stageResources, stageTagFilters, stageTags } from '../names.ts'
import { EC2, aws, type AwsClients } from './clients.ts'
import type { PlanLine } from './plan.ts'

export interface ElasticIp {
  allocationId: string
  publicIp: string
  /** The instance it is associated with, if any. */
  instanceId?: string
  associationId?: string
}

/** The stage's Elastic IP, found by its Project/Stage tags (null: none). */
export async function readElasticIp(clients: AwsClients, stage: string): Promise<ElasticIp | null> {
  const r = await aws('look up the elastic IP', () =>
    clients.ec2.send(new EC2.DescribeAddressesCommand({ Filters: stageTagFilters(stage) })),
  )
  const a = r.Addresses?.find((x) => x.AllocationId && x.PublicIp)
  if (!a) return null
  return {
    allocationId: a.AllocationId!,
    publicIp: a.PublicIp!,
    ...(a.InstanceId ? { instanceId: a.InstanceId } : {}),
    ...(a.AssociationId ? { associationId: a.AssociationId } : {}),
  }
}

export interface ElasticIpPlan {
  /** null: allocate one. Associated with the instance unless it is already. */
  existing: ElasticIp | null
}

/** What to do about the address, given the instance it should point at, and its plan line (pure). */
export function planElasticIp(stage: string, found: ElasticIp | null, instanceId: string | undefined): ElasticIpPlan & { line: PlanLine } {
  const resource = `elastic IP ${stageResources(stage).elasticIp}`
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
 * The stage's fixed address: allocated (tagged) when there is none, associated with the instance
 * unless it is already. Returns the address.
 */
export async function applyElasticIp(clients: AwsClients, plan: { stage: string; elasticIp: ElasticIpPlan }, instanceId: string, log: Log): Promise<string> {
  const name = stageResources(plan.stage).elasticIp
  let eip = plan.elasticIp.existing
  if (!eip) {
    const a = await aws('allocate the elastic IP', () =>
      clients.ec2.send(
        new EC2.AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: [{ ResourceType: 'elastic-ip', Tags: [{ Key: 'Name', Value: name }, ...stageTags(plan.stage)] }] }),
      ),
    )
    eip = { allocationId: a.AllocationId ?? '', publicIp: a.PublicIp ?? '' }
    log.info(`[host] elastic IP ${name}: allocated ${eip.publicIp}`)
  }
  if (eip.instanceId !== instanceId) {
    const { allocationId } = eip
    await aws('associate the elastic IP with the instance', () => clients.ec2.send(new EC2.AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId })))
    log.info(`[host] elastic IP ${name}: ${eip.publicIp} now points at ${instanceId}`)
  }
  return eip.publicIp
}

/** Releases the address for good (an association with an instance that is not being terminated is ended first). */
export async function releaseElasticIp(clients: AwsClients, eip: ElasticIp, terminated: readonly string[]): Promise<void> {
  const { allocationId, associationId, instanceId } = eip
  // terminating the instance ended its association; one with another instance is ended here
  if (associationId && instanceId && !terminated.includes(instanceId))
    await aws('disassociate the elastic IP', () => clients.ec2.send(new EC2.DisassociateAddressCommand({ AssociationId: associationId })))
  await aws('release the elastic IP', () => clients.ec2.send(new EC2.ReleaseAddressCommand({ AllocationId: allocationId })))
}
