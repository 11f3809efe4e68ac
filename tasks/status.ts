// npm run status [-- --aws]: what runs, here or on the stage's EC2 host: containers and their
// health, uptime, image and commit, database size, free disk, and (on the host) the last deploys
// and backups.
import { BACKUP_LOG, parseBackupLog } from './lib/backup.ts'
import { CRON_MARK, LAST_BACKUP_OUTPUT } from './lib/backupschedule.ts'
import { loadEnv } from './lib/env.ts'
import { frontDoorLines, frontDoorStatus } from './lib/aws/balancer.ts'
import { ConfigError } from './lib/errors.ts'
import { stripControls } from './lib/log.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { stepDeps, type StepSeams } from './lib/step.ts'
import { inDb, RDS_TEST } from './lib/dbaccess.ts'
import { runIn, SERVICES, stackPs, swarmService, type Stack } from './lib/stack.ts'
import { parseServiceTasks } from './lib/stackfile.ts'
import { readDeployLog } from './lib/releases.ts'
import { BACKUP_MAX_AGE_HOURS, backupProblem, formatStatus, INSPECT_FORMAT, parseDf, parseInspect, parseNodes, type StatusReport } from './lib/status.ts'
import { checkHostAccess, checkLocal, findTarget, localTarget, openTarget, reachable } from './lib/target.ts'

export const HELP = `Usage: npm run status -- [--aws [--check]]

Shows what runs: each container of the stack with its state and health, how long it has been
up, its image and the git commit it was built from; on a Swarm of several hosts, each node and
the services running there; the database size; the free disk where Docker keeps its data.

  (default)  the stack on this machine (COMPOSE_PROJECT_NAME, default mymdb)
  --aws      the stage's EC2 host (MYMDB_STAGE in AWS_REGION): the instance's state and address
             from AWS, then the same over SSH; the last 5 deploys (when, who, which tag, ok or
             failed and why, how long), the last backup, a failed one, and the backup schedule;
             with several hosts, the load balancer's name and addresses and each host's
             health behind it

Options:
  --aws       the EC2 host instead of this machine
  --check     with --aws: exit 3 when the backups need you: none yet, the last one failed, or
              the last good one is more than ${BACKUP_MAX_AGE_HOURS} h old (or the host is not running). For
              a monitor: run it every hour or so and alert on a non-zero exit
  -h, --help  this help

Exit codes: 0 shown (whatever the state; with --check: the backups are fine), 1 Docker, AWS or
SSH failed, 2 bad option or setting, 3 --check found a problem (said on stderr).`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run status',
  help: HELP,
  options: { aws: { type: 'boolean' }, check: { type: 'boolean' } },
} as const

/** How many deploys status shows. */
export const DEPLOYS_SHOWN = 5

