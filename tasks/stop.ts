// npm run stop: stops the local stack; its data stays unless --delete-data. With --aws: stops the
// stage's EC2 host, after stopping its containers over SSH so that PostgreSQL shuts down cleanly.
import { findNodes, reachAddress, stopHost } from './lib/aws/instance.ts'
import { existingVolumes, VOLUMES, volumesToDelete } from './lib/compose.ts'
import { preflight } from './lib/docker.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { sshKeyPath } from './lib/hostvars.ts'
import { withLock } from './lib/lock.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { stopRemoteContainers } from './lib/remote/stop.ts'
import { runChecked } from './lib/sh.ts'
import { localStack, runInChecked, stackPs } from './lib/stack.ts'
import { stepDeps, type StepSeams } from './lib/step.ts'
import { checkLocal, connectTarget, hostAccessSpec } from './lib/target.ts'

export const HELP = `Usage: npm run stop -- [options]

Stops and removes the containers and network of the local stack (\`docker compose down\`).
The named volumes stay, so the next npm run up:local has the same data:
${VOLUMES.map((v) => `  <project>_${v.key.padEnd(10)} ${v.holds}`).join('\n')}
<project> is COMPOSE_PROJECT_NAME (default mymdb).

Options:
  --delete-data   also delete those volumes, and any other volume Docker has for the project
                  (lists each first, and after). On a terminal it asks for
                  confirmation unless --yes is given; without a terminal it goes ahead.
  --yes           do not ask
  --aws           instead: stop the stage's EC2 host (MYMDB_STAGE in AWS_REGION, made by
                  npm run deploy:aws). First its containers are stopped over SSH (the database
                  shuts down cleanly; when SSH does not work it says so and goes on), then
                  the instance; with several hosts, every one of them. Disks and data stay;
                  npm run deploy:aws starts them again
  -h, --help      this help

Exit codes: 0 stopped, 1 Docker, AWS or a command failed (or deletion not confirmed), 2 bad option
or .env value.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run stop',
  help: HELP,
  options: {
    'delete-data': { type: 'boolean' },
    yes: { type: 'boolean', short: 'y' },
    aws: { type: 'boolean' },
  },
} as const

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { run, log, root } = deps

    // check: options
    const deleteData = flags['delete-data'] ?? false

    if (flags.aws) {
      if (deleteData) throw new ConfigError('--delete-data is for the local stack; --aws keeps the host\'s disk (to remove the host: npm run destroy:aws)')
      const raw = loadEnv(env, deps.envFile)
      const values = checkEnv(hostAccessSpec, raw)
      const s = { ...values, sshKeyFile: sshKeyPath(values, raw) }
      const clients = stepDeps(deps, partial, raw).clients(s.AWS_REGION)
      return withLock(clients.dynamodb, s.MYMDB_STAGE, 'npm run stop -- --aws', async () => {
        const nodes = await findNodes(clients, s.MYMDB_STAGE)
        const host = nodes.get(1) ?? null
        const address = reachAddress(s.MYMDB_HOST_ADDRESS, host)
        if (host?.state === 'running' && !address)
          log.warn(`[stop] instance ${host.instanceId} has no public IP (and MYMDB_HOST_ADDRESS is not set): its containers are not stopped first`)
        if (host?.state === 'running' && address) {
          const where = `${s.MYMDB_SSH_USER}@${address}:${s.MYMDB_HOST_SSH_PORT}`
          await stopRemoteContainers(() => log.step('stop', `connect to ${where}`, () => connectTarget(s, address, partial ?? {}, deps, { attempts: 2, readyTimeout: 15_000 }, host)), log)
        }
        // host 1 first (the database's), then the others of a stage of several hosts
        if (!host) await stopHost(clients, s.MYMDB_STAGE, log, null)
        for (const [, found] of [...nodes].sort(([a], [b]) => a - b)) await stopHost(clients, s.MYMDB_STAGE, log, found)
        return 0
      }, { log })
    }

    // check: settings. Compose reads the whole file even for `down`, so the secrets it requires
    // get throw-away values when unset (their values do not matter for stopping).
    const { project, env: raw } = checkLocal(loadEnv(env, deps.envFile))

    // check: Docker (nothing to install: without Docker nothing runs)
    await preflight({ run, log, root, install: false, noInstallNote: '' })

    // plan
    const stack = localStack(run, root, project, raw)
    const containers = await stackPs(stack)
    log.info(
      containers.length > 0
        ? `[stop] project ${project}: ${containers.map((c) => `${c.Service} (${c.State})`).join(', ')}`
        : `[stop] project ${project}: no containers`,
    )
    const existing = deleteData ? await existingVolumes(run, project) : []
    const losses = volumesToDelete(project, existing)
    if (deleteData) {
      log.warn('[stop] --delete-data: these volumes will be deleted, for good:')
      const width = Math.max(...losses.map((l) => l.volume.length))
      for (const l of losses) log.warn(`  ${l.volume.padEnd(width)}  ${l.holds}${l.exists ? '' : ' (does not exist)'}`)
      if (existing.length > 0 && deps.interactive && !flags.yes && !(await deps.confirm('Delete them?')))
        throw new UserError('nothing deleted or stopped (not confirmed); to only stop, run: npm run stop')
    }

    // apply
    await log.step('stop', `docker compose down${deleteData ? ' --volumes' : ''}`, () =>
      runInChecked(stack, stack.compose('down', '--remove-orphans', ...(deleteData ? ['--volumes'] : [])), {
        stream: log.prefixed('compose'),
        doing: 'stop the stack',
      }),
    )
    if (deleteData) {
      // `down --volumes` removes the volumes of the compose file; the others listed go here.
      const left: string[] = []
      for (const v of existing) if ((await run(['docker', 'volume', 'inspect', v])).ok) left.push(v)
      if (left.length > 0) await runChecked(run, ['docker', 'volume', 'rm', ...left], { doing: 'delete the volumes' })
    }

    // summary
    const deleted = losses.filter((l) => l.exists).map((l) => l.volume)
    if (deleteData) log.info(`[stop] stopped; deleted: ${deleted.length > 0 ? deleted.join(', ') : 'nothing (no volumes existed)'}`)
    else log.info(`[stop] stopped; data kept in ${losses.map((l) => l.volume).join(', ')} (start again: npm run up:local)`)
    return 0
  })
}

runMain(import.meta.url, main)
