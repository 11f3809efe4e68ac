// The stage's web security group `mymdb-<stage>-web` in the default VPC: HTTP and HTTPS from
// anywhere, SSH only from the deployer's address; the Docker API ports are never open. A stage
// of several hosts also opens Docker Swarm's ports to the group itself (its own hosts) and to
// nothing else. Rules are compared one (protocol, port, source) at a time, so a re-run adds only
// what is missing and revokes only what must go (an SSH rule for your old address).
import type { IpPermission } from '@aws-sdk/client-ec2'
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { stageResources, stageTagFilters, stageTags } from '../names.ts'
import { EC2, aws, type AwsClients } from './clients.ts'
import type { PlanLine } from './plan.ts'
import { removeWhileBusy } from './remove.ts'

export interface IngressRule {
  port: number
  cidr: string
  /** tcp when absent. */
  protocol?: 'udp'
  /** The rule's description as the group has it (kept so that a revoke names the exact rule). */
  description?: string
}

/** The ingress rules of the web security group: 80/443 from anywhere (IPv4+IPv6), 22 from sshCidr. */
export function desiredIngress(sshCidr: string): IngressRule[] {
  const rules: IngressRule[] = []
  for (const port of [80, 443]) rules.push({ port, cidr: '0.0.0.0/0' }, { port, cidr: '::/0' })
  rules.push({ port: 22, cidr: sshCidr })
  return rules
}

/** The group's current rules from address ranges, one per (protocol, port, CIDR) (TCP and UDP single ports only). */
export function flattenIngress(perms: IpPermission[] | undefined): IngressRule[] {
  const out: IngressRule[] = []
  for (const p of perms ?? []) {
    if ((p.IpProtocol !== 'tcp' && p.IpProtocol !== 'udp') || p.FromPort === undefined || p.FromPort !== p.ToPort) continue
    const protocol = p.IpProtocol === 'udp' ? { protocol: 'udp' as const } : {}
    for (const r of p.IpRanges ?? []) if (r.CidrIp) out.push({ port: p.FromPort, cidr: r.CidrIp, ...protocol, ...(r.Description ? { description: r.Description } : {}) })
    for (const r of p.Ipv6Ranges ?? [])
      if (r.CidrIpv6) out.push({ port: p.FromPort, cidr: r.CidrIpv6, ...protocol, ...(r.Description ? { description: r.Description } : {}) })
  }
  return out
}

const same = (a: IngressRule, b: IngressRule) => a.port === b.port && a.cidr === b.cidr && (a.protocol ?? 'tcp') === (b.protocol ?? 'tcp')

/** A port a group opens to itself (its own members). */
export interface SelfRule {
  protocol: 'tcp' | 'udp'
  port: number
}

/** Docker Swarm between the stage's hosts: cluster management, the nodes' gossip, the overlay network (VXLAN). */
export const SWARM_PORTS: readonly SelfRule[] = [
  { protocol: 'tcp', port: 2377 },
  { protocol: 'tcp', port: 7946 },
  { protocol: 'udp', port: 7946 },
  { protocol: 'udp', port: 4789 },
]

const SWARM_DESCRIPTION = "Docker Swarm between the stage's hosts"

/** The ports the group opens to itself (single TCP and UDP ports). */
export function flattenSelf(perms: IpPermission[] | undefined, groupId: string): SelfRule[] {
  const out: SelfRule[] = []
  for (const p of perms ?? []) {
    if ((p.IpProtocol !== 'tcp' && p.IpProtocol !== 'udp') || p.FromPort === undefined || p.FromPort !== p.ToPort) continue
    if ((p.UserIdGroupPairs ?? []).some((g) => g.GroupId === groupId)) out.push({ protocol: p.IpProtocol, port: p.FromPort })
  }
  return out
}

/** IpPermissions opening `rules` to the group `groupId` itself. */
export function selfPermissions(rules: readonly SelfRule[], groupId: string): IpPermission[] {
  return rules.map((r) => ({ IpProtocol: r.protocol, FromPort: r.port, ToPort: r.port, UserIdGroupPairs: [{ GroupId: groupId, Description: SWARM_DESCRIPTION }] }))
}

