// Runs the system tests (tests/system/*.test.ts, or the files given as arguments) a few files at a
// time, the longest first, so that the short ones fill in beside them: most of their time is spent
// waiting for containers, not computing. Each file uses its own Compose project, port, rig
// containers and checkout, so files can run side by side. (node --test sorts the files by name;
// node:test's run() keeps this order.)
//   node --import tsx tests/run-system.ts [file ...]      SYSTEM_TEST_CONCURRENCY (default 3)
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { run } from 'node:test'
import { spec, tap } from 'node:test/reporters'

const DIR = new URL('system/', import.meta.url).pathname
/** The files that take longest (minutes each, measured): started first. */
const LONGEST_FIRST = ['deploy.test.ts', 'tls.test.ts', 'remote.test.ts', 'backup.test.ts', 'second-checkout.test.ts']

/** The files in running order: the longest first, then the rest by name (pure). */
export function runningOrder(names: string[]): string[] {
  const rank = (n: string) => (LONGEST_FIRST.includes(n) ? LONGEST_FIRST.indexOf(n) : LONGEST_FIRST.length)
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const given = process.argv.slice(2)
  const files = given.length > 0 ? given.map((f) => resolve(f)) : runningOrder(readdirSync(DIR).filter((f) => f.endsWith('.test.ts'))).map((f) => join(DIR, f))
  const concurrency = Number(process.env.SYSTEM_TEST_CONCURRENCY ?? 3)
  const stream = run({ files, concurrency: Number.isInteger(concurrency) && concurrency > 0 ? concurrency : 3 })
  stream.on('test:fail', () => {
    process.exitCode = 1
  })
  stream.compose(process.stdout.isTTY ? new spec() : tap).pipe(process.stdout)
}
