// Running commands, here or on the deploy host: one Runner type, one result, one quoting, one
// error format. Here it is zx's `$` (zxRunner); on the host it is ssh2 (ssh.ts, Remote.run), with
// the same call shape, so a step does not care where it runs. Tests pass a fake Runner.
import { CommandError, UserError } from './errors.ts'
import type { OutputSinks, Sink } from './log.ts'

export interface RunOptions {
  /** Directory to run in. On the host: relative to the login user's home (`~/x` means the same). */
  cwd?: string
  /** The complete environment of the process (here only; the host's commands read its .env). */
  env?: Record<string, string | undefined>
  /** Stop the command after this many milliseconds (exit code null, signal set). */
  timeoutMs?: number
  /** Write stdout and stderr, as they come, to this sink (e.g. log.prefixed('build')). */
  stream?: Sink & { flush?(): void }
  /** Data for stdin (then closed). Use it for secrets, never the command line. */
  input?: string
  /**
   * Connect the command to this terminal (stdin, stdout, stderr; a TTY on the host): for
   * `manage.py shell`, `createsuperuser`, a login shell. Nothing is captured.
   */
  interactive?: boolean
  /**
   * Pass stdout and stderr on to these sinks as they come, and keep nothing (the result's stdout
   * and stderr stay empty): long output such as `logs --follow` into a pipe or a file (e.g.
   * plainOutput(), without terminal control sequences). No stdin, no terminal.
   */
  output?: OutputSinks
}

export interface RunResult {
  /** The command as shown in reports (`$ <command>`). */
  command: string
  exitCode: number | null
  signal: string | null
  stdout: string
  stderr: string
  ok: boolean
}

/** A command as an argument list (never a string that a shell would split). */
export type Cmd = readonly string[]

/** Runs a command. Never throws because the command failed: look at `ok`. */
export type Runner = (cmd: Cmd, opts?: RunOptions) => Promise<RunResult>

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/

/** Quotes one argument for a POSIX shell: plain words stay as they are, anything else in '…'. */
export function shellQuote(s: string): string {
  if (SAFE.test(s)) return s
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** A remote path as a shell word: `~/x` becomes `x` (commands start in the home directory). */
export function homeRelative(path: string): string {
  if (path === '~') return '.'
  return path.startsWith('~/') ? path.slice(2) : path
}

/** How a command is shown, and (with `cd`) what a shell runs: `cd mymdb && docker compose pull`. */
export function showCommand(cmd: Cmd, cd?: string): string {
  const body = cmd.map(shellQuote).join(' ')
  return cd ? `cd ${shellQuote(homeRelative(cd))} && ${body}` : body
}

/** The local Runner: zx's `$` with `defaultEnv` unless a call gives its own. */
export function zxRunner(defaultEnv: Record<string, string | undefined> = process.env): Runner {
  return async (cmd, opts = {}) => {
    if (opts.output) return passOn(cmd, opts.output, { ...opts, env: opts.env ?? defaultEnv })
    const { $ } = await import('zx')
    const p = $({
      cwd: opts.cwd,
      env: (opts.env ?? defaultEnv) as NodeJS.ProcessEnv,
      quiet: true,
      verbose: false,
      nothrow: true,
      timeout: opts.timeoutMs,
      input: opts.input,
      ...(opts.interactive ? { stdio: 'inherit' as const } : {}),
    })`${cmd}`
    if (opts.stream && !opts.interactive) {
      const sink = opts.stream
      p.stdout.on('data', (d: Buffer) => sink(d.toString()))
      p.stderr.on('data', (d: Buffer) => sink(d.toString()))
    }
    const o = await p
    opts.stream?.flush?.()
    return {
      command: showCommand(cmd),
      exitCode: o.exitCode,
      signal: o.signal,
      stdout: o.stdout,
      stderr: o.stderr,
      ok: o.exitCode === 0,
    }
  }
}

/**
 * Runs a command here with its output passed on to `output` as it comes (RunOptions.output),
 * nothing kept: zx's `$` would keep all of it in memory.
 */
async function passOn(cmd: Cmd, output: OutputSinks, opts: RunOptions): Promise<RunResult> {
  const { spawn } = await import('node:child_process')
  const [file, ...args] = cmd
  if (file === undefined) throw new Error('run: empty command')
  return new Promise((resolve) => {
    let ended = false
    const done = (exitCode: number | null, signal: string | null, stderr = '') => {
      if (ended) return
      ended = true
      output.flush?.()
      resolve({ command: showCommand(cmd), exitCode, signal, stdout: '', stderr, ok: exitCode === 0 })
    }
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs })
    child.stdout.setEncoding('utf8').on('data', (t: string) => output.stdout(t))
    child.stderr.setEncoding('utf8').on('data', (t: string) => output.stderr(t))
    child.on('error', (e) => done(127, null, e.message))
    child.on('close', (code, signal) => done(code, signal))
  })
}

