// npm run destroy:aws: removes what the host step created for a stage: the instance (and its
// disk), the security group, the key pair, the instance profile and the IAM role. The upload
// bucket is left alone unless --delete-bucket names it exactly. Safe to run again: what is gone
// is skipped.
import { existsSync, rmSync } from 'node:fs'
import { homedir } from 'node:os'
import { deleteBucket, getBucketTags, headBucket } from './lib/aws/bucket.ts'
import { EC2, IAM, S3, aws, awsClients, awsErrorCode, explainAwsError, type AwsClients } from './lib/aws/clients.ts'
import { checkEnv, loadEnv, type CleanEnv, type RawEnv } from './lib/env.ts'
import { backupHost } from './backup.ts'
import { withLock } from './lib/lock.ts'
import { hostAccessSpec, openTarget, reachable, type TargetDeps } from './lib/target.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import type { Log } from './lib/log.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { retryUntil } from './lib/sh.ts'
import { bucketVars, sshKeyExistsRule } from './lib/vars.ts'
import { PROJECT_TAG, stageResources } from './lib/names.ts'
import type { AwsDeps } from './lib/aws/clients.ts'
import { readElasticIp, type ElasticIp } from './lib/aws/address.ts'
import { findHost, findHosts, RUNNING_TIMEOUT_SECONDS } from './lib/aws/instance.ts'
import { keyPairExists } from './lib/aws/keypair.ts'
import { readBackupRole, readInstanceProfile, readRole } from './lib/aws/roles.ts'
import { findSecurityGroup } from './lib/aws/securitygroup.ts'
import { keyFilePath } from './lib/sshkey.ts'

export const HELP = `Usage: npm run destroy:aws -- [options]

Removes the EC2 host of the stage (MYMDB_STAGE, default production) in AWS_REGION and what
belongs to it:
  instance        mymdb-<stage>        terminated, with its disk: the database on it is lost
  security group  mymdb-<stage>-web
  key pair        mymdb-<stage>        the local private key file stays unless --delete-key-file
  instance profile and IAM role  mymdb-<stage>-host (with its inline policy)
  IAM role       mymdb-<stage>-backup (the backups themselves stay in the backup bucket)
Before anything is removed, a final backup of the running host goes into the backup bucket
(npm run backups -- --aws lists it; npm run restore -- <name> --aws after a new deploy). When it
cannot be taken (the host is stopped, unreachable, or the backup fails) nothing is removed,
unless --no-final-backup is given.
The upload bucket (DJANGO_UPLOAD_S3_BUCKET) and its files are not touched, unless
--delete-bucket names it; the backup bucket is never removed by this command.
Running it again is safe: it says "nothing to remove".

Options:
  --dry-run          only list what would be removed
  --no-final-backup  destroy without a final backup (the database on the host is lost)
  --delete-key-file  also delete the local private key file (MYMDB_SSH_KEY_FILE)
  --delete-bucket NAME
                     also delete the upload bucket and every file in it: this deletes ALL
                     UPLOADED POSTERS, for good. NAME must be DJANGO_UPLOAD_S3_BUCKET, exactly;
                     the bucket must be tagged Project=${PROJECT_TAG}, Stage=<stage>
  --yes              do not ask (on a terminal it asks before removing anything)
  -h, --help         this help

Exit codes: 0 removed (or nothing to remove), 1 AWS failed or not confirmed, 2 bad option or
.env value.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run destroy:aws',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
    'delete-key-file': { type: 'boolean' },
    'no-final-backup': { type: 'boolean' },
    'delete-bucket': { type: 'string' },
    yes: { type: 'boolean', short: 'y' },
  },
} as const

/** Only these settings matter for removing (the bucket only with --delete-bucket); SSH for the final backup. */
export const destroySpec = hostAccessSpec

const GONE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down']

/** The upload bucket, when --delete-bucket named it and it exists. */
export interface BucketInventory {
  name: string
  /** Objects on the first listing page: '0' .. '1000', or '1000+'. */
  objects: string
  /** Whether it is tagged Project=mymdb, Stage=<stage> (deleteBucket refuses it otherwise). */
  ours: boolean
  /** Its tags as text, for the refusal message. */
  tags: string
}

export interface Inventory {
  instances: string[]
  securityGroup: string | null
  keyPair: boolean
  instanceProfile: { roles: string[] } | null
  role: boolean
  /** The backup role (the backups themselves stay in their bucket). */
  backupRole: boolean
  /** The stage's fixed address (released: it is gone for good). */
  elasticIp?: ElasticIp | null
  /** Only looked up with --delete-bucket; null: not asked for, or no such bucket. */
  bucket?: BucketInventory | null
}

/** The bucket to delete (reads only): null when it does not exist. */
export async function bucketInventory(clients: AwsClients, bucket: string, stage: string): Promise<BucketInventory | null> {
  if ((await headBucket(clients.s3, bucket)) === undefined) return null
  const tags = await getBucketTags(clients.s3, bucket)
  const tag = (k: string) => tags.find((t) => t.Key === k)?.Value
  const page = await aws(`list the files of bucket ${bucket}`, () => clients.s3.send(new S3.ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 })))
  const count = page.KeyCount ?? page.Contents?.length ?? 0
  return {
    name: bucket,
    objects: page.IsTruncated ? `${count}+` : String(count),
    ours: tag('Project') === PROJECT_TAG && tag('Stage') === stage,
    tags: tags.map((t) => `${t.Key}=${t.Value}`).join(', ') || 'no tags',
  }
}

export async function inventory(clients: AwsClients, stage: string, opts: { bucket?: string } = {}): Promise<Inventory> {
  const n = stageResources(stage)
  const profile = await readInstanceProfile(clients, stage)
  return {
    instances: await findHosts(clients, stage, GONE_STATES),
    securityGroup: (await findSecurityGroup(clients, stage))?.id ?? null,
    keyPair: await keyPairExists(clients, n.keyPair),
    instanceProfile: profile ? { roles: profile.roles } : null,
    role: (await readRole(clients, stage)).exists,
    backupRole: (await readBackupRole(clients, stage)).exists,
    elasticIp: await readElasticIp(clients, stage),
    ...(opts.bucket !== undefined ? { bucket: await bucketInventory(clients, opts.bucket, stage) } : {}),
  }
}

/**
 * The check of --delete-bucket NAME (pure): NAME must be DJANGO_UPLOAD_S3_BUCKET exactly, so that
 * a bucket is only deleted by someone who typed its name.
 */
export function checkDeleteBucket(name: string, configured: string): string {
  if (name !== configured)
    throw new ConfigError(
      `--delete-bucket must be given the upload bucket's name exactly (DJANGO_UPLOAD_S3_BUCKET=${configured}), ` +
        `not ${JSON.stringify(name)}; nothing was removed`,
    )
  return name
}

