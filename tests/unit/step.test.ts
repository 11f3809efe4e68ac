// runStep, the one way every step runs: plan, show, (a question), apply; a dry run shows and applies nothing.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runStep, type Step, type StepDeps } from '../../tasks/lib/step.ts'
import type { StageLock } from '../../tasks/lib/lock.ts'
import { captureLog } from './fakes.ts'

/** A step that records what runStep called, in order. */
function recorder(holder?: string, planHoldingLock = false) {
  const calls: string[] = []
  let plans = 0
  const step: Step<string, number, string> = {
    planHoldingLock,
    name: 'rec',
    plan: async (s) => (calls.push(`plan ${s}`), ++plans),
    show: (p, _log, dryRun) => void calls.push(`show ${p}${dryRun ? ' dry' : ''}`),
    apply: async (p) => (calls.push(`apply ${p}`), `applied ${p}`),
    preview: (p) => `preview ${p}`,
  }
  const hold: StageLock = {
    async hold(fn) {
      calls.push('lock')
      try {
        return await fn()
      } finally {
        calls.push('unlock')
      }
    },
    note: async () => (calls.push('read lock'), holder && `locked by ${holder}`),
  }
  return { calls, step, hold }
}
const deps = () => ({ log: captureLog() }) as unknown as StepDeps

describe('runStep', () => {
  it('holding the lock: the plan made again under it is shown, asked about and applied', async () => {
    const { calls, step, hold } = recorder()
    const r = await runStep(step, 's', deps(), false, hold, async (p) => void calls.push(`confirm ${p}`))
    assert.equal(r, 'applied 2')
    assert.deepEqual(calls, ['plan s', 'lock', 'plan s', 'show 2', 'confirm 2', 'apply 2', 'unlock'])
  })

  it('a refused question applies nothing and lets the lock go', async () => {
    const { calls, step, hold } = recorder()
    await assert.rejects(runStep(step, 's', deps(), false, hold, async () => Promise.reject(new Error('not confirmed'))), /not confirmed/)
    assert.ok(!calls.some((c) => c.startsWith('apply')), calls.join(', '))
    assert.equal(calls.at(-1), 'unlock')
  })

  it('a dry run shows the plan and hands on its preview: no lock, no question, no apply', async () => {
    const { calls, step, hold } = recorder()
    const r = await runStep(step, 's', deps(), true, hold, async () => void calls.push('confirm'))
    assert.equal(r, 'preview 1')
    assert.deepEqual(calls, ['read lock', 'plan s', 'show 1 dry'])
  })

  it("a dry run says who holds the stage's lock, and goes on", async () => {
    const { calls, step, hold } = recorder('ada (npm run deploy:aws)')
    const d = deps()
    assert.equal(await runStep(step, 's', d, true, hold), 'preview 1')
    assert.deepEqual(calls, ['read lock', 'plan s', 'show 1 dry'])
    assert.match((d.log as ReturnType<typeof captureLog>).text(), /\[rec\] note: locked by ada \(npm run deploy:aws\)/)
  })

  it('a step whose plan reads a deployed stage plans once, holding the lock', async () => {
    const { calls, step, hold } = recorder(undefined, true)
    assert.equal(await runStep(step, 's', deps(), false, hold), 'applied 1')
    assert.deepEqual(calls, ['lock', 'plan s', 'show 1', 'apply 1', 'unlock'])
  })

  it('without a lock: plan, show, apply once', async () => {
    const { calls, step } = recorder()
    assert.equal(await runStep(step, 's', deps(), false), 'applied 1')
    assert.deepEqual(calls, ['plan s', 'show 1', 'apply 1'])
  })
})
