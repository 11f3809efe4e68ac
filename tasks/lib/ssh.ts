// SSH to the deploy host (ssh2 underneath, in the style of node-ssh): one small helper used by
// every task that works on the host. `openRemote` gives a Remote whose `run` has the shape of
// the local Runner (sh.ts): the same options, result, quoting and error reports.
//
//   const remote = await openRemote({ host, port, username, privateKey })
//   try {
//     await runChecked(remote.run, ['docker', 'compose', 'pull'], { cwd: '~/mymdb', doing: 'pull the images' })
//     await remote.upload('~/mymdb/.env', text, 0o600)
//   } finally {
//     remote.close()
//   }
//
// Remote commands run in the login user's shell (bash on Debian hosts), always as
// `set -euo pipefail; <command>`, each argument shell-quoted, so that no value is ever
// interpreted by the remote shell.
import { randomBytes } from 'node:crypto'
import { StringDecoder } from 'node:string_decoder'
import type { Client, ClientChannel, ServerHostKeyAlgorithm, SFTPWrapper } from 'ssh2'
import { remoteWork } from './remotework.ts'
import { UserError } from './errors.ts'
import { fingerprint, hostKeyMismatch, keyLine, type HostKey } from './hostkey.ts'
import { lazy } from './lazy.ts'
import { homeRelative, retryUntil, runChecked, showCommand, type Cmd, type RunOptions, type RunResult, type Runner } from './sh.ts'

/** ssh2, loaded when the first connection is made. */
const SSH2 = lazy<typeof import('ssh2')>('ssh2')

export interface SshTarget {
  host: string
  port: number
  username: string
  /** The private key (OpenSSH or PEM text). */
  privateKey: string | Buffer
  /** The host key the host must present (lib/hostkey.ts): checked in the key exchange, before anything is sent. */
  hostKey: HostKey
  /** Milliseconds to wait for the SSH handshake of one attempt (default 20 000). */
  readyTimeout?: number
  /** Milliseconds between keepalives (default 15 000); 4 unanswered in a row end the connection. */
  keepaliveMs?: number
}

export interface ConnectOptions extends SshTarget {
  /** Connection attempts before giving up (default 10): a host that is booting refuses or drops connections. */
  attempts?: number
  /** Milliseconds between attempts (default 2 000). */
  retryDelayMs?: number
  /** Called before each retry, e.g. to log "SSH not ready yet". */
  onRetry?(attempt: number, error: Error): void
}

/** The exact text sent to the remote shell: strict mode, then the quoted command. */
export function remoteCommand(cmd: Cmd, cwd?: string): string {
  if (cmd.length === 0) throw new Error('remoteCommand: empty argument list')
  return `set -euo pipefail; ${showCommand(cmd, cwd)}`
}

/**
 * The connection broke while a command ran or a file was sent (network gone, host rebooted,
 * no answer to 4 keepalives 15 s apart: about a minute). What ran may have stopped half-way on the host.
 */
export class SshConnectionLost extends UserError {
  constructor(where: string, during: string) {
    super(
      `the SSH connection to ${where} was lost during ${during}; it may have stopped half-way on the host. Run the same npm command again: it starts that step over`,
    )
    this.name = 'SshConnectionLost'
  }
}

/** ssh2's messages for a request on a connection that is gone. */
const GONE = /not connected|no response from server|channel (is )?closed|connection (closed|lost)/i

/** `user@host:port` of a connection, for messages. */
function whereOf(conn: Client): string {
  const c = (conn as unknown as { config?: { host?: string; port?: number; username?: string } }).config
  return c ? `${c.username ?? '?'}@${c.host ?? '?'}:${c.port ?? 22}` : 'the host'
}

function isAuthFailure(err: Error): boolean {
  return /authentication methods failed|publickey/i.test(err.message) || (err as { level?: string }).level === 'client-authentication'
}

/**
 * The fingerprint of the key a host presents, learnt without logging in (the key exchange is
 * broken off after the host's key arrived): for a confirmation on a terminal before anything is
 * sent (trust on first use). Tries ssh-ed25519 first.
 */
