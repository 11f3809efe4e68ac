// A host's EC2 instance, tagged Name=mymdb-<stage>[-<n>], Project=mymdb, Stage=<stage>, Node=<n>:
// found by its tags, launched (with a ClientToken, so a retried launch never makes a twin),
// started again when stopped, waited for, and stopped. A stage has hosts 1..N.
import { createHash } from 'node:crypto'
import type { Instance, RunInstancesCommandInput } from '@aws-sdk/client-ec2'
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { nodeName, nodeOf, nodeTags, stageName, stageTagFilters } from '../names.ts'
import { retryUntil } from '../sh.ts'
import { EC2, SSM, aws, awsErrorCode, explainAwsError, type AwsClients } from './clients.ts'
import type { PlanLine } from './plan.ts'
import { HOST_KEY_TAG } from '../hostkey.ts'

/** Instance states in which a stage's host counts as existing (terminated ones do not). */
export const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped']

/** Seconds to wait for the instance to run (or stop). */
export const RUNNING_TIMEOUT_SECONDS = 300

export interface LaunchSpec {
  stage: string
  /** Which of the stage's hosts (1, 2, ...). */
  node: number
  amiId: string
  instanceType: string
  keyName: string
  securityGroupId: string
  instanceProfile: string
  /** With the host's SSH host key in it (aws/userdata.ts withHostKey). */
  userData: string
  /** The public half of that key: the instance's HostKey tag. */
  hostKey: string
  /** The AMI's root device (/dev/xvda): its volume is made encrypted, of diskGb GiB. */
  rootDevice: string
  diskGb: number
  /** The subnet (and so the availability zone) to launch in; EC2's choice when absent. */
  subnetId?: string
}

/** A ClientToken that is the same for retries of one launch (same inputs), new after a destroy (new group id), one per host. */
export function launchToken(spec: LaunchSpec): string {
  const h = createHash('sha256')
  for (const v of [spec.stage, spec.node, spec.amiId, spec.instanceType, spec.keyName, spec.securityGroupId, spec.instanceProfile, spec.userData])
    h.update(`${v}\0`)
  return `${stageName(spec.stage)}-${h.digest('hex').slice(0, 32)}`.slice(0, 64)
}

/** The RunInstances request of host `spec.node` (pure). */
export function runInstancesInput(spec: LaunchSpec): RunInstancesCommandInput {
  const tags = nodeTags(spec.stage, spec.node)
  const hostKeyTag = { Key: HOST_KEY_TAG, Value: spec.hostKey }
  return {
    ImageId: spec.amiId,
    InstanceType: spec.instanceType as RunInstancesCommandInput['InstanceType'],
    MinCount: 1,
    MaxCount: 1,
    KeyName: spec.keyName,
    SecurityGroupIds: [spec.securityGroupId],
    ...(spec.subnetId ? { SubnetId: spec.subnetId } : {}),
    IamInstanceProfile: { Name: spec.instanceProfile },
    UserData: Buffer.from(spec.userData).toString('base64'),
    // The root volume (the database, the images, the .env) encrypted at rest with the account's
    // EBS key, removed with the instance.
    BlockDeviceMappings: [{ DeviceName: spec.rootDevice, Ebs: { Encrypted: true, VolumeSize: spec.diskGb, VolumeType: 'gp3', DeleteOnTermination: true } }],
    // IMDSv2 only; hop limit 2 so that containers (one hop further) can still get the role's credentials.
    MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' },
    TagSpecifications: [
      { ResourceType: 'instance', Tags: [...tags, hostKeyTag] },
      { ResourceType: 'volume', Tags: tags },
    ],
    ClientToken: launchToken(spec),
  }
}

export interface HostInfo {
  instanceId: string
  state: string
  publicIp?: string
  publicDns?: string
  /** Its SSH host key (the HostKey tag), when the deploy launched it with one. */
  hostKey?: string
  /** Its availability zone. */
  zone?: string
}


/** What the tasks need of an instance (pure): its id, state, addresses and SSH host key (HostKey tag). */
function hostInfo(i: Instance): HostInfo {
  const hostKey = i.Tags?.find((t) => t.Key === HOST_KEY_TAG)?.Value
  const zone = i.Placement?.AvailabilityZone
  return { instanceId: i.InstanceId ?? '', state: i.State?.Name ?? 'unknown', publicIp: i.PublicIpAddress || undefined, publicDns: i.PublicDnsName || undefined, ...(hostKey ? { hostKey } : {}), ...(zone ? { zone } : {}) }
}

/** Where to reach host `node`: its entry in MYMDB_HOST_ADDRESS (a bastion, the test rig) when set, else its public IP. */
export function reachAddress(override: readonly string[] | undefined, host: Pick<HostInfo, 'publicIp'> | null | undefined, node = 1): string | undefined {
  return override?.[node - 1] ?? host?.publicIp
}

export interface InstancePlan {
  action: 'exists' | 'start' | 'create'
  existing: HostInfo | null
}