/** Reads the status of a stack (here or on the host). Read-only. */
export async function collectStatus(stack: Stack, onHost: boolean): Promise<StatusReport> {
  const ps = await stackPs(stack)
  const names = ps.map((p) => p.Name).filter(Boolean)
  const inspected = names.length > 0 ? parseInspect((await runIn(stack, ['docker', 'inspect', '--format', INSPECT_FORMAT, ...names])).stdout) : new Map()
  const services = ps.map((p) => ({ service: p.Service, state: p.State, health: p.Health, ...(inspected.get(p.Name) ?? {}) }))
  const dbUp = ps.some((p) => p.Service === 'db' && p.State === 'running') || (stack.kind === 'swarm' && onHost && (await runIn(stack, ['sh', '-c', RDS_TEST])).ok)
  const size = dbUp
    ? await runIn(stack, inDb(stack, 'psql --no-psqlrc -tAc "select pg_size_pretty(sum(pg_database_size(datname))) from pg_database"'))
    : null
  const df = await runIn(stack, ['sh', '-c', 'df -Pk "$(docker info --format "{{.DockerRootDir}}")" | tail -n 1'])
  const report: StatusReport = {
    services,
    databaseSize: size?.ok ? size.stdout.trim() : null,
    disk: df.ok ? parseDf(df.stdout) : null,
  }
  if (onHost && stack.kind === 'swarm') {
    // a Swarm of several nodes: each node, and where each task runs
    const nodes = await runIn(stack, ['docker', 'node', 'ls', '--format', '{{.Hostname}}|{{.Status}}|{{.ManagerStatus}}'])
    if (nodes.ok && nodes.stdout.trim().split('\n').length > 1) {
      const tasks = await runIn(stack, ['docker', 'service', 'ps', '--filter', 'desired-state=running', '--format', '{{json .}}', ...SERVICES.map(swarmService)])
      report.nodes = parseNodes(nodes.stdout, parseServiceTasks(tasks.stdout))
    }
  }
  if (onHost) {
    report.deploys = (await readDeployLog(stack, DEPLOYS_SHOWN)).reverse()
    const log = parseBackupLog((await runIn(stack, ['sh', '-c', `tail -n 100 ${BACKUP_LOG} 2>/dev/null || true`])).stdout)
    const cron = await runIn(stack, ['sh', '-c', `crontab -l 2>/dev/null | grep -e ' ${CRON_MARK}$' || true`])
    const output = await runIn(stack, ['sh', '-c', `tail -n 3 ${LAST_BACKUP_OUTPUT} 2>/dev/null || true`])
    report.backups = {
      lastOk: log.filter((r) => r.ok).pop() ?? null,
      last: log.at(-1) ?? null,
      schedule: cron.stdout.trim() ? cron.stdout.trim().split(' cd ')[0] ?? null : null,
      output: stripControls(output.stdout).trim(),
    }
  }
  return report
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { log } = deps
    if (flags.check && !flags.aws) throw new ConfigError('--check looks at the backups of the EC2 host: use it with --aws')
    const raw = loadEnv(env, deps.envFile)
    /** With --check: exit 3 naming the problem. */
    const failCheck = (problem: string) => {
      log.error(`[status] check failed: ${problem}`)
      return 3
    }

    if (!flags.aws) {
      const local = checkLocal(raw)
      const stack = localTarget(deps, local)
      log.info(`[status] MyMDB on this machine (project ${local.project})`)
      for (const line of formatStatus(await collectStatus(stack, false))) log.info(line)
      return 0
    }

    const s = checkHostAccess(raw)
    const sd = stepDeps(deps, partial, raw)
    const found = await findTarget(s, sd, true)
    const { instance } = found
    log.info(
      `[status] stage ${s.MYMDB_STAGE} in ${s.AWS_REGION}: instance ${instance ? `${instance.instanceId} ${instance.state}${instance.publicIp ? `, ${instance.publicIp}` : ''}${instance.publicDns ? ` (${instance.publicDns})` : ''}` : 'none'}${found.address && s.MYMDB_HOST_ADDRESS ? `; reached at ${found.address}` : ''}`,
    )
    // a stage of several hosts (MYMDB_HOSTS): the others too (their containers: the nodes lines below)
    const others = [...(found.hosts ?? [])].filter(([n]) => n > 1).sort(([a], [b]) => a - b)
    for (const [n, h] of others) log.info(`  host ${n}: instance ${h.instanceId} ${h.state}${h.publicIp ? `, ${h.publicIp}` : ''}${h.zone ? ` in ${h.zone}` : ''}`)
    // and their front door: the load balancer, and each host's health behind it
    const door = others.length > 0 ? await frontDoorStatus(sd.clients(s.AWS_REGION), s.MYMDB_STAGE) : null
    if (door) for (const line of frontDoorLines(door, found.hosts ?? new Map())) log.info(line)
    if (instance && instance.state !== 'running') {
      log.info(`  the instance is ${instance.state}: nothing runs (start it again with npm run deploy:aws)`)
      return flags.check ? failCheck(`the host is ${instance.state}: no backups are taken`) : 0
    }
    const { remote, stack } = await openTarget(s, reachable(s, found), partial ?? {}, deps, found.instance)
    let report: StatusReport
    try {
      report = await collectStatus(stack, true)
      for (const line of formatStatus(report)) log.info(line)
    } finally {
      remote.close()
    }
    const problem = flags.check ? backupProblem(report.backups) : null
    return problem ? failCheck(problem) : 0
  })
}

runMain(import.meta.url, main)
