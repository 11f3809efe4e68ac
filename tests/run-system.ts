// Runs the system tests (tests/system/*.test.ts) in three lanes side by side. The first: the files
// that run an SSH host with its own Docker engine and a load loop (deploy, tls). The second: site
// (a local stack and a browser), then cluster (four SSH hosts), the longest file, from about 140 s on.
// The third: --with's script (below), the other local stacks (second-checkout, checks, backup),
// remote and rds (an SSH host each, no load loop), then the short files that need no stack of
// their own (the emulated AWS steps, the lock, push) and any new file. Two lanes left a third of
// this 2-core machine idle (waits for health checks, Swarm, SSH); three files with load loops at
// once slow each other down threefold and their zero-downtime checks fail (measured:
// docs/tests.md), so the third lane carries none. Each file uses its own Compose project, port,
// rig containers and checkout, so any two files can run side by side.
// Each file's report is printed whole once it ends (the lanes' reports never mix). tls, remote,
// cluster and rds push to one registry started here for the run, each under a path of its own:
// the second one's push mounts the layers the first one sent instead of compressing ~570 MB again.
// With --with <npm script> (npm test: the type check, the dependency rules and the unit tests),
// the third lane runs that script first.
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
/** The first lane, in order: the files with an SSH host and a load loop. */
const FIRST = ['deploy.test.ts', 'tls.test.ts']
/** The second lane, in order: a local stack with a browser, then cluster. */
const SECOND = ['site.test.ts', 'cluster.test.ts']
/** The third lane begins with these; any file in neither of the others runs after them. */
const THIRD = ['second-checkout.test.ts', 'checks.test.ts', 'backup.test.ts', 'remote.test.ts', 'rds.test.ts']
/** The files that push the stack's images to one registry for the run, each under a path of its own (rig/registry.ts rigRegistry). */
const SHARE_REGISTRY = ['tls.test.ts', 'remote.test.ts', 'cluster.test.ts', 'rds.test.ts']
/**
 * The whole run ends by then (MYMDB_TEST_DEADLINE_MINUTES, default 80): the files still running are
 * stopped and their output so far printed, so that a file that hangs fails the run with what it
 * printed instead of running into CI's own limit (90 min) with nothing to show.
 */
const DEADLINE_MS = Number(process.env.MYMDB_TEST_DEADLINE_MINUTES || 80) * 60_000
const deadline = new AbortController()

/** The three lanes (pure): FIRST and SECOND in their order; THIRD, then the other files by name. */
export function lanes(names: string[]): [string[], string[], string[]] {
  const named = [...FIRST, ...SECOND, ...THIRD]
  const rest = names.filter((n) => !named.includes(n)).sort()
  const pick = (lane: string[]) => lane.filter((n) => names.includes(n))
  return [pick(FIRST), pick(SECOND), [...pick(THIRD), ...rest]]
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
  const [first, second, third] = given.length > 0 ? [given, [], []] : lanes(all).map((files) => files.map((f) => join(DIR, f)))
  const withScript = async () => {
    const checked = script ? await runScript(script) : true
    return (await runLane(third ?? [])) && checked
  }
  // the test files run in child processes: they find the shared registry by its container's name
  const registry = [...(first ?? []), ...(second ?? []), ...(third ?? [])].some((f) => SHARE_REGISTRY.some((n) => f.endsWith(`/${n}`))) ? await startRegistry('mymdb-rig-registry-shared') : undefined
  if (registry) process.env.MYMDB_RIG_REGISTRY = registry.container
  setTimeout(() => deadline.abort(), DEADLINE_MS).unref()
  try {
    const results = await Promise.all([runLane(first ?? []), runLane(second ?? []), withScript()])
    process.exitCode = results.every(Boolean) ? 0 : 1
  } finally {
    await registry?.stop()
  }
}