/** What to do about host `node`'s instance (found or null), and its plan line (pure). */
export function planInstance(stage: string, node: number, found: HostInfo | null): InstancePlan & { line: PlanLine } {
  const action = !found ? 'create' : found.state === 'stopped' || found.state === 'stopping' ? 'start' : 'exists'
  return { action, existing: found, line: { resource: `instance ${nodeName(stage, node)}`, action, detail: found ? `${found.instanceId} (${found.state})` : 'new' } }
}

// --- lookups -----------------------------------------------------------------------------------

/** The stage's instances in `states`, found by their Project/Stage tags. */
async function stageInstances(clients: AwsClients, stage: string, states: string[]): Promise<Instance[]> {
  const found: Instance[] = []
  let NextToken: string | undefined
  do {
    const page = await aws('look up the host instance', () =>
      clients.ec2.send(
        new EC2.DescribeInstancesCommand({
          Filters: [
            ...stageTagFilters(stage),
            { Name: 'instance-state-name', Values: states },
          ],
          NextToken,
        }),
      ),
    )
    for (const r of page.Reservations ?? []) found.push(...(r.Instances ?? []))
    NextToken = page.NextToken
  } while (NextToken)
  return found
}

/** The stage's hosts (not terminated) by number, found by their Project/Stage/Node tags. */
export async function findNodes(clients: AwsClients, stage: string, states: string[] = LIVE_STATES): Promise<Map<number, HostInfo>> {
  const found = await stageInstances(clients, stage, states)
  // The oldest instance of a host number is that host (a twin would be a bug; destroy removes all of them).
  found.sort((a, b) => (a.LaunchTime?.getTime() ?? 0) - (b.LaunchTime?.getTime() ?? 0))
  const nodes = new Map<number, HostInfo>()
  for (const i of found) {
    const node = nodeOf(i.Tags)
    if (!nodes.has(node))
      nodes.set(node, hostInfo(i))
  }
  return nodes
}

/** The stage's first host (not terminated); null when there is none. */
export async function findHost(clients: AwsClients, stage: string, states: string[] = LIVE_STATES): Promise<HostInfo | null> {
  return (await findNodes(clients, stage, states)).get(1) ?? null
}

/** All of the stage's instances in `states`, with the host each belongs to (destroy terminates every one). */
export async function findHosts(clients: AwsClients, stage: string, states: string[]): Promise<{ id: string; node: number }[]> {
  return (await stageInstances(clients, stage, states)).flatMap((i) => (i.InstanceId ? [{ id: i.InstanceId, node: nodeOf(i.Tags) }] : []))
}

/** The AMI a new instance is launched from (MYMDB_AMI_ID, or the one the SSM parameter names), and its root device. */
export async function resolveAmi(clients: AwsClients, s: { MYMDB_AMI_ID?: string; MYMDB_AMI_SSM_PARAMETER: string }): Promise<{ id: string; rootDevice: string }> {
  const id = await amiId(clients, s)
  const r = await aws(`look up the AMI ${id}`, () => clients.ec2.send(new EC2.DescribeImagesCommand({ ImageIds: [id] })))
  const rootDevice = r.Images?.[0]?.RootDeviceName
  if (!rootDevice) throw new UserError(`the AMI ${id} does not exist in ${clients.region} (or has no root device): set MYMDB_AMI_ID to an AMI of this region`)
  return { id, rootDevice }
}

async function amiId(clients: AwsClients, s: { MYMDB_AMI_ID?: string; MYMDB_AMI_SSM_PARAMETER: string }): Promise<string> {
  if (s.MYMDB_AMI_ID) return s.MYMDB_AMI_ID
  try {
    const r = await clients.ssm.send(new SSM.GetParameterCommand({ Name: s.MYMDB_AMI_SSM_PARAMETER }))
    const v = r.Parameter?.Value?.trim()
    if (!v || !/^ami-[0-9a-f]+$/.test(v)) throw new UserError(`SSM parameter ${s.MYMDB_AMI_SSM_PARAMETER} is not an AMI id (${v ?? 'empty'}): set MYMDB_AMI_ID`)
    return v
  } catch (err) {
    if (awsErrorCode(err) === 'ParameterNotFound')
      throw new UserError(
        `SSM parameter ${s.MYMDB_AMI_SSM_PARAMETER} does not exist in ${clients.region}: set MYMDB_AMI_ID=ami-... (an AMI of this region), or MYMDB_AMI_SSM_PARAMETER to an existing parameter`,
      )
    throw explainAwsError(err, `read the SSM parameter ${s.MYMDB_AMI_SSM_PARAMETER}`)
  }
}



/** A new instance profile is not visible to EC2 for a few seconds: RunInstances is tried again, this often. */
export const PROFILE_RETRIES = 12

/**
 * The planned instance: the existing one (started when stopped), or a new launch. A new
 * instance profile takes a few seconds to be usable by EC2: that error is retried with the same
 * ClientToken, so a retry can never make a second instance. Returns the instance id.
 */
