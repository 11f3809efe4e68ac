// npm run backup [-- --to DIR] [-- --aws]: a consistent backup of the running stack (the database,
// and the uploads when they are in the media volume) into one file: here into ./backups/, on the
// stage's host into the private backup bucket. Both run the same script (lib/backup.ts).
import { resolve } from 'node:path'
import { backupHost, backupLocal, type BackupResult } from './lib/backup.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { ConfigError } from './lib/errors.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { inStage, stepDeps, type StepSeams } from './lib/step.ts'
import { checkHostAccess, resolveTarget } from './lib/target.ts'
import { backupVars } from './lib/vars.ts'
import { stageLock } from './lib/lock.ts'

export const HELP = `Usage: npm run backup -- [--to DIR] [--aws]

Backs up the running MyMDB stack into one file, mymdb-<project or stage>-<time>.tar:
  db.dump        pg_dump of the database (custom format), taken online: a consistent snapshot
                 while the site keeps running
  media.tar      the uploaded posters in the media volume (not when uploads go to S3)
  manifest.json  when, from where, which database, PostgreSQL version and git commit

  (default)  the stack on this machine, into DIR (default MYMDB_BACKUP_DIR, default ./backups,
             git-ignored), readable by you only
  --aws      the stage's EC2 host (over SSH): the file is uploaded from the host into the
             stage's private backup bucket (encrypted at rest, with its SHA-256, as the next
             version of rolling/manual.tar: the newest MYMDB_BACKUP_KEEP stay) by the host's
             backup role, then deleted on the host

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
    // on AWS it writes into the stage's bucket: one change to the stage at a time
    const lock = aws ? stageLock(stepDeps(deps, partial, raw), checkHostAccess(raw), 'npm run backup -- --aws') : undefined
    return inStage(lock, false, deps.log, 'backup', async () => {
      const target = await resolveTarget(aws, raw, deps, partial)
      try {
        // apply
        const start = Date.now()
        const r = aws ? await backupHost(target.stack, target.source, deps.log) : await backupLocal(target.stack, dir, target.source, deps.log)

        // summary
        deps.log.info(`[backup] ${summary(r, (Date.now() - start) / 1000)}`)
        deps.log.info(`[backup] restore it with: npm run restore -- ${aws ? `${r.name} --aws` : r.file}`)
        return 0
      } finally {
        target.close()
      }
    })
  })
}

runMain(import.meta.url, main)
