// npm run deploy:aws, step "host": the stage's EC2 host and what it needs. Each resource is
// found first (by name or tags) and only created or fixed when missing or wrong, so a re-run or a
// run after an interruption converges on one of each:
//   key pair        mymdb-<stage>       (private key kept in MYMDB_SSH_KEY_FILE, mode 0600)
//   security group  mymdb-<stage>-web   (default VPC; 80/443 from anywhere, 22 from you only)
//   IAM role        mymdb-<stage>-host  (+ instance profile; read/write the upload bucket only)
//   instance        Name=mymdb-<stage>  (Docker installed by user-data: scripts/install-docker.sh)
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { dirname, join } from 'node:path'
import type { Instance, IpPermission, RunInstancesCommandInput } from '@aws-sdk/client-ec2'
import { EC2, IAM, SSM, STS, aws, awsClients, sameJson, awsErrorCode, explainAwsError, type AwsClients } from './lib/aws.ts'
import { checkEnv, loadEnv, type CleanEnv, type RawEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import type { Log } from './lib/log.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { REPO_ROOT } from './lib/paths.ts'
import { retryUntil } from './lib/sh.ts'
import { inspectKeyFile, saveKeyFile, type KeyFile } from './lib/sshkey.ts'
import { awsVars, backupBucketName, backupBucketRules, backupBucketVars, bucketVars, hostVars, sshKeyPath, sshKeyRule, stageName, stageTags } from './lib/vars.ts'

export const HELP = `Usage: npm run host -- [options]   (a step of npm run deploy:aws)

Creates or reuses the EC2 host of the stage (MYMDB_STAGE, default production) in AWS_REGION:
  key pair        mymdb-<stage>        private key in MYMDB_SSH_KEY_FILE (default
                                       ~/.ssh/mymdb-<stage>.pem): created, or imported from that file
  security group  mymdb-<stage>-web    default VPC; HTTP/HTTPS from anywhere, SSH only from
                                       MYMDB_SSH_CIDR (default: your public IP /32)
  IAM role        mymdb-<stage>-host   + instance profile: read/write DJANGO_UPLOAD_S3_BUCKET only
  instance        mymdb-<stage>        MYMDB_INSTANCE_TYPE, AMI from MYMDB_AMI_ID or the SSM
                                       parameter MYMDB_AMI_SSM_PARAMETER; user-data installs Docker
                                       (scripts/install-docker.sh); IMDSv2 only
Existing resources are reused (a stopped instance is started); nothing is created twice.
Then it waits until the instance runs and its SSH port answers.

Options:
  --dry-run       only show the plan (what exists, what would be created or changed)
  --no-wait-ssh   do not wait for the SSH port
  -h, --help      this help

Remove everything again with: npm run destroy:aws

Exit codes: 0 host ready, 1 AWS or the host failed, 2 bad option or .env value.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run host',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
    'no-wait-ssh': { type: 'boolean' },
  },
} as const

/** Every variable the host step reads. */
export const hostSpec = { ...awsVars, ...hostVars, ...bucketVars, MYMDB_BACKUP_BUCKET: backupBucketVars.MYMDB_BACKUP_BUCKET }
export type HostSettings = CleanEnv<typeof hostSpec>

/** Instance states in which a stage's host counts as existing (terminated ones do not). */
export const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped']

/** Seconds to wait for the instance to run and for its SSH port. */
export const RUNNING_TIMEOUT_SECONDS = 300
export const SSH_TIMEOUT_SECONDS = 300

/** Extra dependencies of the AWS tasks (tests replace them). */
export interface AwsDeps {
  /** Makes the AWS clients (default: awsClients from lib/aws.ts). */
  awsClients?: (region: string, env: Env) => AwsClients
  /** fetch, for the public IP lookup. */
  fetch?: typeof fetch
}

// --- names and pure decisions ------------------------------------------------------------------

/** Names of a stage's host resources. */
export function hostNames(stage: string) {
  const base = stageName(stage)
  return {
    instance: base,
    keyPair: base,
    securityGroup: `${base}-web`,
    role: `${base}-host`,
    instanceProfile: `${base}-host`,
    policy: `${base}-bucket`,
    backupRole: `${base}-backup`,
    backupPolicy: `${base}-backup-write`,
  }
}

export type KeyPairAction = 'exists' | 'import' | 'create'

/** What to do about the key pair, given whether EC2 has it and whether the local file exists. */
export function keyPairAction(inEc2: boolean, fileExists: boolean, keyName: string, path: string): KeyPairAction {
  if (inEc2 && fileExists) return 'exists'
  if (inEc2)
    throw new UserError(
      `key pair ${keyName} exists in EC2 but its private key file ${path} does not, and EC2 cannot give the private key again: ` +
        `point MYMDB_SSH_KEY_FILE at the file you have, or delete the key pair (npm run destroy:aws, or aws ec2 delete-key-pair --key-name ${keyName}) so a new one is made`,
    )
  return fileExists ? 'import' : 'create'
}

export interface Rule {
  port: number
  cidr: string
  /** The rule's description as the group has it (kept so that a revoke names the exact rule). */
  description?: string
}

/** The ingress rules of the web security group: 80/443 from anywhere (IPv4+IPv6), 22 from sshCidr. */
export function desiredIngress(sshCidr: string): Rule[] {
  const rules: Rule[] = []
  for (const port of [80, 443]) rules.push({ port, cidr: '0.0.0.0/0' }, { port, cidr: '::/0' })
  rules.push({ port: 22, cidr: sshCidr })
  return rules
}

/** The group's current rules flattened to one rule per (port, CIDR) (TCP single ports only). */
export function flattenIngress(perms: IpPermission[] | undefined): Rule[] {
  const out: Rule[] = []
  for (const p of perms ?? []) {
    if (p.IpProtocol !== 'tcp' || p.FromPort === undefined || p.FromPort !== p.ToPort) continue
    for (const r of p.IpRanges ?? []) if (r.CidrIp) out.push({ port: p.FromPort, cidr: r.CidrIp, ...(r.Description ? { description: r.Description } : {}) })
    for (const r of p.Ipv6Ranges ?? [])
      if (r.CidrIpv6) out.push({ port: p.FromPort, cidr: r.CidrIpv6, ...(r.Description ? { description: r.Description } : {}) })
  }
  return out
}

const same = (a: Rule, b: Rule) => a.port === b.port && a.cidr === b.cidr

/**
 * Rules to add (missing) and to revoke: SSH rules for any other source (e.g. your old IP), and
 * anything opening the Docker API ports 2375/2376. Other rules are left alone.
 */
export function planIngress(current: Rule[], sshCidr: string): { add: Rule[]; revoke: Rule[] } {
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
export function toIpPermissions(rules: Rule[], existing = false): IpPermission[] {
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

function ruleDescription(r: Rule): string {
  return r.port === 22 ? 'SSH from the deployer' : r.port === 80 ? 'HTTP' : r.port === 443 ? 'HTTPS' : `port ${r.port}`
}

const POLICY_VERSION = '2012-10-17'

/** An IAM role's ARN (pure). */
export function roleArn(account: string, name: string): string {
  return `arn:aws:iam::${account}:role/${name}`
}

/**
 * The host role's trust policy (EC2 may assume it) and its inline policy: the upload bucket, and
 * assuming the backup role (which only works with the external id, kept on the host outside
 * every container).
 */
export function hostPolicies(bucket: string, backupRole?: string): { trust: object; bucket: object } {
  return {
    trust: {
      Version: POLICY_VERSION,
      Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    },
    bucket: {
      Version: POLICY_VERSION,
      Statement: [
        {
          Sid: 'UploadObjects',
          Effect: 'Allow',
          Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          Resource: `arn:aws:s3:::${bucket}/*`,
        },
        { Sid: 'ListUploads', Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${bucket}` },
        ...(backupRole ? [{ Sid: 'AssumeBackupRole', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: backupRole }] : []),
      ],
    },
  }
}

/**
 * The backup role: assumed by the host role only with the external id, and allowed to write
 * backups into the backup bucket and nothing else (not read, list or delete them).
 */
export function backupPolicies(hostRole: string, externalId: string, backupBucket: string): { trust: object; write: object } {
  return {
    trust: {
      Version: POLICY_VERSION,
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: hostRole },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'sts:ExternalId': externalId } },
        },
      ],
    },
    write: {
      Version: POLICY_VERSION,
      Statement: [{ Sid: 'WriteBackups', Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: `arn:aws:s3:::${backupBucket}/*` }],
    },
  }
}