export async function presentedHostKey(target: Omit<SshTarget, 'hostKey' | 'privateKey'>): Promise<{ fingerprint: string; line: string }> {
  const conn = new SSH2.Client()
  let seen: { fingerprint: string; line: string } | undefined
  await new Promise<void>((done) => {
    conn.once('error', () => done())
    conn.once('close', () => done())
    conn.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      readyTimeout: target.readyTimeout ?? 20_000,
      algorithms: { serverHostKey: ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256'] },
      hostVerifier: (key: Buffer) => {
        seen = { fingerprint: fingerprint(key), line: keyLine(key) }
        return false
      },
    })
  })
  conn.destroy()
  if (!seen) throw new UserError(`SSH to ${target.username}@${target.host}:${target.port}: no host key could be read (the host does not answer SSH)`)
  return seen
}

function connectOnce(target: SshTarget): Promise<Client> {
  return new Promise((resolve, reject) => {
    const conn = new SSH2.Client()
    let presented: string | undefined
    const onReady = () => {
      conn.removeListener('error', onError)
      conn.removeListener('close', onClose)
      // Later errors (connection dropped) must not crash the process; calls on conn then fail.
      conn.on('error', () => {})
      resolve(conn)
    }
    const onError = (err: Error) => {
      conn.removeListener('ready', onReady)
      conn.removeListener('close', onClose)
      // ssh2 may report the end of this attempt twice (an error, then "lost before handshake"):
      // the second must not crash the process.
      conn.on('error', () => {})
      // destroy, not end: a half-closed socket would keep the process alive after the task.
      conn.destroy()
      // another host key than the pinned one: a UserError, never retried
      reject(presented !== undefined && presented !== target.hostKey.fingerprint ? hostKeyMismatch(`${target.username}@${target.host}:${target.port}`, target.hostKey, presented) : err)
    }
    // A server that hangs up after its banner ends the socket without an 'error' from ssh2.
    const onClose = () => onError(new Error('the connection was closed during the SSH handshake'))
    conn.once('ready', onReady)
    conn.once('error', onError)
    conn.once('close', onClose)
    conn.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      // Only the pinned key's type is asked for; the key must be the pinned one, else the key
      // exchange ends here: the login (user name, key signature) and everything after it is
      // never sent.
      ...(target.hostKey.type ? { algorithms: { serverHostKey: [target.hostKey.type as ServerHostKeyAlgorithm] } } : {}),
      hostVerifier: (key: Buffer) => {
        presented = fingerprint(key)
        return presented === target.hostKey.fingerprint
      },
      readyTimeout: target.readyTimeout ?? 20_000,
      // A link gone silent is noticed when 4 keepalives in a row get no answer (about a minute).
      keepaliveInterval: target.keepaliveMs ?? 15_000,
      keepaliveCountMax: 3,
    })
  })
}

/**
 * Connects, retrying refused, dropped or timed-out connections (a host still booting) up to
 * `attempts` times. A rejected key is not retried: UserError (exit 1) saying which key to use.
 */
export async function connect(opts: ConnectOptions): Promise<Client> {
  const attempts = Math.max(1, opts.attempts ?? 10)
  const where = `${opts.username}@${opts.host}:${opts.port}`
  return retryUntil(
    attempts,
    opts.retryDelayMs ?? 2_000,
    async (n) => {
      try {
        return await connectOnce(opts)
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e))
        if (err instanceof UserError) throw err
        if (/parse privateKey|privateKey value does not contain/i.test(err.message))
          throw new UserError(`SSH to ${where}: the private key cannot be used (${err.message}). Check MYMDB_SSH_KEY_FILE.`)
        if (isAuthFailure(err))
          throw new UserError(`SSH to ${where}: the host refused the key (${err.message}). Check MYMDB_SSH_KEY_FILE and MYMDB_SSH_USER.`)
        if (n < attempts) opts.onRetry?.(n, err)
        throw err
      }
    },
    (last) => new UserError(`SSH to ${where}: no connection after ${attempts} attempts (last error: ${last})`),
  )
}

/**
 * Runs a command on the host. Never throws for a failing command: look at `ok`. Throws
 * SshConnectionLost when the connection breaks before the command's exit status arrived.
 */
