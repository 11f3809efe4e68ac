// The deploy lock (an SSM parameter created without Overwrite) and npm run unlock, on an
// in-memory SSM: one holder at a time, the second told who and since when, release only of
// one's own lock, the explicit unlock.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { SSMClient } from '@aws-sdk/client-ssm'
import { acquireLock, holderText, lockName, parseHolder, readLock, withLock } from '../../tasks/lib/lock.ts'
import { main as unlockMain } from '../../tasks/unlock.ts'
import { fakeSsm, noDocker, testDeps } from './fakes.ts'

describe('deploy lock', () => {
  it('one holder at a time; the second is told who holds it and since when, and how to release a stale one', async () => {
    const ssm = fakeSsm()
    const first = await acquireLock(ssm as unknown as SSMClient, 'qa', 'npm run deploy:aws', new Date('2026-11-27T18:00:00Z'))
    assert.equal(first.holder.pid, process.pid)
    await assert.rejects(
      acquireLock(ssm as unknown as SSMClient, 'qa', 'npm run destroy:aws', new Date('2026-11-27T18:05:00Z')),
      /stage qa is locked by .+@.+ \(npm run deploy:aws, pid \d+\) since 2026-11-27 18:00:00 UTC, 5 min ago: .*npm run unlock/,
    )
    // another stage is another lock
    const other = await acquireLock(ssm as unknown as SSMClient, 'prod', 'npm run deploy:aws')
    await first.release()
    await first.release() // again: nothing
    assert.equal(await readLock(ssm as unknown as SSMClient, 'qa'), null)
    assert.ok(await readLock(ssm as unknown as SSMClient, 'prod'))
    await other.release()
  })
  it('release removes only its own lock (one taken over by unlock and a new run stays)', async () => {
    const ssm = fakeSsm()
    const mine = await acquireLock(ssm as unknown as SSMClient, 'qa', 'npm run deploy:aws')
    ssm.params.set(lockName('qa'), JSON.stringify({ by: 'bob@ci', command: 'npm run deploy:aws', pid: 7, since: new Date().toISOString() }))
    await mine.release()
    assert.equal((await readLock(ssm as unknown as SSMClient, 'qa'))?.by, 'bob@ci')
  })
  it('withLock releases however the work ends', async () => {
    const ssm = fakeSsm()
    await assert.rejects(withLock(ssm as unknown as SSMClient, 'qa', 'x', async () => { throw new Error('step failed') }), /step failed/)
    assert.equal(ssm.params.size, 0)
    assert.equal(await withLock(ssm as unknown as SSMClient, 'qa', 'x', async () => 42), 42)
    assert.equal(ssm.params.size, 0)
  })
  it('holder text and parsing', () => {
    const h = { by: 'ada@laptop', command: 'npm run deploy:aws', pid: 42, since: '2026-11-27T18:00:00.000Z' }
    assert.equal(holderText(h, new Date('2026-11-27T20:03:00Z')), 'ada@laptop (npm run deploy:aws, pid 42) since 2026-11-27 18:00:00 UTC, 2 h 3 min ago')
    assert.deepEqual(parseHolder(JSON.stringify(h)), h)
    assert.equal(parseHolder('not json'), null)
  })
})

describe('npm run unlock', () => {
  const env = { AWS_REGION: 'us-west-2', MYMDB_STAGE: 'qa' }
  it('shows the holder and releases the lock; without one, says so', async () => {
    const ssm = fakeSsm()
    ssm.params.set(lockName('qa'), JSON.stringify({ by: 'bob@ci', command: 'npm run deploy:aws', pid: 7, since: '2026-11-27T18:00:00Z' }))
    const d = testDeps(noDocker())
    assert.equal(await unlockMain([], env, { ...d, awsClients: () => ({ ssm }) as never }), 0, d.log.text())
    assert.match(d.log.text(), /stage qa is locked by bob@ci \(npm run deploy:aws, pid 7\) since 2026-11-27 18:00:00 UTC/)
    assert.match(d.log.text(), /released/)
    assert.equal(ssm.params.size, 0)
    const again = testDeps(noDocker())
    assert.equal(await unlockMain([], env, { ...again, awsClients: () => ({ ssm }) as never }), 0)
    assert.match(again.log.text(), /stage qa in us-west-2 is not locked/)
  })
  it('on a terminal it asks; "no" keeps the lock', async () => {
    const ssm = fakeSsm()
    ssm.params.set(lockName('qa'), JSON.stringify({ by: 'bob@ci', command: 'x', pid: 7, since: '2026-11-27T18:00:00Z' }))
    const d = testDeps(noDocker(), { interactive: true, confirm: async () => false })
    assert.equal(await unlockMain([], env, { ...d, awsClients: () => ({ ssm }) as never }), 1)
    assert.match(d.log.err.join(''), /the lock stays/)
    assert.equal(ssm.params.size, 1)
  })
})
