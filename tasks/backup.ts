// npm run backup [-- --to DIR]: a consistent backup of the running local stack (the database,
// and the uploads when they are in the media volume) into one file, default ./backups/.
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { BACKUP_FORMAT, BACKUP_VERSION, backupCommands, backupName, databaseFacts, toFile, type Manifest } from './lib/backup.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { backupVars } from './lib/vars.ts'
import { UserError } from './lib/errors.ts'
import type { Log } from './lib/log.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { runIn, runInChecked, stackPs, type Stack } from './lib/stack.ts'
import { checkLocal, localTarget } from './lib/target.ts'

export const HELP = `Usage: npm run backup -- [--to DIR]

Backs up the running MyMDB stack on this machine into one file, DIR/mymdb-<project>-<time>.tar
(default DIR: MYMDB_BACKUP_DIR, default ./backups, git-ignored):
  db.dump        pg_dump of the database (custom format), taken online: a consistent snapshot
                 while the site keeps running
  media.tar      the uploaded posters in the media volume (not when uploads go to S3)
  manifest.json  when, from where, which database, PostgreSQL version and git commit
List backups with npm run backups; restore one with npm run restore -- <file>.

Options:
  --to DIR    where the file goes (created if missing)
  -h, --help  this help

Exit codes: 0 backed up, 1 Docker or a command failed (or the stack is not running), 2 bad
option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run backup',
  help: HELP,
  options: { to: { type: 'string' } },
} as const

/**
 * Writes a backup of `stack` into `dir` (a path where the stack runs) and returns its path.
 * The file appears complete or not at all (written under a temporary name, then renamed).
 */
export async function backupStack(stack: Stack, dir: string, source: string, log: Log, now = new Date()): Promise<{ file: string; manifest: Manifest }> {
  const ps = await stackPs(stack)
  const running = (service: string) => ps.some((p) => p.Service === service && p.State === 'running')
  if (!running('db')) throw new UserError(`the database of ${source} is not running: start it (npm run up:local), then back up`)
  const file = `${dir.replace(/\/+$/, '')}/${backupName(source, now)}`
  const work = `${file}.partial.d`
  const sh = (cmd: readonly string[], doing: string) => runInChecked(stack, cmd, { doing })
  await sh(['mkdir', '-p', '-m', '700', work], `create ${work}`)
  try {
    const facts = await databaseFacts(stack)
    await log.step('backup', `pg_dump of ${facts.database} (PostgreSQL ${facts.postgres})`, () =>
      sh(toFile(backupCommands.dump(stack), `${work}/db.dump`), 'dump the database'),
    )
    const inS3 = (stack.env?.DJANGO_UPLOAD_S3_BUCKET ?? '').trim() !== ''
    const media = running('web') && !inS3
    if (!inS3 && !media) log.warn('[backup] the web container is not running: the uploads in the media volume are NOT in this backup (start the stack for a full one)')
    if (media) await log.step('backup', 'uploads in the media volume', () => sh(toFile(backupCommands.media(stack), `${work}/media.tar`), 'archive the uploads'))
    const revision = ps.find((p) => p.Service === 'web')?.Name
    const label = revision
      ? (await runIn(stack, ['docker', 'inspect', '--format', '{{index .Config.Labels "org.opencontainers.image.revision"}}', revision])).stdout.trim()
      : ''
    const manifest: Manifest = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      createdAt: now.toISOString(),
      source,
      database: facts.database,
      revision: label === '<no value>' ? '' : label,
      postgres: facts.postgres,
      media,
    }
    await runInChecked(stack, ['sh', '-c', 'cat > "$0"', `${work}/manifest.json`], { input: `${JSON.stringify(manifest, null, 2)}\n`, doing: 'write the manifest' })
    // It holds password hashes and every account: readable by its owner only.
    await sh(['sh', '-c', 'umask 077 && tar -C "$0" -cf "$1" manifest.json db.dump "$@"', work, `${file}.partial`, ...(media ? ['media.tar'] : [])], 'pack the backup')
    await sh(['mv', `${file}.partial`, file], `name the backup ${file}`)
    return { file, manifest }
  } finally {
    await runIn(stack, ['rm', '-rf', work, `${file}.partial`])
  }
}

export async function main(argv: string[], env: Env, partial?: Partial<Deps>): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: settings and options
    const raw = loadEnv(env, deps.envFile)
    const local = checkLocal(raw)
    const dir = resolve(deps.root, flags.to ?? checkEnv(backupVars, raw).MYMDB_BACKUP_DIR)

    // apply
    mkdirSync(dir, { recursive: true })
    const start = Date.now()
    const { file, manifest } = await backupStack(localTarget(deps, local), dir, local.project, deps.log)

    // summary
    const size = (await deps.run(['stat', '-c', '%s', file])).stdout.trim()
    deps.log.info(`[backup] ${file} (${(Number(size) / 1e6).toFixed(1)} MB, database ${manifest.database}${manifest.media ? ' and the uploads' : ''}, ${((Date.now() - start) / 1000).toFixed(1)} s)`)
    deps.log.info(`[backup] restore it with: npm run restore -- ${file}`)
    return 0
  })
}

runMain(import.meta.url, main)