/** The Swarm ports to open to the group itself (several hosts) or to close (one host). */
export function planSelf(current: readonly SelfRule[], hosts: number): { add: SelfRule[]; revoke: SelfRule[] } {
  const has = (r: SelfRule) => current.some((c) => c.protocol === r.protocol && c.port === r.port)
  return hosts > 1 ? { add: SWARM_PORTS.filter((r) => !has(r)), revoke: [] } : { add: [], revoke: SWARM_PORTS.filter(has) }
}

const isSwarmPort = (r: IngressRule) => SWARM_PORTS.some((p) => p.port === r.port && p.protocol === (r.protocol ?? 'tcp'))

/**
 * Rules to add (missing) and to revoke: SSH rules for any other source (e.g. your old IP), and
 * anything opening the Docker API ports 2375/2376 or Swarm's ports to an address range. Other
 * rules are left alone.
 */
export function planIngress(current: IngressRule[], sshCidr: string): { add: IngressRule[]; revoke: IngressRule[] } {
  const want = desiredIngress(sshCidr)
  return {
    add: want.filter((w) => !current.some((c) => same(c, w))),
    revoke: current.filter((c) => ((c.port === 22 && c.cidr !== sshCidr) || c.port === 2375 || c.port === 2376) || isSwarmPort(c)),
  }
}

/**
 * IpPermissions for rules (IPv4 and IPv6 ranges sorted out). New rules get our description;
 * rules to revoke keep the one they have (`existing`), so that the request names them exactly.
 */
export function toIpPermissions(rules: IngressRule[], existing = false): IpPermission[] {
  return rules.map((r) => {
    const Description = existing ? r.description : ruleDescription(r)
    return {
      IpProtocol: r.protocol ?? 'tcp',
      FromPort: r.port,
      ToPort: r.port,
      ...(r.cidr.includes(':') ? { Ipv6Ranges: [{ CidrIpv6: r.cidr, Description }] } : { IpRanges: [{ CidrIp: r.cidr, Description }] }),
    }
  })
}

function ruleDescription(r: IngressRule): string {
  return r.port === 22 ? 'SSH from the deployer' : r.port === 80 ? 'HTTP' : r.port === 443 ? 'HTTPS' : `port ${r.port}`
}

export interface SecurityGroupPlan {
  /** null: create the group (then add every rule). */
  id: string | null
  add: IngressRule[]
  revoke: IngressRule[]
  /** Swarm's ports, opened to the group itself or closed. */
  self: { add: SelfRule[]; revoke: SelfRule[] }
}

/** The group as it is: its id, its rules from address ranges, the ports it opens to itself. */
export interface SecurityGroupState {
  id: string
  ingress: IngressRule[]
  self: SelfRule[]
}

const showRule = (r: IngressRule) => `${r.port}${r.protocol ? `/${r.protocol}` : ''} from ${r.cidr}`
const showSelf = (rules: readonly SelfRule[]) => rules.map((r) => `${r.port}/${r.protocol}`).join(', ')

/** What to do about the group (found or null) for `hosts` hosts, and its plan line (pure). */
export function planSecurityGroup(stage: string, found: SecurityGroupState | null, sshCidr: string, hosts = 1): SecurityGroupPlan & { line: PlanLine } {
  const resource = `security group ${stageResources(stage).securityGroup}`
  const self = planSelf(found?.self ?? [], hosts)
  const swarm = self.add.length > 0 ? `; Swarm ${showSelf(self.add)} between its hosts` : ''
  if (!found) return { id: null, add: desiredIngress(sshCidr), revoke: [], self, line: { resource, action: 'create', detail: `80, 443 from anywhere; 22 from ${sshCidr}${swarm}` } }
  const { add, revoke } = planIngress(found.ingress, sshCidr)
  const changes = [
    ...add.map((r) => `add ${showRule(r)}`),
    ...revoke.map((r) => `revoke ${showRule(r)}`),
    ...(self.add.length > 0 ? [`open Swarm ${showSelf(self.add)} between its hosts`] : []),
    ...(self.revoke.length > 0 ? [`close Swarm ${showSelf(self.revoke)} (one host)`] : []),
  ]
  return {
    id: found.id,
    add,
    revoke,
    self,
    line: { resource, action: changes.length > 0 ? 'update' : 'exists', detail: changes.length > 0 ? changes.join(', ') : `${found.id}; 22 from ${sshCidr}` },
  }
}

