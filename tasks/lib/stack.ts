// The stack's life cycle, written once for this machine and the deploy host (in the style of
// Kamal: pure command builders, and a Stack that says where they run).
//
//   up:local   localStack(run, root, project, env)  docker compose --project-name <p> ... in the checkout
//   the host   hostStack(remote)                    docker compose ... in ~/mymdb (its .env names the project)
//
// startStack: up with a health-gated wait (status and logs of what is unhealthy when that fails),
// the migrations checked, the sample catalogue loaded into an empty database. status, logs and
// manage use the same Stack.
import type { RawEnv } from './env.ts'
import type { Log } from './log.ts'
import { stripControls } from './log.ts'
import { check, runChecked, showCommand, type Cmd, type RunOptions, type RunResult, type Runner } from './sh.ts'
import type { Remote } from './ssh.ts'
import { parsePs, unhealthy, type PsEntry } from './compose.ts'

/** Where the compose file and the production .env live on the host. */
export const REMOTE_DIR = '~/mymdb'

export interface Stack {
  /** `this machine` or `admin@203.0.113.7:22`, for messages. */
  where: string
  run: Runner
  /** The compose command of this stack with `args`. */
  compose(...args: string[]): Cmd
  /** Where compose runs (next to docker-compose.yml). */
  cwd: string
  /** The environment of compose here (the host's compose reads its .env). */
  env?: RawEnv
}

/** The stack on this machine: the checkout's docker-compose.yml, project `project`. */
export function localStack(run: Runner, root: string, project: string, env?: RawEnv): Stack {
  return { where: 'this machine', run, cwd: root, env, compose: (...args) => ['docker', 'compose', '--project-name', project, ...args] }
}

/** The stack on the deploy host: ~/mymdb/docker-compose.yml and its .env. */
export function hostStack(remote: Pick<Remote, 'where' | 'run'>): Stack {
  return { where: remote.where, run: remote.run, cwd: REMOTE_DIR, compose: (...args) => ['docker', 'compose', ...args] }
}

// --- commands (pure) ---------------------------------------------------------------------------

/** The seconds `up --wait` waits for healthy services. */
export const WAIT_TIMEOUT_SECONDS = 180

export const stackCommands = {
  up: (s: Stack, waitSeconds = WAIT_TIMEOUT_SECONDS) => s.compose('up', '--detach', '--wait', '--wait-timeout', String(waitSeconds)),
  migrateCheck: (s: Stack) => manageCmd(s, ['migrate', '--check']),
  sampleData: (s: Stack) => manageCmd(s, ['load_sample_catalogue', '--if-empty']),
  ps: (s: Stack) => s.compose('ps', '--all', '--format', 'json'),
}

/** `manage.py <args>` in the web container; with a terminal (`tty`) for shell, createsuperuser, ... */
export function manageCmd(s: Stack, args: readonly string[], tty = false): Cmd {
  return s.compose('exec', ...(tty ? [] : ['-T']), 'web', 'python3', 'manage.py', ...args)
}

/** The stack's services (docker-compose.yml): the front, the site, the database. */
export const SERVICES = ['proxy', 'web', 'db'] as const
export type Service = (typeof SERVICES)[number]

export interface LogsOptions {
  service?: Service
  follow?: boolean
  /** e.g. 10m, 2h, or a timestamp (docker's --since). */
  since?: string
  lines?: number
}

/** `docker compose logs` of one service or both. */
export function logsCmd(s: Stack, o: LogsOptions): Cmd {
  return s.compose(
    'logs',
    '--no-color',
    '--timestamps',
    ...(o.follow ? ['--follow'] : []),
    ...(o.since ? ['--since', o.since] : []),
    '--tail',
    o.lines === undefined ? 'all' : String(o.lines),
    ...(o.service ? [o.service] : []),
  )
}

/** How a stack command is shown: `cd mymdb && docker compose ...` on the host, plain here. */
export function showStackCommand(s: Stack, cmd: Cmd): string {
  return s.cwd === REMOTE_DIR ? showCommand(cmd, s.cwd) : showCommand(cmd)
}

// --- running -----------------------------------------------------------------------------------

/** Runs a command of the stack in its directory and environment. */
export function runIn(s: Stack, cmd: Cmd, opts: RunOptions = {}): Promise<RunResult> {
  return s.run(cmd, { cwd: s.cwd, ...(s.env ? { env: s.env } : {}), ...opts })
}

/** runIn, and a CommandError (`$ cmd`, exit code, stderr) when the command fails. */
export function runInChecked(s: Stack, cmd: Cmd, opts: RunOptions & { doing?: string } = {}): Promise<RunResult> {
  return runChecked(s.run, cmd, { cwd: s.cwd, ...(s.env ? { env: s.env } : {}), ...opts })
}

/** A shell script in the db container as postgres (local socket, peer authentication), with the container's environment. */
export function inDb(s: Stack, script: string): Cmd {
  return s.compose('exec', '-T', '--user', 'postgres', 'db', 'sh', '-c', script)
}

/** The stack's containers (all states). An empty list when Compose cannot tell. */
export async function stackPs(s: Stack): Promise<PsEntry[]> {
  const r = await runIn(s, stackCommands.ps(s))
  if (!r.ok) return []
  try {
    return parsePs(r.stdout)
  } catch {
    return []
  }
}

/** Shows `docker compose ps --all` and the last log lines of the services that are not healthy. */
export async function showDiagnostics(s: Stack, log: Log): Promise<void> {
  const ps = s.compose('ps', '--all')
  const r = await runIn(s, ps)
  log.detail(`$ ${showStackCommand(s, ps)}`)
  log.detail(stripControls(r.stdout + r.stderr).trimEnd())
  const bad = unhealthy(await stackPs(s))
  for (const service of bad.length > 0 ? bad : SERVICES) {
    const logs = s.compose('logs', '--no-color', '--tail', '40', service)
    const l = await runIn(s, logs)
    log.detail(`$ ${showStackCommand(s, logs)}`)
    log.detail(stripControls(l.stdout + l.stderr).trimEnd())
  }
}

/**
 * Starts (or updates) the stack and waits until every service is healthy; then checks that the
 * migrations ran (the web container runs them at start) and loads the sample catalogue into an
 * empty database. On a failed start: status and logs, then a CommandError.
 */
export async function startStack(s: Stack, log: Log, waitSeconds = WAIT_TIMEOUT_SECONDS): Promise<void> {
  const up = await log.step('up', `docker compose up (waiting up to ${waitSeconds} s for healthy services)`, () =>
    runIn(s, stackCommands.up(s, waitSeconds), { stream: log.prefixed('compose') }),
  )
  if (!up.ok) {
    await showDiagnostics(s, log)
    check(up, `start the stack on ${s.where}: not every service became healthy within ${waitSeconds} s (status and logs above)`, true)
  }
  await log.step('migrate', 'check that the database migrations ran', () =>
    runInChecked(s, stackCommands.migrateCheck(s), {
      doing: 'check the database migrations (the web container runs them at start; see npm run logs -- web)',
    }),
  )
  await log.step('data', 'sample catalogue (only if the database is empty)', () =>
    runInChecked(s, stackCommands.sampleData(s), {
      stream: log.prefixed('catalogue'),
      doing: 'load the sample catalogue',
    }),
  )
}
