// One deploy at a time per stage. The lock is an SSM parameter, /mymdb/<stage>/deploy-lock,
// created with PutParameter without Overwrite: creating it is atomic, so of two runs one gets
// ParameterAlreadyExists and is told who holds the lock and since when. deploy:aws, stop --aws,
// destroy:aws, restore --aws and rollback take it; it is released when they end, also on Ctrl-C.
// A lock left by a run that was killed outright stays until `npm run unlock` releases it.
import type { SSMClient } from '@aws-sdk/client-ssm'
import { SSM, aws, awsErrorCode, explainAwsError } from './aws/clients.ts'
import { UserError } from './errors.ts'
import { whoRuns } from './paths.ts'
import { formatAge, utcTime } from './log.ts'

export interface LockHolder {
  /** user@machine */
  by: string
  command: string
  pid: number
  /** ISO time it was taken. */
  since: string
}

/** The SSM parameter of a stage's lock. */
export function lockName(stage: string): string {
  return `/mymdb/${stage}/deploy-lock`
}

/** Reads a lock's value (pure); null when it is not one of ours. */
export function parseHolder(value: string | undefined): LockHolder | null {
  try {
    const h = JSON.parse(value ?? '') as Partial<LockHolder>
    return typeof h.by === 'string' && typeof h.since === 'string' ? { by: h.by, command: String(h.command ?? '?'), pid: Number(h.pid ?? 0), since: h.since } : null
  } catch {
    return null
  }
}

/** "ada@laptop (npm run deploy:aws, pid 4242) since 2026-11-27 18:00:00 UTC, 5 min ago" (pure). */
export function holderText(h: LockHolder, now = new Date()): string {
  const at = Date.parse(h.since)
  const ago = Number.isFinite(at) ? `, ${formatAge(Math.max(0, now.getTime() - at))} ago` : ''
  return `${h.by} (${h.command}, pid ${h.pid}) since ${utcTime(h.since)}${ago}`
}

/** The stage's lock holder, or null when it is free. */
export async function readLock(ssm: SSMClient, stage: string): Promise<LockHolder | null> {
  try {
    const r = await ssm.send(new SSM.GetParameterCommand({ Name: lockName(stage) }))
    return parseHolder(r.Parameter?.Value) ?? { by: '?', command: '?', pid: 0, since: r.Parameter?.LastModifiedDate?.toISOString() ?? '' }
  } catch (err) {
    if (awsErrorCode(err) === 'ParameterNotFound') return null
    throw err
  }
}

export interface Lock {
  holder: LockHolder
  /** Releases the lock if it is still ours (idempotent). */
  release(): Promise<void>
}

/**
 * Takes the stage's lock for `command`, or throws a UserError naming who holds it and since
 * when. Until it is released, Ctrl-C (SIGINT) and SIGTERM release it before the process ends.
 */
export async function acquireLock(ssm: SSMClient, stage: string, command: string, now = new Date()): Promise<Lock> {
  const holder: LockHolder = { by: whoRuns(), command, pid: process.pid, since: now.toISOString() }
  const value = JSON.stringify(holder)
  try {
    await ssm.send(
      new SSM.PutParameterCommand({
        Name: lockName(stage),
        Value: value,
        Type: 'String',
        Overwrite: false,
        Description: `MyMDB: a deploy, stop, destroy, restore or rollback of stage ${stage} is running (released when it ends; npm run unlock releases a stale one)`,
      }),
    )
  } catch (err) {
    if (awsErrorCode(err) !== 'ParameterAlreadyExists') throw explainAwsError(err, `take the deploy lock ${lockName(stage)}`)
    const other = await readLock(ssm, stage)
    throw new UserError(
      `stage ${stage} is locked by ${other ? holderText(other, now) : 'a run that just ended (try again)'}: another deploy, stop, destroy, restore or rollback of this stage is running; ` +
        'wait for it to end. If that run is gone (killed, or its machine is off), release the lock with: npm run unlock',
    )
  }
  let released = false
  const release = async () => {
    if (released) return
    released = true
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    try {
      const r = await ssm.send(new SSM.GetParameterCommand({ Name: lockName(stage) }))
      if (r.Parameter?.Value === value) await ssm.send(new SSM.DeleteParameterCommand({ Name: lockName(stage) }))
    } catch (err) {
      if (awsErrorCode(err) !== 'ParameterNotFound') throw err
    }
  }
  // A handler replaces Node's default exit on these signals: release, then end as the signal would.
  const onSignal = (signal: NodeJS.Signals) => {
    const code = signal === 'SIGINT' ? 130 : 143
    const timeout = setTimeout(() => process.exit(code), 10_000)
    release().finally(() => {
      clearTimeout(timeout)
      process.exit(code)
    })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return { holder, release }
}

/** Runs `fn` holding the stage's lock; releases it however `fn` ends. */
export async function withLock<T>(ssm: SSMClient, stage: string, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(ssm, stage, command)
  try {
    return await fn()
  } finally {
    await aws(`release the deploy lock ${lockName(stage)}`, () => lock.release())
  }
}
