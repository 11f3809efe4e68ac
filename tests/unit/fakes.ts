// Test doubles for task dependencies: a recording fake Runner and a captured Log.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { createLog, type Log } from '../../tasks/lib/log.ts'
import type { Deps } from '../../tasks/lib/main.ts'
import { showCommand, type RunOptions, type RunResult, type Runner } from '../../tasks/lib/sh.ts'
import type { Remote } from '../../tasks/lib/ssh.ts'
import { deriveHostKey } from '../../tasks/lib/hostkey.ts'

export interface FakeRunner extends Runner {
  calls: { cmd: string[]; opts?: RunOptions }[]
  /** The commands run, each joined with spaces. */
  commands(): string[]
}

export type Answer = Partial<Omit<RunResult, 'command'>> | undefined

/** A Runner that records calls and answers from `respond` (default: success, empty output). */
export function fakeRunner(respond: (cmd: string) => Answer = () => undefined): FakeRunner {
  const calls: FakeRunner['calls'] = []
  const run = (async (cmd: readonly string[], opts?: RunOptions) => {
    calls.push({ cmd: [...cmd], opts })
    const a = respond(cmd.join(' ')) ?? {}
    const exitCode = a.exitCode === undefined ? 0 : a.exitCode
    return {
      command: showCommand(cmd),
      exitCode,
      signal: a.signal ?? null,
      stdout: a.stdout ?? '',
      stderr: a.stderr ?? '',
      ok: a.ok ?? exitCode === 0,
    }
  }) as FakeRunner
  run.calls = calls
  run.commands = () => calls.map((c) => c.cmd.join(' '))
  return run
}

/** Answers for a working Docker: engine and Compose v2 present. */
export function dockerOk(cmd: string): Answer {
  if (cmd.startsWith('docker info')) return { stdout: '26.1.5\n' }
  if (cmd.startsWith('docker compose version')) return { stdout: '2.26.1\n' }
  return undefined
}

/** A Runner that fails the test if anything is run. */
export function noDocker(): FakeRunner {
  return fakeRunner((cmd) => {
    throw new Error(`unexpected command: ${cmd}`)
  })
}

export interface CapturedLog extends Log {
  out: string[]
  err: string[]
  text(): string
}

