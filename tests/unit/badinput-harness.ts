// The harness of bad-input.test.ts: runs a real task (node --import tsx tasks/<file>.ts) in a
// throw-away copy of the project and records everything it could have done, so that a test can
// prove that a task given a bad setting or option did NOTHING before exiting with code 2:
//  - AWS and SSH: AWS_ENDPOINT_URL, MYMDB_HOST_ADDRESS and the host ports point at one loopback
//    TCP listener that counts the connections it accepts (and drops them at once);
//  - Docker: a fake `docker` first on PATH logs every call and answers like an engine with no
//    images; only read-only calls (isReadOnlyDocker) are allowed;
//  - installing: fake apt-get, dpkg, debootstrap, systemctl, curl and ssh log every call;
//  - files: the project copy and the task's HOME are snapshotted (path -> mtime, size, mode)
//    before and after the run.
import { execFileSync, spawn } from 'node:child_process'
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync,
  rmSync, symlinkSync, writeFileSync,
} from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { sshKeyPair } from './fakes.ts'

const PROJECT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '')
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g

// --- Docker calls ---------------------------------------------------------------------------

const READ_ONLY_DOCKER = [['info'], ['version'], ['compose', 'version'], ['image', 'inspect'], ['volume', 'inspect'], ['inspect'], ['ps'], ['images']]
/** `docker compose` options that take a value (the value is not the subcommand). */
const COMPOSE_VALUE_OPTIONS = new Set(['-p', '--project-name', '-f', '--file', '--project-directory', '--env-file', '--profile', '--progress', '--ansi', '--parallel'])
const READ_ONLY_COMPOSE = new Set(['ps', 'config', 'version'])

/** Whether a docker call (its arguments, without `docker`) only looks. */
export function isReadOnlyDocker(args: string[]): boolean {
  if (READ_ONLY_DOCKER.some((prefix) => prefix.every((word, i) => args[i] === word))) return true
  if (args[0] !== 'compose') return false
  for (let i = 1; i < args.length; i++) {
    const a = args[i] ?? ''
    if (!a.startsWith('-')) return READ_ONLY_COMPOSE.has(a)
    if (COMPOSE_VALUE_OPTIONS.has(a)) i++
  }
  return false
}

/** The fake docker: logs its arguments (tab-separated, one line per call) and answers. */
function fakeDocker(log: string): string {
  return `#!/bin/bash
(IFS=$'\\t'; printf '%s\\n' "$*") >> '${log}'
case "$1" in
  info) echo 26.1.5; exit 0 ;;
  image|volume) [ "$2" = inspect ] && exit 1 ;;
  compose)
    for a in "\${@:2}"; do
      case "$a" in
        version) echo 2.26.1; exit 0 ;;
        ps) exit 0 ;;
      esac
    done ;;
esac
exit 0
`
}

/** A fake installer or network tool: logs `name args` and fails. */
function fakeTool(name: string, log: string): string {
  return `#!/bin/bash
printf '%s %s\\n' '${name}' "$*" >> '${log}'
exit 1
`
}

const INSTALL_TOOLS = ['apt-get', 'dpkg', 'debootstrap', 'systemctl', 'curl', 'ssh']

// --- files ----------------------------------------------------------------------------------

export interface Entry {
  mtimeMs: number
  size: number
  mode: number
}

export type Snapshot = Map<string, Entry>

/** path -> mtime, size and mode of everything under dir (node_modules and .git left out). */
export function snapshot(dir: string): Snapshot {
  const out: Snapshot = new Map()
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      if (name === 'node_modules' || name === '.git') continue
      const path = rel ? `${rel}/${name}` : name
      const { mtimeMs, size, mode } = lstatSync(join(dir, path))
      out.set(path, { mtimeMs, size, mode })
      if ((mode & 0o170000) === 0o040000) walk(path)
    }
  }
  walk('')
  return out
}

const show = (e: Entry) => `mtime ${new Date(e.mtimeMs).toISOString()}, size ${e.size}, mode ${e.mode.toString(8)}`

/**
 * What differs between two snapshots, one line each ("created x", "changed y: ...", "deleted z").
 * A directory is not listed for what an entry created or deleted in it changed (its mtime, size).
 */
