// npm run up:local: runs the whole stack on this machine with local-only defaults.
import { buildSettingsFrom, buildStep, missingImages } from './lib/images.ts'
import { runStep, stepDeps } from './lib/step.ts'
import { checkPortFree, preflight } from './lib/docker.ts'
import { loadEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import {
  holdsPort,
  LEGACY_DB_SECRETS,
  LOCAL_DEFAULTS,
  LOCAL_SECRETS,
  localSettings,
  saveLocalSecrets,
  siteUrl,
  type LocalSecret,
} from './lib/compose.ts'
import { checkDatabaseLogin } from './lib/localdb.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { localStack, stackPs, startStack } from './lib/stack.ts'
import { IMAGE_NAMES, localImages, type ImageName } from './lib/vars.ts'

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

/** The seconds up:local waits for healthy services (and for the database alone, before). */
export const WAIT_TIMEOUT_SECONDS = 120

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
    const missing = await missingImages(run, local, values.MYMDB_TAG)
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
      await runStep(buildStep, buildSettingsFrom(values, { only: toBuild.length === 1 ? toBuild[0] : undefined }), stepDeps(deps, undefined, composeEnv), false)
    }

    // check: an existing database opens with these passwords (a volume made by another checkout,
    // or with a .env since deleted, does not: say so now, not after web waited in vain)
    const stack = localStack(run, root, project, composeEnv)
    if (volumeExists) {
      const dbRunning = before.some((c) => c.Service === 'db' && c.State === 'running')
      await checkDatabaseLogin(stack, log, { volume: dbVolume, envFile: deps.envFile, project, dbRunning, generated: generated.filter((k) => k in LEGACY_DB_SECRETS), waitSeconds: WAIT_TIMEOUT_SECONDS })
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