/**
 * Throws a CommandError (`$ cmd`, exit code, stderr) unless the command succeeded. With
 * `streamed`, the output was shown already: only the last lines of stderr go into the report.
 * A command that said nothing on stderr is reported with its stdout.
 */
export function check(result: RunResult, doing?: string, streamed = false): RunResult {
  if (!result.ok) {
    const text = result.stderr.trim() !== '' ? result.stderr : result.stdout
    const lines = text.trimEnd().split('\n')
    const stderr = streamed && lines.length > 10 ? ['(last lines; full output above)', ...lines.slice(-10)].join('\n') : text
    throw new CommandError({ command: result.command, exitCode: result.exitCode, signal: result.signal, stderr, doing })
  }
  return result
}

/** Runs and throws a CommandError on failure. */
export async function runChecked(run: Runner, cmd: Cmd, opts: RunOptions & { doing?: string } = {}): Promise<RunResult> {
  return check(await run(cmd, opts), opts.doing, opts.stream !== undefined)
}

/**
 * Runs `run` again (`tries` times in all at most, `pauseMs` apart) while its output matches
 * `transient`: a failure that says nothing was done and that passes. Any other result, failure or
 * not, is returned as it is.
 */
export async function rerunWhile<R extends { stdout: string; stderr: string }>(transient: RegExp, run: () => Promise<R>, tries = 3, pauseMs = 1000): Promise<R> {
  for (let attempt = 1; ; attempt++) {
    const r = await run()
    if (attempt >= tries || !transient.test(r.stdout + r.stderr)) return r
    await new Promise((res) => setTimeout(res, pauseMs))
  }
}

/**
 * rerunWhile a container's process never started: runc's "OCI runtime exec failed ... unable to
 * start container process" (or `create failed` for a `docker run`), seen on a loaded host as
 * "read init-p: connection reset by peer". The command never ran then, so running it again is
 * what a person would do.
 */
export function retryUnstarted<R extends { stdout: string; stderr: string }>(run: () => Promise<R>, pauseMs = 1000): Promise<R> {
  return rerunWhile(/OCI runtime (exec|create) failed: .*unable to start container process/, run, 3, pauseMs)
}

/**
 * Runs `attempt` until it returns a value (not undefined), `times` times at most, `pauses` apart
 * (milliseconds: one for every pause, or one per pause in turn; zx's retry); then throws
 * `giveUp(last message, last error)`. An error that `isFinal` (default: a UserError, e.g. a
 * rejected key) ends it at once and is thrown as it is.
 */
export async function retryUntil<T>(
  times: number,
  pauses: number | readonly number[],
  attempt: (n: number) => Promise<T | undefined>,
  giveUp: (last: string, lastError: unknown) => unknown,
  isFinal: (err: unknown) => boolean = (err) => err instanceof UserError,
): Promise<T> {
  const { retry } = await import('zx')
  const delays = (function* () {
    for (let i = 0; ; i++) yield typeof pauses === 'number' ? pauses : (pauses[i] ?? pauses[pauses.length - 1] ?? 0)
  })()
  let n = 0
  let last = 'no answer'
  let lastError: unknown
  let outcome: { value: T } | { final: unknown }
  try {
    outcome = await retry(Math.max(1, times), delays, async () => {
      n += 1
      try {
        const value = await attempt(n)
        if (value !== undefined) return { value }
      } catch (e) {
        if (isFinal(e)) return { final: e }
        lastError = e
        last = e instanceof Error ? e.message : String(e)
      }
      throw new Error(last)
    })
  } catch {
    throw giveUp(last, lastError)
  }
  if ('final' in outcome) throw outcome.final
  return outcome.value
}
