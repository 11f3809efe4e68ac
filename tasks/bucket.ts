// npm run bucket (step 2 of deploy:aws): the upload bucket (DJANGO_UPLOAD_S3_BUCKET) in AWS_REGION,
// tagged for the stage, ACLs disabled, public read on the uploads/ prefix only, versioned; and the stage's
// private backup bucket (MYMDB_BACKUP_BUCKET). Re-runnable: it reads both buckets' settings and
// writes only what differs. The buckets' plan: lib/aws/bucketplan.ts; the S3 calls: lib/aws/bucket.ts.
import { getAccountPublicAccessBlock, showAccountBlock, type AccountBlock } from './lib/aws/accountblock.ts'
import { applyBucketPlan, bucketClientsFrom, BucketNameError, getBucketState } from './lib/aws/bucket.ts'
import { UPLOAD_PREFIX } from './lib/aws/bucketpolicy.ts'
import { desiredBackupBucket, desiredBucket, mutates, planBucket, planLine, type BackupRetention, type BucketState, type DesiredBucket, type PlanItem } from './lib/aws/bucketplan.ts'
import { PROJECT_TAG } from './lib/names.ts'
import { checkEnv, loadEnv, type CleanEnv } from './lib/env.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { runStep, stepDeps, type Step, type StepSeams } from './lib/step.ts'
import { awsVars, backupBucketName, backupBucketRules, backupBucketVars, bucketVars } from './lib/awsvars.ts'
import { stageLock } from './lib/lock.ts'