export function diffSnapshots(before: Snapshot, after: Snapshot, label: string): string[] {
  const created = [...after.keys()].filter((p) => !before.has(p))
  const deleted = [...before.keys()].filter((p) => !after.has(p))
  const explained = new Set([...created, ...deleted].map((p) => dirname(p)))
  const changed = [...after].flatMap(([p, now]) => {
    const was = before.get(p)
    if (!was || (was.mtimeMs === now.mtimeMs && was.size === now.size && was.mode === now.mode)) return []
    if (explained.has(p) && was.mode === now.mode) return []
    return [`changed ${label}/${p}: ${show(was)} -> ${show(now)}`]
  })
  return [...created.map((p) => `created ${label}/${p}`), ...changed, ...deleted.map((p) => `deleted ${label}/${p}`)]
}

/** A private key for SSH: ed25519, OpenSSH format (what the SSH client reads). */
export function privateKeyPem(): string {
  return sshKeyPair().private
}

/** An OpenSSH public key line, as in ~/.ssh/id_ed25519.pub. */
export function publicKeyLine(comment: string): string {
  return `${sshKeyPair().public} ${comment}\n`
}

// --- the sandbox ----------------------------------------------------------------------------

export interface Sandbox {
  /** The project copy (a git repository with one commit; node_modules links to the original). */
  root: string
  /** The loopback port standing in for AWS, SSH and HTTP. */
  port: number
  close(): Promise<void>
  /** Runs one task; see RunOptions. */
  run(opts: RunOptions): Promise<Outcome>
}

export interface RunOptions {
  /** File under tasks/, without .ts (e.g. deploy-aws). */
  task: string
  args?: string[]
  /** The text of the project copy's .env (deleted after the run); {HOME} stands for the task's HOME. */
  dotenv: string
  /** Files to write into the fresh HOME first (path relative to HOME -> content). */
  homeFiles?: Record<string, string>
  /** The process environment besides PATH and HOME. */
  env: Record<string, string>
  timeoutMs?: number
}

export interface Outcome {
  /** Exit code (null: killed). */
  code: number | null
  timedOut: boolean
  /** stdout and stderr, interleaved, without colours. */
  output: string
  /** Every docker call, its arguments (without `docker`). */
  dockerCalls: string[][]
  /** Every call of a fake installer or network tool (`name args`). */
  installCalls: string[]
  /** Connections accepted by the loopback listener. */
  connections: number
  /** Files created, changed or deleted in the project copy or HOME. */
  changedFiles: string[]
}

