// A stage's hosts as one resource: what they share (key pair, security group, roles and instance
// profile) and, for each host, its instance and Elastic IP. A stage of several hosts has them
// spread over the region's availability zones and Swarm's ports open between them only. What exists is read once
// (readHostState), the plan is pure (planHost), and applyHost executes exactly that plan,
// reading nothing again.
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { waitForSsh, waitForTcp } from '../net.ts'
import { nodeName, stageResources } from '../names.ts'
import type { KeyFile } from '../sshkey.ts'
import { STS, aws, type AwsClients } from './clients.ts'
import type { CostInput } from './costs.ts'
import { applyElasticIp, planElasticIp, readElasticIps, type ElasticIp, type ElasticIpPlan } from './address.ts'
import { applyInstance, findNodes, planInstance, reachAddress, terminateInstances, waitRunning, type HostInfo, type InstancePlan, type LaunchSpec } from './instance.ts'
import { applyKeyPair, keyPairExists, planKeyPair, type KeyPairPlan } from './keypair.ts'
import type { PlanLine } from './plan.ts'
import { applyHostRole, planRoles, readBackupRole, readInstanceProfile, readRole, type RolesPlan, type RolesState } from './roles.ts'
import { applySecurityGroup, findSecurityGroup, planSecurityGroup, type SecurityGroupPlan, type SecurityGroupState } from './securitygroup.ts'
import { readZoneSubnets, spreadOverZones, type ZoneSubnet } from './zones.ts'

/** What is there of one host now. */
export interface NodeState {
  node: number
  instance: HostInfo | null
  /** Its Elastic IP (found by its tags), and the instance it is associated with. */
  elasticIp: ElasticIp | null
}

/** What is there now (read-only lookups), for planHost. */
export interface HostState extends RolesState {
  keyPairInEc2: boolean
  keyFile: KeyFile
  securityGroup: SecurityGroupState | null
  /** Hosts 1..N, in order. */
  nodes: NodeState[]
  /** With several hosts: the VPC's default subnet in each availability zone (new hosts are spread over them). */
  subnets: ZoneSubnet[]
  /** Hosts beyond the wanted number that exist (their numbers and instances). */
  beyond?: { node: number; instance: HostInfo }[]
}

/** What the hosts should be: where their SSH comes from, the buckets their roles may use. */
export interface HostWanted {
  stage: string
  sshCidr: string
  bucket: string
  backupBucket: string
  /** With MYMDB_REGISTRY=ecr: the repositories the host role may pull, in this region. */
  ecrPull?: { region: string; repositories: string[] }
  vpcId?: string
}

/** One host's part of the plan. */
export interface NodePlan {
  stage: string
  node: number
  instance: InstancePlan
  elasticIp: ElasticIpPlan
  /** A new instance of a stage of several hosts: the subnet (and so the zone) it is launched in. */
  subnetId?: string
  /** Its zone, when known (where it runs, or where a new one of several goes). */
  zone?: string
}

/**
 * The plan (pure): for each resource what apply will do, exactly; `items` says it in one line
 * per resource (exists / create / update / import / start), the shared ones first.
 */
export interface HostPlan extends RolesPlan {
  stage: string
  vpcId: string
  sshCidr: string
  bucket: string
  items: PlanLine[]
  keyPair: KeyPairPlan
  securityGroup: SecurityGroupPlan
  nodes: NodePlan[]
  /** Hosts beyond MYMDB_HOSTS: taken out of the swarm by the start step, then terminated. */
  retire: { node: number; instance: HostInfo }[]
}

export function planHost(state: HostState, want: HostWanted, newExternalId?: () => string): HostPlan {
  const retire = state.beyond ?? []
  const { line: keyLine, ...keyPair } = planKeyPair(want.stage, state.keyPairInEc2, state.keyFile)
  // hosts being taken away are still in the swarm until the start step has moved their tasks: its ports stay open till then
  const { line: groupLine, ...securityGroup } = planSecurityGroup(want.stage, state.securityGroup, want.sshCidr, state.nodes.length + retire.length)
  const { lines: roleLines, ...roles } = planRoles(want.stage, state, want, newExternalId)
  const nodeLines: PlanLine[] = []
  // one host: where EC2 puts it, as before; several: spread over the zones
  const subnets = state.nodes.length > 1 ? spreadOverZones(state.nodes.map((n) => n.instance?.zone), state.subnets) : []
  const nodes = state.nodes.map(({ node, instance: found, elasticIp: address }, i) => {
    const { line: instanceLine, ...instance } = planInstance(want.stage, node, found)
    const { line: addressLine, ...elasticIp } = planElasticIp(want.stage, node, address, found?.instanceId)
    const subnet = instance.action === 'create' ? subnets[i] : undefined
    nodeLines.push(subnet ? { ...instanceLine, detail: `${instanceLine.detail}, in ${subnet.zone}` } : instanceLine, addressLine)
    const zone = found?.zone ?? subnet?.zone
    return { stage: want.stage, node, instance, elasticIp, ...(subnet ? { subnetId: subnet.subnetId } : {}), ...(zone ? { zone } : {}) }
  })
  return {
    stage: want.stage,
    vpcId: want.vpcId ?? '',
    sshCidr: want.sshCidr,
    bucket: want.bucket,
    items: [
      keyLine,
      groupLine,
      ...roleLines,
      ...nodeLines,
      ...retire.map(({ node, instance }) => ({
        resource: `instance ${nodeName(want.stage, node)}`,
        action: 'remove' as const,
        detail: `${instance.instanceId}, beyond MYMDB_HOSTS: once the start step has moved its tasks to the other hosts and taken it out of the swarm (its elastic IP stays the stage's)`,
      })),
    ],
    keyPair,
    securityGroup,
    ...roles,
    nodes,
    retire,
  }
}

