// npm run deploy:aws: MyMDB on an EC2 host of the stage, uploads on S3, from this machine.
// Four steps, each idempotent and each also runnable alone: push (npm run push), bucket
// (npm run bucket), host (npm run host), start over SSH (npm run remote:up); with several hosts
// the front door (npm run front), with MYMDB_DATABASE=rds the database (npm run database). A second run
// against an unchanged setup changes nothing; an interrupted run completes on the next one.
import { bucketStep } from './bucket.ts'
import { databaseStep } from './database.ts'
import { rdsTarget } from './lib/aws/database.ts'
import { frontStep } from './front.ts'
import { hostStep } from './host.ts'
import { pushStep } from './push.ts'
import { startStep } from './remote-up.ts'
import { STS, aws } from './lib/aws/clients.ts'
import { frontDoorState, frontRemovalStep } from './lib/aws/frontteardown.ts'
import { findNodes, terminateInstances } from './lib/aws/instance.ts'
import { loadEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { lockNote, readLock, withLock } from './lib/lock.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { startInput } from './lib/remote/plan.ts'
import type { RdsTarget } from './lib/remote/dbrole.ts'
import { deploySettings } from './lib/remote/settings.ts'
import { runStep, stepDeps, type Step, type StepSeams } from './lib/step.ts'

export const HELP = `Usage: npm run deploy:aws -- [options]

Deploys MyMDB to AWS in four steps (one more with several hosts, one more with
MYMDB_DATABASE=rds), each safe to run again:
  1. push    the web, db, proxy and cache images of this commit to MYMDB_REGISTRY (npm run push)
  2. bucket  the upload bucket DJANGO_UPLOAD_S3_BUCKET (public under uploads/) and the private
             backup bucket                                                   (npm run bucket)
  3. host    key pair, security group, IAM roles (host, backup), EC2 instance with Docker,
             Elastic IP; MYMDB_HOSTS of them (default 1), spread over the zones
                                                                             (npm run host)
             (fewer than there are: the ones beyond are taken out of the swarm by the start
             step, their tasks moved to the others, and then terminated)
  (4.) front    with MYMDB_HOSTS > 1: a Network Load Balancer on an Elastic IP per zone
             passing TCP 80 and 443 to every host, and the EFS file system where the
             hosts' fronts share the certificate                           (npm run front)
             (back to MYMDB_HOSTS=1, the front door stays in use, the site's name may
             point at it, until --remove-front-door)
  (4.) database  with MYMDB_DATABASE=rds: PostgreSQL on RDS, private, TLS only, admitting
             the hosts only; the site's own role made there by the start    (npm run database)
  4. start   compose file + production .env over SSH, pull, Swarm stack deploy, checks;
             with several hosts, first one Docker Swarm of them             (npm run remote:up)
             with MYMDB_DOMAIN: first the DNS record to create, and a wait until the name
             resolves to the host's Elastic IP (several hosts: the load balancer's); then
             the host gets its certificate (several: one, kept on their shared storage)
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
  --remove-front-door
               with MYMDB_HOSTS=1, on a stage down to one host: host 1's front keeps its
               certificate on its own volume again, then the load balancer, its addresses
               and the fronts' shared storage are removed (point the site's name at host
               1's Elastic IP first: with MYMDB_DOMAIN the start waits until it does)
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
    'remove-front-door': { type: 'boolean' },
  },
} as const

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { log } = deps
    const dryRun = flags['dry-run'] ?? false

    // check: every setting of every step, before anything happens
    const raw = loadEnv(env, deps.envFile)
    const s = deploySettings(raw)
    const removeDoor = flags['remove-front-door'] ?? false
    if (removeDoor && s.MYMDB_HOSTS > 1) throw new ConfigError(`--remove-front-door: MYMDB_HOSTS is ${s.MYMDB_HOSTS}, and several hosts need their front door; it can go once the stage is down to one host (MYMDB_HOSTS=1)`)
    const started = Date.now()
    const sd = stepDeps(deps, partial, raw)
    const clients = sd.clients(s.AWS_REGION)

    // check: the AWS credentials work, before anything is pushed or created
    const who = await aws('check the AWS credentials (sts get-caller-identity)', () => clients.sts.send(new STS.GetCallerIdentityCommand({})))
    log.info(`[deploy] AWS account ${who.Account ?? '?'} as ${who.Arn ?? '?'}, region ${s.AWS_REGION}, stage ${s.MYMDB_STAGE}`)
    // One deploy, stop or destroy of a stage at a time (a dry run changes nothing: it only reports a lock).
    if (dryRun) {
      const holder = await aws('read the deploy lock', () => readLock(clients.dynamodb, s.MYMDB_STAGE))
      if (holder) log.warn(`[deploy] note: ${lockNote(s.MYMDB_STAGE, holder)}`)
      return deploySteps()
    }
    return withLock(clients.dynamodb, s.MYMDB_STAGE, 'npm run deploy:aws', deploySteps, { log })

    /**
     * The stage's front door: kept (made or corrected) with several hosts. With one host, one left
     * from more stays in use (the site's name may point at it) until --remove-front-door, which
     * needs the stage down to one host already (the front step stops sending requests to a host
     * before it is drained; removal in the same run would not).
     */
    async function frontDoor(): Promise<'none' | 'keep' | 'remove'> {
      if (s.MYMDB_HOSTS > 1) return 'keep'
      const state = await frontDoorState(clients, s.MYMDB_STAGE)
      if (removeDoor) {
        if (state === 'none') {
          log.info(`[deploy] --remove-front-door: stage ${s.MYMDB_STAGE} has no front door (nothing to remove)`)
          return 'none'
        }
        const more = [...(await findNodes(clients, s.MYMDB_STAGE)).keys()].filter((n) => n > 1).sort((a, b) => a - b)
        if (more.length > 0)
          throw new UserError(
            `--remove-front-door: stage ${s.MYMDB_STAGE} still has host${more.length > 1 ? 's' : ''} ${more.join(', ')}: run npm run deploy:aws with MYMDB_HOSTS=1 first (the front door stops sending them requests before they are drained), then again with --remove-front-door`,
          )
        return 'remove'
      }
      if (state === 'leftovers') log.warn(`[deploy] stage ${s.MYMDB_STAGE} has parts of a front door left (the fronts' shared storage mymdb-${s.MYMDB_STAGE}-front, without its load balancer): remove them with npm run deploy:aws -- --remove-front-door`)
      if (state !== 'balancer') return 'none'
      log.warn(
        `[deploy] stage ${s.MYMDB_STAGE} has a front door (load balancer mymdb-${s.MYMDB_STAGE}, its Elastic IPs, the fronts' shared storage), kept in use with one host: the site's name may point at it. ` +
          `Once the name points at host 1's Elastic IP, remove it: npm run deploy:aws -- --remove-front-door`,
      )
      return 'keep'
    }

    async function deploySteps(): Promise<number> {
      // Each step: plan, show, apply (not in a dry run). A failed step keeps its own report and
      // exit code (2: a setting to fix; 1: run again after fixing).
      const step = async <S, P, R>(st: Step<S, P, R>, input: S): Promise<R> => {
        try {
          return await runStep(st, input, { ...sd, startedAt: started }, dryRun)
        } catch (e) {
          log.error(`[deploy] step ${st.name} failed (below); fix it and run npm run deploy:aws again: finished steps are found as they are`)
          throw e
        }
      }

      // with several hosts, the front door; with the database on RDS, the database: each a step
      // of its own between the hosts (whose group they admit) and the start
      const rds = s.MYMDB_DATABASE === 'rds'
      const cluster = s.MYMDB_HOSTS > 1
      const door = await frontDoor()
      const steps = ['push', 'bucket', 'host', ...(door === 'keep' ? ['front'] : []), ...(rds ? ['database'] : []), 'start', ...(door === 'remove' ? ['front-removal'] : [])]
      const nth = (name: string) => `${steps.indexOf(name) + 1}/${steps.length}`
      log.info(`[deploy] ${nth('push')} push images to ${s.MYMDB_REGISTRY}${dryRun ? ' (dry run)' : ''}`)
      const pushed = await step(pushStep, s)

      log.info(`[deploy] ${nth('bucket')} upload bucket ${s.DJANGO_UPLOAD_S3_BUCKET}`)
      await step(bucketStep, s)

      log.info(`[deploy] ${nth('host')} EC2 host${cluster ? `s mymdb-${s.MYMDB_STAGE}, -2 .. -${s.MYMDB_HOSTS}` : ` mymdb-${s.MYMDB_STAGE}`}`)
      const host = await step(hostStep, s)

      const front =
        door === 'keep'
          ? (log.info(`[deploy] ${nth('front')} front door mymdb-${s.MYMDB_STAGE}: load balancer and the fronts' shared storage`),
            await step(frontStep, { ...s, hosts: host.nodes.map((n) => ({ instanceId: n.host?.instanceId, zone: n.host?.zone })) }))
          : undefined

      let database: RdsTarget | undefined
      if (rds) {
        log.info(`[deploy] ${nth('database')} database mymdb-${s.MYMDB_STAGE} on RDS`)
        const db = await step(databaseStep, s)
        database = rdsTarget(db, s.AWS_REGION)
      }
      const missing = !host.host ? 'host' : rds && !database ? 'database' : front && !front.sharedFs ? "fronts' shared storage" : ''
      if (missing && dryRun) {
        log.info(`[deploy] ${nth('start')} start over SSH: once the ${missing} exists (its address is not known before)`)
        return 0
      }
      const address = host.address
      const unreachable = host.nodes.filter((n) => !n.address).map((n) => n.node)
      if (!host.host || !address || unreachable.length > 0)
        throw new UserError(`[deploy] host ${unreachable.join(', ') || 1} has no public IP address: check that the default VPC gives public IPs, or set MYMDB_HOST_ADDRESS`)

      const more = host.nodes.length > 1 ? ` and hosts ${host.nodes.slice(1).map((n) => n.address).join(', ')}, as one Docker Swarm` : ''
      log.info(`[deploy] ${nth('start')} start MyMDB on ${address}${more}${s.MYMDB_HOST_ADDRESS ? ' (MYMDB_HOST_ADDRESS)' : ''}`)
      if (!s.MYMDB_DOMAIN)
        log.warn('[deploy] no MYMDB_DOMAIN: the site is plain HTTP, so logins and passwords cross the internet in clear text; set MYMDB_DOMAIN for HTTPS with an automatic certificate')
      const { url } = await step(startStep, startInput(s, pushed, { ...host, address }, database, front))
      if (door === 'remove') {
        log.info(`[deploy] ${nth('front-removal')} the front door mymdb-${s.MYMDB_STAGE} removed (host 1's front no longer uses its shared storage)`)
        await step(frontRemovalStep, s)
      }
      if (dryRun) {
        log.info('[deploy] dry run: nothing was changed')
        return 0
      }
      // hosts beyond MYMDB_HOSTS, out of the swarm now: their instances (and disks) go
      const retired = host.retire.flatMap((n) => (n.host ? [n.host.instanceId] : []))
      if (retired.length > 0) {
        await terminateInstances(clients, retired, log)
        log.info(`[deploy] host${retired.length > 1 ? 's' : ''} ${host.retire.map((n) => n.node).join(', ')} taken away: ${retired.join(', ')} terminated; their elastic IPs stay the stage's (released by npm run destroy:aws -- --release-address)`)
      }

      // summary
      log.info('')
      log.info(`[deploy] MyMDB is running: ${url} (deployed ${pushed.tag} in ${Math.round((Date.now() - started) / 1000)} s)`)
      log.info(`[deploy] its admin site: ${new URL(`/${s.DJANGO_ADMIN_URL}/`, url)} (DJANGO_ADMIN_URL)`)
      if (front) log.info(`[deploy] the cluster's front door: ${front.dnsName} (${front.addresses.join(', ')})`)
      log.info('[deploy] operate it: npm run status -- --aws | logs -- --aws | manage -- --aws <command> | ssh')
      log.info('[deploy] stop the host with: npm run stop -- --aws; remove it with: npm run destroy:aws')
      return 0
    }
  })
}

runMain(import.meta.url, main)
