// Running commands. Tasks get a Runner (zx underneath) so that tests can pass a fake one and
// check that nothing ran.
import { $, quote } from 'zx'
import { CommandError } from './errors.ts'
import type { Sink } from './log.ts'

export interface RunOptions {
  cwd?: string
  /** The complete environment of the process (default: the task's environment). */
  env?: Record<string, string | undefined>
  /** Kill the command after this many milliseconds. */
  timeoutMs?: number
  /** Write stdout and stderr, as they come, to this sink (e.g. log.prefixed('build')). */
  stream?: Sink & { flush?(): void }
  /** Data for stdin. */
  input?: string
}

export interface RunResult {
  command: string
  exitCode: number | null
  signal: string | null
  stdout: string
  stderr: string
  ok: boolean
}

/** Runs a command given as an argument list (never through string concatenation). Never throws on failure. */
export type Runner = (cmd: readonly string[], opts?: RunOptions) => Promise<RunResult>

/** How a command is shown: `docker build --tag 'a b' .` */
export function showCommand(cmd: readonly string[]): string {
  return cmd.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : quote(a))).join(' ')
}

export function zxRunner(defaultEnv: Record<string, string | undefined> = process.env): Runner {
  return async (cmd, opts = {}) => {
    const p = $({
      cwd: opts.cwd,
      env: (opts.env ?? defaultEnv) as NodeJS.ProcessEnv,
      quiet: true,
      verbose: false,
      nothrow: true,
      timeout: opts.timeoutMs,
      input: opts.input,
    })`${cmd}`
    if (opts.stream) {
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
 * Throws a CommandError (`$ cmd`, exit code, stderr) unless the command succeeded. With
 * `streamed`, the output was shown already: only the last lines of stderr go into the report.
 */
export function check(result: RunResult, doing?: string, streamed = false): RunResult {
  if (!result.ok) {
    const lines = result.stderr.trimEnd().split('\n')
    const stderr = streamed && lines.length > 10 ? ['(last lines; full output above)', ...lines.slice(-10)].join('\n') : result.stderr
    throw new CommandError({ command: result.command, exitCode: result.exitCode, signal: result.signal, stderr, doing })
  }
  return result
}

/** Runs and throws a CommandError on failure. */
export async function runChecked(run: Runner, cmd: readonly string[], opts: RunOptions & { doing?: string } = {}): Promise<RunResult> {
  return check(await run(cmd, opts), opts.doing, opts.stream !== undefined)
}
