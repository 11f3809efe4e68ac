// npm run deploy:aws: MyMDB on an EC2 host of the stage, uploads on S3, from this machine.
// Four steps, each idempotent and each also runnable alone: push (npm run push), bucket
// (npm run bucket), host (npm run host), start over SSH (npm run remote:up). A second run
// against an unchanged setup changes nothing; an interrupted run completes on the next one.
import { holderText, readLock, withLock } from './lib/lock.ts'
import { bucketStep } from './bucket.ts'
import { bucketClientsFrom } from './lib/aws/bucket.ts'
import { hostStep } from './host.ts'
import type { AwsDeps } from './lib/aws/clients.ts'
import { STS, aws, awsClients } from './lib/aws/clients.ts'
import { checkEnv, hostList, loadEnv, type RawEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { acmeCaRootRule, awsVars, backupBucketRules, backupBucketVars, bucketVars, hostVars, releaseVars, imageVars, registryRules, registryVars, sshKeyRule } from './lib/vars.ts'
import { pushImages, type PushResult } from './push.ts'
import { planRemoteUp, remoteSteps } from './lib/remote/plan.ts'
import { remoteSpec } from './lib/remote/settings.ts'
import { remoteUp, type RemoteUpDeps } from './lib/remote/up.ts'

export const HELP = `Usage: npm run deploy:aws -- [options]

Deploys MyMDB to AWS in four steps, each safe to run again:
  1. push    the web, db, proxy and cache images of this commit to MYMDB_REGISTRY (npm run push)
  2. bucket  the upload bucket DJANGO_UPLOAD_S3_BUCKET, public under uploads/ (npm run bucket)
  3. host    key pair, security group, IAM role, EC2 instance with Docker  (npm run host)
  4. start   compose file + production .env over SSH, pull, up, checks     (npm run remote:up)
             with MYMDB_DOMAIN: first the DNS record to create, and a wait until the name
             resolves to the host's Elastic IP; then the host gets its certificate
Every setting is checked first (all problems at once), then the AWS credentials (sts
get-caller-identity), before anything is pushed or created. A run that stopped half-way
(Ctrl-C, lost connection, an AWS error) is completed by running it again: existing
resources are found by their tags and reused, never created twice.

Settings: see .env.example (AWS_REGION, DJANGO_UPLOAD_S3_BUCKET, MYMDB_REGISTRY, the
production secrets DJANGO_SECRET_KEY, DJANGO_DB_PASSWORD, POSTGRES_PASSWORD, ...).
AWS credentials come from the AWS SDK's default chain (aws configure, AWS_PROFILE, SSO).
The site's host names: MYMDB_DOMAIN and DJANGO_ALLOWED_HOSTS (both optional) plus the
instance's public DNS name and IP, added by this step. Without MYMDB_DOMAIN the site is plain
HTTP (a warning says so); with it, HTTPS with a certificate from MYMDB_ACME_CA (Let's Encrypt).

Options:
  --dry-run    show the plan of every step (what exists, what would be created or changed),
               change nothing (no push, no AWS write, no SSH)
  -h, --help   this help

Stop the host (keeps its disk):  npm run stop -- --aws
Remove the host and its parts:   npm run destroy:aws

Exit codes: 0 deployed, 1 a step failed (run again after fixing), 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run deploy:aws',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
  },
} as const

/** Everything the four steps read, checked at once. Allowed hosts are optional here: the
 * instance's public name is added once it is known. */
export const deploySpec = {
  ...imageVars,
  ...remoteSpec,
  ...awsVars,
  ...registryVars,
  ...hostVars,
  ...bucketVars,
  ...backupBucketVars,
  ...releaseVars,
  DJANGO_ALLOWED_HOSTS: hostList({ desc: 'extra host names of the site (the instance public DNS name and IP are added)', example: 'mymdb.example.com', optional: true }),
}

/** Rules across the settings of the four steps: the registry login, the SSH key file, the backup bucket. */
export const deployRules = [...registryRules, sshKeyRule, ...backupBucketRules, acmeCaRootRule]

/** The settings of the start step: this commit's tag, the site's names, the registry login. Pure. */
export function remoteEnv(raw: RawEnv, push: Pick<PushResult, 'tag' | 'login'>, host: { publicDns?: string; publicIp?: string }): RawEnv {
  const names = [...(raw.DJANGO_ALLOWED_HOSTS ?? '').split(','), host.publicDns, host.publicIp]
    .map((n) => n?.trim() ?? '')
    .filter((n, i, all) => n !== '' && all.indexOf(n) === i)
  return {
    ...raw,
    MYMDB_TAG: push.tag,
    DJANGO_ALLOWED_HOSTS: names.join(','),
    AWS_S3_REGION_NAME: raw.AWS_S3_REGION_NAME || raw.AWS_REGION,
    ...(push.login ? { MYMDB_REGISTRY_USERNAME: push.login.username, MYMDB_REGISTRY_PASSWORD: push.login.password } : {}),
  }
}

export type DeployDeps = RemoteUpDeps & AwsDeps

export async function main(argv: string[], env: Env, partial?: DeployDeps): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { log } = deps
    const dryRun = flags['dry-run'] ?? false

    // check: every setting of every step, before anything happens
    const raw = loadEnv(env, deps.envFile)
    const values = checkEnv(deploySpec, raw, { rules: deployRules })
    const start = Date.now()
    const clients = (partial?.awsClients ?? awsClients)(values.AWS_REGION, raw)

    // check: the AWS credentials work, before anything is pushed or created
    const who = await aws('check the AWS credentials (sts get-caller-identity)', () => clients.sts.send(new STS.GetCallerIdentityCommand({})))
    log.info(`[deploy] AWS account ${who.Account ?? '?'} as ${who.Arn ?? '?'}, region ${values.AWS_REGION}, stage ${values.MYMDB_STAGE}`)
    // One deploy, stop or destroy of a stage at a time (a dry run changes nothing: it only reports a lock).
    if (dryRun) {
      const holder = await aws('read the deploy lock', () => readLock(clients.ssm, values.MYMDB_STAGE))
      if (holder) log.warn(`[deploy] note: stage ${values.MYMDB_STAGE} is locked by ${holderText(holder)}; a real run would stop here`)
      return deploySteps()
    }
    return withLock(clients.ssm, values.MYMDB_STAGE, 'npm run deploy:aws', deploySteps)

    async function deploySteps(): Promise<number> {
      // A failed step keeps its own report and exit code (2: a setting to fix; 1: run again after fixing).
      const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
        try {
          return await fn()
        } catch (e) {
          log.error(`[deploy] step ${name} failed (below); fix it and run npm run deploy:aws again: finished steps are found as they are`)
          throw e
        }
      }

      // 1. push
      log.info(`[deploy] 1/4 push images to ${values.MYMDB_REGISTRY}${dryRun ? ' (dry run)' : ''}`)
      const pushed = await step('push', () => pushImages(values, raw, deps, { dryRun, clients }))

      // 2. bucket
      log.info(`[deploy] 2/4 upload bucket ${values.DJANGO_UPLOAD_S3_BUCKET}`)
      await step('bucket', () => bucketStep(values, bucketClientsFrom(clients), log, { dryRun }))

      // 3. host
      log.info(`[deploy] 3/4 EC2 host mymdb-${values.MYMDB_STAGE}`)
      const { host, address, backup } = await step('host', () => hostStep(values, raw, clients, log, { dryRun, fetch: partial?.fetch }))
      if (!host && dryRun) {
        log.info('[deploy] 4/4 start over SSH: once the host exists (its name and address are not known before)')
        return 0
      }
      if (!host || !address)
        throw new UserError('[deploy] the host has no public IP address: check that the default VPC gives public IPs, or set MYMDB_HOST_ADDRESS')

      // 4. start over SSH
      log.info(`[deploy] 4/4 start MyMDB on ${address}${values.MYMDB_HOST_ADDRESS ? ' (MYMDB_HOST_ADDRESS)' : ''}`)
      if (!values.MYMDB_DOMAIN)
        log.warn('[deploy] no MYMDB_DOMAIN: the site is plain HTTP, so logins and passwords cross the internet in clear text; set MYMDB_DOMAIN for HTTPS with an automatic certificate')
      const plan = planRemoteUp(remoteEnv(raw, pushed, host), { address, registry: pushed.prefix, backup, digests: pushed.digests, ...(host.publicIp ? { publicIp: host.publicIp } : {}) })
      if (dryRun) {
        for (const s of remoteSteps(plan)) log.info(`[remote] would run: ${s}`)
        log.info('[deploy] dry run: nothing was changed')
        return 0
      }
      const url = await step('start', () => remoteUp(plan, deps, { ...partial, startedAt: start }))

      // summary
      log.info('')
      log.info(`[deploy] MyMDB is running: ${url} (deployed ${pushed.tag} in ${Math.round((Date.now() - start) / 1000)} s)`)
      log.info('[deploy] operate it: npm run status -- --aws | logs -- --aws | manage -- --aws <command> | ssh')
      log.info('[deploy] stop the host with: npm run stop -- --aws; remove it with: npm run destroy:aws')
      return 0
    }
  })
}

runMain(import.meta.url, main)
