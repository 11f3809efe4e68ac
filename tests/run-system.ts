// Runs the system tests (tests/system/*.test.ts) in two lanes side by side: the files that run an
// SSH host with its own Docker engine and load loops (deploy, tls, remote) one after another in
// one lane, all the others one after another in the second. Two of the heavy ones at once on a
// 2-core machine slow each other down threefold and their zero-downtime checks start to fail
// (measured: docs/tests.md); a heavy one beside a light one costs little. Each file uses its own
// Compose project, port, rig containers and checkout, so any two files can run side by side.
// Each file's report is printed whole once it ends (the lanes' reports never mix).
//   node --import tsx tests/run-system.ts [file ...]   (files given: those only, one at a time)
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { run } from 'node:test'
import { spec, tap } from 'node:test/reporters'
import type { Readable } from 'node:stream'

const DIR = new URL('system/', import.meta.url).pathname
/** The heavy files, in the order they run (longest first). */
const HEAVY = ['deploy.test.ts', 'tls.test.ts', 'remote.test.ts']

/** The two lanes (pure): the heavy files in their order; the others, the longest first, then by name. */
export function lanes(names: string[]): [string[], string[]] {
  const light = names.filter((n) => !HEAVY.includes(n)).sort()
  const first = ['backup.test.ts', 'second-checkout.test.ts', 'site.test.ts'].filter((n) => light.includes(n))
  return [HEAVY.filter((n) => names.includes(n)), [...first, ...light.filter((n) => !first.includes(n))]]
}

/** Runs `files` one at a time; its report goes to stdout one whole file at a time. Resolves true when all passed. */
function runLane(files: string[]): Promise<boolean> {
  if (files.length === 0) return Promise.resolve(true)
  return new Promise((done) => {
    let ok = true
    const stream = run({ files, concurrency: 1 })
    stream.on('test:fail', () => {
      ok = false
    })
    const tty = process.stdout.isTTY
    const report: Readable = stream.compose(tty ? new spec() : tap)
    // A top-level result line ends a file's block: `ok 3 - name` / `not ok 3 - name` (TAP), or a
    // line starting with ✔ / ✖ at column 0 (spec); the summary lines (#, ℹ) are flushed at the end.
    let block = ''
    report.on('data', (chunk: Buffer | string) => {
      block += chunk.toString()
      const lines = block.split('\n')
      let cut = -1
      lines.forEach((line, i) => {
        if (i < lines.length - 1 && /^(not )?ok \d+ - |^(\x1b\[\d+m)?[✔✖] /.test(line)) cut = i
      })
      if (cut >= 0) {
        process.stdout.write(`${lines.slice(0, cut + 1).join('\n')}\n`)
        block = lines.slice(cut + 1).join('\n')
      }
    })
    report.on('end', () => {
      if (block) process.stdout.write(block)
      done(ok)
    })
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const given = process.argv.slice(2).map((f) => resolve(f))
  const all = readdirSync(DIR).filter((f) => f.endsWith('.test.ts'))
  const results = given.length > 0 ? [await runLane(given)] : await Promise.all(lanes(all).map((files) => runLane(files.map((f) => join(DIR, f)))))
  process.exitCode = results.every(Boolean) ? 0 : 1
}
