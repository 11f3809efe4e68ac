// npm run manage -- [--aws] <manage.py arguments>: Django's manage.py in the web container, here
// or on the stage's EC2 host; with this terminal attached (createsuperuser, shell, dbshell).
import { ConfigError } from './lib/errors.ts'
import { loadEnv } from './lib/env.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { manageCmd, runIn } from './lib/stack.ts'
import { resolveTarget } from './lib/target.ts'
import type { StepSeams } from './lib/step.ts'

export const HELP = `Usage: npm run manage -- [--aws] <manage.py arguments>

Runs python3 manage.py <arguments> in the running web container (production settings), with
this terminal attached: prompts and shells work when run from a terminal; otherwise stdin is
passed through (e.g. echo 'print(1)' | npm run manage -- shell).

Examples:
  npm run manage -- createsuperuser
  npm run manage -- shell
  npm run manage -- migrate --plan
  npm run manage -- --aws showmigrations      on the stage's EC2 host

Options (before the manage.py arguments; everything from the first other word on goes to
manage.py as it is):
  --aws       the stage's EC2 host (over SSH) instead of this machine
  -h, --help  this help

Exit codes: manage.py's own; 1 Docker, AWS or SSH failed; 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli); the rest goes to manage.py. */
export const CLI = {
  command: 'npm run manage',
  help: HELP,
  positionals: 'rest',
  options: { aws: { type: 'boolean' } },
} as const

export async function main(argv: string[], env: Env, partial?: StepSeams & { tty?: boolean }): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags, args) => {
    if (args.length === 0) throw new ConfigError('give manage.py its arguments, e.g. npm run manage -- createsuperuser. See: npm run manage -- --help')
    const tty = partial?.tty ?? (process.stdin.isTTY === true && process.stdout.isTTY === true)
    const target = await resolveTarget(flags.aws ?? false, loadEnv(env, deps.envFile), deps, partial)
    try {
      const r = await runIn(target.stack, manageCmd(target.stack, args, tty), { interactive: true })
      return r.exitCode ?? 1
    } finally {
      target.close()
    }
  })
}

runMain(import.meta.url, main)