/** Copies the project (tracked and untracked, not ignored, files), commits it, sets up the fakes and the listener. */
export async function makeSandbox(): Promise<Sandbox> {
  const base = mkdtempSync(join(tmpdir(), 'mymdb-badinput-'))
  const root = join(base, 'project')
  const fakeBin = join(base, 'bin')
  const dockerLog = join(base, 'docker.log')
  const installLog = join(base, 'install.log')

  // the project copy
  const files = execFileSync('git', ['-C', PROJECT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' })
    .split('\0')
    .filter((f, i, all) => f !== '' && all.indexOf(f) === i)
  for (const f of files) {
    const src = join(PROJECT, f)
    if (!existsSync(src)) continue // deleted in the working tree
    const dst = join(root, f)
    mkdirSync(dirname(dst), { recursive: true })
    if (lstatSync(src).isSymbolicLink()) symlinkSync(readlinkSync(src), dst)
    else copyFileSync(src, dst)
    chmodSync(dst, lstatSync(src).mode & 0o777)
  }
  symlinkSync(join(PROJECT, 'node_modules'), join(root, 'node_modules'))
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, stdio: 'pipe' })
  git('init', '-q')
  writeFileSync(join(root, '.git', 'info', 'exclude'), '/node_modules\n')
  git('add', '-A')
  git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'init')

  // the fakes
  mkdirSync(fakeBin)
  writeFileSync(join(fakeBin, 'docker'), fakeDocker(dockerLog), { mode: 0o755 })
  for (const tool of INSTALL_TOOLS) writeFileSync(join(fakeBin, tool), fakeTool(tool, installLog), { mode: 0o755 })

  // the loopback listener: counts, then drops every connection
  let connections = 0
  const server: Server = createServer((socket) => {
    connections++
    socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  const port = (server.address() as { port: number }).port

  const readLines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : [])

  async function run(opts: RunOptions): Promise<Outcome> {
    const home = mkdtempSync(join(tmpdir(), 'mymdb-badinput-home-'))
    const envFile = join(root, '.env')
    try {
      for (const [path, content] of Object.entries(opts.homeFiles ?? {})) {
        mkdirSync(dirname(join(home, path)), { recursive: true, mode: 0o700 })
        writeFileSync(join(home, path), content, { mode: 0o600 })
      }
      writeFileSync(envFile, opts.dotenv.replaceAll('{HOME}', home))
      writeFileSync(dockerLog, '')
      writeFileSync(installLog, '')
      connections = 0
      const before = { project: snapshot(root), home: snapshot(home) }

      const child = spawn(process.execPath, ['--import', 'tsx', `tasks/${opts.task}.ts`, ...(opts.args ?? [])], {
        cwd: root,
        env: { PATH: `${fakeBin}:/usr/bin:/bin`, HOME: home, ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, so that a timeout ends it and its children
      })
      let output = ''
      child.stdout.on('data', (d: Buffer) => (output += d.toString()))
      child.stderr.on('data', (d: Buffer) => (output += d.toString()))
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      }, opts.timeoutMs ?? 60_000)
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
      clearTimeout(timer)
      await sleep(100) // connections made just before the exit are accepted by now

      return {
        code,
        timedOut,
        output: output.replace(ANSI, ''),
        dockerCalls: readLines(dockerLog).map((l) => l.split('\t')),
        installCalls: readLines(installLog),
        connections,
        changedFiles: [...diffSnapshots(before.project, snapshot(root), '<project>'), ...diffSnapshots(before.home, snapshot(home), '~')],
      }
    } finally {
      rmSync(envFile, { force: true })
      rmSync(home, { recursive: true, force: true })
    }
  }

  return {
    root,
    port,
    run,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      rmSync(base, { recursive: true, force: true })
    },
  }
}

// --- the verdict ----------------------------------------------------------------------------

/** `name` as a whole word (MYMDB_REGISTRY is not found in MYMDB_REGISTRY_USERNAME, .env not in .env.example). */
export function mentions(output: string, name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return new RegExp(`(?<![\\w-])${escaped}(?![\\w-]|\\.\\w)`).test(output)
}

/**
 * Every expectation a bad-input run failed, one line each (empty: all met): exit code 2, the
 * output names each of `expected`, no docker call but read-only ones, no install or network
 * tool, no connection to the AWS/SSH stand-in, no file created or changed.
 */
export function failedExpectations(o: Outcome, expected: string[]): string[] {
  const failed: string[] = []
  if (o.timedOut) failed.push('the task did not end within its time limit (killed)')
  else if (o.code !== 2) failed.push(`exit code ${o.code}, expected 2`)
  for (const name of expected) if (!mentions(o.output, name)) failed.push(`the output does not name ${name}`)
  const writes = o.dockerCalls.filter((args) => !isReadOnlyDocker(args))
  if (writes.length > 0) failed.push(`docker calls that are not read-only: ${writes.map((a) => `docker ${a.join(' ')}`).join('; ')}`)
  if (o.installCalls.length > 0) failed.push(`install or network tools were run: ${o.installCalls.join('; ')}`)
  if (o.connections > 0) failed.push(`${o.connections} connection(s) to the loopback listener standing in for AWS and SSH`)
  if (o.changedFiles.length > 0) failed.push(`files changed: ${o.changedFiles.join('; ')}`)
  return failed
}

/** The AWS SDK's warning about Node 20 (printed by every AWS task; left out of failure messages). */
const NODE_WARNING = /^\(node:\d+\) Warning: NodeVersionSupportWarning:[\s\S]*?^\(Use `node --trace-warnings[^\n]*\n/m

/** The task's output for a failure message (its last lines, indented). */
export function showOutput(output: string, maxLines = 60): string {
  const lines = output.replace(NODE_WARNING, '').trimEnd().split('\n')
  const shown = lines.length > maxLines ? ['...', ...lines.slice(-maxLines)] : lines
  return shown.map((l) => `  | ${l}`).join('\n')
}
