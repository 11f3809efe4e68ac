// npm run up:local: runs the whole stack on this machine with local-only defaults.
import { buildImages, buildOptionsFrom } from './lib/images.ts'
import { checkPortFree, imageExists, preflight } from './lib/docker.ts'
import { checkEnv, formatEnv, loadEnv, type CleanEnv, type RawEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import {
  holdsPort,
  LEGACY_DB_SECRETS,
  LOCAL_DEFAULTS,
  LOCAL_SECRETS,
  missingSecrets,
  newLocalSecrets,
  saveLocalSecrets,
  withLocalDefaults,
  type LocalSecret,
} from './lib/compose.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import type { Log } from './lib/log.ts'
import { check } from './lib/sh.ts'
import { localStack, LOGIN_REFUSED, runIn, showDiagnostics, stackCommands, stackPs, startStack, type Stack } from './lib/stack.ts'
import { IMAGE_NAMES, localImages, stackVars, type ImageName } from './lib/vars.ts'

export const HELP = `Usage: npm run up:local -- [options]

Runs MyMDB on this machine: checks Docker, builds the images if they are missing, starts the
stack with \`docker compose up --wait\`, loads the sample catalogue into an empty database and
prints the URL (default http://127.0.0.1:8080/). Stop it with: npm run stop

Settings come from the environment and .env (see .env.example); anything unset gets a
local-only default:
${Object.entries(LOCAL_DEFAULTS)
  .map(([k, v]) => `  ${k}=${v}`)
  .join('\n')}
  ${LOCAL_SECRETS.join(', ')}: generated once for this checkout (random, marked
  local-only: every deploy refuses them) and kept in .env (mode 0600), so that plain
  docker compose ps / logs / exec work in this folder too.
COMPOSE_PROJECT_NAME (default mymdb) runs a separate copy, e.g. with another WEB_PORT.
An existing database is logged in to before the stack starts: one made with other passwords
(by another checkout, or with a .env deleted since) stops up:local within seconds, saying
what to do; nothing is changed.

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
 * The stack's settings: environment + .env, local defaults for what is unset, `secrets` for the
 * secrets that are unset, checked. Throws EnvError (exit 2). `composeEnv` is the complete
 * environment for `docker compose`; `generated` names the secrets that came from `secrets`.
 */
export function localSettings(
  raw: RawEnv,
  secrets: Readonly<Partial<Record<LocalSecret, string>>> = newLocalSecrets(),
): { values: CleanEnv<typeof stackVars>; composeEnv: RawEnv; generated: LocalSecret[] } {
  const generated = missingSecrets(raw)
  const filled = withLocalDefaults(raw, { ...LOCAL_DEFAULTS, ...Object.fromEntries(generated.map((k) => [k, secrets[k] ?? ''])) })
  const values = checkEnv(stackVars, filled)
  // This machine serves plain HTTP: a deploy's MYMDB_DOMAIN in .env is not for it (its front
  // would ask a CA for that name's certificate).
  return { values, composeEnv: { ...filled, ...formatEnv(stackVars, values), MYMDB_DOMAIN: '' }, generated }
}

/**
 * What up:local says when the database in `volume` refuses this checkout's password (pure): the
 * cause, that nothing was changed, and the three ways on. `generated`: the database passwords
 * .env did not have (the fixed ones of earlier versions were tried).
 */
export function databaseRefused(o: { volume: string; envFile: string; project: string; answer: string; generated: readonly LocalSecret[] }): string {
  const withProject = o.project === 'mymdb' ? '' : ` (with COMPOSE_PROJECT_NAME=${o.project})`
  const tried =
    o.generated.length > 0
      ? `the fixed local password of earlier versions, tried because ${o.envFile} has no ${o.generated.join(' or ')}`
      : `DJANGO_DB_PASSWORD from ${o.envFile}`
  return [
    `the database in the volume ${o.volume} was made with other passwords: it refuses ${tried} (${o.answer}).`,
    'That volume was made by another checkout of MyMDB on this machine, or with a .env that has since been deleted.',
    `Nothing was changed: the volume and its data are as they were, and ${o.envFile} was not written. To go on, one of:`,
    `  - use that database: copy DJANGO_DB_PASSWORD and POSTGRES_PASSWORD from the other checkout's .env into ${o.envFile}, then run npm run up:local again`,
    `  - keep it, and give this checkout its own data: set COMPOSE_PROJECT_NAME=${o.project}-2 in ${o.envFile} (and another WEB_PORT if both are to run), then npm run up:local`,
    `  - delete it and start afresh (its database, uploads and certificates are lost for good): npm run stop -- --delete-data${withProject}, then npm run up:local`,
  ].join('\n')
}

/**
 * Logs in to the database as web will, with this checkout's passwords, before the stack starts
 * (its volume exists, so its passwords were set when it was made): a running db as it is, else
 * the db alone, started for it. A database made with other passwords refuses: a ConfigError with
 * the cause and the fixes (databaseRefused), within seconds instead of a web container waiting
 * for minutes. Nothing is changed: the volume is never touched, and a db this started is
 * stopped again.
 */
