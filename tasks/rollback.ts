// npm run rollback -- [--to TAG]: the stage's EC2 host runs an earlier release again, from the
// images it kept, without building or pushing. The releases are the host's deploy history
// (~/mymdb/deploys.log); a release whose code does not know migrations the database has is
// refused unless --allow-schema-change (the backup from before those migrations is named).
import { parseBackupLog, BACKUP_LOG } from './lib/backup.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { loadEnv } from './lib/env.ts'
import { formatDuration, utcTime } from './lib/log.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { stepDeps, type StepSeams } from './lib/step.ts'
import { pickRelease, pointEnvAt, readDeployLog, recordRelease, releases, unknownMigrationsCmd } from './lib/releases.ts'
import { runIn, runInChecked, startStack } from './lib/stack.ts'
import { checkHostAccess, findTarget, openTarget, reachable } from './lib/target.ts'

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

/** An image reference the host's .env can hold as it is (no quote, space or shell character). */
const IMAGE_REF = /^[a-z0-9][a-z0-9._\-/:]*(@sha256:[0-9a-f]{64})?$/

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { log } = deps
    // check: options and settings, before anything connects
    if (flags.to !== undefined && !TAG.test(flags.to)) throw new ConfigError(`--to ${JSON.stringify(flags.to)}: not an image tag (like 8d25b39; npm run status -- --aws shows the releases)`)
    const raw = loadEnv(env, deps.envFile)
    const s = checkHostAccess(raw)
    const dryRun = flags['dry-run'] ?? false
    const [{ awsClients }, { withLock, readLock, lockNote }] = await Promise.all([import('./lib/aws/clients.ts'), import('./lib/lock.ts')])
    const clients = (partial?.awsClients ?? awsClients)(s.AWS_REGION, raw)
    if (dryRun) {
      const holder = await readLock(clients.dynamodb, s.MYMDB_STAGE)
      if (holder) log.warn(`[rollback] note: ${lockNote(s.MYMDB_STAGE, holder)}`)
      return rollback()
    }
    return withLock(clients.dynamodb, s.MYMDB_STAGE, 'npm run rollback', rollback, { log })

    async function rollback(): Promise<number> {
      const found = await findTarget(s, stepDeps(deps, partial, raw), false)
      const { remote, stack } = await openTarget(s, reachable(s, found), partial ?? {}, deps, found.instance)
      try {
        // plan: the releases, the target, its images and its schema
        const list = releases(await readDeployLog(stack))
        const { current, target } = pickRelease(list, flags.to)
        log.info(`[rollback] releases on the host, newest first: ${list.map((r) => `${r.tag} (${utcTime(r.at)})`).join(', ')}`)
        if (target.tag === current.tag) {
          log.info(`[rollback] ${current.tag} is running already: nothing to do`)
          return 0
        }
        const refs = Object.values(target.images)
        const bad = refs.filter((r) => !IMAGE_REF.test(r))
        if (bad.length > 0) throw new UserError(`the history names images this rollback will not write into the host's .env: ${bad.join(', ')}`)
        const present = await runIn(stack, ['docker', 'image', 'inspect', '--format', '{{.Id}}', ...refs])
        if (!present.ok)
          throw new UserError(`the images of ${target.tag} are no longer all on the host (it keeps the last MYMDB_KEEP_RELEASES releases): ${present.stderr.trim().split('\n')[0]}. Deploy that commit again instead (git checkout ${target.tag} && npm run deploy:aws)`)
        log.info(`[rollback] ${current.tag} -> ${target.tag} (deployed ${utcTime(target.at)}): ${refs.join(', ')}`)

        const check = await log.step('schema', `the migrations the database has that ${target.tag} does not know`, () =>
          runInChecked(stack, unknownMigrationsCmd(stack, target.images.web), { doing: `compare the database's migrations with the code of ${target.tag}` }),
        )
        const unknown = check.stdout.split('\n').map((l) => l.trim()).filter((l) => /^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$/.test(l))
        if (unknown.length > 0) {
          const backups = parseBackupLog((await runIn(stack, ['sh', '-c', `cat ${BACKUP_LOG} 2>/dev/null || true`])).stdout)
          const before = backups.find((b) => b.ok && b.reason === 'pre-migrate' && Date.parse(b.at) > Date.parse(target.at))
          const name = before?.name
          const restore = before
            ? `The backup taken before those migrations ran is ${name} (${utcTime(before.at)}): npm run restore -- --aws ${name} brings that database back (data entered since is lost)`
            : 'No backup from before those migrations is recorded on the host (npm run backups -- --aws lists the bucket)'
          const what = `the database has migrations ${target.tag} does not know: ${unknown.join(', ')}`
          if (!flags['allow-schema-change']) throw new UserError(`${what}. Its code may fail on this schema, so the rollback stops here (nothing changed). ${restore}; or run again with --allow-schema-change to go back anyway`)
          log.warn(`[rollback] ${what}; going back anyway (--allow-schema-change)`)
        } else log.info(`[rollback] the database has no migration ${target.tag} does not know`)
        if (dryRun) {
          log.info(`[rollback] dry run: would point ~/mymdb/.env at the images of ${target.tag}, update the stack and record it; nothing was changed`)
          return 0
        }

        // apply
        const start = Date.now()
        await recordRelease(stack, () => target.images, { startedAt: new Date(start), rollbackFrom: current.tag }, async () => {
          await runInChecked(stack, pointEnvAt(target.images), { doing: "point the host's .env at the release's images" })
          await startStack(stack, log)
        })
        log.info('')
        log.info(`[rollback] ${target.tag} runs again on ${stack.where} (was ${current.tag}; ${formatDuration(Date.now() - start)})`)
        return 0
      } finally {
        remote.close()
      }
    }
  })
}

runMain(import.meta.url, main)
