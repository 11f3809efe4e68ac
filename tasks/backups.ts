// npm run backups [-- --in DIR] [-- --aws]: the backups in a folder (default ./backups) or in the
// stage's backup bucket, newest first.
import { readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { bucketBackups, type Listed } from './lib/aws/backupbucket.ts'
import { backupBucketName, backupBucketRules, backupBucketSpec } from './lib/awsvars.ts'
import { readManifest } from './lib/backup.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { ConfigError } from './lib/errors.ts'
import { utcTime } from './lib/log.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { stepDeps, type StepSeams } from './lib/step.ts'
import { checkLocal, localTarget } from './lib/target.ts'
import { backupVars } from './lib/vars.ts'

export const HELP = `Usage: npm run backups -- [--in DIR] [--aws]

Lists the MyMDB backups, newest first: when it was taken, its size, the database, whether the
uploads are in it, the git commit that was running, and why it was taken (manual, scheduled,
safety, pre-migrate, final).

  (default)  the files in DIR (default MYMDB_BACKUP_DIR, default ./backups)
  --aws      the stage's private backup bucket (MYMDB_BACKUP_BUCKET, default
             <DJANGO_UPLOAD_S3_BUCKET>-backups), with your AWS credentials: every version
             kept, the time S3 stored it (not a time the host claims)

Options:
  --in DIR    the folder to list (not with --aws)
  --aws       the backup bucket instead of a folder
  -h, --help  this help

Exit codes: 0 listed, 1 AWS failed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run backups',
  help: HELP,
  options: { in: { type: 'string' }, aws: { type: 'boolean' } },
} as const

/** One line of the list (pure). */
export function listLine(b: Listed): string {
  const at = b.at ? utcTime(b.at) : '(time unknown)'
  const size = `${(b.size / 1e6).toFixed(1)} MB`
  return `  ${at}  ${size.padStart(9)}  ${b.database}${b.media ? ' + uploads' : ''}  ${b.revision ? `commit ${b.revision}  ` : ''}${b.reason ? `${b.reason}  ` : ''}${b.where}`
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const raw = loadEnv(env, deps.envFile)
    if (flags.aws) {
      if (flags.in !== undefined) throw new ConfigError('--in is for local folders; with --aws the backups are listed from the backup bucket')
      const v = checkEnv(backupBucketSpec, raw, { rules: backupBucketRules })
      const bucket = backupBucketName(v)
      const items = await bucketBackups(stepDeps(deps, partial, raw).clients(v.AWS_REGION).s3, bucket)
      deps.log.info(items.length > 0 ? `[backups] ${items.length} in s3://${bucket}:` : `[backups] none in s3://${bucket} (make one with npm run backup -- --aws)`)
      for (const b of items) deps.log.info(listLine(b))
      if (items.length > 0) deps.log.info(`[backups] restore one with: npm run restore -- <name> --aws`)
      return 0
    }
    const local = checkLocal(raw)
    const dir = resolve(deps.root, flags.in ?? checkEnv(backupVars, raw).MYMDB_BACKUP_DIR)
    const files = (() => {
      try {
        return readdirSync(dir).filter((f) => f.endsWith('.tar'))
      } catch {
        return []
      }
    })()
    const stack = localTarget(deps, local)
    const rows: { at: string; line: string }[] = []
    for (const f of files) {
      const path = join(dir, f)
      const size = statSync(path).size
      try {
        const m = await readManifest(stack, path)
        rows.push({ at: m.createdAt, line: listLine({ at: m.createdAt, size, database: m.database, media: m.media, revision: m.revision, reason: m.reason, where: path }) })
      } catch (e) {
        rows.push({ at: '', line: `  (not a MyMDB backup: ${e instanceof Error ? e.message : String(e)})  ${path}` })
      }
    }
    rows.sort((a, b) => b.at.localeCompare(a.at))
    deps.log.info(rows.length > 0 ? `[backups] ${rows.length} in ${dir}:` : `[backups] none in ${dir} (make one with npm run backup)`)
    for (const r of rows) deps.log.info(r.line)
    return 0
  })
}

runMain(import.meta.url, main)