export function exec(conn: Client, cmd: Cmd, opts: RunOptions = {}): Promise<RunResult> {
  const command = showCommand(cmd, opts.cwd)
  const text = remoteCommand(cmd, opts.cwd)
  if (opts.env) throw new Error('exec: commands on the host take no environment (its .env holds the settings)')
  const tty = opts.interactive === true && opts.output === undefined && process.stdin.isTTY === true
  // counted: an interrupted run waits for it before it lets go of the stage's lock (lock.ts)
  return remoteWork(command, () => new Promise<RunResult>((resolve, reject) => {
    // ssh2 emits the connection's 'close' before it closes the channels that were open on it.
    let connectionLost = false
    const onConnClose = () => {
      connectionLost = true
    }
    conn.once('close', onConnClose)
    const pty = tty ? { term: process.env.TERM || 'xterm', rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } : false
    conn.exec(text, { pty }, (err, channel: ClientChannel) => {
      if (err) {
        conn.removeListener('close', onConnClose)
        reject(connectionLost || GONE.test(err.message) ? new SshConnectionLost(whereOf(conn), `\`${command}\``) : err)
        return
      }
      let stdout = ''
      let stderr = ''
      let exitCode: number | null = null
      let signal: string | null = null
      let timer: NodeJS.Timeout | undefined
      // RunOptions.output: passed on as text as it comes (a character cut by a chunk boundary
      // waits for the rest), nothing kept
      const decoders = { out: new StringDecoder('utf8'), err: new StringDecoder('utf8') }
      const onOut = (d: Buffer) => {
        if (opts.output) return void opts.output.stdout(decoders.out.write(d))
        if (opts.interactive) return void process.stdout.write(d)
        const s = d.toString()
        stdout += s
        opts.stream?.(s)
      }
      const onErr = (d: Buffer) => {
        if (opts.output) return void opts.output.stderr(decoders.err.write(d))
        if (opts.interactive) return void process.stderr.write(d)
        const s = d.toString()
        stderr += s
        opts.stream?.(s)
      }
      const onExit = (c: number | null, sig?: string) => {
        if (typeof c === 'number') exitCode = c
        if (sig) signal = sig
      }
      const onResize = () => channel.setWindow(process.stdout.rows || 24, process.stdout.columns || 80, 0, 0)
      const onStdin = (d: Buffer) => channel.write(d)
      const onStdinEnd = () => channel.end()
      const cleanup = () => {
        if (timer) clearTimeout(timer)
        conn.removeListener('close', onConnClose)
        channel.removeListener('data', onOut)
        channel.stderr.removeListener('data', onErr)
        channel.removeListener('exit', onExit)
        channel.removeListener('close', onClose)
        channel.removeListener('error', onError)
        if (opts.interactive) {
          process.stdin.removeListener('data', onStdin)
          process.stdin.removeListener('end', onStdinEnd)
          process.stdout.removeListener('resize', onResize)
          if (tty) process.stdin.setRawMode(false)
          process.stdin.pause()
        }
      }
      const onClose = () => {
        cleanup()
        opts.stream?.flush?.()
        if (opts.output) {
          opts.output.stdout(decoders.out.end())
          opts.output.stderr(decoders.err.end())
          opts.output.flush?.()
        }
        if (connectionLost && exitCode === null && signal === null) reject(new SshConnectionLost(whereOf(conn), `\`${command}\``))
        else resolve({ command, exitCode, signal, stdout, stderr, ok: exitCode === 0 })
      }
      const onError = (e: Error) => {
        cleanup()
        channel.close()
        reject(e)
      }
      channel.on('data', onOut)
      channel.stderr.on('data', onErr)
      channel.on('exit', onExit)
      channel.on('close', onClose)
      channel.on('error', onError)
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          signal = 'TIMEOUT'
          stderr += `\n(no answer within ${Math.round(opts.timeoutMs! / 1000)} s: stopped)`
          channel.close()
        }, opts.timeoutMs)
      }
      if (opts.interactive) {
        // This terminal becomes the host's: keys go there as typed (Ctrl-C included), output comes back.
        if (tty) process.stdin.setRawMode(true)
        process.stdin.on('data', onStdin)
        process.stdin.on('end', onStdinEnd)
        process.stdout.on('resize', onResize)
        process.stdin.resume()
      } else if (opts.input !== undefined) channel.end(opts.input)
      else channel.end()
    })
  }))
}

