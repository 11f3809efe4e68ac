// A restore where the stack runs (here or on the host, through the runner): the backup checked
// first (a foreign or damaged file changes nothing), a safety backup, web stopped, the database
// replaced in one transaction (a failure rolls back and changes nothing), the cache emptied, web
// started (it migrates), the uploads replaced, checked.
import { backupCommands, fromFile, readManifest, type BackupResult, type Manifest } from './backup.ts'
import { ConfigError, UserError } from './errors.ts'
import type { Log } from './log.ts'
import { RDS_TEST } from './dbaccess.ts'
import { runIn, runInChecked, stackCommands, stackPs, startStack, type Stack } from './stack.ts'

/** The scratch folder of a restore on the host (next to the downloaded backup). */
export const HOST_RESTORE_DIR = 'restore.d'

export interface RestoreSteps {
  stack: Stack
  /** The backup file where the stack runs. */
  file: string
  /** A scratch folder next to it (removed afterwards). */
  work: string
  /** What the backup is called in messages. */
  name: string
  project: string
  log: Log
  /** Asks the user (false: stop, nothing changed). */
  confirm: () => Promise<boolean>
  /** The safety backup (undefined: none). */
  safety?: () => Promise<BackupResult>
  /** The SHA-256 (hex) recorded with the backup: the file must match it before anything else. */
  sha256?: string
}

/** Checks the backup where the stack runs, then restores it (see HELP). Returns its manifest. */
export async function restoreBackup(o: RestoreSteps): Promise<Manifest> {
  const { stack, file, work, name, log } = o
  if (o.sha256) {
    const digest = await runIn(stack, ['sh', '-c', 'printf "%s  %s\\n" "$0" "$1" | sha256sum --check --status', o.sha256, file])
    if (!digest.ok)
      throw new ConfigError(`${name} does not match the SHA-256 recorded with it (${o.sha256}): it is not the backup that was stored, and it is not restored; nothing was changed`)
    log.info(`[restore] ${name}: SHA-256 as recorded when it was stored`)
  }
  const manifest = await readManifest(stack, file).catch((e: unknown) => {
    throw new ConfigError(`${name} is not a MyMDB backup: ${e instanceof Error ? e.message : String(e)}`)
  })
  const ps = await stackPs(stack)
  const rds = stack.kind === 'swarm' && (await runIn(stack, ['sh', '-c', RDS_TEST])).ok
  if (!rds && !ps.some((p) => p.Service === 'db' && p.State === 'running'))
    throw new UserError(`the stack ${o.project} on ${stack.where} is not running: start it, then restore`)
  log.info(`[restore] ${name}: database ${manifest.database} of ${manifest.source}, taken ${manifest.createdAt}${manifest.revision ? ` (commit ${manifest.revision})` : ''}${manifest.media ? ', with the uploads' : ''}`)

  // check: the dump reads whole before anything changes
  await runInChecked(stack, ['mkdir', '-p', '-m', '700', work], { doing: `create ${work}` })
  try {
    await runInChecked(stack, ['tar', '-C', work, '-xf', file], { doing: `unpack ${name}` })
    const listed = await runIn(stack, fromFile(backupCommands.listDump(stack), `${work}/db.dump`))
    if (!listed.ok) throw new ConfigError(`${name} is damaged: its database dump does not read (${listed.stderr.trim().split('\n').pop() ?? ''}); nothing was changed`)
    if (!(await o.confirm())) throw new UserError('nothing restored (not confirmed)')

    // apply: safety backup, database, then the uploads and the caches, web
    if (o.safety) log.info(`[restore] safety backup of the current data: ${(await o.safety()).file}`)
    await log.step('restore', 'stop the web container', () => runInChecked(stack, stackCommands.stopWeb(stack), { doing: 'stop the web container' }))
    const restored = await log.step('restore', `database ${manifest.database} (one transaction)`, () =>
      runIn(stack, fromFile(backupCommands.restore(stack), `${work}/db.dump`)),
    )
    if (!restored.ok) {
      await runIn(stack, stackCommands.startWeb(stack))
      throw new UserError(
        `the database restore failed and was rolled back, the data is as it was (web started again): ${restored.stderr.trim().split('\n').slice(-3).join(' ')}`,
      )
    }
    // Sessions, users and pages cached since the backup must not outlive it (a logged-out session
    // would stay valid): the shared cache is emptied while web is stopped, its own pages once it runs.
    await runInChecked(stack, backupCommands.flushCache(stack), { doing: 'empty the cache' })
    await runInChecked(stack, stackCommands.startWeb(stack), { doing: 'start the web container' })
    // (a web container of the Swarm stack is a new one, its page cache empty)
    if (stack.kind === 'compose') await runInChecked(stack, backupCommands.dropPages(stack), { doing: "empty web's page cache" })
    // the uploads only once the database is in: a failed restore leaves newer posters in place
    if (manifest.media)
      await log.step('restore', 'uploads into the media volume', () =>
        runInChecked(stack, fromFile(backupCommands.restoreMedia(stack), `${work}/media.tar`), { doing: 'restore the uploads' }),
      )
    await startStack(stack, log, 120)
  } finally {
    await runIn(stack, ['rm', '-rf', work])
  }
  return manifest
}
