// What the benches share: a timer that prints and records a step's seconds, and SQL in a stack's
// database. The load loop is the rig's (tests/rig/load.ts): a bench and a test load a site the same way.

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

/** `docker compose` arguments: SQL in the stack's database, as postgres (unaligned, tuples only). */
export function psqlArgs(q: string): string[] {
  return ['exec', '-T', '--user', 'postgres', 'db', 'sh', '-c', `psql -v ON_ERROR_STOP=1 -tA -d "$DJANGO_DB_NAME" -c "${q}"`]
}