/** The external id in a backup role's trust policy, when it has the shape backupPolicies gives (pure). */
export function externalIdOf(trust: unknown): string | undefined {
  const st = (trust as { Statement?: unknown })?.Statement
  const first = (Array.isArray(st) ? st[0] : st) as { Condition?: { StringEquals?: Record<string, unknown> } } | undefined
  const id = first?.Condition?.StringEquals?.['sts:ExternalId']
  return typeof id === 'string' && /^[0-9a-f]{48}$/.test(id) ? id : undefined
}

/** A policy document as IAM returns it (URL-encoded JSON), parsed; null when unreadable. */
export function parsePolicyDocument(doc: string | undefined): unknown {
  if (!doc) return null
  for (const text of [doc, safeDecode(doc)]) {
    try {
      return JSON.parse(text)
    } catch {
      // try the next form
    }
  }
  return null
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

const INSTALL_PATH = '/opt/mymdb/install-docker.sh'
const HEREDOC = 'MYMDB_INSTALL_DOCKER_EOF'
/** EC2 limit for user-data (before base64). */
export const USER_DATA_LIMIT = 16 * 1024

/**
 * The instance's user-data: a bash script that writes install-docker.sh (verbatim) to the host
 * and runs it for the login user (added to the docker group). Safe to run again.
 */
export function renderUserData(installScript: string, loginUser: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(loginUser)) throw new Error(`not a Unix user name: ${loginUser}`)
  if (installScript.split('\n').includes(HEREDOC)) throw new Error(`the install script contains the line ${HEREDOC}`)
  const body = installScript.endsWith('\n') ? installScript : `${installScript}\n`
  const text = `#!/bin/bash
# MyMDB host setup (EC2 user-data, run by cloud-init as root on first boot): installs Docker,
# Compose v2 and buildx with the project's scripts/install-docker.sh and lets ${loginUser} use Docker.
# Safe to run again: the script only does what is missing.
set -o errexit -o nounset -o pipefail
install -d -m 0755 ${dirname(INSTALL_PATH)}
cat >${INSTALL_PATH} <<'${HEREDOC}'
${body}${HEREDOC}
chmod 0755 ${INSTALL_PATH}
${INSTALL_PATH} ${loginUser} 2>&1 | tee -a /var/log/mymdb-install-docker.log
`
  if (Buffer.byteLength(text) > USER_DATA_LIMIT) throw new Error(`user-data is larger than ${USER_DATA_LIMIT} bytes`)
  return text
}

