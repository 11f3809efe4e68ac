// What destroy:aws removes of a stage, and the removal: the instances (with their disks), the
// security group, the key pair, the Elastic IP, the instance profile, the two roles, and the upload
// bucket only when asked. Read first (inventory), said (removalLines), then, after a final backup
// of the host (takeFinalBackup), removed in dependency order (removeAll). What is gone already is
// skipped, so a second run finishes an interrupted one.
import { backupHost } from '../backup.ts'
import { ConfigError, UserError } from '../errors.ts'
import { keyFileProblem } from '../hostvars.ts'
import type { Log } from '../log.ts'
import type { Deps } from '../main.ts'
import { nodeName, stageResources } from '../names.ts'
import type { StepSeams } from '../step.ts'
import type { ResolveName } from '../remote/checks.ts'
import { openTarget, reachable, type HostAccessSettings } from '../target.ts'
import { readElasticIps, releaseElasticIp, type ElasticIp } from './address.ts'
import { bucketInventory, deleteBucket, type BucketInventory } from './bucket.ts'
import type { AwsClients } from './clients.ts'
import { findHost, findHosts, reachAddress, terminateInstances } from './instance.ts'
import { deleteKeyPair, keyPairExists } from './keypair.ts'
import { deleteInstanceProfile, deleteRole, readBackupRole, readInstanceProfile, readRole } from './roles.ts'
import { deleteSecurityGroup, findSecurityGroup } from './securitygroup.ts'

/** Instance states destroy still terminates (terminated ones are gone). */
const GONE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down']

export interface Inventory {
  /** Every instance of the stage, and the host it is. */
  instances: { id: string; node: number }[]
  securityGroup: string | null
  keyPair: boolean
  instanceProfile: { roles: string[] } | null
  role: boolean
  /** The backup role (the backups themselves stay in their bucket). */
  backupRole: boolean
  /** The fixed addresses of the stage's hosts (released: they are gone for good). */
  elasticIps: ElasticIp[]
  /** Only looked up with --delete-bucket; null: not asked for, or no such bucket. */
  bucket?: BucketInventory | null
}

/** What of the stage exists (reads only). */
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
    elasticIps: await readElasticIps(clients, stage),
    ...(opts.bucket !== undefined ? { bucket: await bucketInventory(clients.s3, opts.bucket, stage) } : {}),
  }
}

/** What would be removed, one line each (pure); empty when there is nothing. */
export function removalLines(inv: Inventory, stage: string): string[] {
  const n = stageResources(stage)
  const lines: string[] = []
  for (const { id, node } of inv.instances) lines.push(`instance ${nodeName(stage, node)} ${id} (and its disk)`)
  if (inv.securityGroup) lines.push(`security group ${n.securityGroup} ${inv.securityGroup}`)
  if (inv.keyPair) lines.push(`key pair ${n.keyPair}`)
  for (const a of inv.elasticIps) lines.push(`elastic IP ${a.publicIp} (released: a DNS record pointing at it must change)`)
  if (inv.instanceProfile) lines.push(`instance profile ${n.instanceProfile}`)
  if (inv.role) lines.push(`IAM role ${n.role} (and its policies)`)
  if (inv.backupRole) lines.push(`IAM role ${n.backupRole} (and its policies; the backups stay in their bucket)`)
  if (inv.bucket) lines.push(`S3 bucket ${inv.bucket.name} and all its files (${inv.bucket.objects} objects)`)
  return lines
}

/**
 * The final backup of the stage's host into the backup bucket. Any reason it cannot be taken is a
 * UserError that names --no-final-backup: then nothing has been removed.
 */
