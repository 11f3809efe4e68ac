// Docker preflight: is the engine reachable, is Compose v2 there, is a TCP port free. Each check
// returns a DockerProblem with the exact fix, or null. `preflight` runs them, installs Docker with
// scripts/install-docker.sh when it can (root on Debian/Ubuntu, not --no-install), and throws one
// UserError listing what is left. The test setup reuses `preflight`.
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { UserError } from './errors.ts'
import { createLog, type Log } from './log.ts'
import { REPO_ROOT } from './paths.ts'
import { runChecked, zxRunner, type Runner } from './sh.ts'

export interface DockerProblem {
  check: 'engine' | 'compose' | 'port'
  message: string
  fix: string
  /** Whether scripts/install-docker.sh fixes it. */
  installable: boolean
}

export const INSTALL_FIX = 'run: sudo bash scripts/install-docker.sh'

/** `docker info`: the CLI exists and the engine answers. */
export async function checkEngine(run: Runner): Promise<DockerProblem | null> {
  const r = await run(['docker', 'info', '--format', '{{.ServerVersion}}'])
  if (r.ok) return null
  const err = `${r.stderr}\n${r.stdout}`
  if (r.exitCode === 127 || /docker: (command )?not found|ENOENT/i.test(err))
    return { check: 'engine', message: 'Docker is not installed', fix: INSTALL_FIX, installable: true }
  if (/permission denied/i.test(err))
    return {
      check: 'engine',
      message: 'no permission to use the Docker engine',
      fix: 'run: sudo usermod -aG docker "$USER", then log out and in again (or run as root)',
      installable: false,
    }
  return {
    check: 'engine',
    message: `the Docker engine is not reachable (${firstLine(err) || `docker info: exit code ${r.exitCode}`})`,
    fix: `start it: sudo systemctl start docker, or ${INSTALL_FIX}`,
    installable: true,
  }
}

/** `docker compose version`: the Compose v2 plugin. */
export async function checkCompose(run: Runner): Promise<DockerProblem | null> {
  const r = await run(['docker', 'compose', 'version', '--short'])
  if (r.ok) {
    const major = Number(/^v?(\d+)/.exec(r.stdout.trim())?.[1] ?? '0')
    if (major >= 2) return null
  }
  return {
    check: 'compose',
    message: 'Docker Compose v2 (`docker compose`) is not installed',
    fix: INSTALL_FIX,
    installable: true,
  }
}

/** Tries to listen on host:port (then closes): a problem when that fails. */
export async function checkPortFree(host: string, port: number): Promise<DockerProblem | null> {
  const code = await new Promise<string | null>((resolve) => {
    const server = createServer()
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)))
  })
  if (code === null) return null
  const where = `${host}:${port}`
  if (code === 'EADDRINUSE')
    return {
      check: 'port',
      message: `port ${where} is already in use`,
      fix: `stop what uses it (see: sudo ss -ltnp 'sport = :${port}'), or set another WEB_PORT in .env, e.g. WEB_PORT=${port === 65535 ? 8081 : port + 1}`,
      installable: false,
    }
  if (code === 'EACCES')
    return {
      check: 'port',
      message: `no permission to listen on ${where} (ports below 1024 need root)`,
      fix: 'set WEB_PORT=8080 (or another port from 1024) in .env',
      installable: false,
    }
  if (code === 'EADDRNOTAVAIL')
    return {
      check: 'port',
      message: `${host} is not an address of this host`,
      fix: 'set WEB_BIND to an address of this host in .env, e.g. WEB_BIND=127.0.0.1 (or 0.0.0.0 for all)',
      installable: false,
    }
  return { check: 'port', message: `cannot listen on ${where} (${code})`, fix: 'set another WEB_BIND/WEB_PORT in .env', installable: false }
}

