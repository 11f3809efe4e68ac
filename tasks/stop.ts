// npm run stop: stops the local stack; its data stays unless --delete-data.
import { stopHost, type AwsDeps } from './host.ts'
import { awsClients } from './lib/aws.ts'
import { preflight } from './lib/docker.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { composeCmd, composePs, VOLUMES, volumeNames, withLocalDefaults } from './lib/compose.ts'
import { parseFlags, runMain, runTask, type Deps, type Env } from './lib/main.ts'
import { runChecked } from './lib/sh.ts'
import { awsVars, composeVars } from './lib/vars.ts'

export const HELP = `Usage: npm run stop -- [options]

Stops and removes the containers and network of the local stack (\`docker compose down\`).
The named volumes stay, so the next npm run up:local has the same data:
${VOLUMES.map((v) => `  <project>_${v.key.padEnd(8)} ${v.holds}`).join('\n')}
<project> is COMPOSE_PROJECT_NAME (default mymdb).

Options:
  --delete-data   also delete those volumes (lists them first). On a terminal it asks for
                  confirmation unless --yes is given; without a terminal it goes ahead.
  --yes           do not ask
  --aws           instead: stop the stage's EC2 host (MYMDB_STAGE in AWS_REGION, made by
                  npm run deploy:aws); its disk and data stay, npm run deploy:aws starts it again
  -h, --help      this help

Exit codes: 0 stopped, 1 Docker, AWS or a command failed (or deletion not confirmed), 2 bad option
or .env value.`

export interface VolumeLoss {
  volume: string
  holds: string
}

/** What --delete-data deletes for a project (pure): `<project>_db-data`, `<project>_media`. */
export function volumesToDelete(project: string): VolumeLoss[] {
  const names = volumeNames(project)
  return VOLUMES.map((v, i) => ({ volume: names[i] ?? `${project}_${v.key}`, holds: v.holds }))
}

export async function main(argv: string[], env: Env, partial?: Partial<Deps> & AwsDeps): Promise<number> {
  return runTask(env, partial, async (deps) => {
    const { run, log, root } = deps

    // check: options
    const flags = parseFlags(
      argv,
      {
        help: { type: 'boolean', short: 'h' },
        'delete-data': { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        aws: { type: 'boolean' },
      },
      'npm run stop -- --help',
    )
    if (flags.help) {
      log.info(HELP)
      return 0
    }
    const deleteData = flags['delete-data'] ?? false

    if (flags.aws) {
      if (deleteData) throw new ConfigError('--delete-data is for the local stack; --aws keeps the host\'s disk (to remove the host: npm run destroy:aws)')
      const { AWS_REGION, MYMDB_STAGE } = checkEnv(awsVars, loadEnv(env, deps.envFile))
      await stopHost((partial?.awsClients ?? awsClients)(AWS_REGION, env), MYMDB_STAGE, log)
      return 0
    }

    // check: settings. Compose reads the whole file even for `down`, so the variables it requires
    // get the local placeholders when unset (their values do not matter for stopping).
    const raw = withLocalDefaults(loadEnv(env, deps.envFile))
    const { COMPOSE_PROJECT_NAME: project } = checkEnv(composeVars, raw)

    // check: Docker (nothing to install: without Docker nothing runs)
    await preflight({ run, log, root, install: false, noInstallNote: '' })

    // plan
    const containers = await composePs(run, { project, root, env: raw })
    log.info(
      containers.length > 0
        ? `[stop] project ${project}: ${containers.map((c) => `${c.Service} (${c.State})`).join(', ')}`
        : `[stop] project ${project}: no containers`,
    )
    const losses = volumesToDelete(project)
    const existing: string[] = []
    if (deleteData) {
      for (const l of losses) if ((await run(['docker', 'volume', 'inspect', l.volume])).ok) existing.push(l.volume)
      log.warn('[stop] --delete-data: these volumes will be deleted, for good:')
      const width = Math.max(...losses.map((l) => l.volume.length))
      for (const l of losses)
        log.warn(`  ${l.volume.padEnd(width)}  ${l.holds}${existing.includes(l.volume) ? '' : ' (does not exist)'}`)
      if (existing.length > 0 && deps.interactive && !flags.yes && !(await deps.confirm('Delete them?')))
        throw new UserError('nothing deleted or stopped (not confirmed); to only stop, run: npm run stop')
    }

    // apply
    await log.step('stop', `docker compose down${deleteData ? ' --volumes' : ''}`, () =>
      runChecked(run, composeCmd(project, 'down', '--remove-orphans', ...(deleteData ? ['--volumes'] : [])), {
        cwd: root,
        env: raw,
        stream: log.prefixed('compose'),
        doing: 'stop the stack',
      }),
    )
    if (deleteData) {
      // `down --volumes` removes the volumes of the compose file; remove any left (e.g. renamed file).
      const left: string[] = []
      for (const v of existing) if ((await run(['docker', 'volume', 'inspect', v])).ok) left.push(v)
      if (left.length > 0) await runChecked(run, ['docker', 'volume', 'rm', ...left], { doing: 'delete the volumes' })
    }

    // summary
    if (deleteData) log.info(`[stop] stopped; deleted: ${existing.length > 0 ? existing.join(', ') : 'nothing (no volumes existed)'}`)
    else log.info(`[stop] stopped; data kept in ${losses.map((l) => l.volume).join(', ')} (start again: npm run up:local)`)
    return 0
  })
}

runMain(import.meta.url, main)
