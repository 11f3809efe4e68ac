// The S3 bucket step of `npm run deploy:aws`: the upload bucket (DJANGO_UPLOAD_S3_BUCKET) in
// AWS_REGION, tagged for the stage, ACLs disabled (bucket owner enforced), public read on the
// uploads/ prefix only (bucket policy from AWS/mymdb-bucket-policy.json). Re-runnable: it reads
// the bucket's current settings and writes only what differs.
//
// Standalone: npm run bucket [-- --dry-run]
import { getAccountPublicAccessBlock, accountBlockFix, accountBlockingFlags } from './lib/aws/accountblock.ts'
import { applyBucketPlan, bucketClients, BucketNameError, getBucketState, type BucketClients } from './lib/aws/bucket.ts'
import { UPLOAD_PREFIX } from './lib/aws/bucketpolicy.ts'
import { desiredBackupBucket, desiredBucket, mutates, planBucket, planLine, type BucketState, type DesiredBucket, type PlanItem } from './lib/aws/bucketplan.ts'
import { PROJECT_TAG } from './lib/names.ts'
import { checkEnv, loadEnv, type CleanEnv } from './lib/env.ts'
import type { Log } from './lib/log.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { awsVars, backupBucketName, backupBucketRules, backupBucketVars, bucketVars } from './lib/vars.ts'

export const HELP = `Usage: npm run bucket -- [options]   (a step of npm run deploy:aws)

Creates or updates the S3 bucket for uploaded posters, DJANGO_UPLOAD_S3_BUCKET, in AWS_REGION:
  - tags Project=${PROJECT_TAG}, Stage=<MYMDB_STAGE>
  - object ownership "bucket owner enforced" (ACLs disabled; Django sets no ACL)
  - Block Public Access: BlockPublicAcls and IgnorePublicAcls on, BlockPublicPolicy and
    RestrictPublicBuckets off, so that the bucket policy below may be public
  - bucket policy from AWS/mymdb-bucket-policy.json: anyone may GET objects under uploads/,
    nothing else of the bucket is public (the bucket's policy is replaced by this one)
It reads the current settings first and changes only what differs; a second run changes
nothing. It warns when the account-wide Block Public Access setting would still block the
policy, and says how to fix that.

Settings (environment or .env): AWS_REGION, DJANGO_UPLOAD_S3_BUCKET, MYMDB_STAGE (default
production); credentials from the AWS SDK's default chain (aws configure, AWS_PROFILE, ...).

Options:
  --dry-run    print the plan (exists/create/update/unchanged per item), change nothing
  -h, --help   this help

Exit codes: 0 done, 1 AWS failed, 2 bad option or setting (also: bucket name taken by another
account, bucket in another region).`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run bucket',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
  },
} as const

// --- the task ------------------------------------------------------------------------------------

export interface BucketDeps extends Partial<Deps> {
  /** Makes the AWS clients (tests wrap them, e.g. to count calls). */
  clients?: (region: string, env: Env) => BucketClients
  /** Waits before trying the policy again (default POLICY_RETRY_DELAYS_MS). */
  policyRetryDelaysMs?: number[]
}

/** The settings the bucket step reads. */
export const bucketSpec = { ...awsVars, ...bucketVars, ...backupBucketVars }
export type BucketSettings = Pick<CleanEnv<typeof bucketSpec>, 'AWS_REGION' | 'DJANGO_UPLOAD_S3_BUCKET' | 'MYMDB_STAGE' | 'MYMDB_BACKUP_BUCKET' | 'MYMDB_BACKUP_KEEP_DAYS'>

/** Runs `fn` on one bucket; a refused or taken name names the setting of that bucket. */
async function namingSetting<T>(desired: DesiredBucket, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw err instanceof BucketNameError ? err.forSetting(desired.setting) : err
  }
}

/**
 * The bucket step for checked settings: reads both buckets' current settings (once), shows the
 * plan, and unless a dry run applies exactly that plan. Returns the number of changes made.
 */
export async function bucketStep(v: BucketSettings, clients: BucketClients, log: Log, opts: { dryRun?: boolean; retryDelaysMs?: number[] } = {}): Promise<number> {
  const { AWS_REGION: region, DJANGO_UPLOAD_S3_BUCKET: bucket, MYMDB_STAGE: stage } = v
  const buckets = [desiredBucket(bucket, region, stage), desiredBackupBucket(backupBucketName(v), region, stage, v.MYMDB_BACKUP_KEEP_DAYS)]

  // plan: current state (reads only), then what differs
  const plans: { desired: DesiredBucket; current: BucketState | undefined; plan: PlanItem[] }[] = []
  for (const desired of buckets) {
    const current = await namingSetting(desired, () => getBucketState(clients.s3, desired.bucket, desired))
    plans.push({ desired, current, plan: planBucket(current, desired) })
  }
  for (const { desired, plan } of plans) {
    log.info(`[bucket] ${desired.bucket} (${desired.backups ? 'backups, private' : 'uploads'}; region ${region}, stage ${stage})${opts.dryRun ? ' - dry run' : ''}`)
    for (const item of plan) log.info(planLine(item))
  }

  // plan: would the account-wide Block Public Access still block the upload bucket's policy?
  const account = await getAccountPublicAccessBlock(clients.sts, clients.s3control)
  if (!account.known) {
    log.info(
      `[bucket] note: could not read the account-level Block Public Access (${account.reason}); ` +
        'if uploads are not publicly readable, check "Block Public Access settings for this account" in the S3 console',
    )
  } else {
    const flagsOn = accountBlockingFlags(account.config)
    if (flagsOn.length > 0)
      log.warn(
        `[bucket] warning: account ${account.account} has Block Public Access ${flagsOn.join(' and ')} on: ` +
          `the bucket policy cannot make ${UPLOAD_PREFIX} public. Fix: ${accountBlockFix(account.account)}`,
      )
  }

  const changes = plans.flatMap((p) => p.plan.filter(mutates))
  if (opts.dryRun) {
    log.info(`[bucket] dry run: ${changes.length} change(s) planned, nothing changed`)
    return 0
  }

  // apply
  let made = 0
  for (const { desired, current, plan } of plans)
    if (plan.some(mutates)) made += (await namingSetting(desired, () => applyBucketPlan(clients, desired, plan, current, { log, account, retryDelaysMs: opts.retryDelaysMs }))).length

  // summary
  const base = region === 'us-east-1' ? `https://${bucket}.s3.amazonaws.com` : `https://${bucket}.s3.${region}.amazonaws.com`
  log.info(
    `[bucket] ${made === 0 ? 'nothing to change' : `${made} change(s) made`}; ` +
      `public uploads at ${base}/${UPLOAD_PREFIX}... (Django: DJANGO_UPLOAD_S3_BUCKET=${bucket} AWS_S3_REGION_NAME=${region}); ` +
      `private backups in s3://${buckets[1]!.bucket}, kept ${v.MYMDB_BACKUP_KEEP_DAYS} day(s)`,
  )
  return made
}

export async function main(argv: string[], env: Env, partial?: BucketDeps): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: settings (before any AWS call)
    const raw = loadEnv(env, deps.envFile)
    const values = checkEnv(bucketSpec, raw, { rules: backupBucketRules })

    // plan + apply
    const clients = (partial?.clients ?? bucketClients)(values.AWS_REGION, raw)
    await bucketStep(values, clients, deps.log, { dryRun: flags['dry-run'] ?? false, retryDelaysMs: partial?.policyRetryDelaysMs })
    return 0
  })
}

runMain(import.meta.url, main)
