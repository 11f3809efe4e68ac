// npm run deploy:aws: MyMDB on the stage's EC2 hosts, uploads on S3, from this machine: the step
// files below planned, shown and applied in order (the steps: HELP). A second run against an
// unchanged setup changes nothing; an interrupted run completes on the next one.
import { bucketStep } from './bucket.ts'
import { databaseStep } from './database.ts'
import { rdsTarget } from './lib/aws/database.ts'
import { frontStep } from './front.ts'
import { hostStep } from './host.ts'
import { pushStep } from './push.ts'
import { startStep } from './remote-up.ts'
import { STS, aws } from './lib/aws/clients.ts'
import { frontDoorChoice, frontRemovalStep } from './lib/aws/frontteardown.ts'
import { terminateRetired } from './lib/aws/host.ts'
import { loadEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { stageLock } from './lib/lock.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { startInput } from './lib/remote/plan.ts'
import type { RdsTarget } from './lib/remote/dbrole.ts'
import { deploySettings } from './lib/remote/settings.ts'
import { inStage, runStep, stepDeps, type Step, type StepSeams } from './lib/step.ts'

export const HELP = `Usage: npm run deploy:aws -- [options]

Deploys MyMDB to AWS in steps, each safe to run again and each runnable alone:
  push      the web, db, proxy and cache images of this commit to MYMDB_REGISTRY  (npm run push)
  bucket    the upload bucket DJANGO_UPLOAD_S3_BUCKET (public under uploads/) and the
            private backup bucket                                               (npm run bucket)
  host      key pair, security group, IAM roles, MYMDB_HOSTS EC2 instances (default 1)
            with Docker and an Elastic IP each, spread over the zones; hosts beyond
            MYMDB_HOSTS are drained by the start step, then terminated           (npm run host)
  front     MYMDB_HOSTS > 1: a Network Load Balancer (an Elastic IP per zone, TCP 80 and
            443 to every host) and the EFS file system where the fronts share the
            certificate; kept when back to one host until --remove-front-door  (npm run front)
  database  MYMDB_DATABASE=rds: PostgreSQL on RDS, private, TLS only, admitting the
            hosts only                                                        (npm run database)
  start     compose file + production .env over SSH, pull, Swarm stack deploy (several
            hosts: one Swarm of them), checks; with MYMDB_DOMAIN first a wait until the
            name resolves to the host's (or balancer's) addresses, then one certificate
                                                                            (npm run remote:up)
Every setting is checked first (all problems at once), then the AWS credentials (sts
get-caller-identity), before anything is pushed or created. A run that stopped half-way is
completed by running it again: existing resources are found by their tags and reused.

Settings: .env.example; AWS credentials: the AWS SDK's default chain (aws configure,
AWS_PROFILE, SSO). The site's names: MYMDB_DOMAIN and DJANGO_ALLOWED_HOSTS (optional) plus
the instance's public DNS name and IP. Without MYMDB_DOMAIN the site is plain HTTP (a warning
says so); with it, HTTPS with a certificate from MYMDB_ACME_CA (Let's Encrypt).

Options:
  --dry-run    show the plan of every step, change nothing (no push, no AWS write, no SSH)
  --remove-front-door
               MYMDB_HOSTS=1, on a stage down to one host: host 1's front keeps its
               certificate on its own volume again, then the load balancer, its addresses
               and the shared storage are removed (point the site's name at host 1 first)
  -h, --help   this help

Stop the host: npm run stop -- --aws; remove it and its parts: npm run destroy:aws.
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
    // One deploy, stop or destroy of a stage at a time (a dry run only says who holds the lock).
    return inStage(stageLock(sd, s, 'npm run deploy:aws'), dryRun, log, 'deploy', deploySteps)

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
      const door = await frontDoorChoice(clients, s, removeDoor, log)
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
      await terminateRetired(clients, host.retire, log)

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