const ANSI = /\x1b\[[0-9;]*m/g

export function captureLog(): CapturedLog {
  const out: string[] = []
  const err: string[] = []
  const log = createLog(
    (t) => out.push(t.replace(ANSI, '')),
    (t) => err.push(t.replace(ANSI, '')),
  ) as CapturedLog
  log.out = out
  log.err = err
  log.text = () => [...out, ...err].join('')
  return log
}

/** A temporary directory, optionally with a .env file in it. */
export function tempDir(envFileText?: string): { dir: string; envFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mymdb-unit-'))
  const envFile = join(dir, '.env')
  if (envFileText !== undefined) writeFileSync(envFile, envFileText)
  return { dir, envFile }
}

/**
 * A new ed25519 key pair in OpenSSH format that ssh2 itself reads back: about 1 in 500 of the
 * private keys ssh2's generateKeyPairSync makes are "Malformed OpenSSH private key" to its own
 * parser (measured: 6 of 3000), which made tests fail now and then. Those are thrown away.
 */
export function sshKeyPair(): { private: string; public: string } {
  for (;;) {
    const keys = ssh2.utils.generateKeyPairSync('ed25519')
    if (!(ssh2.utils.parseKey(keys.private) instanceof Error)) return keys
  }
}

/** The SSH host key of the tests' hosts (fake sessions do not check it; what the tasks pinned is recorded). */
export const TEST_HOST_KEY = deriveHostKey('test', 'qa', 1, 'sg-1').publicLine

/** A new key pair whose private key is written to `path` (mode 0600), as a deployer keeps it. */
export function sshKeyFile(path: string): { private: string; public: string } {
  const keys = sshKeyPair()
  writeFileSync(path, keys.private, { mode: 0o600 })
  chmodSync(path, 0o600)
  return keys
}

/** A new OpenSSH ed25519 private key in a temporary directory (mode 0600); returns its path. */
export function testKeyFile(): string {
  const path = join(tempDir().dir, 'id_test')
  writeFileSync(path, sshKeyPair().private, { mode: 0o600 })
  return path
}

/** Deps for a task's main: captured log, given runner, no .env (unless given), never interactive. */
export function testDeps(run: Runner, extra: Partial<Deps> = {}): Partial<Deps> & { log: CapturedLog } {
  const log = captureLog()
  return { run, envFile: tempDir().envFile, interactive: false, confirm: async () => false, ...extra, log }
}

export interface FakeRemote extends Remote {
  commands: string[]
  stdin: (string | undefined)[]
  uploads: { path: string; content: string; mode?: number }[]
  closed: boolean
}

/** A Remote that records everything; `fail(cmd)` returns a failing result for some commands. */
export function fakeRemote(fail: (cmd: string) => Partial<RunResult> | undefined = () => undefined): FakeRemote {
  const r: FakeRemote = {
    where: 'admin@127.0.0.1:2222',
    commands: [],
    stdin: [],
    uploads: [],
    closed: false,
    async run(cmd, opts = {}) {
      const command = showCommand(cmd, opts.cwd)
      r.commands.push(command)
      r.stdin.push(opts.input)
      const f = fail(command)
      const exitCode = f?.exitCode === undefined ? 0 : f.exitCode
      return { command, exitCode, signal: null, stdout: '', stderr: '', ...f, ok: exitCode === 0 }
    },
    async upload(path, content, mode) {
      r.uploads.push({ path, content: content.toString(), mode })
    },
    close() {
      r.closed = true
    },
  }
  return r
}

/**
 * The lock table of lock.ts in memory, for unit tests of the tasks that take the lock: the table
 * exists, an item is written when there is none (or it expired), and removed. The lock's own
 * behaviour (conditions, expiry, renewal, Ctrl-C) is tested against the emulator in
 * tests/system/lock.test.ts.
 */
export function fakeLockTable(): { send(cmd: { constructor: { name: string }; input: Record<string, any> }): Promise<unknown>; items: Map<string, Record<string, any>> } {
  const items = new Map<string, Record<string, any>>()
  const failed = () => Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException', $metadata: { httpStatusCode: 400 } })
  return {
    items,
    async send(cmd) {
      const name = cmd.constructor.name.replace(/Command$/, '')
      const stage = String(cmd.input.Item?.stage?.S ?? cmd.input.Key?.stage?.S ?? '')
      const held = items.get(stage)
      if (name === 'DescribeTable') return { Table: { TableStatus: 'ACTIVE' } }
      if (name === 'GetItem') return { Item: held }
      if (name === 'PutItem') {
        if (held && Number(held.expires.N) >= Number(cmd.input.ExpressionAttributeValues[':now'].N)) throw failed()
        items.set(stage, cmd.input.Item)
        return {}
      }
      if (name === 'UpdateItem' || name === 'DeleteItem') {
        const token = cmd.input.ExpressionAttributeValues?.[':token']?.S
        if (token !== undefined && held?.token?.S !== token) throw failed()
        if (name === 'DeleteItem') items.delete(stage)
        else if (held) held.expires = cmd.input.ExpressionAttributeValues[':expires']
        return {}
      }
      throw new Error(`unexpected DynamoDB call ${name}`)
    },
  }
}

/**
 * Answers of a deploy host whose Swarm stack runs `images` (service → image, as the stack file
 * names them): the rendered compose config, `docker service inspect` (the last update completed,
 * tags resolved to a digest) and healthy running containers; `runs` is what HOST_RUNS_CMD says.
 */
export function swarmHost(o: { images?: Record<string, string>; runs?: 'swarm' | 'compose' | 'none'; updateState?: string; specImages?: Record<string, string>; health?: string } = {}) {
  const images = o.images ?? { proxy: '127.0.0.1:5000/mymdb-proxy:abc123', web: '127.0.0.1:5000/mymdb-web:abc123', db: '127.0.0.1:5000/mymdb-db:abc123', cache: '127.0.0.1:5000/mymdb-cache:abc123' }
  const resolved = (ref: string) => (ref.includes('@') ? ref : `${ref}@sha256:${'0'.repeat(64)}`)
  return (cmd: string): Partial<RunResult> | undefined => {
    if (cmd.includes('echo swarm; elif')) return { stdout: `${o.runs ?? 'swarm'}\n` }
    if (cmd.includes('docker version --format')) return { stdout: '26.1.5+dfsg1 26.1.5+dfsg1\n' }
    if (cmd.includes('docker node ls --quiet | wc -l')) return { stdout: '1\n' }
    if (cmd.includes('compose config --format json'))
      return { stdout: JSON.stringify({ name: 'mymdb', services: Object.fromEntries(Object.entries(images).map(([s, image]) => [s, { image }])), networks: { front: {}, back: { internal: true } }, volumes: { 'db-data': {} } }) }
    if (cmd.includes('docker service inspect --format {{json .}}') || cmd.includes("docker service inspect --format '{{json .}}'"))
      return {
        stdout: Object.entries(images)
          .map(([s, ref]) => JSON.stringify({ Spec: { Name: `mymdb_${s}`, TaskTemplate: { ContainerSpec: { Image: resolved(o.specImages?.[s] ?? ref) } } }, UpdateStatus: { State: s === 'web' ? (o.updateState ?? 'completed') : 'completed', Message: 'update rolled back due to failure or early termination of task' } }))
          .join('\n'),
      }
    // the deploy's (every task) and status's (desired state running) task lists
    if (cmd.includes('docker service ps') && cmd.includes('{{json .}}'))
      return {
        stdout: Object.entries(images)
          .map(([s, ref], i) => JSON.stringify({ ID: `t${i}`, Name: `mymdb_${s}.1`, Image: resolved(o.specImages?.[s] ?? ref), Node: 'host1', DesiredState: 'Running', CurrentState: s === 'web' && o.health === 'starting' ? 'Starting 2 seconds ago' : 'Running 1 minute ago', Error: '' }))
          .join('\n'),
      }
    if (cmd.includes('--filter label=com.docker.stack.namespace=mymdb --format'))
      return {
        stdout: Object.entries(images)
          .map(([s, ref], i) => JSON.stringify({ ID: `c${i}`, Names: `mymdb_${s}.1.task${i}`, Image: resolved(o.specImages?.[s] ?? ref), State: 'running', Status: `Up 1 minute (${s === 'web' ? (o.health ?? 'healthy') : 'healthy'})`, Labels: `com.docker.stack.namespace=mymdb,com.docker.swarm.service.name=mymdb_${s}`, CreatedAt: '2026-11-27 10:00:00 +0000 UTC' }))
          .join('\n'),
      }
    return undefined
  }
}

/**
 * Fake RDS, load balancer and EFS clients of a stage that has neither a database on RDS nor a
 * front door (one host): every lookup answers "not found" as AWS does; any other call fails the
 * test. Each call's name goes into `sent`.
 */
export function absentStageServices(sent: string[]) {
  const call = (service: string, missing: Record<string, string | (() => unknown)>) => ({
    send: async (cmd: { constructor: { name: string } }) => {
      const name = cmd.constructor.name.replace(/Command$/, '')
      sent.push(name)
      const answer = missing[name]
      if (typeof answer === 'function') return answer()
      throw Object.assign(new Error('not found'), { name: answer ?? `unexpected ${service} call ${name}`, $metadata: { httpStatusCode: 404 } })
    },
  })
  return {
    rds: call('RDS', { DescribeDBInstances: 'DBInstanceNotFound', DescribeDBParameters: 'DBParameterGroupNotFound', DescribeDBSubnetGroups: 'DBSubnetGroupNotFoundFault' }),
    elb: call('ELB', { DescribeLoadBalancers: 'LoadBalancerNotFoundException', DescribeTargetGroups: 'TargetGroupNotFoundException' }),
    efs: call('EFS', { DescribeFileSystems: () => ({ FileSystems: [] }) }),
  }
}