function sftpOf(conn: Client, doing: string): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) =>
    conn.sftp((err, sftp) => (err ? reject(GONE.test(err.message) ? new SshConnectionLost(whereOf(conn), doing) : err) : resolve(sftp))),
  )
}

function call(fn: (cb: (err?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())))
}

/**
 * Writes `content` to `remotePath` (`~/` = the login user's home) with `mode`: the parent
 * directory is created, the data goes to a temporary name in the same directory (created with
 * `mode`, so a secret is never readable by others) and is then renamed over the target, so
 * readers see the old file or the new one, never half of it. The file belongs to the login user.
 */
export async function upload(conn: Client, remotePath: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const path = homeRelative(remotePath)
  const slash = path.lastIndexOf('/')
  const dir = slash > 0 ? path.slice(0, slash) : slash === 0 ? '/' : '.'
  const base = path.slice(slash + 1)
  if (base === '' || base === '.' || base === '..') throw new Error(`upload: not a file path: ${remotePath}`)
  await runChecked((c, o) => exec(conn, c, o), ['mkdir', '-p', '--', dir], { doing: `create ${dir} on the host` })
  const tmp = `${dir === '.' ? '' : `${dir.replace(/\/$/, '')}/`}.${base}.tmp-${randomBytes(4).toString('hex')}`
  const sftp = await sftpOf(conn, `the upload of ${remotePath}`)
  let renamed = false
  try {
    const handle = await new Promise<Buffer>((resolve, reject) =>
      sftp.open(tmp, 'wx', { mode }, (err, h) => (err ? reject(err) : resolve(h))),
    )
    try {
      const data = Buffer.isBuffer(content) ? content : Buffer.from(content)
      // The server's umask may have narrowed the mode; set it exactly before any data is written.
      await call((cb) => sftp.fchmod(handle, mode, cb))
      let offset = 0
      while (offset < data.length) {
        const n = Math.min(32 * 1024, data.length - offset)
        await call((cb) => sftp.write(handle, data, offset, n, offset, cb))
        offset += n
      }
    } finally {
      await call((cb) => sftp.close(handle, cb))
    }
    // OpenSSH's posix-rename replaces an existing file atomically (plain SFTP rename refuses).
    await call((cb) => sftp.ext_openssh_rename(tmp, path, cb))
    renamed = true
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e)
    if (GONE.test(why)) throw new SshConnectionLost(whereOf(conn), `the upload of ${remotePath}`)
    throw new UserError(`could not upload ${remotePath} to the host over SFTP: ${why}`)
  } finally {
    if (!renamed) await call((cb) => sftp.unlink(tmp, cb)).catch(() => {})
    sftp.end()
  }
}

/** Reads a remote file's text over SFTP (`~/` = home). */
export async function download(conn: Client, remotePath: string): Promise<string> {
  const sftp = await sftpOf(conn, `the download of ${remotePath}`)
  try {
    return await new Promise<string>((resolve, reject) =>
      sftp.readFile(homeRelative(remotePath), (err: Error | undefined | null, data: Buffer) => (err ? reject(err) : resolve(data.toString()))),
    )
  } finally {
    sftp.end()
  }
}

/** An open SSH session to the host, as the tasks use it (tests pass a fake one). */
export interface Remote {
  /** `user@host:port`, for messages. */
  where: string
  /** Runs a command on the host: the local Runner's shape (options, result, errors). */
  run: Runner
  upload(remotePath: string, content: string | Buffer, mode?: number): Promise<void>
  close(): void
}

export type OpenRemote = (opts: ConnectOptions) => Promise<Remote>

/** Connects (with retries) and returns the session as a Remote. */
export const openRemote: OpenRemote = async (opts) => {
  const conn = await connect(opts)
  return {
    where: `${opts.username}@${opts.host}:${opts.port}`,
    run: (cmd, o) => exec(conn, cmd, o),
    upload: (path, content, mode) => upload(conn, path, content, mode),
    close: () => conn.end(),
  }
}
