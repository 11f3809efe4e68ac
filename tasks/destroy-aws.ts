// npm run destroy:aws: removes what the deploy created for a stage (the list and what is kept:
// HELP), after a final backup of the host; a step like the deploy's (plan, show, apply: lib/aws/
// destroy.ts), with a question between show and apply on a terminal. Safe to run again.
import { applyDestroy, planDestroy, type DestroyInput, type DestroyPlan } from './lib/aws/destroy.ts'
import { checkDeleteBucket } from './lib/aws/teardown.ts'
import { bucketVars } from './lib/awsvars.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import { siteVars, sshKeyPath } from './lib/hostvars.ts'
import { stageLock } from './lib/lock.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { PROJECT_TAG } from './lib/names.ts'
import { resolveName } from './lib/remote/checks.ts'
import { runStep, stepDeps, type Step, type StepSeams } from './lib/step.ts'
import { hostAccessSpec } from './lib/target.ts'

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

export const destroyStep: Step<DestroyInput, DestroyPlan, string[]> = {
  name: 'destroy',

  plan: (input, deps) => planDestroy(deps.clients(input.AWS_REGION), input, deps.resolveName ?? resolveName),

  show(plan, log, dryRun) {
    const { input, inv, lines } = plan
    for (const l of plan.kept) log.info(`[destroy] ${l}`)
    if (plan.addressNote) log[plan.addressNote.warn ? 'warn' : 'info'](`[destroy] ${plan.addressNote.text}`)
    if (lines.length === 0) log.info(`[destroy] stage ${input.MYMDB_STAGE} in ${input.AWS_REGION}: nothing to remove`)
    else {
      log.warn(`[destroy] stage ${input.MYMDB_STAGE} in ${input.AWS_REGION}: ${dryRun ? 'would remove' : 'removing'}:`)
      for (const l of lines) log.warn(`  ${l}`)
      if (input.bucket === undefined) log.info('[destroy] the upload bucket is kept')
      else if (inv.bucket === null) log.info(`[destroy] there is no bucket ${input.bucket}`)
      const hosts = inv.instances.length > 0
      log.info(plan.finalBackup ? '[destroy] first a final backup of the host into the backup bucket' : hosts ? '[destroy] no final backup (--no-final-backup): the database on the host is lost' : '[destroy] no host: no final backup')
    }
    if (dryRun && lines.length > 0) log.info('[destroy] dry run: nothing was removed')
  },

  /** The final backup, then the removal (holding the stage's lock); the local key file last. */
  apply: (plan, deps) => applyDestroy(deps.clients(plan.input.AWS_REGION), plan, deps),

  preview: () => [],
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: the settings (the bucket's only with --delete-bucket, whose NAME must match it)
    const raw = loadEnv(env, deps.envFile)
    const deleteBucketName = flags['delete-bucket']
    const values =
      deleteBucketName !== undefined
        ? checkEnv({ ...destroySpec, ...bucketVars }, raw)
        : { ...checkEnv(destroySpec, raw), DJANGO_UPLOAD_S3_BUCKET: undefined }
    const input: DestroyInput = {
      ...values,
      sshKeyFile: sshKeyPath(values, raw),
      ...(deleteBucketName !== undefined ? { bucket: checkDeleteBucket(deleteBucketName, values.DJANGO_UPLOAD_S3_BUCKET ?? '') } : {}),
      release: flags['release-address'] ?? false,
      deleteDb: flags['delete-database'] ?? false,
      deleteKeyFile: flags['delete-key-file'] ?? false,
      finalBackup: !flags['no-final-backup'],
    }

    // plan, show, ask (on a terminal, unless --yes), apply holding the stage's lock
    const sd = stepDeps(deps, partial, raw)
    const ask = async (plan: DestroyPlan) => {
      if (plan.lines.length > 0 && deps.interactive && !flags.yes && !(await deps.confirm('Remove them?'))) throw new UserError('nothing removed (not confirmed)')
    }
    await runStep(destroyStep, input, sd, flags['dry-run'] ?? false, stageLock(sd, input, 'npm run destroy:aws'), ask)
    return 0
  })
}

runMain(import.meta.url, main)