export async function checkDatabaseLogin(
  s: Stack,
  log: Log,
  o: { volume: string; envFile: string; project: string; dbRunning: boolean; generated: readonly LocalSecret[] },
): Promise<void> {
  await log.step('up', `the database in ${o.volume}: log in as web will`, async () => {
    if (!o.dbRunning) {
      const up = await runIn(s, stackCommands.upDb(s, WAIT_TIMEOUT_SECONDS), { stream: log.prefixed('compose') })
      if (!up.ok) {
        await showDiagnostics(s, log, ['db'])
        check(up, `start the database on ${s.where} (status and logs above)`, true)
      }
    }
    const login = await runIn(s, stackCommands.dbLogin(s))
    if (login.ok) return
    if (!o.dbRunning) await runIn(s, s.compose('stop', 'db'))
    const refused = LOGIN_REFUSED.exec(login.stderr)
    if (refused) throw new ConfigError(databaseRefused({ ...o, answer: refused[0] }))
    check(login, 'log in to the database as web will')
  })
}

export async function main(argv: string[], env: Env, partial?: Partial<Deps>): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { run, log, root } = deps

    // check: settings (before anything touches Docker)
    const raw = loadEnv(env, deps.envFile)
    const checked = localSettings(raw)
    const { values, generated } = checked
    let composeEnv = checked.composeEnv
    const project = values.COMPOSE_PROJECT_NAME
    const url = siteUrl(values.WEB_BIND, values.WEB_PORT)

    // check: Docker, then the port (unless our own stack already publishes it)
    await preflight({ run, log, root, install: !flags['no-install'] })
    const before = await stackPs(localStack(run, root, project, composeEnv))
    const ours = holdsPort(before, values.WEB_PORT)
    if (!ours) {
      const problem = await checkPortFree(values.WEB_BIND, values.WEB_PORT)
      if (problem) throw new UserError(`${problem.message}: ${problem.fix}`)
    }

    // plan
    const local = localImages(values)
    const images = Object.fromEntries(IMAGE_NAMES.map((n) => [n, `${local[n]}:${values.MYMDB_TAG}`])) as Record<ImageName, string>
    const missing: ImageName[] = []
    for (const name of IMAGE_NAMES) if (!(await imageExists(run, images[name]))) missing.push(name)
    const toBuild: readonly ImageName[] = flags.build ? IMAGE_NAMES : missing
    log.info(`[up] project ${project}, site ${url}${ours ? ' (already running: updating)' : ''}`)
    log.info(
      `[up] images: ${IMAGE_NAMES
        .map((n) => `${images[n]} (${toBuild.includes(n) ? (missing.includes(n) ? 'missing: build' : 'rebuild') : 'present'})`)
        .join(', ')}`,
    )

    // plan: secrets for this checkout, once (kept in .env below, after the database took them). A
    // database volume made by an earlier version with its fixed passwords only opens with them:
    // those are used for it.
    const dbVolume = `${project}_db-data`
    const volumeExists = (await run(['docker', 'volume', 'inspect', dbVolume])).ok
    let secrets: Partial<Record<LocalSecret, string>> = {}
    if (generated.length > 0) {
      secrets = Object.fromEntries(
        generated.map((k) => [k, (volumeExists ? LEGACY_DB_SECRETS[k] : undefined) ?? String(composeEnv[k])]),
      ) as Partial<Record<LocalSecret, string>>
      composeEnv = localSettings(raw, secrets).composeEnv
    }

    // apply: images
    if (toBuild.length > 0) {
      const opts = buildOptionsFrom(values, composeEnv, { only: toBuild.length === 1 ? toBuild[0] : undefined })
      await buildImages(opts, deps)
    }

    // check: an existing database opens with these passwords (a volume made by another checkout,
    // or with a .env since deleted, does not: say so now, not after web waited in vain)
    const stack = localStack(run, root, project, composeEnv)
    if (volumeExists) {
      const dbRunning = before.some((c) => c.Service === 'db' && c.State === 'running')
      await checkDatabaseLogin(stack, log, { volume: dbVolume, envFile: deps.envFile, project, dbRunning, generated: generated.filter((k) => k in LEGACY_DB_SECRETS) })
    }

    // apply: secrets kept in .env
    if (generated.length > 0) {
      saveLocalSecrets(deps.envFile, secrets)
      log.info(`[up] generated local-only ${generated.join(', ')}${volumeExists && generated.some((k) => k in LEGACY_DB_SECRETS) ? ' (database passwords as the existing volume has them)' : ''}: kept in ${deps.envFile} (mode 0600)`)
    }

    // apply: start, wait until healthy, migrations checked, sample data into an empty database
    await startStack(stack, log, WAIT_TIMEOUT_SECONDS)

    // summary
    log.info('')
    log.info(`MyMDB is running: ${url}`)
    if (values.WEB_BIND === '0.0.0.0' || values.WEB_BIND === '::') log.info(`(published on all addresses of this host, port ${values.WEB_PORT})`)
    log.info(`stop with: npm run stop${project !== 'mymdb' ? ` (with COMPOSE_PROJECT_NAME=${project})` : ''}`)
    return 0
  })
}

runMain(import.meta.url, main)
