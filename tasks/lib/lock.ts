// One change to a stage at a time: a lease in DynamoDB. The table mymdb-locks (made on first use,
// pay per request) holds one item per stage while a run changes it. Taking it is a conditional
// write (no item, or the one there has expired), so of two runs one gets it and the other is told
// who holds it, since when, and when it expires (or, when the holder is the host's scheduled
// backup, waits for it to end, up to 15 min). The holder renews it every third of the lease; a run
// that dies (kill -9, a machine that went off) stops renewing and its lock expires by itself
// within LEASE_SECONDS. Renewing and releasing are conditional on the holder's own token: a lock
// released by `npm run unlock` and taken by another run is never renewed or removed by the first.
//
// Ctrl-C: while a command runs on the host (remotework.ts), the run waits for it to end, starts
// nothing new, then releases the lock and ends; a second Ctrl-C leaves at once (the command on
// the host goes on, and the lock expires by itself). With no command on the host it releases and
// ends at once.
import { randomBytes } from 'node:crypto'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDB, aws, awsErrorCode, explainAwsError, type AwsClients } from './aws/clients.ts'
import { UserError } from './errors.ts'
import { whoRuns } from './paths.ts'
import { formatAge, utcTime, type Log } from './log.ts'
import { interruptRemoteWork, remoteWorkRunning, whenRemoteWorkEnds } from './remotework.ts'
import { PROJECT_TAG } from './names.ts'

/** The table of the locks (one item per stage; shared by the stages of an account and region). */
export const LOCK_TABLE = 'mymdb-locks'
/** How long a lock outlives its last renewal. */
export const LEASE_SECONDS = 120
/** The command the host's scheduled backup holds the lock as (scripts/s3_backup.py lock). */
export const SCHEDULED_BACKUP = 'scheduled backup'
/** How long a run waits for the host's scheduled backup to let go of the lock before it gives up. */
export const BACKUP_WAIT_SECONDS = 900

export interface LockHolder {
  /** user@machine */
  by: string
  command: string
  pid: number
  /** ISO time it was taken. */
  since: string
  /** ISO time it expires unless renewed ('' when unknown). */
  expires: string
}

/** Where a stage's lock is, for messages. */
export function lockName(stage: string): string {
  return `${LOCK_TABLE}/${stage}`
}

/** "ada@laptop (npm run deploy:aws, pid 4242) since 2026-11-27 18:00:00 UTC, 5 min ago" (pure). */
export function holderText(h: LockHolder, now = new Date()): string {
  const at = Date.parse(h.since)
  const ago = Number.isFinite(at) ? `, ${formatAge(Math.max(0, now.getTime() - at))} ago` : ''
  const ends = Date.parse(h.expires)
  const left = Number.isFinite(ends) ? `; it expires in ${formatAge(Math.max(0, ends - now.getTime()))} unless its run renews it` : ''
  return `${h.by} (${h.command}, pid ${h.pid}) since ${utcTime(h.since)}${ago}${left}`
}

/** What a dry run says of a held lock (pure): what a real run would do about it. */
export function lockNote(stage: string, h: LockHolder, now = new Date()): string {
  const would = h.command === SCHEDULED_BACKUP ? `wait for it to end (up to ${formatAge(BACKUP_WAIT_SECONDS * 1000)})` : 'stop here'
  return `stage ${stage} is locked by ${holderText(h, now)}; a real run would ${would}`
}

type Item = Record<string, { S?: string; N?: string }>

function holderOf(item: Item | undefined): LockHolder | null {
  if (!item?.stage) return null
  const expires = Number(item.expires?.N ?? NaN)
  return {
    by: item.by?.S ?? '?',
    command: item.command?.S ?? '?',
    pid: Number(item.pid?.N ?? 0),
    since: item.since?.S ?? '',
    expires: Number.isFinite(expires) ? new Date(expires).toISOString() : '',
  }
}

/** The stage's lock holder, or null when it is free (no lock, or an expired one). */
export async function readLock(db: DynamoDBClient, stage: string, now = new Date()): Promise<LockHolder | null> {
  try {
    const r = await db.send(new DynamoDB.GetItemCommand({ TableName: LOCK_TABLE, Key: { stage: { S: stage } }, ConsistentRead: true }))
    const holder = holderOf(r.Item as Item | undefined)
    return holder && Date.parse(holder.expires) > now.getTime() ? holder : null
  } catch (err) {
    if (awsErrorCode(err) === 'ResourceNotFoundException') return null
    throw err
  }
}

/** Removes the stage's lock whoever holds it (npm run unlock). */
export async function breakLock(db: DynamoDBClient, stage: string): Promise<void> {
  try {
    await db.send(new DynamoDB.DeleteItemCommand({ TableName: LOCK_TABLE, Key: { stage: { S: stage } } }))
  } catch (err) {
    if (awsErrorCode(err) !== 'ResourceNotFoundException') throw err
  }
}

