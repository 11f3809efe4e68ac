// npm run rollback -- [--to TAG]: the stage's EC2 host runs an earlier release again, from the
// images it kept, without building or pushing. The releases are the host's deploy history
// (~/mymdb/deploys.log); a release whose code does not know migrations the database has is
// refused unless --allow-schema-change (the backup from before those migrations is named).
import { ConfigError } from './lib/errors.ts'
import { loadEnv } from './lib/env.ts'
import { stageLock } from './lib/lock.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { rollbackStep } from './lib/remote/rollback.ts'
import { runStep, stepDeps, type StepSeams } from './lib/step.ts'
import { checkHostAccess } from './lib/target.ts'

export const HELP = `Usage: npm run rollback -- [options]

Runs the previous release again on the stage's EC2 host (or the one --to names), from the images
the host kept (the last MYMDB_KEEP_RELEASES releases): nothing is built or pushed. The releases
are the host's deploy history (npm run status -- --aws shows it). Before anything changes:
  - the release's images must still be on the host;
  - the release's code must know every migration the database has: when the newer release
    changed the schema, the rollback is refused and the backup taken before those migrations is
    named (restore it with npm run restore -- --aws <name>; data entered since is lost), unless
    --allow-schema-change (the older code then runs on the newer schema).
Then the host's .env names the release's images, the stack is updated (health-gated) and the
rollback is recorded in the history. Holds the stage's lock, like a deploy.

Options:
  --to TAG               the release to go back to (default: the one before the running one)
  --allow-schema-change  go back even though the database has migrations that release lacks
  --dry-run              show the releases and what would run; change nothing
  -h, --help             this help

Settings: AWS_REGION, MYMDB_STAGE, the host's SSH settings (see .env.example).

Exit codes: 0 rolled back (or already running that release), 1 refused or a step failed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run rollback',
  help: HELP,
  options: {
    to: { type: 'string' },
    'allow-schema-change': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  },
} as const

/** A tag as build makes them (the git commit, -dirty) or as MYMDB_TAG allows. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: options and settings, before anything connects
    if (flags.to !== undefined && !TAG.test(flags.to)) throw new ConfigError(`--to ${JSON.stringify(flags.to)}: not an image tag (like 8d25b39; npm run status -- --aws shows the releases)`)
    const raw = loadEnv(env, deps.envFile)
    const s = checkHostAccess(raw)
    const sd = stepDeps(deps, partial, raw)

    // plan (reading the host), show, apply, holding the stage's lock (a dry run shows the plan)
    const settings = { ...s, ...(flags.to !== undefined ? { to: flags.to } : {}), allowSchemaChange: flags['allow-schema-change'] ?? false }
    await runStep(rollbackStep, settings, sd, flags['dry-run'] ?? false, stageLock(sd, s, 'npm run rollback'))
    return 0
  })
}

runMain(import.meta.url, main)
