// What the benches share: a timer that prints and records a step's seconds; the load loop is the
// rig's (tests/rig/load.ts), so a bench and a test load a site the same way.
export { describeLoad, loadLoop, type LoadResult } from '../tests/rig/load.ts'

/** Runs a step, prints and records how long it took (seconds, one decimal). */
export function timer(record: (what: string, value: string) => void): (what: string, fn: () => Promise<unknown>) => Promise<void> {
  return async (what, fn) => {
    const start = performance.now()
    await fn()
    const s = (performance.now() - start) / 1000
    console.log(`[bench] ${what}: ${s.toFixed(1)} s`)
    record(what, `${s.toFixed(1)} s`)
  }
}