/** What would be removed, one line each (pure); empty when there is nothing. */
export function removalLines(inv: Inventory, stage: string): string[] {
  const n = stageResources(stage)
  const lines: string[] = []
  for (const id of inv.instances) lines.push(`instance ${n.instance} ${id} (and its disk)`)
  if (inv.securityGroup) lines.push(`security group ${n.securityGroup} ${inv.securityGroup}`)
  if (inv.keyPair) lines.push(`key pair ${n.keyPair}`)
  if (inv.elasticIp) lines.push(`elastic IP ${inv.elasticIp.publicIp} (released: a DNS record pointing at it must change)`)
  if (inv.instanceProfile) lines.push(`instance profile ${n.instanceProfile}`)
  if (inv.role) lines.push(`IAM role ${n.role} (and its policies)`)
  if (inv.backupRole) lines.push(`IAM role ${n.backupRole} (and its policies; the backups stay in their bucket)`)
  if (inv.bucket) lines.push(`S3 bucket ${inv.bucket.name} and all its files (${inv.bucket.objects} objects)`)
  return lines
}

/** Tries to delete the security group while a terminated instance's network interface still holds it. */
const SG_DELETE_ATTEMPTS = 20

/** Removes everything in `inv`, in dependency order. Returns the lines of what was removed. */
export async function removeAll(clients: AwsClients, stage: string, inv: Inventory, log: Log, retryDelayMs = 5000): Promise<string[]> {
  const n = stageResources(stage)
  const removed: string[] = []
  if (inv.instances.length > 0) {
    await aws('terminate the instance', () => clients.ec2.send(new EC2.TerminateInstancesCommand({ InstanceIds: inv.instances })))
    await log.step('destroy', `terminating ${inv.instances.join(', ')}`, () =>
      EC2.waitUntilInstanceTerminated({ client: clients.ec2, maxWaitTime: RUNNING_TIMEOUT_SECONDS, minDelay: 2, maxDelay: 10 }, { InstanceIds: inv.instances }),
    15)
    for (const id of inv.instances) removed.push(`instance ${id}`)
  }
  if (inv.securityGroup) {
    const id = inv.securityGroup
    // The network interface of a just-terminated instance can hold the group for a little while.
    const inUse = (err: unknown) => awsErrorCode(err) === 'DependencyViolation'
    await retryUntil(
      SG_DELETE_ATTEMPTS,
      retryDelayMs,
      async (attempt) => {
        try {
          await clients.ec2.send(new EC2.DeleteSecurityGroupCommand({ GroupId: id }))
        } catch (err) {
          if (awsErrorCode(err) === 'InvalidGroup.NotFound') return true
          if (inUse(err) && attempt < SG_DELETE_ATTEMPTS) log.info(`[destroy] security group ${id} is still in use; retrying in ${retryDelayMs / 1000} s (${attempt}/${SG_DELETE_ATTEMPTS})`)
          throw err
        }
        return true
      },
      (_last, err) => explainAwsError(err, `delete the security group ${id}`),
      (err) => !inUse(err),
    )
    removed.push(`security group ${n.securityGroup}`)
  }
  if (inv.keyPair) {
    await aws('delete the key pair', () => clients.ec2.send(new EC2.DeleteKeyPairCommand({ KeyName: n.keyPair })))
    removed.push(`key pair ${n.keyPair}`)
  }
  if (inv.elasticIp) {
    const { allocationId, associationId, instanceId, publicIp } = inv.elasticIp
    // terminating the instance ended its association; one with another instance is ended here
    if (associationId && instanceId && !inv.instances.includes(instanceId))
      await aws('disassociate the elastic IP', () => clients.ec2.send(new EC2.DisassociateAddressCommand({ AssociationId: associationId })))
    await aws('release the elastic IP', () => clients.ec2.send(new EC2.ReleaseAddressCommand({ AllocationId: allocationId })))
    removed.push(`elastic IP ${publicIp}`)
  }
  if (inv.instanceProfile) {
    for (const role of inv.instanceProfile.roles)
      await aws('remove the role from the instance profile', () =>
        clients.iam.send(new IAM.RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: n.instanceProfile, RoleName: role })),
      )
    await aws('delete the instance profile', () => clients.iam.send(new IAM.DeleteInstanceProfileCommand({ InstanceProfileName: n.instanceProfile })))
    removed.push(`instance profile ${n.instanceProfile}`)
  }
  for (const [there, role] of [[inv.role, n.role], [inv.backupRole, n.backupRole]] as const) {
    if (!there) continue
    const inline = await aws('list the role policies', () => clients.iam.send(new IAM.ListRolePoliciesCommand({ RoleName: role })))
    for (const name of inline.PolicyNames ?? [])
      await aws('delete a role policy', () => clients.iam.send(new IAM.DeleteRolePolicyCommand({ RoleName: role, PolicyName: name })))
    const attached = await aws('list the attached policies', () => clients.iam.send(new IAM.ListAttachedRolePoliciesCommand({ RoleName: role })))
    for (const p of attached.AttachedPolicies ?? [])
      if (p.PolicyArn)
        await aws('detach a role policy', () => clients.iam.send(new IAM.DetachRolePolicyCommand({ RoleName: role, PolicyArn: p.PolicyArn })))
    await aws('delete the IAM role', () => clients.iam.send(new IAM.DeleteRoleCommand({ RoleName: role })))
    removed.push(`IAM role ${role}`)
  }
  if (inv.bucket) {
    // deleteBucket checks the stage tags again: a bucket of another stage is refused.
    const result = await deleteBucket(clients.s3, inv.bucket.name, { stage, log })
    if (result.deleted) removed.push(`S3 bucket ${inv.bucket.name} (${result.objects} object versions)`)
  }
  return removed
}

