// The lock's pure parts and the count of commands running on a host. The lock itself (a lease in
// DynamoDB: one holder, expiry, renewal, unlock, Ctrl-C) is tested on the emulator in
// tests/system/lock.test.ts.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { holderText, lockNote, SCHEDULED_BACKUP } from '../../tasks/lib/lock.ts'
import { interruptRemoteWork, remoteWork, remoteWorkRunning, whenRemoteWorkEnds } from '../../tasks/lib/remotework.ts'
import { UserError } from '../../tasks/lib/errors.ts'

describe('deploy lock', () => {
  it('holder text: who, what, since when, and when it expires', () => {
    const h = { by: 'ada@laptop', command: 'npm run deploy:aws', pid: 42, since: '2026-11-27T18:00:00.000Z', expires: '2026-11-27T20:04:30.000Z' }
    assert.equal(holderText(h, new Date('2026-11-27T20:03:00Z')), 'ada@laptop (npm run deploy:aws, pid 42) since 2026-11-27 18:00:00 UTC, 2 h 3 min ago; it expires in 1 min unless its run renews it')
    assert.equal(holderText({ ...h, expires: '' }, new Date('2026-11-27T20:03:00Z')), 'ada@laptop (npm run deploy:aws, pid 42) since 2026-11-27 18:00:00 UTC, 2 h 3 min ago')
  })
  it('a dry run says what a real run would do: stop at a lock of another run, wait for one of the host\'s scheduled backup', () => {
    const now = new Date('2026-11-27T20:03:00Z')
    const h = { by: 'ada@laptop', command: 'npm run deploy:aws', pid: 42, since: '2026-11-27T20:00:00.000Z', expires: '2026-11-27T20:04:30.000Z' }
    assert.match(lockNote('production', h, now), /^stage production is locked by ada@laptop \(npm run deploy:aws, pid 42\) since .*; a real run would stop here$/)
    const backup = { ...h, by: 'the host of stage production', command: SCHEDULED_BACKUP }
    assert.match(lockNote('production', backup, now), /^stage production is locked by the host of stage production \(scheduled backup, pid 42\) .*; a real run would wait for it to end \(up to 15 min\)$/)
  })
  it('the host\'s backup script takes the lock as the scheduled backup that a run waits for', () => {
    assert.match(readFileSync(new URL('../../scripts/s3_backup.py', import.meta.url), 'utf8'), new RegExp(`"command": \\{"S": "${SCHEDULED_BACKUP}"\\}`))
  })
  it('commands on the host are counted; once interrupted, the running one ends and no new one starts', async () => {
    let finish!: () => void
    const running = remoteWork('pg_restore', () => new Promise<string>((resolve) => (finish = () => resolve('done'))))
    assert.equal(remoteWorkRunning(), true)
    let ended = false
    const waited = whenRemoteWorkEnds().then(() => (ended = true))
    interruptRemoteWork('interrupted (SIGINT)')
    await assert.rejects(remoteWork('docker service scale mymdb_web=1', async () => assert.fail('must not start')), (e: unknown) => e instanceof UserError && e.exitCode === 130 && /not started on the host: docker service scale/.test(e.message))
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(ended, false, 'the running command is waited for')
    finish()
    assert.equal(await running, 'done')
    await waited
    assert.equal(remoteWorkRunning(), false)
  })
})