/** True when we may run scripts/install-docker.sh ourselves: root on Debian or Ubuntu. */
export function canAutoInstall(osRelease = '/etc/os-release', uid = process.getuid?.() ?? -1): boolean {
  if (uid !== 0 || !existsSync(osRelease)) return false
  const text = readFileSync(osRelease, 'utf8')
  const ids = [/^ID=(.*)$/m, /^ID_LIKE=(.*)$/m].map((re) => re.exec(text)?.[1]?.replace(/"/g, '') ?? '').join(' ')
  return /\b(debian|ubuntu)\b/.test(ids)
}

export function formatDockerProblems(problems: DockerProblem[]): string {
  const [first, ...rest] = problems
  if (!first) return ''
  if (rest.length === 0) return `${first.message}: ${first.fix}`
  return [`${problems.length} problems to fix first:`, ...problems.map((p) => `  - ${p.message}: ${p.fix}`)].join('\n')
}

export interface PreflightOptions {
  /** Default: zx, with process.env. */
  run?: Runner
  /** Default: stdout/stderr. */
  log?: Log
  /** Repository root, for scripts/install-docker.sh (default: this checkout). */
  root?: string
  /** Check Compose v2 as well (default true). */
  compose?: boolean
  /** Also check that this TCP port is free. */
  port?: { host: string; port: number }
  /** Allow running scripts/install-docker.sh (default true; --no-install turns it off). */
  install?: boolean
  /** Override for tests: may we install here? (default: canAutoInstall()) */
  canInstall?: boolean
  /** Said when install is false but installing would have helped (default: the --no-install note). */
  noInstallNote?: string
}

/** Runs the Docker checks without changing anything. */
export async function checkDocker(opts: Pick<PreflightOptions, 'compose' | 'port'> & { run: Runner }): Promise<DockerProblem[]> {
  const problems: DockerProblem[] = []
  const engine = await checkEngine(opts.run)
  if (engine) problems.push(engine)
  // Compose is a CLI plugin: its check needs no engine, unless the CLI itself is missing.
  if (opts.compose !== false && !(engine?.message === 'Docker is not installed')) {
    const compose = await checkCompose(opts.run)
    if (compose) problems.push(compose)
  } else if (opts.compose !== false) {
    problems.push({ check: 'compose', message: 'Docker Compose v2 is not installed', fix: INSTALL_FIX, installable: true })
  }
  if (opts.port) {
    const port = await checkPortFree(opts.port.host, opts.port.port)
    if (port) problems.push(port)
  }
  return problems
}

/**
 * The preflight: checks Docker (and the port); when the engine or Compose is missing and we are
 * root on Debian/Ubuntu with installing allowed, runs scripts/install-docker.sh and checks again.
 * Throws a UserError listing every remaining problem with its fix.
 */
export async function preflight(options: PreflightOptions = {}): Promise<void> {
  const opts = { ...options, run: options.run ?? zxRunner(), log: options.log ?? createLog(), root: options.root ?? REPO_ROOT }
  const canInstall = opts.canInstall ?? canAutoInstall()
  let problems = await checkDocker(opts)
  const installable = problems.filter((p) => p.installable)
  if (installable.length > 0 && opts.install !== false && canInstall) {
    const script = join(opts.root, 'scripts', 'install-docker.sh')
    await opts.log.step('preflight', `${installable.map((p) => p.message).join('; ')}: running scripts/install-docker.sh`, () =>
      runChecked(opts.run, ['bash', script], {
        cwd: opts.root,
        stream: opts.log.prefixed('install-docker'),
        doing: 'install Docker',
      }),
    )
    problems = await checkDocker(opts)
  }
  if (problems.length > 0) {
    const note = opts.noInstallNote ?? '(--no-install given: not installing Docker myself)'
    const hint = problems.some((p) => p.installable) && opts.install === false && canInstall && note ? `\n${note}` : ''
    throw new UserError(formatDockerProblems(problems) + hint, 1)
  }
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? ''
  )
}

/** Whether an image exists locally (`docker image inspect`). */
export async function imageExists(run: Runner, ref: string): Promise<boolean> {
  return (await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', ref])).ok
}