/** Makes the lock table unless it exists, and waits until it takes writes. */
async function ensureTable(db: DynamoDBClient): Promise<void> {
  const active = async () => {
    try {
      return (await db.send(new DynamoDB.DescribeTableCommand({ TableName: LOCK_TABLE }))).Table?.TableStatus === 'ACTIVE'
    } catch (err) {
      if (awsErrorCode(err) === 'ResourceNotFoundException') return false
      throw err
    }
  }
  if (await active()) return
  try {
    await db.send(
      new DynamoDB.CreateTableCommand({
        TableName: LOCK_TABLE,
        AttributeDefinitions: [{ AttributeName: 'stage', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'stage', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
        Tags: [{ Key: 'Project', Value: PROJECT_TAG }],
      }),
    )
  } catch (err) {
    if (awsErrorCode(err) !== 'ResourceInUseException') throw err // made by another run just now
  }
  for (let i = 0; i < 60; i++) {
    if (await active()) return
    await new Promise((r) => setTimeout(r, 1000))
  }
  throw new UserError(`the DynamoDB table ${LOCK_TABLE} did not become active within 60 s: run the command again`)
}

export interface Lock {
  holder: LockHolder
  /** Releases the lock if it is still ours (idempotent). */
  release(): Promise<void>
}

export interface LockOptions {
  now?: Date
  /** How long the lease lasts without renewal (default LEASE_SECONDS). */
  leaseSeconds?: number
  /** Progress and Ctrl-C messages (default: stderr). */
  log?: Pick<Log, 'warn'>
  /** How long a lock held by the host's scheduled backup is waited for (default BACKUP_WAIT_SECONDS). */
  backupWaitSeconds?: number
  /** How often a held lock is read again while waiting (default 2000 ms). */
  pollMs?: number
}

/**
 * Takes the stage's lock for `command`, or throws a UserError naming who holds it, since when and
 * until when; a lock held by the host's scheduled backup is waited for (up to BACKUP_WAIT_SECONDS). Until it is released it is renewed, and Ctrl-C (SIGINT) and SIGTERM release it
 * once no command runs on the host any more (see the top of this file).
 */
export async function acquireLock(db: DynamoDBClient, stage: string, command: string, o: LockOptions = {}): Promise<Lock> {
  const leaseMs = (o.leaseSeconds ?? LEASE_SECONDS) * 1000
  const warn = o.log?.warn.bind(o.log) ?? ((text: string) => process.stderr.write(`${text}\n`))
  const token = randomBytes(16).toString('hex')
  await aws(`make the lock table ${LOCK_TABLE} (DynamoDB)`, () => ensureTable(db))
  /** Takes the lock at `now`, or false when another run holds it. */
  const take = async (now: Date): Promise<LockHolder | false> => {
    const holder: LockHolder = { by: whoRuns(), command, pid: process.pid, since: now.toISOString(), expires: new Date(now.getTime() + leaseMs).toISOString() }
    try {
      await db.send(
        new DynamoDB.PutItemCommand({
          TableName: LOCK_TABLE,
          Item: {
            stage: { S: stage },
            token: { S: token },
            by: { S: holder.by },
            command: { S: command },
            pid: { N: String(process.pid) },
            since: { S: holder.since },
            expires: { N: String(now.getTime() + leaseMs) },
          },
          ConditionExpression: 'attribute_not_exists(#stage) OR #expires < :now',
          ExpressionAttributeNames: { '#stage': 'stage', '#expires': 'expires' },
          ExpressionAttributeValues: { ':now': { N: String(now.getTime()) } },
        }),
      )
      return holder
    } catch (err) {
      if (awsErrorCode(err) !== 'ConditionalCheckFailedException') throw explainAwsError(err, `take the lock ${lockName(stage)}`)
      return false
    }
  }
  // Held by another run: refused at once, unless that run is the host's scheduled backup (a few
  // seconds to minutes): then waited for, with a line every 30 s, up to BACKUP_WAIT_SECONDS.
  const waitMs = (o.backupWaitSeconds ?? BACKUP_WAIT_SECONDS) * 1000
  const started = Date.now()
  let told = 0
  let holder = await take(o.now ?? new Date())
  for (let vanished = 0; !holder; holder = await take(new Date())) {
    const now = new Date()
    const other = await readLock(db, stage, now)
    if (!other && ++vanished <= 3) continue // it ended between the two reads: take it now
    const waited = Date.now() - started
    if (other?.command === SCHEDULED_BACKUP && waited < waitMs) {
      if (told === 0 || Date.now() - told >= 30_000) {
        warn(`[lock] stage ${stage} is held by ${holderText(other, now)}: waiting for it to end (at most ${formatAge(waitMs)}; ${formatAge(waited)} so far)`)
        told = Date.now()
      }
      await new Promise((r) => setTimeout(r, o.pollMs ?? 2000))
      continue
    }
    const after = waited >= waitMs && other?.command === SCHEDULED_BACKUP ? ` (waited ${formatAge(waited)} for it to end)` : ''
    throw new UserError(
      `stage ${stage} is locked by ${other ? holderText(other, now) : 'a run that just ended (try again)'}${after}: another deploy, stop, destroy, backup, restore or rollback of this stage is running; ` +
        `wait for it to end. A run that was killed lets go within ${Math.round(leaseMs / 1000)} s; npm run unlock releases it at once`,
    )
  }
  const taken = holder

  // renewing and releasing touch the item only while it holds this run's token
  const item = { TableName: LOCK_TABLE, Key: { stage: { S: stage } } }
  const ifMine = (names: Record<string, string> = {}, values: Record<string, { N: string }> = {}) => ({
    ConditionExpression: '#token = :token',
    ExpressionAttributeNames: { '#token': 'token', ...names },
    ExpressionAttributeValues: { ':token': { S: token }, ...values },
  })

  // renewed while the run lives: a third of the lease, so that two lost renewals still hold it
  let lost = false
  const renew = async () => {
    try {
      await db.send(
        new DynamoDB.UpdateItemCommand({ ...item, UpdateExpression: 'SET #expires = :expires', ...ifMine({ '#expires': 'expires' }, { ':expires': { N: String(Date.now() + leaseMs) } }) }),
      )
    } catch (err) {
      if (awsErrorCode(err) === 'ConditionalCheckFailedException' && !lost) {
        lost = true
        warn(`[lock] the lock of stage ${stage} was released by someone else (npm run unlock): this run no longer holds it`)
      }
      // a failed renewal is tried again at the next tick; the lease covers two of them
    }
  }
  const timer = setInterval(() => void renew(), Math.max(500, Math.floor(leaseMs / 3)))
  timer.unref()

  let released = false
  const release = async () => {
    if (released) return
    released = true
    clearInterval(timer)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    try {
      await db.send(
        new DynamoDB.DeleteItemCommand({ ...item, ...ifMine() }),
      )
    } catch (err) {
      if (awsErrorCode(err) !== 'ConditionalCheckFailedException') throw err // not ours any more: nothing to do
    }
  }
  // A handler replaces Node's default exit on these signals: wait for the host, release, then end
  // as the signal would; the second signal ends at once.
  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    const code = signal === 'SIGINT' ? 130 : 143
    if (signalled) {
      warn(`[lock] leaving now: what runs on the host goes on, and the lock of stage ${stage} expires by itself within ${Math.round(leaseMs / 1000)} s`)
      process.exit(code)
    }
    signalled = true
    const finish = () => {
      const timeout = setTimeout(() => process.exit(code), 10_000)
      release().finally(() => {
        clearTimeout(timeout)
        process.exit(code)
      })
    }
    if (!remoteWorkRunning()) return finish()
    interruptRemoteWork(`interrupted (${signal})`)
    warn(`[lock] interrupted: waiting for the command running on the host to end (nothing new starts), then the lock of stage ${stage} is released. Ctrl-C again leaves at once`)
    void whenRemoteWorkEnds().then(finish)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return { holder: taken, release }
}

/** Runs `fn` holding the stage's lock; releases it however `fn` ends. */
export async function withLock<T>(db: DynamoDBClient, stage: string, command: string, fn: () => Promise<T>, o: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(db, stage, command, o)
  try {
    return await fn()
  } finally {
    await aws(`release the lock ${lockName(stage)}`, () => lock.release())
  }
}

/** Runs `fn` holding a lock. */
export type Hold = <T>(fn: () => Promise<T>) => Promise<T>

/** A stage's lock as a task uses it: held by a real run; a dry run only reads who holds it. */
export interface StageLock {
  hold: Hold
  /** What a real run would meet (lockNote), or undefined when the lock is free. */
  note(): Promise<string | undefined>
}

/**
 * The stage's lock, for a task that changes the stage; none for a stage that is not on AWS (no
 * AWS_REGION: remote:up or push alone towards a host or registry of your own).
 */
export function stageLock(deps: { clients(region: string): AwsClients; log: Pick<Log, 'warn'> }, where: { AWS_REGION?: string; MYMDB_STAGE?: string }, command: string): StageLock | undefined {
  const { AWS_REGION: region, MYMDB_STAGE: stage } = where
  if (!region || !stage) return undefined
  return {
    hold: (fn) => withLock(deps.clients(region).dynamodb, stage, command, fn, { log: deps.log }),
    note: async () => {
      const holder = await aws(`read the lock ${lockName(stage)}`, () => readLock(deps.clients(region).dynamodb, stage))
      return holder ? lockNote(stage, holder) : undefined
    },
  }
}
