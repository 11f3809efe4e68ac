// The stage's web security group `mymdb-<stage>-web` in the default VPC: HTTP and HTTPS from
// anywhere, SSH only from the deployer's address; the Docker API ports are never open. Rules are
// compared one (port, CIDR) at a time, so a re-run adds only what is missing and revokes only
// what must go (an SSH rule for your old address).
import type { IpPermission } from '@aws-sdk/client-ec2'
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { retryUntil } from '../sh.ts'
import { stageResources, stageTagFilters, stageTags } from '../names.ts'
import { EC2, aws, awsErrorCode, explainAwsError, type AwsClients } from './clients.ts'
import type { PlanLine } from './plan.ts'

export interface IngressRule {
  port: number
  cidr: string
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

/** The group's current rules flattened to one rule per (port, CIDR) (TCP single ports only). */
export function flattenIngress(perms: IpPermission[] | undefined): IngressRule[] {
  const out: IngressRule[] = []
  for (const p of perms ?? []) {
    if (p.IpProtocol !== 'tcp' || p.FromPort === undefined || p.FromPort !== p.ToPort) continue
    for (const r of p.IpRanges ?? []) if (r.CidrIp) out.push({ port: p.FromPort, cidr: r.CidrIp, ...(r.Description ? { description: r.Description } : {}) })
    for (const r of p.Ipv6Ranges ?? [])
      if (r.CidrIpv6) out.push({ port: p.FromPort, cidr: r.CidrIpv6, ...(r.Description ? { description: r.Description } : {}) })
  }
  return out
}

const same = (a: IngressRule, b: IngressRule) => a.port === b.port && a.cidr === b.cidr

/**
 * Rules to add (missing) and to revoke: SSH rules for any other source (e.g. your old IP), and
 * anything opening the Docker API ports 2375/2376. Other rules are left alone.
 */
export function planIngress(current: IngressRule[], sshCidr: string): { add: IngressRule[]; revoke: IngressRule[] } {
  const want = desiredIngress(sshCidr)
  return {
    add: want.filter((w) => !current.some((c) => same(c, w))),
    revoke: current.filter((c) => (c.port === 22 && c.cidr !== sshCidr) || c.port === 2375 || c.port === 2376),
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
      IpProtocol: 'tcp',
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
}

/** What to do about the group (found or null), and its plan line (pure). */
export function planSecurityGroup(stage: string, found: { id: string; ingress: IngressRule[] } | null, sshCidr: string): SecurityGroupPlan & { line: PlanLine } {
  const resource = `security group ${stageResources(stage).securityGroup}`
  if (!found) return { id: null, add: desiredIngress(sshCidr), revoke: [], line: { resource, action: 'create', detail: `80, 443 from anywhere; 22 from ${sshCidr}` } }
  const { add, revoke } = planIngress(found.ingress, sshCidr)
  const changes = [...add.map((r) => `add ${r.port} from ${r.cidr}`), ...revoke.map((r) => `revoke ${r.port} from ${r.cidr}`)]
  return {
    id: found.id,
    add,
    revoke,
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
export async function findSecurityGroup(clients: AwsClients, stage: string, vpcId?: string): Promise<{ id: string; ingress: IngressRule[] } | null> {
  const name = stageResources(stage).securityGroup
  const Filters = [
    { Name: 'group-name', Values: [name] },
    ...(vpcId ? [{ Name: 'vpc-id', Values: [vpcId] }] : stageTagFilters(stage)),
  ]
  const r = await aws('look up the security group', () => clients.ec2.send(new EC2.DescribeSecurityGroupsCommand({ Filters })))
  const g = r.SecurityGroups?.find((x) => x.GroupName === name)
  return g?.GroupId ? { id: g.GroupId, ingress: flattenIngress(g.IpPermissions) } : null
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
    log.info(`[host] security group ${name}: revoked ${revoke.map((r) => `${r.port} from ${r.cidr}`).join(', ')}`)
  }
  if (add.length > 0) {
    await aws('add security group rules', () =>
      clients.ec2.send(new EC2.AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: toIpPermissions(add) })),
    )
    log.info(`[host] security group ${name}: allowed ${add.map((r) => `${r.port} from ${r.cidr}`).join(', ')}`)
  }
  return groupId
}

/** Tries to delete the security group while a terminated instance's network interface still holds it. */
const DELETE_ATTEMPTS = 20

/** Deletes the group (gone already is fine); retried while a just-terminated instance still holds it. */
export async function deleteSecurityGroup(clients: AwsClients, id: string, log: Log, retryDelayMs = 5000): Promise<void> {
  const inUse = (err: unknown) => awsErrorCode(err) === 'DependencyViolation'
  await retryUntil(
    DELETE_ATTEMPTS,
    retryDelayMs,
    async (attempt) => {
      try {
        await clients.ec2.send(new EC2.DeleteSecurityGroupCommand({ GroupId: id }))
      } catch (err) {
        if (awsErrorCode(err) === 'InvalidGroup.NotFound') return true
        if (inUse(err) && attempt < DELETE_ATTEMPTS) log.info(`[destroy] security group ${id} is still in use; retrying in ${retryDelayMs / 1000} s (${attempt}/${DELETE_ATTEMPTS})`)
        throw err
      }
      return true
    },
    (_last, err) => explainAwsError(err, `delete the security group ${id}`),
    (err) => !inUse(err),
  )
}
