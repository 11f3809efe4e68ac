// A stage's host as one resource made of the smaller ones: key pair, security group, roles and
// instance profile, instance, Elastic IP. What exists is read once (readHostState), the plan is
// pure (planHost), and applyHost executes exactly that plan, reading nothing again.
import type { Log } from '../log.ts'
import { stageResources } from '../names.ts'
import type { KeyFile } from '../sshkey.ts'
import { STS, aws, type AwsClients } from './clients.ts'
import { applyElasticIp, planElasticIp, readElasticIp, type ElasticIp, type ElasticIpPlan } from './address.ts'
import { applyInstance, findHost, planInstance, waitRunning, type HostInfo, type InstancePlan, type LaunchSpec } from './instance.ts'
import { applyKeyPair, keyPairExists, planKeyPair, type KeyPairPlan } from './keypair.ts'
import type { PlanLine } from './plan.ts'
import { applyHostRole, planRoles, readBackupRole, readInstanceProfile, readRole, type RolesPlan, type RolesState } from './roles.ts'
import { applySecurityGroup, findSecurityGroup, planSecurityGroup, type IngressRule, type SecurityGroupPlan } from './securitygroup.ts'

/** What is there now (read-only lookups), for planHost. */
export interface HostState extends RolesState {
  keyPairInEc2: boolean
  keyFile: KeyFile
  securityGroup: { id: string; ingress: IngressRule[] } | null
  instance: HostInfo | null
  /** The stage's Elastic IP (found by its tags), and the instance it is associated with. */
  elasticIp: ElasticIp | null
}

/** What the host should be: where its SSH comes from, the buckets its roles may use. */
export interface HostWanted {
  stage: string
  sshCidr: string
  bucket: string
  backupBucket: string
  vpcId?: string
}

/**
 * The plan (pure): for each resource what apply will do, exactly; `items` says it in one line
 * per resource (exists / create / update / import / start).
 */
export interface HostPlan extends RolesPlan {
  stage: string
  vpcId: string
  sshCidr: string
  bucket: string
  items: PlanLine[]
  keyPair: KeyPairPlan
  securityGroup: SecurityGroupPlan
  instance: InstancePlan
  elasticIp: ElasticIpPlan
}

export function planHost(state: HostState, want: HostWanted, newExternalId?: () => string): HostPlan {
  const { line: keyLine, ...keyPair } = planKeyPair(want.stage, state.keyPairInEc2, state.keyFile)
  const { line: groupLine, ...securityGroup } = planSecurityGroup(want.stage, state.securityGroup, want.sshCidr)
  const { lines: roleLines, ...roles } = planRoles(want.stage, state, want, newExternalId)
  const { line: instanceLine, ...instance } = planInstance(want.stage, state.instance)
  const { line: addressLine, ...elasticIp } = planElasticIp(want.stage, state.elasticIp, state.instance?.instanceId)
  return {
    stage: want.stage,
    vpcId: want.vpcId ?? '',
    sshCidr: want.sshCidr,
    bucket: want.bucket,
    items: [keyLine, groupLine, ...roleLines, instanceLine, addressLine],
    keyPair,
    securityGroup,
    ...roles,
    instance,
    elasticIp,
  }
}

/** Everything planHost needs, read without changing anything. */
export async function readHostState(clients: AwsClients, stage: string, keyFile: KeyFile, vpcId: string): Promise<HostState> {
  const n = stageResources(stage)
  return {
    keyPairInEc2: await keyPairExists(clients, n.keyPair),
    keyFile,
    securityGroup: await findSecurityGroup(clients, stage, vpcId),
    role: await readRole(clients, stage),
    backupRole: await readBackupRole(clients, stage),
    instanceProfile: await readInstanceProfile(clients, stage),
    instance: await findHost(clients, stage),
    elasticIp: await readElasticIp(clients, stage),
    account: (await aws('find the AWS account id (STS GetCallerIdentity)', () => clients.sts.send(new STS.GetCallerIdentityCommand({})))).Account ?? '',
  }
}

/**
 * Applies the plan in order (key pair, group, roles, instance, address) and waits until the
 * instance runs. `launch` gives the launch request (it is only called for a new instance).
 * Returns the running instance with its fixed address as public IP.
 */
export async function applyHost(
  clients: AwsClients,
  plan: HostPlan,
  launch: (securityGroupId: string) => Promise<LaunchSpec>,
  log: Log,
): Promise<HostInfo> {
  await applyKeyPair(clients, plan, log)
  const securityGroupId = await applySecurityGroup(clients, plan, log)
  await applyHostRole(clients, plan, log)
  const instanceId = await applyInstance(clients, plan, () => launch(securityGroupId), log)
  await log.step('host', `waiting for ${instanceId} to run`, () => waitRunning(clients, instanceId), 15)
  const fixedIp = await applyElasticIp(clients, plan, instanceId, log)
  // described again for the public name that goes with the fixed address; the address is the elastic IP's
  return { ...(await waitRunning(clients, instanceId)), publicIp: fixedIp }
}

/** What the host step hands on to the later steps. */
export interface HostResult {
  /** The instance; null only in a dry run before it exists. */
  host: HostInfo | null
  /** Where to reach it: MYMDB_HOST_ADDRESS, or its public IP. */
  address?: string
  /** The private key file of the stage. */
  keyFile: string
  /** Launched by this run: its user-data is still installing Docker. */
  launched: boolean
  /** What the host's backups need (written to ~/mymdb/backup.env by the start step). */
  backup: BackupTarget
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
