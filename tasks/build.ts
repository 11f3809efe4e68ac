// npm run build: builds the stack's images (web, db, proxy, cache), tagged with the git commit and latest.
import { preflight } from './lib/docker.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { ConfigError } from './lib/errors.ts'
import { buildSettingsFrom, buildStep } from './lib/images.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { runStep, stepDeps } from './lib/step.ts'
import { IMAGE_NAMES, imageVars, type ImageName } from './lib/vars.ts'

export const HELP = `Usage: npm run build -- [options]

Builds the images of the stack with BuildKit:
  web    \${MYMDB_WEB_IMAGE:-mymdb-web}      from Dockerfile             (context: the repository root)
  db     \${MYMDB_DB_IMAGE:-mymdb-db}        from docker/psql/Dockerfile  (context: docker/psql)
  proxy  \${MYMDB_PROXY_IMAGE:-mymdb-proxy}  from docker/proxy/Dockerfile (context: docker/proxy)
  cache  \${MYMDB_CACHE_IMAGE:-mymdb-cache}  from docker/cache/Dockerfile (context: docker/cache)
each with --build-arg BASE_IMAGE=<base image> and tagged:
  <git short commit>   with "-dirty" appended when tracked files have uncommitted changes
                       (untracked files do not count); left out outside a git checkout
  latest, and \${MYMDB_TAG} when set to something else (the tag Compose runs)

Base image (MYMDB_BASE_IMAGE in .env, or --base):
  auto       (default) debian:trixie-slim if it is present locally, else try
             \`docker pull debian:trixie-slim\` (20 s at most), and if that fails mymdb-base:trixie:
             the local one, or bootstrapped from the Debian mirror when missing
             (scripts/make-base-image.sh, needs root, about a minute)
  pull       docker pull debian:trixie-slim; fail if that does not work
  bootstrap  mymdb-base:trixie, made with scripts/make-base-image.sh if missing
  <image>    any other value: that image, used as is (e.g. debian:trixie-slim)

Options:
  --only web|db|proxy|cache  build just one of the images
  --base VALUE      base image choice, overrides MYMDB_BASE_IMAGE
  --rebuild-base    with auto or bootstrap: make mymdb-base:trixie again (even if it exists)
                    and build from it
  --no-cache        build every layer again (fresh packages from the mirror; slower)
  --dry-run         print the plan (base image, tags, commands) and build nothing
  --no-install      do not install Docker when it is missing (default: install it when root
                    on Debian/Ubuntu, with scripts/install-docker.sh)
  -h, --help        this help

Exit codes: 0 built, 1 a command failed or Docker is not usable, 2 bad option or .env value.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run build',
  help: HELP,
  options: {
    only: { type: 'string' },
    base: { type: 'string' },
    'rebuild-base': { type: 'boolean' },
    'no-cache': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    'no-install': { type: 'boolean' },
  },
} as const

export async function main(argv: string[], env: Env, partial?: Partial<Deps>): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: options
    if (flags.only !== undefined && !(IMAGE_NAMES as readonly string[]).includes(flags.only))
      throw new ConfigError(`--only takes ${IMAGE_NAMES.join(', ')}, not "${flags.only}". See: npm run build -- --help`)

    // check: environment and --base (checked as MYMDB_BASE_IMAGE), before anything touches Docker
    const raw = loadEnv(env, deps.envFile)
    if (flags.base !== undefined) raw.MYMDB_BASE_IMAGE = flags.base
    const values = checkEnv(imageVars, raw, { options: flags.base !== undefined ? { MYMDB_BASE_IMAGE: '--base' } : {} })

    // check: Docker (a dry run only looks)
    if (!flags['dry-run']) await preflight({ run: deps.run, log: deps.log, root: deps.root, compose: false, install: !flags['no-install'] })

    // plan, show, apply (a dry run shows the plan)
    const settings = buildSettingsFrom(values, { only: flags.only as ImageName | undefined, rebuildBase: flags['rebuild-base'] ?? false, noCache: flags['no-cache'] ?? false })
    const dryRun = flags['dry-run'] ?? false
    const start = Date.now()
    const refs = await runStep(buildStep, settings, stepDeps(deps, undefined, raw), dryRun)

    // summary
    if (!dryRun) {
      deps.log.info(`[build] built in ${Math.round((Date.now() - start) / 1000)} s:`)
      for (const r of refs) deps.log.info(`  ${r}`)
    }
    return 0
  })
}

runMain(import.meta.url, main)