export async function takeFinalBackup(s: HostAccessSettings, clients: AwsClients, deps: Deps & StepSeams): Promise<void> {
  const refuse = (why: string) =>
    new UserError(`no final backup (${why}), so nothing was removed: fix that and run again, or pass --no-final-backup to destroy without one (the database on the host is then lost)`)
  const host = await findHost(clients, s.MYMDB_STAGE)
  if (host && host.state !== 'running') throw refuse(`the host ${host.instanceId} is ${host.state}; start it with npm run deploy:aws`)
  let address: string
  try {
    const keyProblem = keyFileProblem(s.sshKeyFile)
    if (keyProblem) throw new Error(keyProblem)
    address = reachable(s, { address: reachAddress(s.MYMDB_HOST_ADDRESS, host), instance: host, node: 1 })
  } catch (e) {
    throw refuse(e instanceof Error ? e.message.split('\n').slice(0, 3).join(' ') : String(e))
  }
  const { remote, stack } = await openTarget(s, address, deps, deps, host).catch((e: unknown) => {
    throw refuse(`cannot reach the host: ${e instanceof Error ? e.message : String(e)}`)
  })
  try {
    const r = await backupHost(stack, s.MYMDB_STAGE, deps.log, 'final').catch((e: unknown) => {
      throw refuse(e instanceof Error ? e.message : String(e))
    })
    deps.log.info(`[destroy] final backup: ${r.file} (restore it after a new deploy with npm run restore -- ${r.name} --aws)`)
  } finally {
    remote.close()
  }
}

/** Removes everything in `inv`, in dependency order. Returns the lines of what was removed. */
export async function removeAll(clients: AwsClients, stage: string, inv: Inventory, log: Log, retryDelayMs = 5000): Promise<string[]> {
  const n = stageResources(stage)
  const removed: string[] = []
  const instanceIds = inv.instances.map((i) => i.id)
  if (instanceIds.length > 0) {
    await terminateInstances(clients, instanceIds, log)
    for (const id of instanceIds) removed.push(`instance ${id}`)
  }
  if (inv.securityGroup) {
    await deleteSecurityGroup(clients, inv.securityGroup, log, retryDelayMs)
    removed.push(`security group ${n.securityGroup}`)
  }
  if (inv.keyPair) {
    await deleteKeyPair(clients, n.keyPair)
    removed.push(`key pair ${n.keyPair}`)
  }
  for (const a of inv.elasticIps) {
    await releaseElasticIp(clients, a, instanceIds)
    removed.push(`elastic IP ${a.publicIp}`)
  }
  if (inv.instanceProfile) {
    await deleteInstanceProfile(clients, n.instanceProfile, inv.instanceProfile.roles)
    removed.push(`instance profile ${n.instanceProfile}`)
  }
  for (const [there, role] of [[inv.role, n.role], [inv.backupRole, n.backupRole]] as const) {
    if (!there) continue
    await deleteRole(clients, role)
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

/**
 * Refuses (UserError) to release an address MYMDB_DOMAIN still resolves to, or when that cannot be
 * looked up: whoever AWS gives the address to next would receive the site's visitors and could
 * get a certificate for the name. Without MYMDB_DOMAIN there is nothing to look up: a warning (returned, as the line that says it is safe).
 */
export async function checkAddressesUnnamed(eips: readonly ElasticIp[], s: { MYMDB_DOMAIN?: string; MYMDB_DNS_SERVER?: string }, resolve: ResolveName): Promise<AddressNote | undefined> {
  if (eips.length === 0) return undefined
  const domain = s.MYMDB_DOMAIN
  if (!domain) return { warn: true, text: `no MYMDB_DOMAIN to check: make sure no DNS record points at ${eips.map((a) => a.publicIp).join(', ')} before it is released` }
  let ips: string[]
  try {
    ips = await resolve(domain, s.MYMDB_DNS_SERVER)
  } catch (e) {
    throw new UserError(`cannot tell whether ${domain} still resolves to the elastic IP (${e instanceof Error ? e.message : String(e)}), so it is not released; nothing was removed. Run again once DNS answers, or without --release-address`)
  }
  const named = eips.filter((a) => ips.includes(a.publicIp)).map((a) => a.publicIp)
  if (named.length > 0)
    throw new UserError(
      `refusing to release the elastic IP ${named.join(', ')}: MYMDB_DOMAIN ${domain} still resolves to it, and whoever AWS gives the address to next ` +
        `would receive your visitors and could get a certificate for ${domain}. Point the DNS record elsewhere (or delete it), wait for its TTL, ` +
        'then run again; or run without --release-address to keep the address. Nothing was removed',
    )
  return { warn: false, text: `${domain} does not resolve to ${eips.map((a) => a.publicIp).join(', ')}: the address may be released` }
}

/** What the address check says (a warning when it could not check). */
export interface AddressNote {
  warn: boolean
  text: string
}
