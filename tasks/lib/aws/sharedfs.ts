// The fronts' shared storage when a stage has several hosts: one EFS file system that every host
// mounts, where the fronts (Caddy) keep their ACME account and certificates. One front orders a
// certificate and every node serves it; renewals too (the spike: bench/FRONT-SPIKE.md).
// Encrypted at rest, a mount target in each zone the hosts run in (a host mounts the one of its
// zone), NFS (2049) admitted from the hosts' security group only. Found again by its creation
// token (the name: EFS makes no twin for a token it knows) and the stage's tags.
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { retryUntil } from '../sh.ts'
import { frontResources, stageTags } from '../names.ts'
import { EFS, aws, type AwsClients } from './clients.ts'
import { applyHostsOnlyGroup, findHostsOnlyGroup, planHostsOnlyGroup, type HostsOnlyGroupFound, type HostsOnlyGroupPlan } from './hostsonly.ts'
import type { PlanLine } from './plan.ts'
import type { ZoneSubnet } from './zones.ts'

export const NFS_PORT = 2049

export interface SharedFsFound {
  fileSystem: { id: string; encrypted: boolean; state: string } | null
  /** Its mount targets and the security groups of each. */
  mountTargets: { id: string; zone: string; subnetId: string; groups: string[] }[]
  securityGroup: HostsOnlyGroupFound
}

export interface SharedFsPlan {
  vpcId: string
  /** The file system's id (null: to be made). */
  fileSystem: string | null
  /** Zones that get a mount target (the hosts' zones without one). */
  newMountTargets: ZoneSubnet[]
  /** Mount targets whose security groups are not exactly the file system's group. */
  regroup: string[]
  group: HostsOnlyGroupPlan
  lines: PlanLine[]
}

/** The address a host mounts (EFS's DNS name resolves, in each zone, to that zone's mount target). */
export function sharedFsAddress(fileSystemId: string, region: string): string {
  return `${fileSystemId}.efs.${region}.amazonaws.com`
}

/** What makes the shared storage as wanted for hosts in `zones` (pure). */
export function planSharedFs(stage: string, vpcId: string, found: SharedFsFound, zones: readonly ZoneSubnet[]): SharedFsPlan {
  const n = frontResources(stage)
  const fs = found.fileSystem
  if (fs && !fs.encrypted)
    throw new UserError(`the EFS file system ${n.fileSystem} (${fs.id}) is not encrypted, and EFS cannot encrypt one in place: delete it (aws efs delete-file-system, after its mount targets) and deploy again; the fronts obtain their certificate again`)
  const group = planHostsOnlyGroup(n.fsSecurityGroup, NFS_PORT, found.securityGroup)
  const newMountTargets = zones.filter((z) => !found.mountTargets.some((m) => m.zone === z.zone))
  const regroup = found.securityGroup ? found.mountTargets.filter((m) => m.groups.length !== 1 || m.groups[0] !== found.securityGroup!.id).map((m) => m.id) : []
  const lines: PlanLine[] = [
    group.line,
    fs
      ? { resource: `EFS file system ${n.fileSystem}`, action: 'exists', detail: `${fs.id}, encrypted, ${fs.state}` }
      : { resource: `EFS file system ${n.fileSystem}`, action: 'create', detail: "encrypted; the fronts' certificates, shared by every host" },
    ...zones.map((z): PlanLine => {
      const m = found.mountTargets.find((x) => x.zone === z.zone)
      if (!m) return { resource: `EFS mount target in ${z.zone}`, action: 'create', detail: `in ${z.subnetId}, NFS from the hosts only` }
      return regroup.includes(m.id) ? { resource: `EFS mount target in ${z.zone}`, action: 'update', detail: `${m.id}: its security groups set to ${n.fsSecurityGroup} only` } : { resource: `EFS mount target in ${z.zone}`, action: 'exists', detail: m.id }
    }),
  ]
  return { vpcId, fileSystem: fs?.id ?? null, newMountTargets, regroup, group, lines }
}

