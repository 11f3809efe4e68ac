// A stage's front door (several hosts) taken away: by destroy:aws, and by deploy:aws --
// --remove-front-door once the stage is down to one host (frontRemovalStep). The load balancer
// (its listeners go with it), its target groups and Elastic IPs, the fronts' EFS file system with
// its mount targets, and their security group. All of it goes: it holds no data of the site, only
// the certificate, which the next front obtains again. Before the hosts' group: the NFS group
// refers to it. What is gone already is skipped (an interrupted removal is completed by a re-run).
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { frontResources } from '../names.ts'
import type { Step } from '../step.ts'
import { EC2, EFS, ELB, aws, awsErrorCode, type AwsClients } from './clients.ts'
import { findBalancer, notFound, type BalancerFound } from './balancer.ts'
import { findNodes } from './instance.ts'
import { findSharedFs, type SharedFsFound } from './sharedfs.ts'
import { removeWhileBusy } from './remove.ts'
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

/**
 * Whether the stage has a front door (its load balancer), only leftovers of one (the fronts' file
 * system without the balancer: a removal that stopped half-way), or none. Two reads.
 */
export async function frontDoorState(clients: AwsClients, stage: string): Promise<'balancer' | 'leftovers' | 'none'> {
  const n = frontResources(stage)
  const [lb, fs] = await Promise.all([
    aws('look up the load balancer', () => clients.elb.send(new ELB.DescribeLoadBalancersCommand({ Names: [n.balancer] })).catch(notFound(['LoadBalancerNotFoundException']))),
    aws('look up the EFS file system', () => clients.efs.send(new EFS.DescribeFileSystemsCommand({ CreationToken: n.fileSystem }))),
  ])
  if ((lb?.LoadBalancers ?? []).length > 0) return 'balancer'
  return (fs.FileSystems ?? []).some((f) => f.LifeCycleState !== 'deleting' && f.LifeCycleState !== 'deleted') ? 'leftovers' : 'none'
}

/**
 * The stage's front door: kept (made or corrected) with several hosts. With one host, one left
 * from more stays in use (the site's name may point at it) until --remove-front-door, which
 * needs the stage down to one host already (the front step stops sending requests to a host
 * before it is drained; removal in the same run would not).
 */
export async function frontDoorChoice(clients: AwsClients, s: { MYMDB_HOSTS: number; MYMDB_STAGE: string }, removeDoor: boolean, log: Log): Promise<'none' | 'keep' | 'remove'> {
  if (s.MYMDB_HOSTS > 1) return 'keep'
  const state = await frontDoorState(clients, s.MYMDB_STAGE)
  if (removeDoor) {
    if (state === 'none') {
      log.info(`[deploy] --remove-front-door: stage ${s.MYMDB_STAGE} has no front door (nothing to remove)`)
      return 'none'
    }
    const more = [...(await findNodes(clients, s.MYMDB_STAGE)).keys()].filter((n) => n > 1).sort((a, b) => a - b)
    if (more.length > 0)
      throw new UserError(
        `--remove-front-door: stage ${s.MYMDB_STAGE} still has host${more.length > 1 ? 's' : ''} ${more.join(', ')}: run npm run deploy:aws with MYMDB_HOSTS=1 first (the front door stops sending them requests before they are drained), then again with --remove-front-door`,
      )
    return 'remove'
  }
  if (state === 'leftovers') log.warn(`[deploy] stage ${s.MYMDB_STAGE} has parts of a front door left (the fronts' shared storage mymdb-${s.MYMDB_STAGE}-front, without its load balancer): remove them with npm run deploy:aws -- --remove-front-door`)
  if (state !== 'balancer') return 'none'
  log.warn(
    `[deploy] stage ${s.MYMDB_STAGE} has a front door (load balancer mymdb-${s.MYMDB_STAGE}, its Elastic IPs, the fronts' shared storage), kept in use with one host: the site's name may point at it. ` +
      `Once the name points at host 1's Elastic IP, remove it: npm run deploy:aws -- --remove-front-door`,
  )
  return 'keep'
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

/** `call` again every `delayMs` while AWS answers one of `busy`; one of `gone` is done too. */
const whileBusy = (what: string, busy: string[], delayMs: number, call: () => Promise<unknown>, gone: string[] = []) => removeWhileBusy(what, { busy, gone }, call, { delayMs })

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
  // an address stays on the deleted balancer's network interface for a while: AWS then answers
  // InvalidIPAddress.InUse, or AuthFailure ("You do not have permission to access the specified
  // resource": the interface is the ELB service's, as with a NAT gateway's; seen in
  // aws-cloudformation/cloudformation-coverage-roadmap#831 and eformat/sno-for-100#9). An
  // AuthFailure counts as "still held" only while the address is on a network interface.
  for (const a of inv.balancer.addresses) {
    const release = async () => {
      try {
        await clients.ec2.send(new EC2.ReleaseAddressCommand({ AllocationId: a.allocationId }))
      } catch (err) {
        if (awsErrorCode(err) !== 'AuthFailure') throw err
        const held = await clients.ec2
          .send(new EC2.DescribeAddressesCommand({ AllocationIds: [a.allocationId] }))
          .then((r) => Boolean(r.Addresses?.[0]?.NetworkInterfaceId), () => false)
        if (held) throw Object.assign(new Error(`the elastic IP ${a.publicIp} is still on the deleted balancer's network interface`), { name: 'InvalidIPAddress.InUse' })
        throw err
      }
    }
    await whileBusy(`release the elastic IP ${a.publicIp}`, ['InvalidIPAddress.InUse'], pollMs, release, ['InvalidAllocationID.NotFound'])
    removed.push(`elastic IP ${n.address(a.zone)} ${a.publicIp}`)
  }
  const fs = inv.sharedFs.fileSystem
  if (fs) {
    for (const m of inv.sharedFs.mountTargets)
      await whileBusy('delete an EFS mount target', [], pollMs, () => clients.efs.send(new EFS.DeleteMountTargetCommand({ MountTargetId: m.id })), ['MountTargetNotFound'])
    if (inv.sharedFs.mountTargets.length > 0) log.info(`[front] waiting until the ${inv.sharedFs.mountTargets.length} EFS mount target(s) are gone`)
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

export interface FrontRemovalPlan {
  region: string
  stage: string
  /** What there is of the front door (null: nothing). */
  inventory: FrontInventory | null
}

/**
 * deploy:aws -- --remove-front-door, after the start (host 1 no longer uses the shared storage):
 * the stage's front door removed. Returns what was removed.
 */
export const frontRemovalStep: Step<{ AWS_REGION: string; MYMDB_STAGE: string }, FrontRemovalPlan, string[]> = {
  name: 'front',
  async plan(s, deps) {
    return { region: s.AWS_REGION, stage: s.MYMDB_STAGE, inventory: await frontInventory(deps.clients(s.AWS_REGION), s.MYMDB_STAGE, null) }
  },
  show(plan, log) {
    if (!plan.inventory) return log.info(`[front] stage ${plan.stage} has no front door: nothing to remove`)
    log.info(`[front] the front door of stage ${plan.stage} in ${plan.region} (host 1 answers at its own Elastic IP):`)
    for (const line of frontLines(plan.inventory, plan.stage)) log.info(`[front]   remove  ${line}`)
  },
  async apply(plan, deps) {
    if (!plan.inventory) return []
    const removed = await removeFront(deps.clients(plan.region), plan.stage, plan.inventory, deps.log, (deps.pollSeconds ?? 5) * 1000)
    deps.log.info(`[front] removed: ${removed.join(', ')}`)
    return removed
  },
  preview: () => [],
}
