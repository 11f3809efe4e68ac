// npm run backups [-- --in DIR]: the backups in a folder (default ./backups), newest first.
import { readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { readManifest } from './lib/backup.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { backupVars } from './lib/vars.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { checkLocal, localTarget } from './lib/target.ts'

export const HELP = `Usage: npm run backups -- [--in DIR]

Lists the MyMDB backups in DIR (default MYMDB_BACKUP_DIR, default ./backups), newest first: when it was taken, its size,
the database, whether the uploads are in it, and the git commit that was running.

Options:
  --in DIR    the folder to list
  -h, --help  this help

Exit codes: 0 listed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run backups',
  help: HELP,
  options: { in: { type: 'string' } },
} as const

export async function main(argv: string[], env: Env, partial?: Partial<Deps>): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const raw = loadEnv(env, deps.envFile)
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
      const size = `${(statSync(path).size / 1e6).toFixed(1)} MB`
      try {
        const m = await readManifest(stack, path)
        rows.push({ at: m.createdAt, line: `  ${m.createdAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}  ${size.padStart(9)}  ${m.database}${m.media ? ' + uploads' : ''}  ${m.revision ? `commit ${m.revision}  ` : ''}${path}` })
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