/** Everything planHost needs for hosts 1..`count`, read without changing anything. */
export async function readHostState(clients: AwsClients, stage: string, keyFile: KeyFile, vpcId: string, count = 1): Promise<HostState> {
  const n = stageResources(stage)
  const instances = await findNodes(clients, stage)
  const addresses = await readElasticIps(clients, stage)
  return {
    keyPairInEc2: await keyPairExists(clients, n.keyPair),
    keyFile,
    securityGroup: await findSecurityGroup(clients, stage, vpcId),
    role: await readRole(clients, stage),
    backupRole: await readBackupRole(clients, stage),
    instanceProfile: await readInstanceProfile(clients, stage),
    nodes: Array.from({ length: count }, (_, i) => ({
      node: i + 1,
      instance: instances.get(i + 1) ?? null,
      elasticIp: addresses.find((a) => a.node === i + 1) ?? null,
    })),
    subnets: count > 1 ? await readZoneSubnets(clients, vpcId) : [],
    beyond: [...instances].filter(([node]) => node > count).map(([node, instance]) => ({ node, instance })).sort((a, b) => a.node - b.node),
    account: (await aws('find the AWS account id (STS GetCallerIdentity)', () => clients.sts.send(new STS.GetCallerIdentityCommand({})))).Account ?? '',
  }
}

/**
 * Applies the plan in order (key pair, group, roles, then each host's instance and address) and
 * waits until the instances run. `launch` gives a host's launch request (it is only called for a
 * new instance). Returns the running instances, in host order, each with its fixed address as
 * public IP.
 */
export async function applyHost(
  clients: AwsClients,
  plan: HostPlan,
  launch: (node: number, securityGroupId: string) => Promise<LaunchSpec>,
  log: Log,
): Promise<HostInfo[]> {
  await applyKeyPair(clients, plan, log)
  const securityGroupId = await applySecurityGroup(clients, plan, log)
  await applyHostRole(clients, plan, log)
  // every launch first, then the waits: several hosts boot side by side
  const ids: string[] = []
  for (const node of plan.nodes) ids.push(await applyInstance(clients, node, async () => ({ ...(await launch(node.node, securityGroupId)), ...(node.subnetId ? { subnetId: node.subnetId } : {}) }), log))
  const hosts: HostInfo[] = []
  for (const [i, node] of plan.nodes.entries()) {
    const instanceId = ids[i] as string
    await log.step('host', `waiting for ${instanceId} to run`, () => waitRunning(clients, instanceId), 15)
    const fixedIp = await applyElasticIp(clients, node, instanceId, log)
    // described again for the public name that goes with the fixed address; the address is the elastic IP's
    hosts.push({ ...(await waitRunning(clients, instanceId)), publicIp: fixedIp })
  }
  return hosts
}

/** The host step's plan: the resources, and what a new instance is launched with. */
export interface HostStepPlan {
  region: string
  resources: HostPlan
  /** The AMI of a new instance (looked up before anything is created: a missing one must not leave half a host). */
  amiId?: string
  /** Its root device, whose volume is launched encrypted. */
  rootDevice?: string
  amiSource: string
  /** A new instance's launch, but its user-data: the script, to which the launch adds the host's SSH host key. */
  launch: Omit<LaunchSpec, 'node' | 'amiId' | 'securityGroupId' | 'userData' | 'hostKey' | 'rootDevice'> & { script: string }
  /** MYMDB_HOST_ADDRESS: where to reach the hosts instead of their public IPs (one per host). */
  addressOverride?: string[]
  sshPort: number
  waitSsh: boolean
  /** The database on RDS (MYMDB_DATABASE=rds), for the cost estimate. */
  database?: { instanceClass: string; storageGb: number }
}

