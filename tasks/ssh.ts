// npm run ssh [-- command]: a shell on the stage's EC2 host (its key, login user and address),
// or one command there. Through the same SSH client as the deploy (ssh2), not a system ssh.
import { loadEnv } from './lib/env.ts'
import { ConfigError } from './lib/errors.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { stepDeps, type StepSeams } from './lib/step.ts'
import { checkHostAccess, connectTarget, findTarget, reachable } from './lib/target.ts'

export const HELP = `Usage: npm run ssh [-- command ...]

Opens a login shell on the stage's EC2 host (MYMDB_STAGE in AWS_REGION) with the stage's key
(MYMDB_SSH_KEY_FILE, default ~/.ssh/mymdb-<stage>.pem), user (MYMDB_SSH_USER) and address (the
instance's public IP, or MYMDB_HOST_ADDRESS). With a command, runs it there instead (like ssh:
the words are joined and run by the host's shell) and exits with its exit code.
MyMDB's files are in ~/mymdb on the host (docker-compose.yml, .env, deploys.log).

Examples:
  npm run ssh
  npm run ssh -- docker ps
  npm run ssh -- docker service ps mymdb_web
  npm run ssh -- --node 2 docker ps

Options:
  --node N    host N of a stage of several hosts (MYMDB_HOSTS; default 1: the first, where
              the deploy runs the stack from)
  -h, --help  this help

Exit codes: the shell's or the command's own; 1 AWS or SSH failed; 2 bad option or setting.`

/** The command line: -h/--help; everything else is the command for the host. */
export const CLI = {
  command: 'npm run ssh',
  help: HELP,
  positionals: 'rest',
  options: {
    node: { type: 'string' },
  },
} as const

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags, args) => {
    const node = flags.node === undefined ? 1 : /^[1-9]\d*$/.test(flags.node.trim()) ? Number(flags.node) : NaN
    if (Number.isNaN(node))
      throw new ConfigError(`--node ${flags.node}: expected a host's number, 1 or more (npm run ssh -- --node 2)`)
    const raw = loadEnv(env, deps.envFile)
    const s = checkHostAccess(raw)
    const found = await findTarget(s, stepDeps(deps, partial, raw), false, node)
    const remote = await connectTarget(s, reachable(s, found), partial ?? {}, deps, undefined, found.instance, node)
    try {
      const cmd = args.length > 0 ? ['sh', '-c', args.join(' ')] : ['bash', '--login']
      const r = await remote.run(cmd, { interactive: true })
      return r.exitCode ?? 1
    } finally {
      remote.close()
    }
  })
}

runMain(import.meta.url, main)
