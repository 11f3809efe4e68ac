// Runs the system tests (tests/system/*.test.ts) in two lanes side by side. The first: the files
// that run an SSH host with its own Docker engine (deploy and tls, with load loops; rds, an SSH
// host and a database; remote), one after another, then the short files that need no stack of
// their own (the emulated AWS steps, the lock, push). The second: the files with a local stack
// (backup, second-checkout, site, checks), then cluster (four SSH hosts), which starts about when
// deploy ends. Three heavy ones at once on a 2-core machine slow each other down threefold and
// their zero-downtime checks fail (measured: docs/tests.md). Each file uses its own Compose
// project, port, rig containers and checkout, so any two files can run side by side.
// Each file's report is printed whole once it ends (the lanes' reports never mix). tls, remote,
// cluster and rds push to one registry started here for the run, each under a path of its own:
// the second one's push mounts the layers the first one sent instead of compressing ~570 MB again.
// With --with <npm script> (npm test: the type check, the dependency rules and the unit tests),
// the second lane runs that script first: it is lighter than the first lane by more than that.
//   node --import tsx tests/run-system.ts [--with <npm script>] [file ...]   (files given: those only, one at a time)
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { run } from 'node:test'
import { spec, tap } from 'node:test/reporters'
import type { Readable } from 'node:stream'
import { startRegistry } from './rig/registry.ts'

const DIR = new URL('system/', import.meta.url).pathname
const STARTED = Date.now()
/** The files of the first lane that run an SSH host, in the order they run (longest first); any file not in SECOND runs after them. */
const HEAVY = ['deploy.test.ts', 'tls.test.ts', 'rds.test.ts', 'remote.test.ts']
/** The second lane, in order: the files with a local stack, then cluster. */
const SECOND = ['backup.test.ts', 'second-checkout.test.ts', 'site.test.ts', 'checks.test.ts', 'cluster.test.ts']
/** The files that push the stack's images to one registry for the run, each under a path of its own (rig/registry.ts rigRegistry). */
const SHARE_REGISTRY = ['tls.test.ts', 'remote.test.ts', 'cluster.test.ts', 'rds.test.ts']
/**
 * The whole run ends by then (MYMDB_TEST_DEADLINE_MINUTES, default 80): the files still running are
 * stopped and their output so far printed, so that a file that hangs fails the run with what it
 * printed instead of running into CI's own limit (90 min) with nothing to show.
 */
const DEADLINE_MS = Number(process.env.MYMDB_TEST_DEADLINE_MINUTES || 80) * 60_000
const deadline = new AbortController()

/** The two lanes (pure): the heavy files, then the others not in SECOND by name; SECOND in its order. */
export function lanes(names: string[]): [string[], string[]] {
  const rest = names.filter((n) => !HEAVY.includes(n) && !SECOND.includes(n)).sort()
  return [[...HEAVY.filter((n) => names.includes(n)), ...rest], SECOND.filter((n) => names.includes(n))]
}

/** Runs `files` one at a time; its report goes to stdout one whole file at a time. Resolves true when all passed. */
function runLane(files: string[]): Promise<boolean> {
  if (files.length === 0) return Promise.resolve(true)
  return new Promise((done) => {
    let ok = true
    // forceExit: a file ends once its tests (and after hooks) have, even when a failed test left a
    // timer or socket open (a load loop): it would otherwise hold its lane until the deadline
    const stream = run({ files, concurrency: 1, signal: deadline.signal, forceExit: true })
    // when each file's first test started and its last one ended, for the summary
    const spans = new Map<string, [number, number]>()
    let current = ''
    const seen = (d: { file?: string }) => {
      if (!d.file) return
      current = d.file
      const span = spans.get(d.file) ?? [Date.now(), Date.now()]
      span[1] = Date.now()
      spans.set(d.file, span)
    }
    stream.on('test:start', seen)
    stream.on('test:pass', seen)
    stream.on('test:fail', (d) => {
      seen(d)
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
    deadline.signal.addEventListener('abort', () => {
      process.stdout.write(`# stopped at the deadline (${DEADLINE_MS / 60_000} min): ${current.replace(DIR, '') || 'a file'} still running; its output so far:\n${block}\n`)
      block = ''
      ok = false
    })
    report.on('end', () => {
      if (block) process.stdout.write(block)
      for (const [file, [from, to]] of spans) process.stdout.write(`# ${file.replace(DIR, '')}: ${((to - from) / 1000).toFixed(0)} s, ended ${((to - STARTED) / 1000).toFixed(0)} s after the start\n`)
      done(ok)
    })
  })
}

/** `npm run <script>`, its output printed whole once it ends, with a line saying how it ended. Resolves true when it passed. */
function runScript(script: string): Promise<boolean> {
  return new Promise((done) => {
    const start = Date.now()
    const child = spawn('npm', ['run', '--silent', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    const chunks: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => chunks.push(c))
    child.stderr.on('data', (c: Buffer) => chunks.push(c))
    child.on('close', (code, signal) => {
      const took = `${((Date.now() - start) / 1000).toFixed(0)} s`
      process.stdout.write(`${Buffer.concat(chunks).toString()}\n# npm run ${script}: ${code === 0 ? `passed (${took})` : `FAILED (${signal ?? `exit ${code}`}, ${took})`}\n`)
      done(code === 0)
    })
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ options: { with: { type: 'string' } }, allowPositionals: true })
  const script = values.with
  const given = positionals.map((f) => resolve(f))
  const all = readdirSync(DIR).filter((f) => f.endsWith('.test.ts'))
  const [heavy, light] = given.length > 0 ? [given, []] : lanes(all).map((files) => files.map((f) => join(DIR, f)))
  const second = async () => {
    const checked = script ? await runScript(script) : true
    return (await runLane(light ?? [])) && checked
  }
  // the test files run in child processes: they find the shared registry by its container's name
  const registry = [...(heavy ?? []), ...(light ?? [])].some((f) => SHARE_REGISTRY.some((n) => f.endsWith(`/${n}`))) ? await startRegistry('mymdb-rig-registry-shared') : undefined
  if (registry) process.env.MYMDB_RIG_REGISTRY = registry.container
  setTimeout(() => deadline.abort(), DEADLINE_MS).unref()
  try {
    const results = await Promise.all([runLane(heavy ?? []), second()])
    process.exitCode = results.every(Boolean) ? 0 : 1
  } finally {
    await registry?.stop()
  }
}
