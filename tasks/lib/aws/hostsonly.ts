// A security group of a stage's inner service (the RDS database, the front's shared file system)
// that admits one TCP port from the hosts' security group and from nothing else: found by name,
// planned (the rule added when missing, every other rule revoked), made. Sources are read with
// the hosts' group named HOSTS, so a plan can be made before that group exists.
import { stageTags } from '../names.ts'
import { EC2, aws, awsErrorCode, type AwsClients } from './clients.ts'
import type { PlanLine } from './plan.ts'

/** Stands for the hosts' security group id in a plan made before it exists (apply is given the id). */
export const HOSTS = 'the-hosts'

/** The group and its ingress rules (source: HOSTS, another group's id, or a CIDR). */
export type HostsOnlyGroupFound = { id: string; rules: { id: string; port: string; source: string }[] } | null

export interface HostsOnlyGroupPlan {
  /** The group's id (null: to be made). */
  securityGroup: string | null
  /** Add the rule admitting the port from the hosts' group. */
  allowHosts: boolean
  /** Ingress rules to revoke, by id: anything but the port from the hosts' group. */
  revoke: string[]
  line: PlanLine
}

/** The group named `name` in the VPC and its ingress rules (null: none). */
export async function findHostsOnlyGroup(clients: AwsClients, vpcId: string, name: string, hostsGroupId: string | null): Promise<HostsOnlyGroupFound> {
  const groups = await aws(`look up the security group ${name}`, () =>
    clients.ec2.send(new EC2.DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'group-name', Values: [name] }] })),
  )
  const sg = groups.SecurityGroups?.find((g) => g.GroupName === name)
  if (!sg?.GroupId) return null
  const rules = await aws(`look up the rules of the security group ${name}`, () =>
    clients.ec2.send(new EC2.DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [sg.GroupId!] }] })),
  )
  return {
    id: sg.GroupId,
    rules: (rules.SecurityGroupRules ?? [])
      .filter((r) => !r.IsEgress && r.SecurityGroupRuleId)
      .map((r) => ({
        id: r.SecurityGroupRuleId!,
        port: r.FromPort === r.ToPort ? String(r.FromPort) : `${r.FromPort}-${r.ToPort}`,
        source: r.ReferencedGroupInfo?.GroupId ? (r.ReferencedGroupInfo.GroupId === hostsGroupId ? HOSTS : r.ReferencedGroupInfo.GroupId) : (r.CidrIpv4 ?? r.CidrIpv6 ?? r.PrefixListId ?? ''),
      })),
  }
}

/** What makes the group admit `port` from the hosts only (pure). */
export function planHostsOnlyGroup(name: string, port: number, found: HostsOnlyGroupFound): HostsOnlyGroupPlan {
  const isHosts = (r: { port: string; source: string }) => r.source === HOSTS && r.port === String(port)
  const foreign = found?.rules.filter((r) => !isHosts(r)) ?? []
  const hostsRule = found?.rules.some(isHosts) ?? false
  const line: PlanLine = found
    ? {
        resource: `security group ${name}`,
        action: hostsRule && foreign.length === 0 ? 'exists' : 'update',
        detail: [hostsRule ? '' : `allow ${port} from the hosts`, ...foreign.map((r) => `revoke ${r.port} from ${r.source}`)].filter(Boolean).join(', ') || `${found.id}; ${port} from the hosts only`,
      }
    : { resource: `security group ${name}`, action: 'create', detail: `${port} from the hosts' security group only` }
  return { securityGroup: found?.id ?? null, allowHosts: !hostsRule, revoke: [...new Set(foreign.map((r) => r.id))], line }
}

/** Makes the group as planned; returns its id. `purpose`: its description (`MyMDB <stage>: <purpose>`). */
export async function applyHostsOnlyGroup(
  clients: AwsClients,
  o: { stage: string; vpcId: string; name: string; port: number; purpose: string; hostsGroupId: string },
  plan: Pick<HostsOnlyGroupPlan, 'securityGroup' | 'allowHosts' | 'revoke'>,
): Promise<string> {
  let sg = plan.securityGroup
  if (!sg) {
    const r = await aws(`create the security group ${o.name}`, () =>
      clients.ec2.send(
        new EC2.CreateSecurityGroupCommand({ GroupName: o.name, Description: `MyMDB ${o.stage}: ${o.purpose}`, VpcId: o.vpcId, TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'Name', Value: o.name }, ...stageTags(o.stage)] }] }),
      ),
    )
    sg = r.GroupId ?? ''
  }
  const groupId = sg
  if (plan.revoke.length > 0)
    await aws(`revoke the other rules of ${o.name}`, () => clients.ec2.send(new EC2.RevokeSecurityGroupIngressCommand({ GroupId: groupId, SecurityGroupRuleIds: plan.revoke })))
  if (plan.allowHosts)
    await aws(`admit ${o.port} from the hosts into ${o.name}`, () =>
      clients.ec2.send(new EC2.AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [{ IpProtocol: 'tcp', FromPort: o.port, ToPort: o.port, UserIdGroupPairs: [{ GroupId: o.hostsGroupId, Description: `${o.purpose}` }] }] })),
    ).catch((err) => {
      if (awsErrorCode(err) !== 'InvalidPermission.Duplicate') throw err
    })
  return groupId
}
