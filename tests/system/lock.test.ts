// The stage lock (lock.ts: a lease in DynamoDB) against the emulator, with real processes: one
// holder at a time, told who and until when; renewed while its run lives; a run killed with
// SIGKILL lets go when its lease expires; npm run unlock; Ctrl-C waits for the command running on
// the host before it lets go. (Ctrl-C during a real restore --aws: deploy.test.ts.)
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { $ } from 'zx'
import { after, before, describe, it } from 'node:test'
import { awsClients, type AwsClients } from '../../tasks/lib/aws/clients.ts'
import { acquireLock, readLock } from '../../tasks/lib/lock.ts'
import { main as unlockMain } from '../../tasks/unlock.ts'
import { startMoto, type Moto } from '../rig/moto.ts'
import { captureLog, noDocker, testDeps } from '../unit/fakes.ts'

const REPO = new URL('../..', import.meta.url).pathname
const MOTO = 'mymdb-rig-moto-lock'
let moto: Moto
let clients: AwsClients

before(async () => {
  moto = await startMoto(MOTO)
  clients = awsClients('us-west-2', moto.env)
})
after(async () => {
  await moto?.stop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** scripts/s3_backup.py lock|unlock, as the host's scheduled backup runs it, in the emulator's container (it has boto3). */
function runS3Backup(...args: string[]) {
  const env = ['AWS_S3_ENDPOINT_URL=http://127.0.0.1:5000', 'AWS_ACCESS_KEY_ID=testing', 'AWS_SECRET_ACCESS_KEY=testing', 'MYMDB_BACKUP_REGION=us-west-2'].flatMap((e) => ['-e', e])
  return $({ quiet: true, nothrow: true, input: readFileSync(join(REPO, 'scripts/s3_backup.py')) })`docker exec -i ${env} ${MOTO} python3 - ${args}`
}
/** The same, which must succeed: its output. */
async function s3Backup(...args: string[]): Promise<string> {
  const r = await runS3Backup(...args)
  assert.equal(r.exitCode, 0, r.stderr)
  return r.stdout.trim()
}

/** A process holding `stage`'s lock (tests/rig/holdlock.ts), started and holding. */
async function holder(stage: string, leaseSeconds: number, workMs = 0): Promise<{ child: ChildProcess; out: () => string; exited: Promise<number | null> }> {
  const child = spawn('node', ['--import', 'tsx', 'tests/rig/holdlock.ts', stage, String(leaseSeconds), String(workMs)], {
    cwd: REPO,
    env: { ...process.env, ...moto.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((res) => child.on('exit', (code, signal) => res(code ?? (signal === 'SIGKILL' ? 137 : null))))
  const deadline = Date.now() + 30_000
  while (!out.includes('held')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the holder did not take the lock:\n${out}`)
    await sleep(100)
  }
  return { child, out: () => out, exited }
}

describe('stage lock (a lease in DynamoDB, on the emulator)', () => {
  it('one holder at a time: the second is told who, since when and when it expires; another stage is another lock; release frees it', async () => {
    const first = await acquireLock(clients.dynamodb, 'one', 'npm run deploy:aws')
    await assert.rejects(
      acquireLock(clients.dynamodb, 'one', 'npm run destroy:aws'),
      /stage one is locked by .+@.+ \(npm run deploy:aws, pid \d+\) since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, \d+ s ago; it expires in (1 min|\d+ s) unless its run renews it: .*npm run unlock releases it at once/,
    )
    const other = await acquireLock(clients.dynamodb, 'two', 'npm run deploy:aws')
    await first.release()
    await first.release() // again: nothing
    assert.equal(await readLock(clients.dynamodb, 'one'), null)
    assert.equal((await readLock(clients.dynamodb, 'two'))?.command, 'npm run deploy:aws')
    await other.release()
  })

  it('renewed while its run lives: a lease of 2 s still holds after 6 s, and is free once released', async () => {
    const lock = await acquireLock(clients.dynamodb, 'renew', 'npm run deploy:aws', { leaseSeconds: 2 })
    for (let i = 0; i < 6; i++) {
      await sleep(1000)
      await assert.rejects(acquireLock(clients.dynamodb, 'renew', 'second'), /stage renew is locked/, `after ${i + 1} s`)
    }
    await lock.release()
    const next = await acquireLock(clients.dynamodb, 'renew', 'second')
    await next.release()
  })

  it('a run killed with SIGKILL holds the lock only until its lease expires; then the next run takes it', async () => {
    const h = await holder('killed', 3)
    h.child.kill('SIGKILL')
    assert.equal(await h.exited, 137)
    const killedAt = Date.now()
    await assert.rejects(acquireLock(clients.dynamodb, 'killed', 'npm run deploy:aws'), /stage killed is locked by .* \(holdlock, pid \d+\)/)
    let taken: Awaited<ReturnType<typeof acquireLock>> | undefined
    while (!taken) {
      assert.ok(Date.now() - killedAt < 10_000, 'the lock expired within its lease')
      taken = await acquireLock(clients.dynamodb, 'killed', 'npm run deploy:aws').catch(() => undefined)
      if (!taken) await sleep(250)
    }
    assert.ok(Date.now() - killedAt > 1000, 'not before its lease ran out')
    await taken.release()
  })

  it('npm run unlock releases a held lock at once; the run that held it neither renews nor removes the next holder', async () => {
    const log = captureLog()
    const first = await acquireLock(clients.dynamodb, 'unlock', 'npm run deploy:aws', { leaseSeconds: 2, log })
    const env = { ...moto.env, MYMDB_STAGE: 'unlock' }
    const d = testDeps(noDocker())
    assert.equal(await unlockMain(['--yes'], env, d), 0, d.log.text())
    assert.match(d.log.text(), /stage unlock is locked by .* \(npm run deploy:aws, pid \d+\)[\s\S]*released/)
    const second = await acquireLock(clients.dynamodb, 'unlock', 'npm run rollback')
    await sleep(1500) // the first renews (and is refused)
    assert.match(log.text(), /the lock of stage unlock was released by someone else \(npm run unlock\): this run no longer holds it/)
    await first.release()
    assert.equal((await readLock(clients.dynamodb, 'unlock'))?.command, 'npm run rollback', 'the second holder keeps it')
    await second.release()
    const none = testDeps(noDocker())
    assert.equal(await unlockMain(['--yes'], env, none), 0)
    assert.match(none.log.text(), /stage unlock in us-west-2 is not locked/)
  })

  it('a lock held by the host\'s scheduled backup (scripts/s3_backup.py) is waited for, with progress, until the backup lets go; held past the wait, the run is refused saying how long it waited', async () => {
    await (await acquireLock(clients.dynamodb, 'backup', 'npm run deploy:aws')).release() // the table exists once a run took a lock
    const token = await s3Backup('lock', 'backup', '3600')
    assert.match(token, /^[0-9a-f]{32}$/)
    const log = captureLog()
    let takenAt = 0
    const waiting = acquireLock(clients.dynamodb, 'backup', 'npm run deploy:aws', { log, pollMs: 250 }).then((l) => ((takenAt = Date.now()), l))
    await sleep(3000)
    assert.equal(takenAt, 0, 'still waiting while the backup holds the lock')
    assert.match(log.text(), /\[lock\] stage backup is held by the host of stage backup \(scheduled backup, pid \d+\) since .*: waiting for it to end \(at most 15 min; 0 s so far\)/)
    const unlockedAt = Date.now()
    await s3Backup('unlock', 'backup', token)
    const lock = await waiting
    assert.ok(takenAt >= unlockedAt, 'taken once the backup let go')
    assert.equal((await readLock(clients.dynamodb, 'backup'))?.command, 'npm run deploy:aws')
    // while the deploy holds it, the scheduled backup is the one that gives way (exit 4: skipped)
    const skipped = await runS3Backup('lock', 'backup', '3600')
    assert.equal(skipped.exitCode, 4, skipped.stderr)
    await lock.release()

    // a backup that holds it longer than the run waits: refused, saying so
    const again = await s3Backup('lock', 'backup', '3600')
    await assert.rejects(
      acquireLock(clients.dynamodb, 'backup', 'npm run deploy:aws', { backupWaitSeconds: 2, pollMs: 250, log: captureLog() }),
      /stage backup is locked by the host of stage backup \(scheduled backup, pid \d+\) since .* \(waited [23] s for it to end\): .*npm run unlock releases it at once/,
    )
    // a lock of a deploy is not waited for
    await s3Backup('unlock', 'backup', again)
    const deploy = await acquireLock(clients.dynamodb, 'backup', 'npm run deploy:aws')
    const refusedAt = Date.now()
    await assert.rejects(acquireLock(clients.dynamodb, 'backup', 'npm run rollback'), /stage backup is locked by .* \(npm run deploy:aws, pid \d+\)/)
    assert.ok(Date.now() - refusedAt < 2000, 'refused at once')
    await deploy.release()
  })

  it('Ctrl-C while a command runs on the host: the lock is held until that command has ended, then released', async () => {
    const h = await holder('ctrl-c', 120, 4000)
    const start = Date.now()
    h.child.kill('SIGINT')
    await sleep(1500)
    await assert.rejects(acquireLock(clients.dynamodb, 'ctrl-c', 'npm run deploy:aws'), /stage ctrl-c is locked/, 'still held while the work runs')
    assert.equal(await h.exited, 130)
    assert.ok(Date.now() - start > 3000, 'it waited for the work')
    assert.match(h.out(), /interrupted: waiting for the command running on the host to end/)
    assert.equal(await readLock(clients.dynamodb, 'ctrl-c'), null, 'released when it ended')
    // with nothing running on the host, Ctrl-C releases at once
    const idle = await holder('ctrl-c', 120)
    idle.child.kill('SIGINT')
    assert.equal(await idle.exited, 130)
    assert.equal(await readLock(clients.dynamodb, 'ctrl-c'), null)
  })
})