/**
 * The final backup of the stage's host into the backup bucket. Any reason it cannot be taken is a
 * UserError that names --no-final-backup: then nothing has been removed.
 */
async function takeFinalBackup(s: CleanEnv<typeof hostAccessSpec>, raw: RawEnv, clients: AwsClients, deps: Deps, extra: TargetDeps): Promise<void> {
  const refuse = (why: string) =>
    new UserError(`no final backup (${why}), so nothing was removed: fix that and run again, or pass --no-final-backup to destroy without one (the database on the host is then lost)`)
  const host = await findHost(clients, s.MYMDB_STAGE)
  if (host && host.state !== 'running') throw refuse(`the host ${host.instanceId} is ${host.state}; start it with npm run deploy:aws`)
  let address: string
  try {
    checkEnv(hostAccessSpec, raw, { rules: [sshKeyExistsRule] })
    address = reachable(s, { address: s.MYMDB_HOST_ADDRESS ?? host?.publicIp, instance: host })
  } catch (e) {
    throw refuse(e instanceof Error ? e.message.split('\n').slice(0, 3).join(' ') : String(e))
  }
  const { remote, stack } = await openTarget(s, raw, address, extra, deps.log).catch((e: unknown) => {
    throw refuse(`cannot reach the host: ${e instanceof Error ? e.message : String(e)}`)
  })
  try {
    const r = await backupHost(stack, s.MYMDB_STAGE, deps.log, 'final').catch((e: unknown) => {
      throw refuse(e instanceof Error ? e.message : String(e))
    })
    deps.log.info(`[destroy] final backup: ${r.file} (restore it after a new deploy with npm run restore -- ${r.file.split('/').pop()} --aws)`)
  } finally {
    remote.close()
  }
}

