// The release of a new version on the host, while the old one still serves: whether its
// migrations change the database (a check in a throw-away container of the new web image), a
// backup first when they do, then the migrations once (manage.py release); and afterwards the
// images no kept release uses removed. up.ts runs these in its release and prune phases.
import { hostBackupOptions, takeBackup } from '../backup.ts'
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { IMAGE_LIST_FORMAT, pruneRefs, readDeployLog, releases } from '../releases.ts'
import type { Cmd } from '../sh.ts'
import { splitImageRef } from '../stackfile.ts'
import { oneOffCmd, runIn, STACK_LABEL, stackPs, type Stack } from '../stack.ts'
import type { RemoteUpPlan } from './plan.ts'

/**
 * Removes the images of the stack's repositories that none of the last `keepReleases` releases
 * of the deploy history uses (a rollback goes back to those). Best effort: an image a container
 * still uses stays, and a failure here does not fail the deploy.
 */
export async function pruneImages(stack: Stack, plan: Pick<RemoteUpPlan, 'images' | 'keepReleases'>, log: Log): Promise<void> {
  // the containers of replaced Swarm tasks hold their images: they go first
  await runIn(stack, ['docker', 'container', 'prune', '--force', '--filter', STACK_LABEL])
  const kept = releases(await readDeployLog(stack)).slice(0, plan.keepReleases)
  const keptRefs = [...new Set([...Object.values(plan.images), ...kept.flatMap((r) => Object.values(r.images))])]
  const ids = await runIn(stack, ['sh', '-c', 'for r in "$@"; do docker image inspect --format "{{.Id}}" "$r" 2>/dev/null; done', 'sh', ...keptRefs])
  const keptIds = new Set(ids.stdout.split('\n').map((l) => l.trim()).filter(Boolean))
  const repositories = [...new Set(Object.values(plan.images).map((ref) => splitImageRef(ref).repository))]
  const listing = await runIn(stack, ['docker', 'image', 'ls', '--no-trunc', '--format', IMAGE_LIST_FORMAT])
  const old = listing.ok && keptIds.size > 0 ? pruneRefs(listing.stdout, repositories, keptIds) : []
  if (old.length === 0) return
  const removed = await runIn(stack, ['sh', '-c', 'for r in "$@"; do docker rmi "$r" >/dev/null 2>&1 && echo "$r"; done; true', 'sh', ...old])
  const gone = removed.stdout.split('\n').filter(Boolean)
  log.info(`[prune] removed ${gone.length} image(s) of releases older than the last ${plan.keepReleases} (${kept.map((r) => r.tag).join(', ')} kept for rollbacks)${gone.length > 0 ? `: ${gone.join(', ')}` : ''}`)
}

/** manage.py migrate --check with the web image just pulled (the running web stays as it is). */
export function migrateCheckNew(stack: Stack, web: string): Cmd {
  return oneOffCmd(stack, ['manage.py', 'migrate', '--check'], { image: web })
}

/** manage.py release: a version's migrations, once, in a throw-away container of its web image (default: the service's). */
export function releaseCmd(stack: Stack, web?: string): Cmd {
  return oneOffCmd(stack, ['manage.py', 'release'], web ? { image: web } : {})
}

/** What the release step did before the new version started. */
export interface ReleaseDone {
  /** Its migrations were applied (with the pre-migrate backup's name, when one was taken). */
  migrated?: { backup?: string }
  /** No database ran yet (a first deploy, a stopped stack): the migrations run once it has started. */
  later?: boolean
}

/**
 * The release step, while the old version still serves: when the new web image has migrations to
 * apply, a backup into the backup bucket first (reason pre-migrate; when the deploy knows the
 * bucket), then the migrations, once, in a throw-away container of the new image. A failed
 * backup or migration ends the deploy here: the old version keeps serving.
 */
export async function releaseBeforeStart(stack: Stack, web: string, stage: string | undefined, log: Log, o: { rds?: boolean } = {}): Promise<ReleaseDone> {
  // (a database on RDS is always there; the stack's own db must run)
  if (!o.rds && !(await stackPs(stack)).some((p) => p.Service === 'db' && p.State === 'running')) return { later: true }
  // (not ok: migrations to apply, or the check itself failed; either way the release step runs)
  const unchanged = await log.step('release', 'whether the new version changes the database (manage.py migrate --check, in a throw-away container of it)', async () =>
    (await runIn(stack, migrateCheckNew(stack, web))).ok,
  )
  if (unchanged) {
    log.info('[release] the new version has no migrations to apply: no backup needed before it starts')
    return {}
  }
  let backup: string | undefined
  if (stage) {
    log.info('[backup] the new version changes the database (manage.py migrate --check): a backup first')
    const r = await takeBackup(stack, hostBackupOptions(stage, 'pre-migrate'), log).catch((e: unknown) => {
      throw new UserError(`the backup before the migrations failed, so the new version was not started (the old one still runs): ${e instanceof Error ? e.message : String(e)}`)
    })
    log.info(`[backup] before the migrations: ${r.file}`)
    backup = r.name
  }
  const migrated = await log.step('release', 'the new version\'s migrations, once, before it takes traffic (manage.py release)', () =>
    runIn(stack, releaseCmd(stack, web), { stream: log.prefixed('release') }),
  )
  if (!migrated.ok)
    throw new UserError(
      `the new version's migrations failed, so it was not started: the old version still serves. Each migration is all or nothing, so the database is as far as the ones before the failed one got` +
        `${backup ? `; to put it back as it was before the deploy: npm run restore -- ${backup} --aws` : ''}. manage.py release said: ${migrated.stderr.trim().split('\n').slice(-3).join(' ')}`,
    )
  return { migrated: { ...(backup ? { backup } : {}) } }
}
