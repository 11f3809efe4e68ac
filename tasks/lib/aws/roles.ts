// The stage's IAM roles and the host's instance profile:
//   mymdb-<stage>-host    assumed by EC2 (the instance profile): reads and writes uploads/ of the
//                         upload bucket (never deletes: a compromised container cannot wipe the
//                         posters), assumes the backup role with its external id, and with ECR
//                         pulls the stage's repositories (read-only: no push, no other repository)
//   mymdb-<stage>-backup  assumed by the host role with the external id: writes backups into the
//                         backup bucket's rolling/ and kept/ and nothing else (not read, list or delete)
// Policies are built as objects (pure) and compared with what IAM has, so a re-run changes only
// what differs.
import { randomBytes } from 'node:crypto'
import type { Log } from '../log.ts'
import { stageResources, stageTags } from '../names.ts'
import { IAM, aws, awsErrorCode, explainAwsError, sameJson, type AwsClients } from './clients.ts'
import { UPLOAD_PREFIX } from './bucketpolicy.ts'
import { KEPT_PREFIX, ROLLING_PREFIX } from '../backupkeys.ts'
import { LOCK_TABLE } from '../lock.ts'
import { ecrRepositoryArns } from './registry.ts'
import type { PlanLine } from './plan.ts'

const POLICY_VERSION = '2012-10-17'

/** An IAM role's ARN (pure). */
export function roleArn(account: string, name: string): string {
  return `arn:aws:iam::${account}:role/${name}`
}

/** What the host's pull from ECR needs, read-only: the layers and manifests of a repository. */
export const ECR_PULL_ACTIONS = ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability']

/**
 * The host role's trust policy (EC2 may assume it) and its inline policy: the upload bucket,
 * assuming the backup role (which only works with the external id, kept on the host outside
 * every container), and pulling from the ECR repositories `pull` (ARNs; the token itself cannot
 * be narrowed to a repository: the repository actions are).
 */