export const HELP = `Usage: npm run bucket -- [options]   (a step of npm run deploy:aws)

Creates or updates the S3 bucket for uploaded posters, DJANGO_UPLOAD_S3_BUCKET, in AWS_REGION:
  - tags Project=${PROJECT_TAG}, Stage=<MYMDB_STAGE>
  - object ownership "bucket owner enforced" (ACLs disabled; Django sets no ACL)
  - Block Public Access: BlockPublicAcls and IgnorePublicAcls on, BlockPublicPolicy and
    RestrictPublicBuckets off, so that the bucket policy below may be public
  - bucket policy from AWS/mymdb-bucket-policy.json: anyone may GET objects under uploads/,
    nothing else of the bucket is public (the bucket's policy is replaced by this one)
  - versioned, and a lifecycle rule that deletes a replaced or deleted upload's old version
    MYMDB_UPLOAD_KEEP_DAYS days (default 30) after it was replaced (the host may not delete)
And the stage's private backup bucket, MYMDB_BACKUP_BUCKET (default
<DJANGO_UPLOAD_S3_BUCKET>-backups): the same tags and ownership, all four Block Public Access
settings on and no policy, encrypted at rest (SSE-S3), versioned, and lifecycle rules: of each
kind of scheduled, manual and safety backups every one younger than MYMDB_BACKUP_KEEP_DAYS
(default 14) and the newest MYMDB_BACKUP_KEEP (default 7) stay; final and pre-migrate backups
stay until deleted on purpose.
It reads the current settings first and changes only what differs; a second run changes
nothing. It warns when the account-wide Block Public Access setting would still block the
policy, and says how to fix that.

Settings (environment or .env): AWS_REGION, DJANGO_UPLOAD_S3_BUCKET, MYMDB_STAGE (default
production), MYMDB_UPLOAD_KEEP_DAYS, MYMDB_BACKUP_BUCKET, MYMDB_BACKUP_KEEP_DAYS, MYMDB_BACKUP_KEEP;
credentials from the AWS SDK's default chain (aws configure, AWS_PROFILE, ...).

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

// --- the step --------------------------------------------------------------------------------------

/** The settings the bucket step reads. */
export const bucketSpec = { ...awsVars, ...bucketVars, ...backupBucketVars }
export type BucketSettings = Pick<CleanEnv<typeof bucketSpec>, 'AWS_REGION' | 'DJANGO_UPLOAD_S3_BUCKET' | 'MYMDB_STAGE' | 'MYMDB_BACKUP_BUCKET' | 'MYMDB_BACKUP_KEEP_DAYS' | 'MYMDB_BACKUP_KEEP' | 'MYMDB_UPLOAD_KEEP_DAYS'>

/** Both buckets: what they should be, what they are, what differs; and the account's Block Public Access. */
export interface BucketsPlan {
  region: string
  stage: string
  keep: BackupRetention
  buckets: { desired: DesiredBucket; current: BucketState | undefined; items: PlanItem[] }[]
  account: AccountBlock
}

export interface BucketsResult {
  upload: string
  backups: string
  /** The settings written (none: both buckets were as they should be). */
  changed: string[]
}

/** Runs `fn` on one bucket; a refused or taken name names the setting of that bucket. */
async function namingSetting<T>(desired: DesiredBucket, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw err instanceof BucketNameError ? err.forSetting(desired.setting) : err
  }
}

export const bucketStep: Step<BucketSettings, BucketsPlan, BucketsResult> = {
  name: 'bucket',

  /** Reads both buckets' current settings (once) and the account's Block Public Access. */
  async plan(v, deps) {
    const { AWS_REGION: region, MYMDB_STAGE: stage } = v
    const clients = bucketClientsFrom(deps.clients(region))
    const wanted = [desiredBucket(v.DJANGO_UPLOAD_S3_BUCKET, region, stage, v.MYMDB_UPLOAD_KEEP_DAYS), desiredBackupBucket(backupBucketName(v), region, stage, { days: v.MYMDB_BACKUP_KEEP_DAYS, newest: v.MYMDB_BACKUP_KEEP })]
    const buckets = []
    for (const desired of wanted) {
      const current = await namingSetting(desired, () => getBucketState(clients.s3, desired.bucket, desired))
      buckets.push({ desired, current, items: planBucket(current, desired) })
    }
    return { region, stage, keep: { days: v.MYMDB_BACKUP_KEEP_DAYS, newest: v.MYMDB_BACKUP_KEEP }, buckets, account: await getAccountPublicAccessBlock(clients.sts, clients.s3control) }
  },

  show(plan, log, dryRun) {
    for (const { desired, items } of plan.buckets) {
      log.info(`[bucket] ${desired.bucket} (${desired.kind}; region ${plan.region}, stage ${plan.stage})${dryRun ? ' - dry run' : ''}`)
      for (const item of items) log.info(planLine(item))
    }
    // would the account-wide Block Public Access still block the upload bucket's policy?
    showAccountBlock(plan.account, log)
    if (dryRun) log.info(`[bucket] dry run: ${plan.buckets.flatMap((b) => b.items.filter(mutates)).length} change(s) planned, nothing changed`)
  },

  async apply(plan, deps) {
    const { log } = deps
    const changed: string[] = []
    for (const { desired, current, items } of plan.buckets)
      if (items.some(mutates))
        changed.push(
          ...(await namingSetting(desired, () => applyBucketPlan(bucketClientsFrom(deps.clients(plan.region)), desired, items, current, { log, account: plan.account, retryDelaysMs: deps.policyRetryDelaysMs }))),
        )
    const result = this.preview(plan)
    const { upload, backups } = result
    const base = plan.region === 'us-east-1' ? `https://${upload}.s3.amazonaws.com` : `https://${upload}.s3.${plan.region}.amazonaws.com`
    log.info(
      `[bucket] ${changed.length === 0 ? 'nothing to change' : `${changed.length} change(s) made`}; ` +
        `public uploads at ${base}/${UPLOAD_PREFIX}... (Django: DJANGO_UPLOAD_S3_BUCKET=${upload} AWS_S3_REGION_NAME=${plan.region}); ` +
        `private backups in s3://${backups}, the newest ${plan.keep.newest} of each kind and all from the last ${plan.keep.days} day(s) kept, final and pre-migrate ones until deleted`,
    )
    return { ...result, changed }
  },

  preview(plan) {
    const [upload, backups] = plan.buckets.map((b) => b.desired.bucket)
    return { upload: upload ?? '', backups: backups ?? '', changed: [] }
  },
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: settings (before any AWS call)
    const raw = loadEnv(env, deps.envFile)
    const values = checkEnv(bucketSpec, raw, { rules: backupBucketRules })

    // plan, show, apply
    const sd = stepDeps(deps, partial, raw)
    const dryRun = flags['dry-run'] ?? false
    await runStep(bucketStep, values, sd, dryRun, stageLock(sd, values, 'npm run bucket'))
    return 0
  })
}

runMain(import.meta.url, main)
