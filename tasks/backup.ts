// npm run backup [-- --to DIR] [-- --aws]: a consistent backup of the running stack (the database,
// and the uploads when they are in the media volume) into one file: here into ./backups/, on the
// stage's host into the private backup bucket. Both run the same script (lib/backup.ts).
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { BACKUP_ENV_FILE, hostBackupOptions, takeBackup, type BackupResult } from './lib/backup.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import type { Log } from './lib/log.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { runIn, type Stack } from './lib/stack.ts'
import { resolveTarget } from './lib/target.ts'
import { backupVars } from './lib/vars.ts'
import type { StepSeams } from './lib/step.ts'

export const HELP = `Usage: npm run backup -- [--to DIR] [--aws]

Backs up the running MyMDB stack into one file, mymdb-<project or stage>-<time>.tar:
  db.dump        pg_dump of the database (custom format), taken online: a consistent snapshot
                 while the site keeps running
  media.tar      the uploaded posters in the media volume (not when uploads go to S3)
  manifest.json  when, from where, which database, PostgreSQL version and git commit

  (default)  the stack on this machine, into DIR (default MYMDB_BACKUP_DIR, default ./backups,
             git-ignored), readable by you only
  --aws      the stage's EC2 host (over SSH): the file is uploaded from the host into the
             stage's private backup bucket (encrypted at rest, expired after
             MYMDB_BACKUP_KEEP_DAYS) by the host's backup role, then deleted on the host

List backups with npm run backups [-- --aws]; restore one with npm run restore -- <backup>.

Options:
  --to DIR    where the file goes (created if missing; not with --aws)
  --aws       back up the deployed site instead of this machine's
  -h, --help  this help

Exit codes: 0 backed up, 1 Docker, SSH or a command failed (or the stack is not running), 2 bad
option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run backup',
  help: HELP,
  options: { to: { type: 'string' }, aws: { type: 'boolean' } },
} as const

/** A backup of this machine's stack into `dir` (the uploads too, unless they go to S3). */
export function backupLocal(stack: Stack, dir: string, source: string, log: Log, reason: 'manual' | 'safety' = 'manual'): Promise<BackupResult> {
  mkdirSync(dir, { recursive: true })
  const inS3 = (stack.env?.DJANGO_UPLOAD_S3_BUCKET ?? '').trim() !== ''
  return takeBackup(stack, { dir, source, reason, media: !inS3 }, log)
}

/**
 * A backup of the host's stack into the backup bucket (the uploads are in S3 already). The
 * host's ~/mymdb/backup.env, written by the deploy, names the bucket and the backup role.
 */
export async function backupHost(stack: Stack, stage: string, log: Log, reason: 'manual' | 'safety' | 'pre-migrate' | 'final' = 'manual'): Promise<BackupResult> {
  const env = await runIn(stack, ['test', '-f', BACKUP_ENV_FILE])
  if (!env.ok)
    throw new UserError(`the host ${stack.where} has no ~/mymdb/${BACKUP_ENV_FILE} (it names the backup bucket): deploy with this version first (npm run deploy:aws)`)
  return takeBackup(stack, hostBackupOptions(stage, reason), log)
}

export function summary(r: BackupResult, seconds: number): string {
  const m = r.manifest
  return `${r.file} (${(r.size / 1e6).toFixed(1)} MB, database ${m.database}${m.media ? ' and the uploads' : ''}, ${seconds.toFixed(1)} s)`
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: options and settings (resolveTarget checks the host access before it connects)
    const aws = flags.aws ?? false
    if (aws && flags.to !== undefined) throw new ConfigError('--to is for local backups; with --aws the backup goes to the backup bucket')
    const raw = loadEnv(env, deps.envFile)
    const dir = aws ? '' : resolve(deps.root, flags.to ?? checkEnv(backupVars, raw).MYMDB_BACKUP_DIR)
    const target = await resolveTarget(aws, raw, deps, partial)
    try {
      // apply
      const start = Date.now()
      const r = aws ? await backupHost(target.stack, target.source, deps.log) : await backupLocal(target.stack, dir, target.source, deps.log)

      // summary
      deps.log.info(`[backup] ${summary(r, (Date.now() - start) / 1000)}`)
      deps.log.info(`[backup] restore it with: npm run restore -- ${aws ? `${r.file.split('/').pop()} --aws` : r.file}`)
      return 0
    } finally {
      target.close()
    }
  })
}

runMain(import.meta.url, main)