export function hostPolicies(bucket: string, backupRole?: string, pull?: readonly string[]): { trust: object; bucket: object } {
  return {
    trust: {
      Version: POLICY_VERSION,
      Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    },
    bucket: {
      Version: POLICY_VERSION,
      Statement: [
        {
          // No s3:DeleteObject: Django never deletes a file, and the bucket keeps old versions.
          Sid: 'UploadObjects',
          Effect: 'Allow',
          Action: ['s3:GetObject', 's3:PutObject'],
          Resource: `arn:aws:s3:::${bucket}/${UPLOAD_PREFIX}*`,
        },
        { Sid: 'ListUploads', Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${bucket}` },
        ...(backupRole ? [{ Sid: 'AssumeBackupRole', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: backupRole }] : []),
        ...(pull && pull.length > 0
          ? [
              { Sid: 'RegistryToken', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
              { Sid: 'PullStageImages', Effect: 'Allow', Action: ECR_PULL_ACTIONS, Resource: [...pull] },
            ]
          : []),
      ],
    },
  }
}

/**
 * The backup role: assumed by the host role only with the external id, and allowed to write
 * backups into the backup bucket's rolling/ and kept/ prefixes and nothing else (not read, list or
 * delete them; a new version never replaces an old one in a versioned bucket).
 */
export function backupPolicies(hostRole: string, externalId: string, backupBucket: string, stage: string): { trust: object; write: object } {
  const account = hostRole.split(':')[4] ?? ''
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
      // under the two prefixes whose lifecycle rules keep them (bucketplan.ts), nowhere else
      Statement: [
        {
          Sid: 'WriteBackups',
          Effect: 'Allow',
          Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
          Resource: [`arn:aws:s3:::${backupBucket}/${ROLLING_PREFIX}*`, `arn:aws:s3:::${backupBucket}/${KEPT_PREFIX}*`],
        },
        // the scheduled backup holds the stage's lock (lock.ts) while it runs: its own stage's item only
        {
          Sid: 'HoldStageLock',
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
          Resource: `arn:aws:dynamodb:*:${account}:table/${LOCK_TABLE}`,
          Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [stage] } },
        },
      ],
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

/** What IAM has now, for planRoles. */
export interface RolesState {
  role: { exists: boolean; policy: unknown }
  backupRole: { exists: boolean; trust: unknown; policy: unknown }
  instanceProfile: { exists: boolean; roles: string[] } | null
  /** The AWS account (for the roles' ARNs). */
  account: string
}

export interface RolesPlan {
  /** The host role; `policy` is its inline policy document as apply puts it. */
  /** pullsImages: the policy lets the host pull the stage's ECR repositories. */
  role: { create: boolean; putPolicy: boolean; policy: object; pullsImages: boolean }
  /** The backup role, its trust (with the external id) and its write policy. */
  backup: { bucket: string; roleArn: string; hostRoleArn: string; externalId: string; create: boolean; putTrust: boolean; putPolicy: boolean }
  profile: { create: boolean; addRole: boolean }
}

/**
 * What to do about the two roles and the instance profile (pure), with their plan lines. The
 * backup role keeps its external id; a new role gets a new random one.
 */
export function planRoles(
  stage: string,
  state: RolesState,
  want: { bucket: string; backupBucket: string; ecrPull?: { region: string; repositories: string[] } },
  newExternalId: () => string = () => randomBytes(24).toString('hex'),
): RolesPlan & { lines: PlanLine[] } {
  const n = stageResources(stage)
  const hostRoleArn = roleArn(state.account, n.role)
  const backupRoleArn = roleArn(state.account, n.backupRole)
  const pull = want.ecrPull ? ecrRepositoryArns(want.ecrPull.region, state.account, want.ecrPull.repositories) : undefined
  const policy = hostPolicies(want.bucket, backupRoleArn, pull).bucket
  const policyOk = state.role.exists && sameJson(state.role.policy, policy)
  const externalId = externalIdOf(state.backupRole.trust) ?? newExternalId()
  const backup = backupPolicies(hostRoleArn, externalId, want.backupBucket, stage)
  const trustOk = state.backupRole.exists && sameJson(state.backupRole.trust, backup.trust)
  const writeOk = state.backupRole.exists && sameJson(state.backupRole.policy, backup.write)
  const profile = state.instanceProfile
  const hasRole = profile?.roles.includes(n.role) ?? false
  return {
    role: { create: !state.role.exists, putPolicy: !policyOk, policy, pullsImages: pull !== undefined },
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
    lines: [
      {
        resource: `IAM role ${n.role}`,
        action: !state.role.exists ? 'create' : policyOk ? 'exists' : 'update',
        detail: `${policyOk ? `S3 access to ${want.bucket}` : `S3 access to ${want.bucket} only, may assume ${n.backupRole}`}${want.ecrPull ? `; pulls ${want.ecrPull.repositories.join(', ')} from ECR` : ''}`,
      },
      {
        resource: `IAM role ${n.backupRole}`,
        action: !state.backupRole.exists ? 'create' : trustOk && writeOk ? 'exists' : 'update',
        detail: `writes backups to ${want.backupBucket} only; assumed by ${n.role} with its external id`,
      },
      {
        resource: `instance profile ${n.instanceProfile}`,
        action: !profile ? 'create' : hasRole ? 'exists' : 'update',
        detail: hasRole ? `role ${n.role}` : `with role ${n.role}`,
      },
    ],
  }
}

function notFound(err: unknown): boolean {
  return awsErrorCode(err) === 'NoSuchEntity' || awsErrorCode(err) === 'NoSuchEntityException'
}

export async function readRole(clients: AwsClients, stage: string): Promise<{ exists: boolean; policy: unknown }> {
  const n = stageResources(stage)
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
  const n = stageResources(stage)
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
    const r = await clients.iam.send(new IAM.GetInstanceProfileCommand({ InstanceProfileName: stageResources(stage).instanceProfile }))
    return { exists: true, roles: (r.InstanceProfile?.Roles ?? []).map((x) => x.RoleName ?? '') }
  } catch (err) {
    if (notFound(err)) return null
    throw explainAwsError(err, 'look up the instance profile')
  }
}

export async function applyHostRole(clients: AwsClients, plan: RolesPlan & { stage: string; bucket: string }, log: Log): Promise<void> {
  const n = stageResources(plan.stage)
  const policies = { trust: hostPolicies(plan.bucket).trust, bucket: plan.role.policy }
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
    log.info(`[host] IAM role ${n.role}: policy ${n.policy} allows s3 on ${plan.bucket} only (and assuming ${n.backupRole}${plan.role.pullsImages ? ", pulling the stage's images from ECR" : ''})`)
  }
  // The backup role trusts the host role: that one exists by now.
  const backup = backupPolicies(plan.backup.hostRoleArn, plan.backup.externalId, plan.backup.bucket, plan.stage)
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

/** Deletes the instance profile, after taking its roles out of it. */
export async function deleteInstanceProfile(clients: AwsClients, name: string, roles: readonly string[]): Promise<void> {
  for (const role of roles)
    await aws('remove the role from the instance profile', () => clients.iam.send(new IAM.RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: name, RoleName: role })))
  await aws('delete the instance profile', () => clients.iam.send(new IAM.DeleteInstanceProfileCommand({ InstanceProfileName: name })))
}

/** Deletes a role with its inline and attached policies. */
export async function deleteRole(clients: AwsClients, role: string): Promise<void> {
  const inline = await aws('list the role policies', () => clients.iam.send(new IAM.ListRolePoliciesCommand({ RoleName: role })))
  for (const name of inline.PolicyNames ?? [])
    await aws('delete a role policy', () => clients.iam.send(new IAM.DeleteRolePolicyCommand({ RoleName: role, PolicyName: name })))
  const attached = await aws('list the attached policies', () => clients.iam.send(new IAM.ListAttachedRolePoliciesCommand({ RoleName: role })))
  for (const p of attached.AttachedPolicies ?? [])
    if (p.PolicyArn) await aws('detach a role policy', () => clients.iam.send(new IAM.DetachRolePolicyCommand({ RoleName: role, PolicyArn: p.PolicyArn })))
  await aws('delete the IAM role', () => clients.iam.send(new IAM.DeleteRoleCommand({ RoleName: role })))
}
