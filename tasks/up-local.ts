// npm run up:local: runs the whole stack on this machine with local-only defaults.
import { buildImages, buildOptionsFrom, type ImageName } from './build.ts'
import { checkPortFree, imageExists, preflight } from './lib/docker.ts'
import { checkEnv, formatEnv, loadEnv, type CleanEnv, type RawEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import { composeCmd, composePs, holdsPort, LOCAL_DEFAULTS, unhealthy, withLocalDefaults } from './lib/compose.ts'
import { stripControls } from './lib/log.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { check, runChecked } from './lib/sh.ts'
import { stackVars } from './lib/vars.ts'

export const HELP = `Usage: npm run up:local -- [options]

Runs MyMDB on this machine: checks Docker, builds the images if they are missing, starts the
stack with \`docker compose up --wait\`, loads the sample catalogue into an empty database and
prints the URL (default http://127.0.0.1:8080/). Stop it with: npm run stop

Settings come from the environment and .env (see .env.example); anything unset gets a
local-only default:
${Object.entries(LOCAL_DEFAULTS)
  .map(([k, v]) => `  ${k}=${v}`)
  .join('\n')}
COMPOSE_PROJECT_NAME (default mymdb) runs a separate copy, e.g. with another WEB_PORT.

Options:
  --build         build the images even if they exist (see npm run build -- --help)
  --no-install    do not install Docker when it is missing (default: install it when root on
                  Debian/Ubuntu, with scripts/install-docker.sh)
  -h, --help      this help

Exit codes: 0 running, 1 Docker or a command failed, 2 bad option or .env value.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run up:local',
  help: HELP,
  options: {
    build: { type: 'boolean' },
    'no-install': { type: 'boolean' },
  },
} as const

export const WAIT_TIMEOUT_SECONDS = 120

/** The address to open in a browser for a bind address and port. */
export function siteUrl(bind: string, port: number): string {
  const host = bind === '0.0.0.0' ? '127.0.0.1' : bind === '::' ? '[::1]' : bind.includes(':') ? `[${bind}]` : bind
  return `http://${host}:${port}/`
}

/**
 * The stack's settings: environment + .env, local defaults for what is unset, checked.
 * Throws EnvError (exit 2). `composeEnv` is the complete environment for `docker compose`.
 */
export function localSettings(raw: RawEnv): { values: CleanEnv<typeof stackVars>; composeEnv: RawEnv } {
  const filled = withLocalDefaults(raw)
  const values = checkEnv(stackVars, filled)
  return { values, composeEnv: { ...filled, ...formatEnv(stackVars, values) } }
}

/** Shows `docker compose ps` and the last log lines of the services that are not healthy. */
async function showDiagnostics(deps: Deps, project: string, env: RawEnv): Promise<void> {
  const { run, log, root } = deps
  const ps = await run(composeCmd(project, 'ps', '--all'), { cwd: root, env })
  log.detail('$ docker compose ps --all')
  log.detail(stripControls(ps.stdout + ps.stderr).trimEnd())
  const bad = unhealthy(await composePs(run, { project, root, env }))
  for (const service of bad) {
    const logs = await run(composeCmd(project, 'logs', '--no-color', '--tail', '40', service), { cwd: root, env })
    log.detail(`$ docker compose logs --tail 40 ${service}`)
    log.detail(stripControls(logs.stdout + logs.stderr).trimEnd())
  }
}

export async function main(argv: string[], env: Env, partial?: Partial<Deps>): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { run, log, root } = deps

    // check: settings (before anything touches Docker)
    const { values, composeEnv } = localSettings(loadEnv(env, deps.envFile))
    const project = values.COMPOSE_PROJECT_NAME
    const url = siteUrl(values.WEB_BIND, values.WEB_PORT)

    // check: Docker, then the port (unless our own stack already publishes it)
    await preflight({ run, log, root, install: !flags['no-install'] })
    const ours = holdsPort(await composePs(run, { project, root, env: composeEnv }), values.WEB_PORT)
    if (!ours) {
      const problem = await checkPortFree(values.WEB_BIND, values.WEB_PORT)
      if (problem) throw new UserError(`${problem.message}: ${problem.fix}`)
    }

    // plan
    const images: Record<ImageName, string> = {
      web: `${values.MYMDB_WEB_IMAGE}:${values.MYMDB_TAG}`,
      db: `${values.MYMDB_DB_IMAGE}:${values.MYMDB_TAG}`,
    }
    const missing: ImageName[] = []
    for (const name of ['web', 'db'] as const) if (!(await imageExists(run, images[name]))) missing.push(name)
    const toBuild: ImageName[] = flags.build ? ['web', 'db'] : missing
    log.info(`[up] project ${project}, site ${url}${ours ? ' (already running: updating)' : ''}`)
    log.info(
      `[up] images: ${(['web', 'db'] as const)
        .map((n) => `${images[n]} (${toBuild.includes(n) ? (missing.includes(n) ? 'missing: build' : 'rebuild') : 'present'})`)
        .join(', ')}`,
    )

    // apply: images
    if (toBuild.length > 0) {
      const opts = buildOptionsFrom(values, composeEnv, { only: toBuild.length === 1 ? toBuild[0] : undefined })
      await buildImages(opts, deps)
    }

    // apply: start and wait until healthy
    const up = await log.step('up', `docker compose up (waiting up to ${WAIT_TIMEOUT_SECONDS} s for healthy services)`, () =>
      run(composeCmd(project, 'up', '--detach', '--wait', '--wait-timeout', String(WAIT_TIMEOUT_SECONDS)), {
        cwd: root,
        env: composeEnv,
        stream: log.prefixed('compose'),
      }),
    )
    if (!up.ok) {
      await showDiagnostics(deps, project, composeEnv)
      check(up, `start the stack: not every service became healthy within ${WAIT_TIMEOUT_SECONDS} s (status and logs above; npm run stop stops what did start)`, true)
    }

    // apply: sample data (only into an empty database)
    await log.step('data', 'sample catalogue (only if the database is empty)', () =>
      runChecked(run, composeCmd(project, 'exec', '-T', 'web', 'python3', 'manage.py', 'load_sample_catalogue', '--if-empty'), {
        cwd: root,
        env: composeEnv,
        stream: log.prefixed('catalogue'),
        doing: 'load the sample catalogue',
      }),
    )

    // summary
    log.info('')
    log.info(`MyMDB is running: ${url}`)
    if (values.WEB_BIND === '0.0.0.0' || values.WEB_BIND === '::') log.info(`(published on all addresses of this host, port ${values.WEB_PORT})`)
    log.info(`stop with: npm run stop${project !== 'mymdb' ? ` (with COMPOSE_PROJECT_NAME=${project})` : ''}`)
    return 0
  })
}

runMain(import.meta.url, main)
