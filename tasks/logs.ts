// npm run logs -- [proxy|web|db|cache] [--follow] [--since 10m] [--lines N] [--aws]: the stack's logs, here
// (`docker compose logs`) or on the stage's EC2 host (`docker service logs` of its Swarm stack).
import { ConfigError } from './lib/errors.ts'
import { loadEnv } from './lib/env.ts'
import { plainOutput, type OutputSinks } from './lib/log.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { logsCmd, runIn, SERVICES, type LogsOptions } from './lib/stack.ts'
import { resolveTarget } from './lib/target.ts'
import type { StepSeams } from './lib/step.ts'

export const HELP = `Usage: npm run logs -- [proxy|web|db|cache] [options]

Prints the logs of the front (Caddy: certificates; nginx: errors), the web container (nginx, uWSGI,
Django), the database and the cache (memcached), or of one of them, with times. Into a pipe or a file the lines come
without terminal control sequences.

Options:
  --follow, -f     keep printing new lines until Ctrl-C
  --since AGE      only lines newer than AGE: 30s, 10m, 2h, 1d, or a time like 2026-11-27T10:00
  --lines N, -n N  the last N lines of each service (default 100)
  --aws            the stage's EC2 host (over SSH) instead of this machine
  -h, --help       this help

Exit codes: 0 done, 1 Docker, AWS or SSH failed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run logs',
  help: HELP,
  positionals: 'args',
  options: {
    follow: { type: 'boolean', short: 'f' },
    since: { type: 'string' },
    lines: { type: 'string', short: 'n' },
    aws: { type: 'boolean' },
  },
} as const

export const DEFAULT_LINES = 100

/** The options, checked (pure): every problem at once, ConfigError (exit 2). */
export function logsOptions(args: string[], flags: { follow?: boolean; since?: string; lines?: string }): LogsOptions {
  const problems: string[] = []
  const names = SERVICES.join(', ')
  if (args.length > 1) problems.push(`one service at most (${names}), not ${args.join(' ')}`)
  const service = args[0]
  if (service !== undefined && !(SERVICES as readonly string[]).includes(service)) problems.push(`no service ${JSON.stringify(service)}: ${names}`)
  if (flags.since !== undefined && !/^(\d+(s|m|h|d)|\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d)?(Z|[+-]\d\d:?\d\d)?)?)$/.test(flags.since))
    problems.push(`--since ${JSON.stringify(flags.since)}: expected an age like 30s, 10m, 2h, 1d or a time like 2026-11-27T10:00`)
  const lines = flags.lines === undefined ? DEFAULT_LINES : /^\d{1,7}$/.test(flags.lines) ? Number(flags.lines) : NaN
  if (!Number.isInteger(lines) || lines < 1) problems.push(`--lines ${JSON.stringify(flags.lines)}: expected a whole number of at least 1`)
  if (problems.length > 0) throw new ConfigError(`${problems.join('; ')}. See: npm run logs -- --help`)
  return { service: service as LogsOptions['service'], follow: flags.follow ?? false, since: flags.since, lines }
}

/**
 * `tty`: whether stdout is a terminal (default: asks it). `plain`: where the output goes when it
 * is not (default: this process's stdout and stderr).
 */
export async function main(argv: string[], env: Env, partial?: StepSeams & { tty?: boolean; plain?: OutputSinks }): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags, args) => {
    // check: options, then the settings (resolveTarget checks them before it connects)
    const opts = logsOptions(args, flags)
    const target = await resolveTarget(flags.aws ?? false, loadEnv(env, deps.envFile), deps, partial)
    try {
      // Straight to this terminal (nothing kept in memory while following); Ctrl-C ends it. Into
      // a pipe or a file: passed on as it comes, without terminal control sequences (Compose
      // writes ESC[2K before each line even with --no-color and --ansi never).
      const tty = partial?.tty ?? process.stdout.isTTY === true
      const r = await runIn(target.stack, logsCmd(target.stack, opts), tty ? { interactive: true } : { output: partial?.plain ?? plainOutput() })
      return r.ok ? 0 : 1
    } finally {
      target.close()
    }
  })
}

runMain(import.meta.url, main)