/** The shared storage as it is (reads only). */
export async function findSharedFs(clients: AwsClients, stage: string, vpcId: string, hostsGroupId: string | null): Promise<SharedFsFound> {
  const n = frontResources(stage)
  const [systems, securityGroup] = await Promise.all([
    aws('look up the EFS file system', () => clients.efs.send(new EFS.DescribeFileSystemsCommand({ CreationToken: n.fileSystem }))),
    findHostsOnlyGroup(clients, vpcId, n.fsSecurityGroup, hostsGroupId),
  ])
  const fs = systems.FileSystems?.find((f) => f.LifeCycleState !== 'deleting' && f.LifeCycleState !== 'deleted')
  if (!fs?.FileSystemId) return { fileSystem: null, mountTargets: [], securityGroup }
  const targets = await aws('look up the EFS mount targets', () => clients.efs.send(new EFS.DescribeMountTargetsCommand({ FileSystemId: fs.FileSystemId })))
  const mountTargets = await Promise.all(
    (targets.MountTargets ?? [])
      .filter((m) => m.MountTargetId && m.LifeCycleState !== 'deleting' && m.LifeCycleState !== 'deleted')
      .map(async (m) => {
        const g = await aws('look up the security groups of an EFS mount target', () => clients.efs.send(new EFS.DescribeMountTargetSecurityGroupsCommand({ MountTargetId: m.MountTargetId })))
        return { id: m.MountTargetId!, zone: m.AvailabilityZoneName ?? '', subnetId: m.SubnetId ?? '', groups: g.SecurityGroups ?? [] }
      }),
  )
  return { fileSystem: { id: fs.FileSystemId, encrypted: fs.Encrypted === true, state: fs.LifeCycleState ?? '' }, mountTargets, securityGroup }
}

/** Polls `check` every `pollSeconds` until it says done (at most `limitSeconds`). */
async function waitUntil(what: string, check: () => Promise<boolean>, pollSeconds: number, limitSeconds: number): Promise<void> {
  await retryUntil(
    Math.ceil(limitSeconds / pollSeconds) + 1,
    pollSeconds * 1000,
    async () => ((await check()) ? true : undefined),
    () => new UserError(`${what} did not happen within ${limitSeconds} s: run the same command again later`),
  )
}

/** Makes the shared storage as planned and waits until every mount target is available; returns the file system's id. */
export async function applySharedFs(clients: AwsClients, stage: string, plan: SharedFsPlan, hostsGroupId: string, log: Log, pollSeconds = 5): Promise<string> {
  const n = frontResources(stage)
  const groupId = await applyHostsOnlyGroup(clients, { stage, vpcId: plan.vpcId, name: n.fsSecurityGroup, port: NFS_PORT, purpose: "NFS (the fronts' shared storage) from the hosts only", hostsGroupId }, plan.group)
  let fsId = plan.fileSystem
  if (!fsId) {
    const r = await aws('create the EFS file system', () =>
      clients.efs.send(
        new EFS.CreateFileSystemCommand({ CreationToken: n.fileSystem, Encrypted: true, PerformanceMode: 'generalPurpose', ThroughputMode: 'elastic', Tags: [{ Key: 'Name', Value: n.fileSystem }, ...stageTags(stage)] }),
      ),
    )
    fsId = r.FileSystemId ?? ''
    log.info(`[front] EFS file system ${n.fileSystem} created: ${fsId}`)
  }
  const id = fsId
  await waitUntil(`the EFS file system ${id} becoming available`, async () => {
    const r = await aws('look up the EFS file system', () => clients.efs.send(new EFS.DescribeFileSystemsCommand({ FileSystemId: id })))
    return r.FileSystems?.[0]?.LifeCycleState === 'available'
  }, pollSeconds, 300)
  for (const z of plan.newMountTargets)
    await aws(`create the EFS mount target in ${z.zone}`, () => clients.efs.send(new EFS.CreateMountTargetCommand({ FileSystemId: id, SubnetId: z.subnetId, SecurityGroups: [groupId] })))
  for (const m of plan.regroup)
    await aws('set the security groups of an EFS mount target', () => clients.efs.send(new EFS.ModifyMountTargetSecurityGroupsCommand({ MountTargetId: m, SecurityGroups: [groupId] })))
  if (plan.newMountTargets.length > 0) log.info(`[front] waiting for ${plan.newMountTargets.length} EFS mount target(s) (AWS takes about 90 s)`)
  await waitUntil('the EFS mount targets becoming available', async () => {
    const r = await aws('look up the EFS mount targets', () => clients.efs.send(new EFS.DescribeMountTargetsCommand({ FileSystemId: id })))
    return (r.MountTargets ?? []).every((m) => m.LifeCycleState === 'available' || m.LifeCycleState === 'deleted')
  }, pollSeconds, 600)
  return id
}

/** The address of the stage's shared storage, when it has one (remote:up alone looks it up). */
export async function findSharedFsAddress(clients: AwsClients, stage: string): Promise<string | undefined> {
  const r = await aws('look up the EFS file system', () => clients.efs.send(new EFS.DescribeFileSystemsCommand({ CreationToken: frontResources(stage).fileSystem })))
  const fs = r.FileSystems?.find((f) => f.LifeCycleState === 'available' && f.FileSystemId)
  return fs ? sharedFsAddress(fs.FileSystemId!, clients.region) : undefined
}