export async function applyInstance(clients: AwsClients, plan: { stage: string; node: number; instance: InstancePlan }, launch: () => Promise<LaunchSpec>, log: Log, retryDelayMs = 5000): Promise<string> {
  const name = nodeName(plan.stage, plan.node)
  const existing = plan.instance.existing
  if (existing && plan.instance.action !== 'create') {
    if (existing.state === 'stopping') {
      log.info(`[host] instance ${existing.instanceId} is stopping; waiting for it to stop before starting it`)
      await EC2.waitUntilInstanceStopped({ client: clients.ec2, maxWaitTime: RUNNING_TIMEOUT_SECONDS, minDelay: 2, maxDelay: 10 }, { InstanceIds: [existing.instanceId] })
    }
    if (plan.instance.action === 'start') {
      await aws('start the instance', () => clients.ec2.send(new EC2.StartInstancesCommand({ InstanceIds: [existing.instanceId] })))
      log.info(`[host] instance ${name}: started ${existing.instanceId} again`)
    } else {
      log.info(`[host] instance ${name}: ${existing.instanceId} exists (${existing.state})`)
    }
    return existing.instanceId
  }
  const input = runInstancesInput(await launch())
  const profileNotReady = (err: unknown) =>
    awsErrorCode(err) === 'InvalidParameterValue' && /instance profile|iamInstanceProfile/i.test(err instanceof Error ? err.message : '')
  return retryUntil(
    PROFILE_RETRIES,
    retryDelayMs,
    async (n) => {
      try {
        const r = await clients.ec2.send(new EC2.RunInstancesCommand(input))
        const id = r.Instances?.[0]?.InstanceId
        if (!id) throw new UserError('RunInstances returned no instance')
        log.info(`[host] instance ${name}: launched ${id} (${input.InstanceType}, ${input.ImageId})`)
        return id
      } catch (err) {
        if (!profileNotReady(err) || n >= PROFILE_RETRIES) throw new Final(explainAwsError(err, 'launch the instance'))
        log.info(`[host] the new instance profile is not visible to EC2 yet; retrying in ${retryDelayMs / 1000} s (${n}/${PROFILE_RETRIES})`)
        throw err
      }
    },
    (last) => new UserError(`could not launch the instance: ${last}`),
    (err) => err instanceof Final,
  ).catch((err: unknown) => {
    throw err instanceof Final ? err.error : err
  })
}

/** Wraps an error that ends a retry at once. */
class Final {
  constructor(readonly error: unknown) {}
}

export async function waitRunning(clients: AwsClients, instanceId: string): Promise<HostInfo> {
  try {
    await EC2.waitUntilInstanceRunning({ client: clients.ec2, maxWaitTime: RUNNING_TIMEOUT_SECONDS, minDelay: 2, maxDelay: 10 }, { InstanceIds: [instanceId] })
  } catch (err) {
    throw new UserError(`instance ${instanceId} did not reach "running" within ${RUNNING_TIMEOUT_SECONDS} s (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): see the EC2 console`)
  }
  const r = await aws('describe the instance', () => clients.ec2.send(new EC2.DescribeInstancesCommand({ InstanceIds: [instanceId] })))
  const i = r.Reservations?.[0]?.Instances?.[0]
  return i ? hostInfo(i) : { instanceId, state: 'unknown' }
}


/** Stops the stage's instance (its disk stays) and waits until it is stopped. Safe to repeat. `found`: the result of findHost, when known. */
export async function stopHost(clients: AwsClients, stage: string, log: Log, found?: HostInfo | null): Promise<HostInfo | null> {
  const host = found === undefined ? await findHost(clients, stage) : found
  if (!host) {
    log.info(`[stop] no EC2 host for stage ${stage} in ${clients.region}: nothing to stop`)
    return null
  }
  if (host.state === 'stopped') {
    log.info(`[stop] instance ${host.instanceId} is already stopped`)
    return host
  }
  if (host.state !== 'stopping') await aws('stop the instance', () => clients.ec2.send(new EC2.StopInstancesCommand({ InstanceIds: [host.instanceId] })))
  await log.step('stop', `stopping instance ${host.instanceId}`, () =>
    EC2.waitUntilInstanceStopped({ client: clients.ec2, maxWaitTime: RUNNING_TIMEOUT_SECONDS, minDelay: 2, maxDelay: 10 }, { InstanceIds: [host.instanceId] }),
  )
  log.info(`[stop] instance ${host.instanceId} stopped; its disk (and the database on it) stays. Start it again: npm run deploy:aws`)
  return { ...host, state: 'stopped', publicIp: undefined }
}

/** Terminates the instances (their disks go with them) and waits until they are gone. */
export async function terminateInstances(clients: AwsClients, ids: string[], log: Log): Promise<void> {
  await aws('terminate the instance', () => clients.ec2.send(new EC2.TerminateInstancesCommand({ InstanceIds: ids })))
  await log.step('destroy', `terminating ${ids.join(', ')}`, () =>
    EC2.waitUntilInstanceTerminated({ client: clients.ec2, maxWaitTime: RUNNING_TIMEOUT_SECONDS, minDelay: 2, maxDelay: 10 }, { InstanceIds: ids }),
  15)
}
