// Task plumbing: the run-if-direct guard (runMain) and the error reporting that turns every
// failure into an exit code (runTask). Tasks never call process.exit.
import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { CommandError, ConfigError, UserError } from './errors.ts'
import { createLog, type Log } from './log.ts'
import { REPO_ROOT } from './paths.ts'
import { zxRunner, type Runner } from './sh.ts'

export type Env = Record<string, string | undefined>

/** What a task uses from the outside world; tests replace parts of it. */
export interface Deps {
  run: Runner
  log: Log
  /** The repository root: commands run there, `.env` is read from there. */
  root: string
  /** The env file (default: <root>/.env). */
  envFile: string
  /** Whether stdin is an interactive terminal (for confirmations). */
  interactive: boolean
  /** Asks a yes/no question (only called when interactive). */
  confirm(question: string): Promise<boolean>
}

export type Main = (argv: string[], env: Env, deps?: Partial<Deps>) => Promise<number>

async function askYesNo(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises')
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim())
  } finally {
    rl.close()
  }
}

export function makeDeps(env: Env, partial: Partial<Deps> = {}): Deps {
  const root = partial.root ?? REPO_ROOT
  return {
    run: partial.run ?? zxRunner(env),
    log: partial.log ?? createLog(),
    root,
    envFile: partial.envFile ?? resolve(root, '.env'),
    interactive: partial.interactive ?? Boolean(process.stdin.isTTY),
    confirm: partial.confirm ?? askYesNo,
  }
}

/** Prints an error the way this project reports failures and returns the exit code. */
export function reportError(err: unknown, log: Log): number {
  if (err instanceof CommandError) {
    for (const line of err.format().split('\n')) log.error(line)
    return 1
  }
  if (err instanceof UserError) {
    const [first, ...rest] = err.message.split('\n')
    log.error(first ?? '')
    for (const line of rest) log.detail(line)
    return err.exitCode
  }
  log.detail(err instanceof Error ? (err.stack ?? String(err)) : String(err))
  return 1
}

/** Runs a task body with its dependencies; any failure becomes a report and an exit code. */
export async function runTask(env: Env, partial: Partial<Deps> | undefined, body: (deps: Deps) => Promise<number | void>): Promise<number> {
  const deps = makeDeps(env, partial)
  try {
    return (await body(deps)) ?? 0
  } catch (err) {
    return reportError(err, deps.log)
  }
}

type Options = NonNullable<ParseArgsConfig['options']>

/** node:util parseArgs, strict; an unknown or malformed option is a ConfigError (exit 2). */
export function parseFlags<T extends Options>(
  argv: string[],
  options: T,
  usageHint: string,
) {
  return parseCommandLine(argv, options, usageHint, false).values
}

function parseCommandLine<T extends Options>(argv: string[], options: T, usageHint: string, allowPositionals: boolean) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals })
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new ConfigError(`${msg}. See: ${usageHint}`)
  }
}

/** The parsed options of a task (see parseFlags). */
export type Flags<T extends Options> = ReturnType<typeof parseFlags<T>>

/** A task's command line: the npm command, its --help text, its options (-h/--help are added). */
export interface Cli<T extends Options> {
  command: string
  help: string
  options: T
  /**
   * Arguments besides the options: 'args' (anywhere, e.g. a service name), or 'rest' (the task's
   * options come first; from the first other word on, everything is passed on as it is, e.g. to
   * manage.py). Default: none.
   */
  positionals?: 'args' | 'rest'
}

/**
 * 'rest' command lines: the task's own options, and the words from the first non-option (or
 * after --) on. `valued`: the task's options that take a value (`--node 2`: the 2 is the option's).
 */
export function splitRest(argv: readonly string[], valued: readonly string[] = []): { own: string[]; rest: string[] } {
  const i = argv.findIndex((a, j) => (a === '--' || !a.startsWith('-')) && !valued.includes(argv[j - 1]?.replace(/^--/, '') ?? ''))
  if (i < 0) return { own: [...argv], rest: [] }
  return { own: argv.slice(0, i), rest: argv.slice(argv[i] === '--' ? i + 1 : i) }
}

/**
 * runTask for a task's main(): parses `argv` (a bad option is exit 2 pointing at --help),
 * answers -h/--help with the help text, and otherwise runs `body` with the options.
 */
export async function runCli<T extends Options>(
  argv: string[],
  env: Env,
  partial: Partial<Deps> | undefined,
  cli: Cli<T>,
  body: (deps: Deps, flags: Flags<T>, args: string[]) => Promise<number | void>,
): Promise<number> {
  return runTask(env, partial, async (deps) => {
    const options: Options = { ...cli.options, help: { type: 'boolean', short: 'h' } }
    const hint = `${cli.command} -- --help`
    const valued = Object.entries(cli.options).flatMap(([name, o]) => (o.type === 'string' ? [name] : []))
    const { own, rest } = cli.positionals === 'rest' ? splitRest(argv, valued) : { own: argv, rest: [] }
    const parsed = parseCommandLine(own, options, hint, cli.positionals === 'args')
    const flags: Record<string, unknown> = parsed.values
    if (flags.help === true) {
      deps.log.info(cli.help)
      return 0
    }
    return body(deps, flags as Flags<T>, cli.positionals === 'rest' ? rest : parsed.positionals)
  })
}

/** True when the module at `moduleUrl` is the script node was started with. */
export function isEntryPoint(moduleUrl: string, argv1: string | undefined = process.argv[1]): boolean {
  if (!argv1) return false
  const real = (p: string) => {
    try {
      return realpathSync(p)
    } catch {
      return resolve(p)
    }
  }
  const self = real(fileURLToPath(moduleUrl))
  const started = real(argv1)
  return self === started || self.replace(/\.[cm]?[jt]s$/, '') === started
}

/** The run-if-direct guard: `runMain(import.meta.url, main)` at the bottom of each task. */
export function runMain(moduleUrl: string, main: Main): void {
  if (!isEntryPoint(moduleUrl)) return
  main(process.argv.slice(2), process.env).then(
    (code) => {
      process.exitCode = code
    },
    (err: unknown) => {
      process.exitCode = reportError(err, createLog())
    },
  )
}
