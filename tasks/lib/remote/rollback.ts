// A rollback as a step: the host runs an earlier release again from the images it kept. The plan
// reads the host (its deploy history, the release's images, the migrations the database has that
// the release's code lacks) and refuses what would break; apply points the host's .env at the
// release's images, updates the stack (health-gated) and records it. npm run rollback runs it.
import type { HostInfo } from '../aws/instance.ts'
import { parseBackupLog, BACKUP_LOG } from '../backup.ts'
import { UserError } from '../errors.ts'
import { formatDuration, utcTime } from '../log.ts'
import { pickRelease, pointEnvAt, readDeployLog, recordRelease, releases, unknownMigrationsCmd, type Release } from '../releases.ts'
import { runIn, runInChecked, startStack, type Stack } from '../stack.ts'
import type { Step, StepDeps } from '../step.ts'
import { findTarget, openTarget, reachable, type HostAccessSettings } from '../target.ts'

export interface RollbackSettings extends HostAccessSettings {
  /** The release to go back to (default: the one before the running one). */
  to?: string
  /** Go back although the database has migrations the release lacks. */
  allowSchemaChange: boolean
}

export interface RollbackPlan {
  access: HostAccessSettings
  /** Where the host is reached, and its instance (for its pinned host key) when looked up. */
  address: string
  instance: HostInfo | null | undefined
  /** The host's releases, newest first (the first runs now). */
  releases: Release[]
  current: Release
  target: Release
  /** Migrations the database has that the target's code does not know (only with allowSchemaChange). */
  unknownMigrations: string[]
}

export interface RollbackResult {
  from: string
  to: string
  /** False when the target runs already (nothing done). */
  changed: boolean
}

/** An image reference the host's .env can hold as it is (no quote, space or shell character). */
const IMAGE_REF = /^[a-z0-9][a-z0-9._\-/:]*(@sha256:[0-9a-f]{64})?$/

/** Runs `fn` with the host's stack over SSH (its pinned host key checked), closing the session after. */
async function onHost<T>(plan: Pick<RollbackPlan, 'access' | 'address' | 'instance'>, deps: StepDeps, fn: (stack: Stack) => Promise<T>): Promise<T> {
  const { remote, stack } = await openTarget(plan.access, plan.address, deps, deps, plan.instance)
  try {
    return await fn(stack)
  } finally {
    remote.close()
  }
}

/** The migrations the database has that `target`'s code does not know; refused (naming the backup from before them) unless allowed. */
async function schemaCheck(stack: Stack, target: Release, allow: boolean, deps: StepDeps): Promise<string[]> {
  const check = await deps.log.step('schema', `the migrations the database has that ${target.tag} does not know`, () =>
    runInChecked(stack, unknownMigrationsCmd(stack, target.images.web), { doing: `compare the database's migrations with the code of ${target.tag}` }),
  )
  const unknown = check.stdout.split('\n').map((l) => l.trim()).filter((l) => /^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$/.test(l))
  if (unknown.length === 0 || allow) return unknown
  const backups = parseBackupLog((await runIn(stack, ['sh', '-c', `cat ${BACKUP_LOG} 2>/dev/null || true`])).stdout)
  const before = backups.find((b) => b.ok && b.reason === 'pre-migrate' && Date.parse(b.at) > Date.parse(target.at))
  const restore = before
    ? `The backup taken before those migrations ran is ${before.name} (${utcTime(before.at)}): npm run restore -- --aws ${before.name} brings that database back (data entered since is lost)`
    : 'No backup from before those migrations is recorded on the host (npm run backups -- --aws lists the bucket)'
  throw new UserError(`the database has migrations ${target.tag} does not know: ${unknown.join(', ')}. Its code may fail on this schema, so the rollback stops here (nothing changed). ${restore}; or run again with --allow-schema-change to go back anyway`)
}

export const rollbackStep: Step<RollbackSettings, RollbackPlan, RollbackResult> = {
  name: 'rollback',
  // the plan reads the deployed host over SSH: made once, holding the stage's lock
  planHoldingLock: true,

  async plan(s, deps) {
    const { to, allowSchemaChange, ...access } = s
    const found = await findTarget(access, deps, false)
    const where = { access, address: reachable(access, found), instance: found.instance }
    return onHost(where, deps, async (stack) => {
      const list = releases(await readDeployLog(stack))
      const { current, target } = pickRelease(list, to)
      const plan = { ...where, releases: list, current, target, unknownMigrations: [] as string[] }
      if (target.tag === current.tag) return plan
      const refs = Object.values(target.images)
      const bad = refs.filter((r) => !IMAGE_REF.test(r))
      if (bad.length > 0) throw new UserError(`the history names images this rollback will not write into the host's .env: ${bad.join(', ')}`)
      const present = await runIn(stack, ['docker', 'image', 'inspect', '--format', '{{.Id}}', ...refs])
      if (!present.ok)
        throw new UserError(`the images of ${target.tag} are no longer all on the host (it keeps the last MYMDB_KEEP_RELEASES releases): ${present.stderr.trim().split('\n')[0]}. Deploy that commit again instead (git checkout ${target.tag} && npm run deploy:aws)`)
      return { ...plan, unknownMigrations: await schemaCheck(stack, target, allowSchemaChange, deps) }
    })
  },

  show(plan, log, dryRun) {
    const { current, target } = plan
    log.info(`[rollback] releases on the host, newest first: ${plan.releases.map((r) => `${r.tag} (${utcTime(r.at)})`).join(', ')}`)
    if (target.tag === current.tag) return log.info(`[rollback] ${current.tag} is running already: nothing to do`)
    log.info(`[rollback] ${current.tag} -> ${target.tag} (deployed ${utcTime(target.at)}): ${Object.values(target.images).join(', ')}`)
    if (plan.unknownMigrations.length > 0)
      log.warn(`[rollback] the database has migrations ${target.tag} does not know: ${plan.unknownMigrations.join(', ')}; going back anyway (--allow-schema-change)`)
    else log.info(`[rollback] the database has no migration ${target.tag} does not know`)
    if (dryRun) log.info(`[rollback] dry run: would point ~/mymdb/.env at the images of ${target.tag}, update the stack and record it; nothing was changed`)
  },

  async apply(plan, deps) {
    const { current, target } = plan
    if (target.tag === current.tag) return this.preview(plan)
    const start = Date.now()
    await onHost(plan, deps, async (stack) => {
      await recordRelease(stack, () => target.images, { startedAt: new Date(start), rollbackFrom: current.tag }, async () => {
        await runInChecked(stack, pointEnvAt(target.images), { doing: "point the host's .env at the release's images" })
        await startStack(stack, deps.log)
      })
      deps.log.info('')
      deps.log.info(`[rollback] ${target.tag} runs again on ${stack.where} (was ${current.tag}; ${formatDuration(Date.now() - start)})`)
    })
    return { from: current.tag, to: target.tag, changed: true }
  },

  preview(plan) {
    return { from: plan.current.tag, to: plan.target.tag, changed: false }
  },
}