/** One host of the stage, as the later steps reach it. */
export interface NodeReach {
  node: number
  /** Its instance; null only in a dry run before it exists. */
  host: HostInfo | null
  /** Where to reach it: its entry in MYMDB_HOST_ADDRESS, or its public IP. */
  address?: string
  /** A host (not host 1) that ran before and did not answer on SSH now: the deploy goes on without it. */
  down?: boolean
}

/** What the host step hands on to the later steps. */
export interface HostResult {
  /** Host 1's instance (the stack is deployed from it); null only in a dry run before it exists. */
  host: HostInfo | null
  /** Where to reach host 1: MYMDB_HOST_ADDRESS's first entry, or its public IP. */
  address?: string
  /** Every host, 1..MYMDB_HOSTS (host 1 too). */
  nodes: NodeReach[]
  /** Hosts beyond MYMDB_HOSTS, to be taken out of the swarm and then terminated. */
  retire: NodeReach[]
  /** The private key file of the stage. */
  keyFile: string
  /** Launched by this run: its user-data is still installing Docker. */
  launched: boolean
  /** What the host's backups need (written to ~/mymdb/backup.env by the start step). */
  backup: BackupTarget
}

/** What the stage the plan makes costs: its hosts, several hosts' front door (a load balancer with an address in each of their zones), an RDS database. */
export function stageCosts(plan: HostStepPlan): CostInput {
  const { nodes } = plan.resources
  const front = nodes.length > 1 ? { front: { zones: new Set(nodes.map((h) => h.zone ?? `host ${h.node}`)).size } } : {}
  return { hosts: nodes.length, instanceType: plan.launch.instanceType, diskGb: plan.launch.diskGb, ...(plan.database ? { database: plan.database } : {}), ...front }
}

/** Host `node` as the later steps reach it: its MYMDB_HOST_ADDRESS entry, or its public IP. */
export function reachNode<H extends HostInfo | null>(plan: HostStepPlan, node: number, host: H): { node: number; host: H; address: string | undefined } {
  return { node, host, address: reachAddress(plan.addressOverride, host, node) }
}

/** How long the host step waits for SSH on a host of a cluster that ran before (a new one: SSH_TIMEOUT_SECONDS). */
export const DOWN_HOST_WAIT_SECONDS = 30

/**
 * Waits until every host's SSH port answers. A host of a cluster that ran before gets a short
 * wait (`downWaitSeconds`, default DOWN_HOST_WAIT_SECONDS); one that does not answer is marked
 * `down` and left out of this deploy (Swarm runs its tasks on the others) rather than failing it.
 */
export async function waitForNodes(plan: HostStepPlan, nodes: NodeReach[], log: Log, downWaitSeconds = DOWN_HOST_WAIT_SECONDS): Promise<void> {
  for (const n of nodes) {
    const { node, host, address } = n
    if (!address) throw new UserError(`instance ${host?.instanceId} has no public IP address: set MYMDB_HOST_ADDRESS to an address that reaches it`)
    if (node > 1 && plan.resources.nodes[node - 1]?.instance.action === 'exists') {
      const up = await log.step('host', `waiting for SSH on host ${node} (${address}:${plan.sshPort})`, () => waitForTcp(address, plan.sshPort, downWaitSeconds * 1000), 15)
      if (!up) {
        n.down = true
        log.warn(`[host] host ${node} (${host?.instanceId} at ${address}) does not answer on SSH after ${downWaitSeconds} s: the deploy goes on without it (Swarm runs its tasks on the other hosts); see the instance in the EC2 console, then deploy again`)
      }
    } else await waitForSsh(address, plan.sshPort, plan.resources.sshCidr, log)
  }
}

/** Terminates the instances (and disks) of hosts beyond MYMDB_HOSTS, once the start step took them out of the swarm; their Elastic IPs stay the stage's. */
export async function terminateRetired(clients: AwsClients, retire: NodeReach[], log: Log): Promise<void> {
  const retired = retire.flatMap((n) => (n.host ? [n.host.instanceId] : []))
  if (retired.length === 0) return
  await terminateInstances(clients, retired, log)
  log.info(`[deploy] host${retired.length > 1 ? 's' : ''} ${retire.map((n) => n.node).join(', ')} taken away: ${retired.join(', ')} terminated; their elastic IPs stay the stage's (released by npm run destroy:aws -- --release-address)`)
}

/** Where and as whom the host writes its backups. */
export interface BackupTarget {
  bucket: string
  /** The bucket's region (AWS_REGION of the deploy). */
  region: string
  roleArn: string
  externalId: string
}

export function backupTarget(plan: HostPlan, region: string): BackupTarget {
  return { bucket: plan.backup.bucket, region, roleArn: plan.backup.roleArn, externalId: plan.backup.externalId }
}