export interface LaunchSpec {
  stage: string
  amiId: string
  instanceType: string
  keyName: string
  securityGroupId: string
  instanceProfile: string
  userData: string
}

/** A ClientToken that is the same for retries of one launch (same inputs), new after a destroy (new group id). */
export function launchToken(spec: LaunchSpec): string {
  const h = createHash('sha256')
  for (const v of [spec.stage, spec.amiId, spec.instanceType, spec.keyName, spec.securityGroupId, spec.instanceProfile, spec.userData])
    h.update(`${v}\0`)
  return `${stageName(spec.stage)}-${h.digest('hex').slice(0, 32)}`.slice(0, 64)
}

/** The RunInstances request of the host (pure). */
export function runInstancesInput(spec: LaunchSpec): RunInstancesCommandInput {
  const tags = [{ Key: 'Name', Value: stageName(spec.stage) }, ...stageTags(spec.stage)]
  return {
    ImageId: spec.amiId,
    InstanceType: spec.instanceType as RunInstancesCommandInput['InstanceType'],
    MinCount: 1,
    MaxCount: 1,
    KeyName: spec.keyName,
    SecurityGroupIds: [spec.securityGroupId],
    IamInstanceProfile: { Name: spec.instanceProfile },
    UserData: Buffer.from(spec.userData).toString('base64'),
    // IMDSv2 only; hop limit 2 so that containers (one hop further) can still get the role's credentials.
    MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' },
    TagSpecifications: [
      { ResourceType: 'instance', Tags: tags },
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
}

export type Action = 'exists' | 'create' | 'update' | 'import' | 'start'

export interface PlanItem {
  resource: string
  action: Action
  detail: string
}

/** What is there now (read-only lookups), for planHost. */
export interface HostState {
  keyPairInEc2: boolean
  keyFile: KeyFile
  securityGroup: { id: string; ingress: Rule[] } | null
  role: { exists: boolean; policy: unknown }
  backupRole: { exists: boolean; trust: unknown; policy: unknown }
  instanceProfile: { exists: boolean; roles: string[] } | null
  instance: HostInfo | null
  /** The stage's Elastic IP (found by its tags), and the instance it is associated with. */
  elasticIp: ElasticIp | null
  /** The AWS account (for the roles' ARNs). */
  account: string
}

export interface ElasticIp {
  allocationId: string
  publicIp: string
  /** The instance it is associated with, if any. */
  instanceId?: string
  associationId?: string
}

/**
 * The plan (pure): for each resource what apply will do, exactly; `items` says it in one line
 * per resource (exists / create / update / import / start). applyHostPlan executes this plan and
 * reads nothing again.
 */
export interface HostPlan {
  stage: string
  vpcId: string
  sshCidr: string
  bucket: string
  items: PlanItem[]
  keyPair: { action: KeyPairAction; keyFile: KeyFile }
  /** id null: create the group (then add every rule). */
  securityGroup: { id: string | null; add: Rule[]; revoke: Rule[] }
  role: { create: boolean; putPolicy: boolean }
  /** The backup role, its trust (with the external id) and its write policy. */
  backup: { bucket: string; roleArn: string; hostRoleArn: string; externalId: string; create: boolean; putTrust: boolean; putPolicy: boolean }
  profile: { create: boolean; addRole: boolean }
  instance: { action: 'exists' | 'start' | 'create'; existing: HostInfo | null }
  /** The fixed address: allocate one (existing null), and associate it unless it is with the instance already. */
  elasticIp: { existing: ElasticIp | null }
}

export function planHost(
  state: HostState,
  want: { stage: string; sshCidr: string; bucket: string; backupBucket: string; vpcId?: string },
  newExternalId: () => string = () => randomBytes(24).toString('hex'),
): HostPlan {
  const n = hostNames(want.stage)
  const items: PlanItem[] = []
  const kp = keyPairAction(state.keyPairInEc2, state.keyFile.exists, n.keyPair, state.keyFile.path)
  items.push({
    resource: `key pair ${n.keyPair}`,
    action: kp,
    detail:
      kp === 'exists'
        ? `private key ${state.keyFile.path}`
        : kp === 'import'
          ? `public key of ${state.keyFile.path}`
          : `ed25519, private key saved to ${state.keyFile.path}`,
  })
  const sg = state.securityGroup
  const ingress = sg ? planIngress(sg.ingress, want.sshCidr) : { add: desiredIngress(want.sshCidr), revoke: [] }
  if (!sg) {
    items.push({ resource: `security group ${n.securityGroup}`, action: 'create', detail: `80, 443 from anywhere; 22 from ${want.sshCidr}` })
  } else {
    const changes = [...ingress.add.map((r) => `add ${r.port} from ${r.cidr}`), ...ingress.revoke.map((r) => `revoke ${r.port} from ${r.cidr}`)]
    items.push({
      resource: `security group ${n.securityGroup}`,
      action: changes.length > 0 ? 'update' : 'exists',
      detail: changes.length > 0 ? changes.join(', ') : `${sg.id}; 22 from ${want.sshCidr}`,
    })
  }
  const hostRoleArn = roleArn(state.account, n.role)
  const backupRoleArn = roleArn(state.account, n.backupRole)
  const policy = hostPolicies(want.bucket, backupRoleArn).bucket
  const policyOk = state.role.exists && sameJson(state.role.policy, policy)
  items.push({
    resource: `IAM role ${n.role}`,
    action: !state.role.exists ? 'create' : policyOk ? 'exists' : 'update',
    detail: policyOk ? `S3 access to ${want.bucket}` : `S3 access to ${want.bucket} only, may assume ${n.backupRole}`,
  })
  const externalId = externalIdOf(state.backupRole.trust) ?? newExternalId()
  const backup = backupPolicies(hostRoleArn, externalId, want.backupBucket)
  const trustOk = state.backupRole.exists && sameJson(state.backupRole.trust, backup.trust)
  const writeOk = state.backupRole.exists && sameJson(state.backupRole.policy, backup.write)
  items.push({
    resource: `IAM role ${n.backupRole}`,
    action: !state.backupRole.exists ? 'create' : trustOk && writeOk ? 'exists' : 'update',
    detail: `writes backups to ${want.backupBucket} only; assumed by ${n.role} with its external id`,
  })
  const profile = state.instanceProfile
  const hasRole = profile?.roles.includes(n.role) ?? false
  items.push({
    resource: `instance profile ${n.instanceProfile}`,
    action: !profile ? 'create' : hasRole ? 'exists' : 'update',
    detail: hasRole ? `role ${n.role}` : `with role ${n.role}`,
  })
  const inst = state.instance
  const instanceAction = !inst ? 'create' : inst.state === 'stopped' || inst.state === 'stopping' ? 'start' : 'exists'
  items.push({ resource: `instance ${n.instance}`, action: instanceAction, detail: inst ? `${inst.instanceId} (${inst.state})` : 'new' })
  const eip = state.elasticIp
  const eipWithInstance = eip !== null && inst !== null && eip.instanceId === inst.instanceId
  items.push({
    resource: `elastic IP ${n.instance}`,
    action: !eip ? 'create' : eipWithInstance ? 'exists' : 'update',
    detail: !eip ? 'a fixed public address for the instance' : eipWithInstance ? eip.publicIp : `${eip.publicIp}, associate with the instance`,
  })
  return {
    stage: want.stage,
    vpcId: want.vpcId ?? '',
    sshCidr: want.sshCidr,
    bucket: want.bucket,
    items,
    keyPair: { action: kp, keyFile: state.keyFile },
    securityGroup: { id: sg?.id ?? null, ...ingress },
    role: { create: !state.role.exists, putPolicy: !policyOk },
    backup: {
      bucket: want.backupBucket,
      roleArn: backupRoleArn,
      hostRoleArn,
      externalId,
      create: !state.backupRole.exists,
      putTrust: state.backupRole.exists && !trustOk,
      putPolicy: !writeOk,
    },
    profile: { create: !profile, addRole: !hasRole },
    instance: { action: instanceAction, existing: inst },
    elasticIp: { existing: eip },
  }
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
            ...stageTags(stage).map((t) => ({ Name: `tag:${t.Key}`, Values: [t.Value] })),
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

/** The stage's host (not terminated), found by its Project/Stage tags; null when there is none. */
export async function findHost(clients: AwsClients, stage: string, states: string[] = LIVE_STATES): Promise<HostInfo | null> {
  const found = await stageInstances(clients, stage, states)
  if (found.length === 0) return null
  // The oldest one is the host (a twin would be a bug; destroy removes all of them).
  found.sort((a, b) => (a.LaunchTime?.getTime() ?? 0) - (b.LaunchTime?.getTime() ?? 0))
  const i = found[0] as Instance
  return {
    instanceId: i.InstanceId ?? '',
    state: i.State?.Name ?? 'unknown',
    publicIp: i.PublicIpAddress || undefined,
    publicDns: i.PublicDnsName || undefined,
  }
}

/** The ids of all of the stage's instances in `states` (destroy terminates every one). */
export async function findHosts(clients: AwsClients, stage: string, states: string[]): Promise<string[]> {
  return (await stageInstances(clients, stage, states)).flatMap((i) => (i.InstanceId ? [i.InstanceId] : []))
}

export async function keyPairExists(clients: AwsClients, name: string): Promise<boolean> {
  try {
    const r = await clients.ec2.send(new EC2.DescribeKeyPairsCommand({ KeyNames: [name] }))
    return (r.KeyPairs ?? []).some((k) => k.KeyName === name)
  } catch (err) {
    if (awsErrorCode(err) === 'InvalidKeyPair.NotFound') return false
    throw explainAwsError(err, 'look up the key pair')
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
export async function findSecurityGroup(clients: AwsClients, stage: string, vpcId?: string): Promise<{ id: string; ingress: Rule[] } | null> {
  const name = hostNames(stage).securityGroup
  const Filters = [
    { Name: 'group-name', Values: [name] },
    ...(vpcId ? [{ Name: 'vpc-id', Values: [vpcId] }] : stageTags(stage).map((t) => ({ Name: `tag:${t.Key}`, Values: [t.Value] }))),
  ]
  const r = await aws('look up the security group', () => clients.ec2.send(new EC2.DescribeSecurityGroupsCommand({ Filters })))
  const g = r.SecurityGroups?.find((x) => x.GroupName === name)
  return g?.GroupId ? { id: g.GroupId, ingress: flattenIngress(g.IpPermissions) } : null
}

function notFound(err: unknown): boolean {
  return awsErrorCode(err) === 'NoSuchEntity' || awsErrorCode(err) === 'NoSuchEntityException'
}

export async function readRole(clients: AwsClients, stage: string): Promise<{ exists: boolean; policy: unknown }> {
  const n = hostNames(stage)
  try {
    await clients.iam.send(new IAM.GetRoleCommand({ RoleName: n.role }))
  } catch (err) {
    if (notFound(err)) return { exists: false, policy: null }
    throw explainAwsError(err, 'look up the IAM role')
  }
  try {
    const p = await clients.iam.send(new IAM.GetRolePolicyCommand({ RoleName: n.role, PolicyName: n.policy }))
    return { exists: true, policy: parsePolicyDocument(p.PolicyDocument) }
  } catch (err) {
    if (notFound(err)) return { exists: true, policy: null }
    throw explainAwsError(err, 'read the IAM role policy')
  }
}

/** The backup role: whether it exists, its trust policy (with the external id) and its write policy. */
export async function readBackupRole(clients: AwsClients, stage: string): Promise<{ exists: boolean; trust: unknown; policy: unknown }> {
  const n = hostNames(stage)
  let trust: unknown
  try {
    const r = await clients.iam.send(new IAM.GetRoleCommand({ RoleName: n.backupRole }))
    trust = parsePolicyDocument(r.Role?.AssumeRolePolicyDocument)
  } catch (err) {
    if (notFound(err)) return { exists: false, trust: null, policy: null }
    throw explainAwsError(err, 'look up the backup role')
  }
  try {
    const p = await clients.iam.send(new IAM.GetRolePolicyCommand({ RoleName: n.backupRole, PolicyName: n.backupPolicy }))
    return { exists: true, trust, policy: parsePolicyDocument(p.PolicyDocument) }
  } catch (err) {
    if (notFound(err)) return { exists: true, trust, policy: null }
    throw explainAwsError(err, 'read the backup role policy')
  }
}

export async function readInstanceProfile(clients: AwsClients, stage: string): Promise<{ exists: boolean; roles: string[] } | null> {
  try {
    const r = await clients.iam.send(new IAM.GetInstanceProfileCommand({ InstanceProfileName: hostNames(stage).instanceProfile }))
    return { exists: true, roles: (r.InstanceProfile?.Roles ?? []).map((x) => x.RoleName ?? '') }
  } catch (err) {
    if (notFound(err)) return null
    throw explainAwsError(err, 'look up the instance profile')
  }
}

/** The stage's Elastic IP, found by its Project/Stage tags (null: none). */
export async function readElasticIp(clients: AwsClients, stage: string): Promise<ElasticIp | null> {
  const r = await aws('look up the elastic IP', () =>
    clients.ec2.send(new EC2.DescribeAddressesCommand({ Filters: stageTags(stage).map((t) => ({ Name: `tag:${t.Key}`, Values: [t.Value] })) })),
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

/** Everything planHost needs, read without changing anything. */
export async function readHostState(clients: AwsClients, stage: string, keyFile: KeyFile, vpcId: string): Promise<HostState> {
  const n = hostNames(stage)
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

/** The AMI: MYMDB_AMI_ID, else the value of the SSM parameter MYMDB_AMI_SSM_PARAMETER. */
export async function resolveAmi(clients: AwsClients, s: Pick<HostSettings, 'MYMDB_AMI_ID' | 'MYMDB_AMI_SSM_PARAMETER'>): Promise<string> {
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

/** Your public IPv4 as a /32 (https://checkip.amazonaws.com). */
export async function myPublicCidr(fetchFn: typeof fetch = fetch, timeoutMs = 5000): Promise<string> {
  let text = ''
  try {
    const r = await fetchFn('https://checkip.amazonaws.com', { signal: AbortSignal.timeout(timeoutMs) })
    if (!r.ok) throw new Error(`HTTP ${r.status}`)
    text = (await r.text()).trim()
  } catch (err) {
    throw new UserError(
      `could not find your public IP address (https://checkip.amazonaws.com: ${err instanceof Error ? err.message : String(err)}): set MYMDB_SSH_CIDR, e.g. MYMDB_SSH_CIDR=203.0.113.7/32`,
    )
  }
  if (!/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(text))
    throw new UserError(`https://checkip.amazonaws.com answered ${JSON.stringify(text.slice(0, 40))}, not an IPv4 address: set MYMDB_SSH_CIDR`)
  return `${text}/32`
}

// --- apply (each part does what the plan says, and nothing else) -------------------------------

export async function applyKeyPair(clients: AwsClients, plan: Pick<HostPlan, 'stage' | 'keyPair'>, log: Log): Promise<void> {
  const name = hostNames(plan.stage).keyPair
  const { action, keyFile } = plan.keyPair
  const TagSpecifications = [{ ResourceType: 'key-pair' as const, Tags: [{ Key: 'Name', Value: name }, ...stageTags(plan.stage)] }]
  if (action === 'import' && keyFile.exists) {
    await aws('import the key pair', () =>
      clients.ec2.send(new EC2.ImportKeyPairCommand({ KeyName: name, PublicKeyMaterial: Buffer.from(keyFile.publicKey), TagSpecifications })),
    )
    log.info(`[host] key pair ${name}: imported the public key of ${keyFile.path}`)
  } else if (action === 'create') {
    const r = await aws('create the key pair', () =>
      clients.ec2.send(new EC2.CreateKeyPairCommand({ KeyName: name, KeyType: 'ed25519', KeyFormat: 'pem', TagSpecifications })),
    )
    try {
      if (!r.KeyMaterial) throw new Error('CreateKeyPair returned no private key')
      saveKeyFile(keyFile.path, r.KeyMaterial)
    } catch (err) {
      // Without the private key the key pair is useless: remove it so that the next run can make it again.
      await clients.ec2.send(new EC2.DeleteKeyPairCommand({ KeyName: name })).catch(() => undefined)
      throw new UserError(
        `could not save the private key of ${name} to ${keyFile.path} (${err instanceof Error ? err.message : String(err)}); the key pair was deleted again: fix the directory or set MYMDB_SSH_KEY_FILE`,
      )
    }
    log.info(`[host] key pair ${name}: created; private key saved to ${keyFile.path} (mode 0600)`)
  }
}

/** Creates the group when the plan says so, then revokes and adds the planned rules. Returns its id. */
export async function applySecurityGroup(clients: AwsClients, plan: Pick<HostPlan, 'stage' | 'vpcId' | 'securityGroup'>, log: Log): Promise<string> {
  const name = hostNames(plan.stage).securityGroup
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

export async function applyHostRole(clients: AwsClients, plan: Pick<HostPlan, 'stage' | 'bucket' | 'role' | 'profile' | 'backup'>, log: Log): Promise<void> {
  const n = hostNames(plan.stage)
  const policies = hostPolicies(plan.bucket, plan.backup.roleArn)
  const createRole = async (name: string, trust: object, description: string) => {
    await aws(`create the IAM role ${name}`, () =>
      clients.iam.send(new IAM.CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: JSON.stringify(trust), Description: description, Tags: stageTags(plan.stage) })),
    )
    log.info(`[host] IAM role ${name}: created`)
  }
  if (plan.role.create) await createRole(n.role, policies.trust, `MyMDB ${plan.stage} host: access to the upload bucket`)
  if (plan.role.putPolicy) {
    await aws('set the IAM role policy', () =>
      clients.iam.send(new IAM.PutRolePolicyCommand({ RoleName: n.role, PolicyName: n.policy, PolicyDocument: JSON.stringify(policies.bucket) })),
    )
    log.info(`[host] IAM role ${n.role}: policy ${n.policy} allows s3 on ${plan.bucket} only (and assuming ${n.backupRole})`)
  }
  // The backup role trusts the host role: that one exists by now.
  const backup = backupPolicies(plan.backup.hostRoleArn, plan.backup.externalId, plan.backup.bucket)
  if (plan.backup.create) await createRole(n.backupRole, backup.trust, `MyMDB ${plan.stage} backups: write into ${plan.backup.bucket} only`)
  if (plan.backup.putTrust) {
    await aws('set the trust policy of the backup role', () =>
      clients.iam.send(new IAM.UpdateAssumeRolePolicyCommand({ RoleName: n.backupRole, PolicyDocument: JSON.stringify(backup.trust) })),
    )
    log.info(`[host] IAM role ${n.backupRole}: trust updated (assumed by ${n.role} with the external id)`)
  }
  if (plan.backup.putPolicy) {
    await aws('set the backup role policy', () =>
      clients.iam.send(new IAM.PutRolePolicyCommand({ RoleName: n.backupRole, PolicyName: n.backupPolicy, PolicyDocument: JSON.stringify(backup.write) })),
    )
    log.info(`[host] IAM role ${n.backupRole}: policy ${n.backupPolicy} allows writing backups to ${plan.backup.bucket} only`)
  }
  if (plan.profile.create) {
    await aws('create the instance profile', () =>
      clients.iam.send(new IAM.CreateInstanceProfileCommand({ InstanceProfileName: n.instanceProfile, Tags: stageTags(plan.stage) })),
    )
    log.info(`[host] instance profile ${n.instanceProfile}: created`)
  }
  if (plan.profile.addRole) {
    await aws('add the role to the instance profile', () =>
      clients.iam.send(new IAM.AddRoleToInstanceProfileCommand({ InstanceProfileName: n.instanceProfile, RoleName: n.role })),
    )
    log.info(`[host] instance profile ${n.instanceProfile}: holds role ${n.role}`)
  }
}

/**
 * The stage's fixed address: allocated (tagged) when there is none, associated with the instance
 * unless it is already. Returns the address.
 */
export async function applyElasticIp(clients: AwsClients, plan: Pick<HostPlan, 'stage' | 'elasticIp'>, instanceId: string, log: Log): Promise<string> {
  const name = hostNames(plan.stage).instance
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

/** A new instance profile is not visible to EC2 for a few seconds: RunInstances is tried again, this often. */
export const PROFILE_RETRIES = 12

/**
 * The planned instance: the existing one (started when stopped), or a new launch. A new
 * instance profile takes a few seconds to be usable by EC2: that error is retried with the same
 * ClientToken, so a retry can never make a second instance. Returns the instance id.
 */
export async function applyInstance(clients: AwsClients, plan: Pick<HostPlan, 'stage' | 'instance'>, launch: () => Promise<LaunchSpec>, log: Log, retryDelayMs = 5000): Promise<string> {
  const name = hostNames(plan.stage).instance
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
  return { instanceId, state: i?.State?.Name ?? 'unknown', publicIp: i?.PublicIpAddress || undefined, publicDns: i?.PublicDnsName || undefined }
}

/** Tries a TCP connection to host:port until it succeeds (true) or timeoutMs passes (false). */
export async function waitForTcp(host: string, port: number, timeoutMs: number, intervalMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  const attempt = () =>
    new Promise<true>((done, fail) => {
      const sock = connect({ host, port })
      const timer = setTimeout(() => finish(new Error('no answer')), Math.max(100, Math.min(5000, deadline - Date.now())))
      function finish(err?: Error) {
        clearTimeout(timer)
        sock.destroy()
        if (err) fail(err)
        else done(true)
      }
      sock.once('connect', () => finish())
      sock.once('error', (e) => finish(e))
    })
  return retryUntil(Math.max(1, Math.ceil(timeoutMs / Math.max(intervalMs, 1))), intervalMs, attempt, () => new Error('closed')).catch(() => false)
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

// --- the task ----------------------------------------------------------------------------------

/** The settings, checked (EnvError, exit 2), with the key file's rule: before any AWS call. */
export function hostSettings(env: Env, envFile: string): { raw: RawEnv; values: HostSettings } {
  const raw = loadEnv(env, envFile)
  return { raw, values: checkEnv(hostSpec, raw, { rules: [sshKeyRule, ...backupBucketRules] }) }
}

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

export interface HostStepOptions {
  dryRun?: boolean
  /** Wait until the SSH port answers (default true). */
  waitSsh?: boolean
  /** fetch, for the public IP lookup when MYMDB_SSH_CIDR is not set. */
  fetch?: typeof fetch
}

/**
 * The host step for checked settings: reads what exists (once), shows the plan, and unless a dry
 * run applies exactly that plan, then waits for the instance and its SSH port. Returns the host.
 */
export async function hostStep(s: HostSettings, raw: RawEnv, clients: AwsClients, log: Log, opts: HostStepOptions = {}): Promise<HostResult> {
  const stage = s.MYMDB_STAGE
  const n = hostNames(stage)
  const keyFile = inspectKeyFile(sshKeyPath(s, raw), stageName(stage))
  const userData = renderUserData(readFileSync(join(REPO_ROOT, 'scripts', 'install-docker.sh'), 'utf8'), s.MYMDB_SSH_USER)
  const sshCidr = s.MYMDB_SSH_CIDR ?? (await myPublicCidr(opts.fetch ?? fetch))

  // plan: what exists (read once), and what to do about each resource
  const vpcId = await defaultVpcId(clients)
  const state = await readHostState(clients, stage, keyFile, vpcId)
  const plan = planHost(state, { stage, sshCidr, bucket: s.DJANGO_UPLOAD_S3_BUCKET, backupBucket: backupBucketName(s), vpcId })
  log.info(`[host] stage ${stage} in ${s.AWS_REGION} (default VPC ${vpcId})${opts.dryRun ? ' - dry run, nothing changes' : ''}`)
  const width = Math.max(...plan.items.map((p) => p.resource.length))
  for (const p of plan.items) log.info(`[host]   ${p.resource.padEnd(width)}  ${p.action.padEnd(6)}  ${p.detail}`)
  // The AMI is looked up before anything is created (a missing parameter must not leave half a host).
  const amiId = plan.instance.action === 'create' ? await resolveAmi(clients, s) : undefined
  if (amiId) log.info(`[host] AMI ${amiId}${s.MYMDB_AMI_ID ? ' (MYMDB_AMI_ID)' : ` (from ${s.MYMDB_AMI_SSM_PARAMETER})`}`)
  if (opts.dryRun) {
    log.info('[host] dry run: nothing was changed')
    const host = plan.instance.existing
    return { host, address: s.MYMDB_HOST_ADDRESS ?? host?.publicIp, keyFile: keyFile.path, launched: false, backup: backupTarget(plan, s.AWS_REGION) }
  }

  // apply: exactly the plan
  await applyKeyPair(clients, plan, log)
  const securityGroupId = await applySecurityGroup(clients, plan, log)
  await applyHostRole(clients, plan, log)
  const launch = async (): Promise<LaunchSpec> => ({
    stage,
    amiId: amiId ?? (await resolveAmi(clients, s)),
    instanceType: s.MYMDB_INSTANCE_TYPE,
    keyName: n.keyPair,
    securityGroupId,
    instanceProfile: n.instanceProfile,
    userData,
  })
  const instanceId = await applyInstance(clients, plan, launch, log)
  await log.step('host', `waiting for ${instanceId} to run`, () => waitRunning(clients, instanceId), 15)
  const fixedIp = await applyElasticIp(clients, plan, instanceId, log)
  // described again for the public name that goes with the fixed address; the address is the elastic IP's
  const host = { ...(await waitRunning(clients, instanceId)), publicIp: fixedIp }
  const address = s.MYMDB_HOST_ADDRESS ?? host.publicIp
  if (opts.waitSsh === false) {
    log.info('[host] not waiting for SSH')
  } else if (!address) {
    throw new UserError(`instance ${instanceId} has no public IP address: set MYMDB_HOST_ADDRESS to an address that reaches it`)
  } else {
    const port = s.MYMDB_HOST_SSH_PORT
    const up = await log.step('host', `waiting for SSH on ${address}:${port}`, () => waitForTcp(address, port, SSH_TIMEOUT_SECONDS * 1000), 15)
    if (!up)
      throw new UserError(
        `the SSH port ${address}:${port} did not answer within ${SSH_TIMEOUT_SECONDS} s: check that MYMDB_SSH_CIDR (${sshCidr}) is your address, and the instance's system log in the EC2 console`,
      )
  }
  const launched = plan.instance.action === 'create'
  log.info(`[host] ready: ${instanceId} at ${host.publicIp ?? '(no public IP)'}${host.publicDns ? ` (${host.publicDns})` : ''}`)
  if (launched) log.info('[host] Docker is being installed by the user-data on first boot (log: /var/log/mymdb-install-docker.log)')
  return { host, address, keyFile: keyFile.path, launched, backup: backupTarget(plan, s.AWS_REGION) }
}

function backupTarget(plan: HostPlan, region: string): BackupTarget {
  return { bucket: plan.backup.bucket, region, roleArn: plan.backup.roleArn, externalId: plan.backup.externalId }
}

export async function main(argv: string[], env: Env, partial?: Partial<Deps> & AwsDeps): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: options and settings (nothing touches AWS before these pass)
    const { raw, values: s } = hostSettings(env, deps.envFile)

    // plan + apply
    const clients = (partial?.awsClients ?? awsClients)(s.AWS_REGION, raw)
    const r = await hostStep(s, raw, clients, deps.log, { dryRun: flags['dry-run'] ?? false, waitSsh: !flags['no-wait-ssh'], fetch: partial?.fetch })

    // summary
    if (r.host && !flags['dry-run'])
      deps.log.info(`[host] ssh -i ${r.keyFile} ${s.MYMDB_SSH_USER}@${r.address ?? '<address>'}${s.MYMDB_HOST_SSH_PORT !== 22 ? ` -p ${s.MYMDB_HOST_SSH_PORT}` : ''}   (or: npm run ssh)`)
    return 0
  })
}

runMain(import.meta.url, main)
