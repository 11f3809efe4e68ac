// npm run destroy:aws: removes what the deploy created for a stage (the list and what is kept:
// HELP), after a final backup of the host (lib/aws/teardown.ts). Safe to run again.
import { existsSync, rmSync } from 'node:fs'
import { checkAddressesUnnamed, checkDeleteBucket, inventory, removeAll, removalLines, takeFinalBackup } from './lib/aws/teardown.ts'
import { databaseInventory, databaseLines, detachHosts, finalSnapshotName, removeDatabase } from './lib/aws/dbteardown.ts'
import { frontInventory, frontLines, removeFront } from './lib/aws/frontteardown.ts'
import { bucketVars } from './lib/awsvars.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import { sshKeyPath } from './lib/hostvars.ts'
import { withLock } from './lib/lock.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { PROJECT_TAG } from './lib/names.ts'
import { stepDeps, type StepSeams } from './lib/step.ts'
import { hostAccessSpec } from './lib/target.ts'
import { siteVars } from './lib/hostvars.ts'
import { disassociateElasticIp } from './lib/aws/address.ts'
import { resolveName } from './lib/remote/checks.ts'

export const HELP = `Usage: npm run destroy:aws -- [options]

Removes the EC2 host of the stage (MYMDB_STAGE, default production) in AWS_REGION and what
belongs to it:
  instance        mymdb-<stage>        terminated, with its disk: the database on it is lost
  security group  mymdb-<stage>-web
  key pair        mymdb-<stage>        the local private key file stays unless --delete-key-file
  instance profile and IAM role  mymdb-<stage>-host (with its inline policy)
  IAM role       mymdb-<stage>-backup (the backups themselves stay in the backup bucket)
  front door      mymdb-<stage>        several hosts: the load balancer, its target groups and
                                       Elastic IPs, the fronts' EFS file system (it holds the
                                       certificate only: the next deploy obtains one again)
  RDS database    mymdb-<stage>        KEPT (MYMDB_DATABASE=rds: deletion protection; its data and
                                       automated backups stay), with its network; only the
                                       hosts' group is taken out of its security group.
                                       --delete-database deletes it after a final snapshot, and
                                       its network and parameter group
  elastic IP      mymdb-<stage>        KEPT: the next deploy of the stage gets the same address
                                       (AWS bills an address without a running instance).
                                       --release-address releases it, unless MYMDB_DOMAIN still
                                       resolves to it: its next holder could get a certificate
                                       for your name. Change the DNS record first.
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
  --release-address  also release the elastic IP (refused while MYMDB_DOMAIN resolves to it)
  --delete-database  also delete the RDS database: RDS takes a final snapshot first (kept until
                     you delete it: aws rds delete-db-snapshot), then its network
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
    'release-address': { type: 'boolean' },
    'no-final-backup': { type: 'boolean' },
    'delete-database': { type: 'boolean' },
    'delete-bucket': { type: 'string' },
    yes: { type: 'boolean', short: 'y' },
  },
} as const

/** Only these settings matter for removing (the bucket only with --delete-bucket); SSH for the final backup; the domain for --release-address. */
export const destroySpec = { ...hostAccessSpec, MYMDB_DOMAIN: siteVars.MYMDB_DOMAIN, MYMDB_DNS_SERVER: siteVars.MYMDB_DNS_SERVER }

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { log } = deps

    // check
    const raw = loadEnv(env, deps.envFile)
    const deleteBucketName = flags['delete-bucket']
    // With --delete-bucket the bucket setting is needed too, and NAME must match it.
    const values =
      deleteBucketName !== undefined
        ? checkEnv({ ...destroySpec, ...bucketVars }, raw)
        : { ...checkEnv(destroySpec, raw), DJANGO_UPLOAD_S3_BUCKET: undefined }
    const s = { ...values, sshKeyFile: sshKeyPath(values, raw) }
    const bucket = deleteBucketName !== undefined ? checkDeleteBucket(deleteBucketName, s.DJANGO_UPLOAD_S3_BUCKET ?? '') : undefined
    const stage = s.MYMDB_STAGE
    const keyFile = s.sshKeyFile
    const clients = stepDeps(deps, partial, raw).clients(s.AWS_REGION)

    // plan
    const found = await inventory(clients, stage, { bucket })
    const release = flags['release-address'] ?? false
    const inv = release ? found : { ...found, elasticIps: [] }
    if (!release) for (const a of found.elasticIps) log.info(`[destroy] the elastic IP ${a.publicIp} is kept: the next deploy of stage ${stage} uses it again (--release-address releases it)`)
    else await checkAddressesUnnamed(found.elasticIps, s, partial?.resolveName ?? resolveName, log)
    const db = await databaseInventory(clients, stage, found.securityGroup)
    const deleteDb = flags['delete-database'] ?? false
    const snapshot = finalSnapshotName(stage, new Date())
    const dbLines = db ? databaseLines(db, stage, deleteDb, snapshot) : []
    if (db && !deleteDb) for (const l of dbLines) log.info(`[destroy] ${l}`)
    const front = await frontInventory(clients, stage, found.securityGroup)
    const lines = [...(front ? frontLines(front, stage) : []), ...removalLines(inv, stage), ...(deleteDb ? dbLines : [])]
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
    const removed = await withLock(clients.dynamodb, stage, 'npm run destroy:aws', async () => {
      if (finalBackup) await takeFinalBackup(s, clients, deps, partial ?? {})
      // a kept address is taken off its instance first: the stage's next instance gets it
      if (!release) for (const a of found.elasticIps) await disassociateElasticIp(clients, a)
      // the database's group admits the hosts' group: that rule goes first, or the hosts' group cannot
      if (db) await detachHosts(clients, db)
      // the front's NFS group refers to the hosts' group too: the front door goes first
      const frontDone = front ? await removeFront(clients, stage, front, log, (partial?.pollSeconds ?? 5) * 1000) : []
      const done = [...frontDone, ...(await removeAll(clients, stage, inv, log))]
      return deleteDb && db ? [...done, ...(await removeDatabase(clients, stage, db, snapshot, log, (partial?.pollSeconds ?? 15) * 1000))] : done
    }, { log })

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
