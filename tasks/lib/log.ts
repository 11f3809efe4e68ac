// Progress and messages. Everything goes to stdout except errors (stderr). Tests pass their
// own sinks to capture output.
import { styleText } from 'node:util'

// Colours only on a terminal (or with FORCE_COLOR), never with NO_COLOR; the standard library's
// styleText, so that no package is loaded for it.
const COLOR = process.env.FORCE_COLOR !== undefined ? process.env.FORCE_COLOR !== '0' : process.stdout.isTTY === true && process.env.NO_COLOR === undefined
const paint = (style: Parameters<typeof styleText>[0]) => (text: string) => (COLOR ? styleText(style, text) : text)
const chalk = { yellow: paint('yellow'), red: paint('red'), green: paint('green'), bold: paint('bold'), dim: paint('dim') }

export type Sink = (text: string) => void

export interface Log {
  /** A progress or result line, e.g. log.info('[build] web image ...'). */
  info(text: string): void
  /** A warning (yellow). */
  warn(text: string): void
  /** An error line (red, stderr). */
  error(text: string): void
  /** A plain line on stderr (command output in error reports, stack traces). */
  detail(text: string): void
  /**
   * Runs a long step with a start line `[tag] what ...`, a line every `tickSeconds` while it runs,
   * and an end line with its duration: `[tag] what done (42 s)`.
   */
  step<T>(tag: string, what: string, fn: () => Promise<T>, tickSeconds?: number): Promise<T>
  /**
   * A sink that writes a process's output line by line, each line prefixed with `[tag] `; lines
   * matching `skip` (chatter such as per-layer states) are left out.
   */
  prefixed(tag: string, skip?: RegExp): Sink & { flush(): void }
}

// Terminal control sequences: CSI (colours, ESC[2K line clearing, cursor moves), OSC (titles,
// ended by BEL or ESC \), and the two-character ones (ESC 7, ESC M, ...).
const CONTROLS = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -Z\\-~]/g
// The start of a sequence that a chunk of output may end in, to be completed by the next one.
const PARTIAL = /\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?$/

/** Removes terminal control sequences (colours, line clearing) from a command's output. */
export function stripControls(text: string): string {
  return text.replace(CONTROLS, '')
}

/**
 * stripControls for output that arrives in chunks: a sequence cut in two by a chunk boundary
 * is held back until the next chunk completes it. `flush()` gives what is left at the end.
 */
export function controlFilter(): ((chunk: string) => string) & { flush(): string } {
  let held = ''
  const filter = ((chunk: string) => {
    const text = held + chunk
    // (at most a short tail: an OSC that never ends must not hold back the rest of the output)
    const found = PARTIAL.exec(text)
    const partial = found && found[0].length <= 256 ? found : null
    held = partial ? partial[0] : ''
    return stripControls(partial ? text.slice(0, partial.index) : text)
  }) as ((chunk: string) => string) & { flush(): string }
  filter.flush = () => {
    const rest = stripControls(held).replace(/\x1b/g, '')
    held = ''
    return rest
  }
  return filter
}

/** Where a command's output goes as it comes (RunOptions.output). */
export interface OutputSinks {
  stdout: Sink
  stderr: Sink
  /** Called once at the end (a filter writes what it held back). */
  flush?(): void
}

/**
 * Output sinks that write a command's output to `stdout` / `stderr` (default: this process's)
 * without terminal control sequences: for output that goes into a pipe or a file.
 */
export function plainOutput(stdout: Sink = (t) => process.stdout.write(t), stderr: Sink = (t) => process.stderr.write(t)): OutputSinks {
  const out = controlFilter()
  const err = controlFilter()
  const write = (sink: Sink, text: string) => {
    if (text !== '') sink(text)
  }
  return {
    stdout: (t) => write(stdout, out(t)),
    stderr: (t) => write(stderr, err(t)),
    flush: () => {
      write(stdout, out.flush())
      write(stderr, err.flush())
    },
  }
}

/** How long ago, or how long something has been up: 40 s, 5 min, 2 h 3 min, 3 d 4 h (pure). */
export function formatAge(ms: number): string {
  const min = Math.floor(ms / 60_000)
  if (min < 1) return `${Math.max(0, Math.round(ms / 1000))} s`
  if (min < 60) return `${min} min`
  const h = Math.floor(min / 60)
  if (h < 24) return `${h} h ${min % 60} min`
  return `${Math.floor(h / 24)} d ${h % 24} h`
}

/** An ISO time as `2026-11-27 18:00:00 UTC` (pure). */
export function utcTime(iso: string): string {
  return iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC')
}

export function formatDuration(ms: number): string {
  const s = ms / 1000
  if (s < 10) return `${s.toFixed(1)} s`
  if (s < 120) return `${Math.round(s)} s`
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
}

export function createLog(out: Sink = (t) => process.stdout.write(t), err: Sink = (t) => process.stderr.write(t)): Log {
  const log: Log = {
    info: (text) => out(`${text}\n`),
    warn: (text) => out(`${chalk.yellow(text)}\n`),
    error: (text) => err(`${chalk.red(text)}\n`),
    detail: (text) => err(`${text}\n`),
    async step(tag, what, fn, tickSeconds = 30) {
      const start = Date.now()
      out(`${chalk.bold(`[${tag}]`)} ${what} ...\n`)
      const timer = setInterval(
        () => out(`${chalk.bold(`[${tag}]`)} ${what} ... still running (${formatDuration(Date.now() - start)})\n`),
        tickSeconds * 1000,
      )
      timer.unref()
      try {
        const result = await fn()
        // A command result that failed (not thrown) still ends the step as failed.
        const failed = typeof result === 'object' && result !== null && (result as { ok?: unknown }).ok === false
        out(`${chalk.bold(`[${tag}]`)} ${what} ${failed ? chalk.red('failed') : chalk.green('done')} (${formatDuration(Date.now() - start)})\n`)
        return result
      } catch (e) {
        out(`${chalk.bold(`[${tag}]`)} ${what} ${chalk.red('failed')} (${formatDuration(Date.now() - start)})\n`)
        throw e
      } finally {
        clearInterval(timer)
      }
    },
    prefixed(tag, skip) {
      let pending = ''
      const prefix = chalk.dim(`[${tag}] `)
      const write = (line: string) => {
        if (line.trim() !== '' && !skip?.test(line)) out(`${prefix}${line}\n`)
      }
      const sink = ((text: string) => {
        pending += text
        const lines = pending.split(/\r?\n|\r/)
        pending = lines.pop() ?? ''
        for (const line of lines) write(stripControls(line))
      }) as Sink & { flush(): void }
      sink.flush = () => {
        write(stripControls(pending))
        pending = ''
      }
      return sink
    },
  }
  return log
}