export async function defaultVpcId(clients: AwsClients): Promise<string> {
  const r = await aws('look up the default VPC', () =>
    clients.ec2.send(new EC2.DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] })),
  )
  const id = r.Vpcs?.[0]?.VpcId
  if (!id)
    throw new UserError(
      `region ${clients.region} has no default VPC: create one with \`aws ec2 create-default-vpc --region ${clients.region}\``,
    )
  return id
}

/** The stage's web security group: by name in `vpcId`, or anywhere by name + stage tags. */
export async function findSecurityGroup(clients: AwsClients, stage: string, vpcId?: string): Promise<SecurityGroupState | null> {
  const name = stageResources(stage).securityGroup
  const Filters = [
    { Name: 'group-name', Values: [name] },
    ...(vpcId ? [{ Name: 'vpc-id', Values: [vpcId] }] : stageTagFilters(stage)),
  ]
  const r = await aws('look up the security group', () => clients.ec2.send(new EC2.DescribeSecurityGroupsCommand({ Filters })))
  const g = r.SecurityGroups?.find((x) => x.GroupName === name)
  return g?.GroupId ? { id: g.GroupId, ingress: flattenIngress(g.IpPermissions), self: flattenSelf(g.IpPermissions, g.GroupId) } : null
}

export async function applySecurityGroup(clients: AwsClients, plan: { stage: string; vpcId: string; securityGroup: SecurityGroupPlan }, log: Log): Promise<string> {
  const name = stageResources(plan.stage).securityGroup
  let id = plan.securityGroup.id
  if (id === null) {
    const r = await aws('create the security group', () =>
      clients.ec2.send(
        new EC2.CreateSecurityGroupCommand({
          GroupName: name,
          Description: `MyMDB ${plan.stage}: web from anywhere, SSH from the deployer`,
          VpcId: plan.vpcId,
          TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'Name', Value: name }, ...stageTags(plan.stage)] }],
        }),
      ),
    )
    id = r.GroupId ?? ''
    log.info(`[host] security group ${name}: created (${id})`)
  }
  const groupId = id
  const { add, revoke } = plan.securityGroup
  if (revoke.length > 0) {
    await aws('revoke stale security group rules', () =>
      clients.ec2.send(new EC2.RevokeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: toIpPermissions(revoke, true) })),
    )
    log.info(`[host] security group ${name}: revoked ${revoke.map(showRule).join(', ')}`)
  }
  if (add.length > 0) {
    await aws('add security group rules', () =>
      clients.ec2.send(new EC2.AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: toIpPermissions(add) })),
    )
    log.info(`[host] security group ${name}: allowed ${add.map(showRule).join(', ')}`)
  }
  const { self } = plan.securityGroup
  if (self.revoke.length > 0) {
    await aws("close Swarm's ports", () => clients.ec2.send(new EC2.RevokeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: selfPermissions(self.revoke, groupId) })))
    log.info(`[host] security group ${name}: closed Swarm's ${showSelf(self.revoke)} (one host)`)
  }
  if (self.add.length > 0) {
    await aws("open Swarm's ports between the hosts", () => clients.ec2.send(new EC2.AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: selfPermissions(self.add, groupId) })))
    log.info(`[host] security group ${name}: opened Swarm's ${showSelf(self.add)} to its own hosts only`)
  }
  return groupId
}

/** Tries to delete the security group while a terminated instance's network interface still holds it. */
const DELETE_ATTEMPTS = 20

/** Deletes the group (gone already is fine); retried while a just-terminated instance still holds it. */
export async function deleteSecurityGroup(clients: AwsClients, id: string, log: Log, retryDelayMs = 5000): Promise<void> {
  await removeWhileBusy(`delete the security group ${id}`, { busy: ['DependencyViolation'], gone: ['InvalidGroup.NotFound'] }, () => clients.ec2.send(new EC2.DeleteSecurityGroupCommand({ GroupId: id })), {
    delayMs: retryDelayMs,
    attempts: DELETE_ATTEMPTS,
    onBusy: (attempt, attempts) => log.info(`[destroy] security group ${id} is still in use; retrying in ${retryDelayMs / 1000} s (${attempt}/${attempts})`),
  })
}
