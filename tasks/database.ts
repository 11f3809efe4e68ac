// npm run database (a step of npm run deploy:aws with MYMDB_DATABASE=rds): the stage's PostgreSQL
// on Amazon RDS and the private network it lives in, beside the hosts in the default VPC. Each
// part is found first (by name and stage tags) and created or put back only when missing or
// changed (the resources: tasks/lib/aws/dbnetwork.ts, database.ts):
//   route table     mymdb-<stage>-private   no route out of the VPC
//   subnets         mymdb-<stage>-db-<zone> one in each of two zones, no public addresses
//   subnet group    mymdb-<stage>-db
//   security group  mymdb-<stage>-db        5432 from the hosts' security group only
//   parameter group mymdb-<stage>-postgres17 rds.force_ssl=1 (TLS only)
//   instance        mymdb-<stage>           encrypted, backed up, deletion protection, not public,
//                                           its master password kept by AWS (Secrets Manager)
import { applyDatabase, findDatabase, planDatabase, type DatabasePlan, type DatabaseSettings } from './lib/aws/database.ts'
import { applyDbNetwork, findDbNetwork, planDbNetwork, type DbNetworkPlan } from './lib/aws/dbnetwork.ts'
import { showPlanLines } from './lib/aws/plan.ts'
import { defaultVpcId, findSecurityGroup } from './lib/aws/securitygroup.ts'
import { awsVars } from './lib/awsvars.ts'
import { databaseVars, dbCaFileRule } from './lib/dbvars.ts'
import { checkEnv, loadEnv, type CleanEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { stageLock } from './lib/lock.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { databaseResources, stageResources } from './lib/names.ts'
import { runStep, stepDeps, type Step, type StepSeams } from './lib/step.ts'

export const HELP = `Usage: npm run database -- [options]   (a step of npm run deploy:aws with MYMDB_DATABASE=rds)

Creates or corrects the stage's PostgreSQL on Amazon RDS in AWS_REGION, beside its hosts in the
default VPC (their security group must exist: npm run host first):
  route table     mymdb-<stage>-private     no route out of the VPC
  subnets         mymdb-<stage>-db-<zone>   one in each of two zones, no public addresses
  subnet group    mymdb-<stage>-db          over those subnets
  security group  mymdb-<stage>-db          PostgreSQL (5432) from the hosts' group only
  parameter group mymdb-<stage>-postgres17  rds.force_ssl=1: connections without TLS refused
  RDS instance    mymdb-<stage>             PostgreSQL 17, MYMDB_DB_INSTANCE_CLASS (default
                                            db.t4g.micro), MYMDB_DB_STORAGE_GB (default 20) GiB
                                            encrypted, automated backups kept
                                            MYMDB_DB_BACKUP_DAYS (default 7) days, deletion
                                            protection, not publicly accessible, the master
                                            password made and kept by AWS (Secrets Manager)
What drifted (made public, unprotected, a port opened, a route out) is put back; what AWS
cannot change in place (unencrypted storage, a smaller disk) is an error naming the fix.
A new instance takes AWS 5-15 minutes; the step waits until it is available.

Options:
  --dry-run    only show the plan (what exists, what would be created or changed)
  -h, --help   this help

Exit codes: 0 database available, 1 AWS failed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run database',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
  },
} as const

// --- the step ------------------------------------------------------------------------------------

/** The settings the database step reads. */
export const databaseSpec = { ...awsVars, ...databaseVars }
export type DatabaseInput = Pick<CleanEnv<typeof databaseSpec>, 'AWS_REGION' | 'MYMDB_STAGE' | 'MYMDB_DB_INSTANCE_CLASS' | 'MYMDB_DB_STORAGE_GB' | 'MYMDB_DB_BACKUP_DAYS'>

export interface DatabaseStepPlan {
  region: string
  stage: string
  wanted: DatabaseSettings
  /** The hosts' security group (null: not made yet; a dry run of a new stage). */
  hostsGroupId: string | null
  network: DbNetworkPlan
  database: DatabasePlan
  /** Where the instance answers, when it exists. */
  endpoint: { address: string; port: number } | null
  masterSecretArn: string
}

export interface DatabaseStepResult {
  /** null only in a dry run before the instance exists. */
  endpoint: { address: string; port: number } | null
  /** The Secrets Manager secret of the master password ('' before the instance exists). */
  masterSecretArn: string
}

export const databaseStep: Step<DatabaseInput, DatabaseStepPlan, DatabaseStepResult> = {
  name: 'database',

  async plan(s, deps) {
    const clients = deps.clients(s.AWS_REGION)
    const stage = s.MYMDB_STAGE
    const wanted: DatabaseSettings = { instanceClass: s.MYMDB_DB_INSTANCE_CLASS, storageGb: s.MYMDB_DB_STORAGE_GB, backupDays: s.MYMDB_DB_BACKUP_DAYS }
    const vpcId = await defaultVpcId(clients)
    const hostsGroupId = (await findSecurityGroup(clients, stage, vpcId))?.id ?? null
    const network = planDbNetwork(stage, await findDbNetwork(clients, stage, vpcId, hostsGroupId))
    const found = await findDatabase(clients, stage)
    return { region: s.AWS_REGION, stage, wanted, hostsGroupId, network, database: planDatabase(stage, wanted, found), endpoint: found.instance?.endpoint ?? null, masterSecretArn: found.instance?.masterSecretArn ?? '' }
  },

  show(plan, log, dryRun) {
    log.info(`[database] stage ${plan.stage} in ${plan.region}: PostgreSQL on RDS${dryRun ? ' - dry run, nothing changes' : ''}`)
    showPlanLines('database', [...plan.network.lines, ...plan.database.lines], log)
    if (!plan.hostsGroupId) log.info(`[database] PostgreSQL admitted from the hosts' security group ${stageResources(plan.stage).securityGroup} (made by the host step)`)
    if (plan.database.instance === 'create') log.info('[database] a new RDS instance takes AWS 5-15 minutes: the step waits until it is available')
    if (dryRun) log.info('[database] dry run: nothing was changed')
  },

  async apply(plan, deps) {
    if (!plan.hostsGroupId)
      throw new UserError(`[database] the hosts' security group ${stageResources(plan.stage).securityGroup} does not exist yet: run npm run host first (npm run deploy:aws makes it before the database)`)
    const clients = deps.clients(plan.region)
    const made = await applyDbNetwork(clients, plan.stage, plan.network, plan.hostsGroupId)
    const r = await applyDatabase(clients, plan.stage, plan.wanted, plan.database, made, deps.log, deps.pollSeconds ?? 15)
    deps.log.info(`[database] ${databaseResources(plan.stage).instance} available at ${r.endpoint.address}:${r.endpoint.port} (TLS only; reached from the stage's hosts only)`)
    return r
  },

  preview(plan) {
    return { endpoint: plan.endpoint, masterSecretArn: plan.masterSecretArn }
  },
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: settings (before any AWS call)
    const raw = loadEnv(env, deps.envFile)
    const values = checkEnv(databaseSpec, raw, { rules: [dbCaFileRule] })
    if (values.MYMDB_DATABASE !== 'rds') throw new ConfigError(`MYMDB_DATABASE is ${values.MYMDB_DATABASE}: the database runs in the stack's container; set MYMDB_DATABASE=rds for a database on RDS`)

    // plan, show, apply
    const sd = stepDeps(deps, partial, raw)
    await runStep(databaseStep, values, sd, flags['dry-run'] ?? false, stageLock(sd, values, 'npm run database'))
    return 0
  })
}

runMain(import.meta.url, main)
