// destroy:aws's plan and apply (the step: tasks/destroy-aws.ts): what the stage has (its hosts and
// what they share, the front door, the RDS database), what goes and what is kept, and the removal
// in the order the resources' references need: the final backup first, a kept Elastic IP taken off
// its instance, the database's rule for the hosts' group, the front door, the hosts' parts, the
// database itself only when asked (after a final snapshot).
import { existsSync, rmSync } from 'node:fs'
import { UserError } from '../errors.ts'
import type { Deps } from '../main.ts'
import { PROJECT_TAG } from '../names.ts'
import type { ResolveName } from '../remote/checks.ts'
import type { StepSeams } from '../step.ts'
import type { HostAccessSettings } from '../target.ts'
import { disassociateElasticIp, type ElasticIp } from './address.ts'
import type { AwsClients } from './clients.ts'
import { databaseInventory, databaseLines, detachHosts, finalSnapshotName, removeDatabase, type DatabaseInventory } from './dbteardown.ts'
import { frontInventory, frontLines, removeFront, type FrontInventory } from './frontteardown.ts'
import { checkAddressesUnnamed, inventory, removeAll, removalLines, takeFinalBackup, type AddressNote, type Inventory } from './teardown.ts'

/** What destroy is asked to do: the checked settings, and the options. */
export interface DestroyInput extends HostAccessSettings {
  MYMDB_DOMAIN?: string
  MYMDB_DNS_SERVER?: string
  /** --delete-bucket NAME, checked against DJANGO_UPLOAD_S3_BUCKET. */
  bucket?: string
  release: boolean
  deleteDb: boolean
  deleteKeyFile: boolean
  finalBackup: boolean
}

/** What is there and what goes (read only); what is kept said in `kept`. */
export interface DestroyPlan {
  input: DestroyInput
  /** The stage's resources; its Elastic IPs only with --release-address. */
  inv: Inventory
  /** Every Elastic IP of the stage (a kept one is taken off its instance). */
  elasticIps: ElasticIp[]
  db: DatabaseInventory | null
  snapshot: string
  front: FrontInventory | null
  /** One line per resource removed. */
  lines: string[]
  /** What stays, one line each. */
  kept: string[]
  /** With --release-address: whether the site's name still points at the addresses, as checked. */
  addressNote?: AddressNote
  keyFileThere: boolean
  finalBackup: boolean
}

/** Reads what the stage has and plans its removal; refuses (UserError) a bucket of another stage or an address the site's name still points at. */
export async function planDestroy(clients: AwsClients, input: DestroyInput, resolve: ResolveName): Promise<DestroyPlan> {
  const { MYMDB_STAGE: stage } = input
  const found = await inventory(clients, stage, { bucket: input.bucket })
  const kept = input.release ? [] : found.elasticIps.map((a) => `the elastic IP ${a.publicIp} is kept: the next deploy of stage ${stage} uses it again (--release-address releases it)`)
  const addressNote = input.release ? await checkAddressesUnnamed(found.elasticIps, input, resolve) : undefined
  const inv = input.release ? found : { ...found, elasticIps: [] }
  if (inv.bucket && !inv.bucket.ours)
    throw new UserError(`refusing to delete bucket ${inv.bucket.name}: it is not tagged Project=${PROJECT_TAG}, Stage=${stage} (it has ${inv.bucket.tags}); nothing was removed`)
  const db = await databaseInventory(clients, stage, found.securityGroup)
  const snapshot = finalSnapshotName(stage, new Date())
  const dbLines = db ? databaseLines(db, stage, input.deleteDb, snapshot) : []
  if (!input.deleteDb) kept.push(...dbLines)
  const front = await frontInventory(clients, stage, found.securityGroup)
  const lines = [...(front ? frontLines(front, stage) : []), ...removalLines(inv, stage), ...(input.deleteDb ? dbLines : [])]
  const finalBackup = input.finalBackup && inv.instances.length > 0
  return { input, inv, elasticIps: found.elasticIps, db, snapshot, front, lines, kept, ...(addressNote ? { addressNote } : {}), keyFileThere: existsSync(input.sshKeyFile), finalBackup }
}

/** Applies the plan (the caller holds the stage's lock) and returns what was removed; then the local key file. */
export async function applyDestroy(clients: AwsClients, plan: DestroyPlan, deps: Deps & StepSeams): Promise<string[]> {
  const { input, inv, db, front } = plan
  const { log } = deps
  const stage = input.MYMDB_STAGE
  const removed: string[] = []
  if (plan.lines.length > 0) {
    if (plan.finalBackup) await takeFinalBackup(input, clients, deps)
    // a kept address is taken off its instance first: the stage's next instance gets it
    if (!input.release) for (const a of plan.elasticIps) await disassociateElasticIp(clients, a)
    // the database's group admits the hosts' group: that rule goes first, or the hosts' group cannot
    if (db) await detachHosts(clients, db)
    // the front's NFS group refers to the hosts' group too: the front door goes first
    if (front) removed.push(...(await removeFront(clients, stage, front, log, (deps.pollSeconds ?? 5) * 1000)))
    removed.push(...(await removeAll(clients, stage, inv, log)))
    if (input.deleteDb && db) removed.push(...(await removeDatabase(clients, stage, db, plan.snapshot, log, (deps.pollSeconds ?? 15) * 1000)))
    log.info(`[destroy] removed: ${removed.join(', ')}`)
  }
  if (plan.keyFileThere && input.deleteKeyFile) {
    rmSync(input.sshKeyFile)
    log.info(`[destroy] deleted the local key file ${input.sshKeyFile}`)
  } else if (plan.keyFileThere && inv.keyPair) {
    log.info(`[destroy] the local private key ${input.sshKeyFile} is kept (it matches no key pair now; next deploy imports it again). Delete it with --delete-key-file`)
  }
  return removed
}
