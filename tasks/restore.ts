// npm run restore -- <backup file> [--yes]: puts a backup back into the running local stack:
// safety backup first, web stopped, the database replaced in one transaction (a damaged file
// changes nothing), the uploads replaced, web started (migrations run), the site checked.
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { backupStack } from './backup.ts'
import { backupCommands, fromFile, readManifest } from './lib/backup.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { backupVars } from './lib/vars.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { runIn, runInChecked, stackPs, startStack } from './lib/stack.ts'
import { checkLocal, localTarget } from './lib/target.ts'

export const HELP = `Usage: npm run restore -- <backup file> [options]

Restores a backup made by npm run backup into the running MyMDB stack on this machine:
  1. checks the file: a MyMDB backup whose database dump reads whole (nothing is touched before)
  2. asks for confirmation on a terminal (everything entered since the backup is replaced)
  3. takes a safety backup of the current data into MYMDB_BACKUP_DIR (default ./backups)
  4. replaces the uploads (when the backup holds them), stops the web container
  5. replaces the database in one transaction: if it fails half-way, the database is as it was
  6. starts the web container (it applies the migrations of this code) and waits until healthy
An interrupted restore can simply be run again.

Options:
  --yes                 do not ask
  --no-safety-backup    skip step 3
  -h, --help            this help

Exit codes: 0 restored, 1 a command failed (the message says what state things are in),
2 bad option, setting, or a file that is not a MyMDB backup.`

/** The command line: its options (-h/--help come with runCli); the file is the one argument. */
export const CLI = {
  command: 'npm run restore',
  help: HELP,
  positionals: 'args',
  options: { yes: { type: 'boolean', short: 'y' }, 'no-safety-backup': { type: 'boolean' } },
} as const

export async function main(argv: string[], env: Env, partial?: Partial<Deps>): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags, args) => {
    const { log } = deps

    // check: options, settings, the file (read only)
    if (args.length !== 1) throw new ConfigError('name one backup file, e.g. npm run restore -- backups/mymdb-mymdb-20261127T163000Z.tar (npm run backups lists them)')
    const file = resolve(args[0] ?? '')
    if (!existsSync(file) || !statSync(file).isFile()) throw new ConfigError(`${file} is not a file (npm run backups lists the backups)`)
    const raw = loadEnv(env, deps.envFile)
    const local = checkLocal(raw)
    const { MYMDB_BACKUP_DIR } = checkEnv(backupVars, raw)
    const stack = localTarget(deps, local)
    const manifest = await readManifest(stack, file).catch((e: unknown) => {
      throw new ConfigError(`${file} is not a MyMDB backup: ${e instanceof Error ? e.message : String(e)}`)
    })
    const ps = await stackPs(stack)
    if (!ps.some((p) => p.Service === 'db' && p.State === 'running'))
      throw new UserError(`the stack ${local.project} is not running: start it (npm run up:local), then restore`)
    log.info(`[restore] ${file}: database ${manifest.database} of ${manifest.source}, taken ${manifest.createdAt}${manifest.revision ? ` (commit ${manifest.revision})` : ''}${manifest.media ? ', with the uploads' : ''}`)

    // check: the dump reads whole before anything changes
    const work = `${file}.restore.d`
    mkdirSync(work, { recursive: true })
    try {
      await runInChecked(stack, ['tar', '-C', work, '-xf', file], { doing: `unpack ${file}` })
      const listed = await runIn(stack, fromFile(backupCommands.listDump(stack), `${work}/db.dump`))
      if (!listed.ok) throw new ConfigError(`${file} is damaged: its database dump does not read (${listed.stderr.trim().split('\n').pop() ?? ''}); nothing was changed`)

      if (deps.interactive && !flags.yes && !(await deps.confirm(`Replace the data of ${local.project} with this backup? Everything entered since it was taken is lost.`)))
        throw new UserError('nothing restored (not confirmed)')

      // apply: safety backup, uploads, database, web
      if (!flags['no-safety-backup']) {
        mkdirSync(resolve(deps.root, MYMDB_BACKUP_DIR), { recursive: true })
        const safety = await backupStack(stack, resolve(deps.root, MYMDB_BACKUP_DIR), local.project, log)
        log.info(`[restore] safety backup of the current data: ${safety.file}`)
      }
      if (manifest.media)
        await log.step('restore', 'uploads into the media volume', () =>
          runInChecked(stack, fromFile(backupCommands.restoreMedia(stack), `${work}/media.tar`), { doing: 'restore the uploads' }),
        )
      await log.step('restore', 'stop the web container', () => runInChecked(stack, stack.compose('stop', 'web'), { doing: 'stop the web container' }))
      const restored = await log.step('restore', `database ${manifest.database} (one transaction)`, () =>
        runIn(stack, fromFile(backupCommands.restore(stack), `${work}/db.dump`)),
      )
      if (!restored.ok) {
        await runIn(stack, stack.compose('start', 'web'))
        throw new UserError(
          `the database restore failed and was rolled back, the data is as it was (web started again): ${restored.stderr.trim().split('\n').slice(-3).join(' ')}`,
        )
      }
      await startStack(stack, log, 120)
    } finally {
      await runIn(stack, ['rm', '-rf', work])
    }

    // summary
    log.info(`[restore] done: ${local.project} runs with the data of ${manifest.createdAt} (backups in ${dirname(file)})`)
    return 0
  })
}

runMain(import.meta.url, main)
