// npm run remote:up (step 4 of deploy:aws): starts (or updates) MyMDB on the deploy host over SSH.
// The host already has Docker (its user-data runs scripts/install-docker.sh) and the images are in
// a registry. Uploads docker-compose.yml and a production .env, pulls, deploys the Swarm stack
// rendered from them (a new web version takes over only once healthy), checks the migrations,
// loads the sample catalogue into an empty database and checks the site over HTTP or HTTPS.
// The plan: lib/remote/plan.ts; what runs: lib/remote/up.ts.
import { checkEnv, loadEnv } from './lib/env.ts'
import { formatDuration } from './lib/log.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { checkRemoteSettings, hostsOf, planStart, type RemoteUpPlan, type StartInput } from './lib/remote/plan.ts'
import { remoteSteps, remoteUp } from './lib/remote/up.ts'
import { describePull } from './lib/remote/pull.ts'
import { runStep, stepDeps, type Step, type StepSeams } from './lib/step.ts'
import { sshKeyExistsRule } from './lib/hostvars.ts'
import { stageLock } from './lib/lock.ts'
import { stageRegionVars } from './lib/awsvars.ts'
import type { AwsClients } from './lib/aws/clients.ts'
import { findDatabase, rdsTarget } from './lib/aws/database.ts'
import { findSharedFsAddress } from './lib/aws/sharedfs.ts'
import { findFrontAddresses } from './lib/aws/balancer.ts'
import type { RdsTarget } from './lib/remote/dbrole.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { databaseResources } from './lib/names.ts'

export const HELP = `Usage: npm run remote:up -- [options]

Starts or updates MyMDB on the deploy host over SSH: uploads docker-compose.yml and a
production .env (mode 0600) to ~/mymdb/, logs in to the registry when MYMDB_REGISTRY_USERNAME
and MYMDB_REGISTRY_PASSWORD are set, runs \`docker compose pull\`, makes the host a
single-node Docker Swarm (once) and deploys the stack with \`docker stack deploy\`: a new web
version starts next to the running one and takes traffic only once healthy; one that does not
become healthy is rolled back by Swarm (exit 1, the old one keeps serving). Then checks that the
migrations ran, loads the sample catalogue into an empty database, records the deploy in
~/mymdb/deploys.log and checks /healthz and / over HTTP (or HTTPS with MYMDB_DOMAIN). Safe to run
again: the volumes stay, only changed services are replaced. A host that runs MyMDB with
Compose (an earlier deploy) is moved to the stack, its volumes kept.

Settings (environment and .env; see .env.example):
  MYMDB_HOST_ADDRESS      the host's address (required unless --address is given); several,
                          comma-separated: the hosts of a cluster, host 1 first
  AWS_REGION              with it, the stage's parts are looked up in AWS: the RDS database
                          (MYMDB_DATABASE=rds), and for a cluster the fronts' shared storage
                          (mounted on every host) and the load balancer's addresses (where
                          MYMDB_DOMAIN must point)
  MYMDB_HOST_SSH_PORT     SSH port (default 22); MYMDB_SSH_USER login user (default admin)
  MYMDB_SSH_KEY_FILE      private key (default ~/.ssh/mymdb-<MYMDB_STAGE>.pem)
  MYMDB_HOST_HTTP_PORT    port the site is checked on (default 80)
  MYMDB_REGISTRY          registry address, e.g. registry.example.com:5000 or 127.0.0.1:5000;
                          images are <MYMDB_REGISTRY>/<last part of MYMDB_WEB_IMAGE>:<MYMDB_TAG>,
                          and the same for the db, proxy and cache images (as npm run push
                          names them)
  MYMDB_TAG               image tag (default latest)
  DJANGO_SECRET_KEY, DJANGO_DB_PASSWORD, POSTGRES_PASSWORD   required, no defaults here
                          (up:local's local-only values are refused)
  DJANGO_ALLOWED_HOSTS    host names of the site (the first one is used for the check)
  DJANGO_UPLOAD_S3_BUCKET, AWS_S3_REGION_NAME, AWS_S3_ENDPOINT_URL   optional

Options:
  --address ADDR  the host's address (instead of MYMDB_HOST_ADDRESS)
  --dry-run       check the settings and show what would be done; connect to nothing
  -h, --help      this help

Exit codes: 0 running, 1 SSH or a remote command failed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run remote:up',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
    address: { type: 'string' },
  },
} as const


// --- the step ------------------------------------------------------------------------------------

/** Where the site runs: its URL once started (none in a dry run), and where it was checked. */
export interface StartResult {
  url?: string
  address: string
  hostName: string
  httpPort: number
}

export const startStep: Step<StartInput, RemoteUpPlan, StartResult> = {
  name: 'start',

  async plan({ settings, context }) {
    return planStart(settings, context)
  },

  show(plan, log, dryRun) {
    log.info(`[remote] host ${plan.user}@${plan.address}:${plan.sshPort} (key ${plan.keyFile})`)
    log.info(`[remote] images ${Object.values(plan.images).join(', ')}; ${describePull(plan.pull)}`)
    if (plan.pullWarning) log.warn(`[remote] ${plan.pullWarning}`)
    log.info(
      plan.https
        ? `[remote] site checked at https://${plan.address}:${plan.https.port}/ as ${plan.https.domain} (its certificate from ${plan.https.ca})`
        : `[remote] site checked at http://${plan.address}:${plan.httpPort}/ with Host: ${plan.hostName}`,
    )
    if (!dryRun) return
    log.info('[remote] dry run: would run on the host, in order:')
    for (const step of remoteSteps(plan)) log.info(`  ${step}`)
    log.info('[remote] nothing was done')
  },

  async apply(plan, deps) {
    return { ...this.preview(plan), url: await remoteUp(plan, deps) }
  },

  preview(plan) {
    return { address: plan.address, hostName: plan.hostName, httpPort: plan.httpPort }
  },
}