export async function main(argv: string[], env: Env, partial?: Partial<Deps> & AwsDeps & TargetDeps): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { log } = deps

    // check
    const raw = loadEnv(env, deps.envFile)
    const deleteBucketName = flags['delete-bucket']
    // With --delete-bucket the bucket setting is needed too, and NAME must match it.
    const s =
      deleteBucketName !== undefined
        ? checkEnv({ ...destroySpec, ...bucketVars }, raw)
        : { ...checkEnv(destroySpec, raw), DJANGO_UPLOAD_S3_BUCKET: undefined }
    const bucket = deleteBucketName !== undefined ? checkDeleteBucket(deleteBucketName, s.DJANGO_UPLOAD_S3_BUCKET ?? '') : undefined
    const stage = s.MYMDB_STAGE
    const keyFile = keyFilePath(s.MYMDB_SSH_KEY_FILE, stage, raw.HOME || homedir())
    const clients = (partial?.awsClients ?? awsClients)(s.AWS_REGION, raw)

    // plan
    const inv = await inventory(clients, stage, { bucket })
    const lines = removalLines(inv, stage)
    const keyFileThere = existsSync(keyFile)
    if (lines.length === 0) {
      log.info(`[destroy] stage ${stage} in ${s.AWS_REGION}: nothing to remove`)
      if (flags['delete-key-file'] && keyFileThere && !flags['dry-run']) {
        rmSync(keyFile)
        log.info(`[destroy] deleted the local key file ${keyFile}`)
      }
      return 0
    }
    log.warn(`[destroy] stage ${stage} in ${s.AWS_REGION}: ${flags['dry-run'] ? 'would remove' : 'removing'}:`)
    for (const l of lines) log.warn(`  ${l}`)
    if (bucket === undefined) log.info('[destroy] the upload bucket is kept')
    else if (inv.bucket === null) log.info(`[destroy] there is no bucket ${bucket}`)
    if (inv.bucket && !inv.bucket.ours)
      throw new UserError(
        `refusing to delete bucket ${inv.bucket.name}: it is not tagged Project=${PROJECT_TAG}, Stage=${stage} ` +
          `(it has ${inv.bucket.tags}); nothing was removed`,
      )
    const finalBackup = !flags['no-final-backup'] && inv.instances.length > 0
    log.info(finalBackup ? '[destroy] first a final backup of the host into the backup bucket' : inv.instances.length > 0 ? '[destroy] no final backup (--no-final-backup): the database on the host is lost' : '[destroy] no host: no final backup')
    if (flags['dry-run']) {
      log.info('[destroy] dry run: nothing was removed')
      return 0
    }
    if (deps.interactive && !flags.yes && !(await deps.confirm('Remove them?')))
      throw new UserError('nothing removed (not confirmed)')

    // apply: the final backup, then the removal (holding the stage's lock)
    const removed = await withLock(clients.ssm, stage, 'npm run destroy:aws', async () => {
      if (finalBackup) await takeFinalBackup(s, raw, clients, deps, partial ?? {})
      return removeAll(clients, stage, inv, log)
    })

    // summary
    log.info(`[destroy] removed: ${removed.join(', ')}`)
    if (keyFileThere) {
      if (flags['delete-key-file']) {
        rmSync(keyFile)
        log.info(`[destroy] deleted the local key file ${keyFile}`)
      } else if (inv.keyPair) {
        log.info(`[destroy] the local private key ${keyFile} is kept (it matches no key pair now; next deploy imports it again). Delete it with --delete-key-file`)
      }
    }
    return 0
  })
}

runMain(import.meta.url, main)
