// What destroy:aws does with a stage's front door (several hosts): the load balancer (its
// listeners go with it), its target groups and Elastic IPs, the fronts' EFS file system with its
// mount targets, and their security group. All of it goes: it holds no data of the site, only
// the certificate, which the next deploy's fronts obtain again. Before the hosts' group: the NFS
// group refers to it. What is gone already is skipped.
import type { Log } from '../log.ts'
import { frontResources } from '../names.ts'
import { retryUntil } from '../sh.ts'
import { EC2, EFS, ELB, awsErrorCode, explainAwsError, type AwsClients } from './clients.ts'
import { findBalancer, type BalancerFound } from './balancer.ts'
import { findSharedFs, type SharedFsFound } from './sharedfs.ts'
import { deleteSecurityGroup, defaultVpcId } from './securitygroup.ts'

export interface FrontInventory {
  balancer: BalancerFound
  sharedFs: SharedFsFound
}

/** The stage's front door as it is (reads only); null when it has none. */
export async function frontInventory(clients: AwsClients, stage: string, hostsGroupId: string | null): Promise<FrontInventory | null> {
  const [balancer, sharedFs] = await Promise.all([findBalancer(clients, stage), defaultVpcId(clients).then((vpc) => findSharedFs(clients, stage, vpc, hostsGroupId))])
  const none = !balancer.balancer && balancer.targetGroups.length === 0 && balancer.addresses.length === 0 && !sharedFs.fileSystem && !sharedFs.securityGroup
  return none ? null : { balancer, sharedFs }
}

/** What destroy says it removes of the front door (pure). */
export function frontLines(inv: FrontInventory, stage: string): string[] {
  const n = frontResources(stage)
  const { balancer: b, sharedFs: fs } = inv
  return [
    ...(b.balancer ? [`load balancer ${n.balancer} (${b.balancer.dnsName}) and its listeners`] : []),
    ...b.targetGroups.map((t) => `target group ${n.targetGroup(t.port)}`),
    ...b.addresses.map((a) => `elastic IP ${n.address(a.zone)} ${a.publicIp} (the balancer's)`),
    ...(fs.fileSystem ? [`EFS file system ${n.fileSystem} ${fs.fileSystem.id} with ${fs.mountTargets.length} mount target(s): the fronts' certificate (obtained again by the next deploy)`] : []),
    ...(fs.securityGroup ? [`security group ${n.fsSecurityGroup} ${fs.securityGroup.id}`] : []),
  ]
}

/** `call` again every `delayMs` while AWS answers one of `busy` (a part still held by another one being deleted). */
async function whileBusy(what: string, busy: string[], delayMs: number, call: () => Promise<unknown>, gone: string[] = []): Promise<void> {
  await retryUntil(
    40,
    delayMs,
    async () => {
      try {
        await call()
      } catch (err) {
        if (gone.includes(awsErrorCode(err))) return true
        throw err
      }
      return true
    },
    (_last, err) => explainAwsError(err, what),
    (err) => !busy.includes(awsErrorCode(err)),
  )
}

/** Removes the front door in dependency order; returns what was removed. */
export async function removeFront(clients: AwsClients, stage: string, inv: FrontInventory, log: Log, pollMs = 5_000): Promise<string[]> {
  const n = frontResources(stage)
  const removed: string[] = []
  const lb = inv.balancer.balancer
  if (lb) {
    await whileBusy('delete the load balancer', [], pollMs, () => clients.elb.send(new ELB.DeleteLoadBalancerCommand({ LoadBalancerArn: lb.arn })), ['LoadBalancerNotFoundException'])
    removed.push(`load balancer ${n.balancer}`)
  }
  for (const t of inv.balancer.targetGroups) {
    await whileBusy(`delete the target group ${n.targetGroup(t.port)}`, ['ResourceInUse', 'ResourceInUseException'], pollMs, () => clients.elb.send(new ELB.DeleteTargetGroupCommand({ TargetGroupArn: t.arn })), ['TargetGroupNotFoundException'])
    removed.push(`target group ${n.targetGroup(t.port)}`)
  }
  // an address stays on the deleted balancer's network interface for a while
  for (const a of inv.balancer.addresses) {
    await whileBusy(`release the elastic IP ${a.publicIp}`, ['InvalidIPAddress.InUse', 'AuthFailure'], pollMs, () => clients.ec2.send(new EC2.ReleaseAddressCommand({ AllocationId: a.allocationId })), ['InvalidAllocationID.NotFound'])
    removed.push(`elastic IP ${n.address(a.zone)} ${a.publicIp}`)
  }
  const fs = inv.sharedFs.fileSystem
  if (fs) {
    for (const m of inv.sharedFs.mountTargets)
      await whileBusy('delete an EFS mount target', [], pollMs, () => clients.efs.send(new EFS.DeleteMountTargetCommand({ MountTargetId: m.id })), ['MountTargetNotFound'])
    if (inv.sharedFs.mountTargets.length > 0) log.info(`[destroy] waiting until the ${inv.sharedFs.mountTargets.length} EFS mount target(s) are gone`)
    // a file system with mount targets (even ones being deleted) cannot be deleted
    await whileBusy(`delete the EFS file system ${fs.id}`, ['FileSystemInUse'], pollMs, () => clients.efs.send(new EFS.DeleteFileSystemCommand({ FileSystemId: fs.id })), ['FileSystemNotFound'])
    removed.push(`EFS file system ${n.fileSystem}`)
  }
  if (inv.sharedFs.securityGroup) {
    await deleteSecurityGroup(clients, inv.sharedFs.securityGroup.id, log, pollMs)
    removed.push(`security group ${n.fsSecurityGroup}`)
  }
  return removed
}