/** The stage's RDS database as the start reaches it; an error naming the step that makes it when there is none yet. */
async function findRdsTarget(clients: AwsClients, stage: string): Promise<RdsTarget> {
  const { instance } = await findDatabase(clients, stage)
  const target = instance ? rdsTarget(instance, clients.region) : undefined
  if (!target) throw new UserError(`MYMDB_DATABASE=rds: the stage's RDS instance ${databaseResources(stage).instance} ${instance ? `has no endpoint yet (${instance.status})` : 'does not exist'}: run npm run database (or npm run deploy:aws)`)
  return target
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: options and settings (before any connection)
    const raw = loadEnv(env, deps.envFile)
    const settings = checkRemoteSettings(raw, { address: flags.address, rules: [sshKeyExistsRule] })
    const context = { ...hostsOf(settings), registry: settings.MYMDB_REGISTRY }

    // plan, show, apply
    const start = Date.now()
    const sd = stepDeps(deps, partial, raw)
    const dryRun = flags['dry-run'] ?? false
    const { AWS_REGION } = checkEnv(stageRegionVars, raw)
    // the database on RDS: where it answers, from RDS itself (the database step made it)
    if (settings.MYMDB_DATABASE === 'rds' && !AWS_REGION) throw new ConfigError('MYMDB_DATABASE=rds: set AWS_REGION, the region of the stage and its RDS database')
    const database = settings.MYMDB_DATABASE === 'rds' && AWS_REGION ? await findRdsTarget(sd.clients(AWS_REGION), settings.MYMDB_STAGE) : undefined
    // a stage of several hosts (even when only host 1 is named): the fronts' shared storage, from EFS itself (the front step made it)
    const frontStorage = AWS_REGION ? await findSharedFsAddress(sd.clients(AWS_REGION), settings.MYMDB_STAGE) : undefined
    const frontAddresses = frontStorage && AWS_REGION ? await findFrontAddresses(sd.clients(AWS_REGION), settings.MYMDB_STAGE) : []
    const r = await runStep(startStep, { settings, context: { ...context, ...(database ? { database } : {}), ...(frontStorage ? { frontStorage } : {}), ...(frontAddresses.length > 0 ? { frontAddresses } : {}) } }, sd, dryRun, stageLock(sd, { ...settings, AWS_REGION }, 'npm run remote:up'))

    // summary
    if (r.url === undefined) return 0
    const { log } = deps
    log.info('')
    log.info(`MyMDB is running on ${r.address} (${formatDuration(Date.now() - start)}): ${r.url}`)
    log.info(`its admin site: ${new URL(`/${settings.DJANGO_ADMIN_URL}/`, r.url)} (DJANGO_ADMIN_URL)`)
    if (r.address !== r.hostName) log.info(`(checked at http://${r.address}:${r.httpPort}/ with Host: ${r.hostName})`)
    return 0
  })
}

runMain(import.meta.url, main)
