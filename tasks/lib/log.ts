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

/** Removes terminal control sequences (colours, line clearing) from a command's output. */
export function stripControls(text: string): string {
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
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
