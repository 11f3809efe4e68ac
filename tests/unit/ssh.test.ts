import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { CommandError, UserError } from '../../tasks/lib/errors.ts'
import { check, homeRelative, shellQuote, showCommand, type RunResult } from '../../tasks/lib/sh.ts'
import { connect, remoteCommand } from '../../tasks/lib/ssh.ts'
import { sshKeyPair } from './fakes.ts'

/** What bash makes of a quoted argument list: each argument on its own, NUL-separated. */
function roundTrip(args: string[]): string[] {
  const script = `printf '%s\\0' ${args.map(shellQuote).join(' ')}`
  return execFileSync('bash', ['-c', script], { encoding: 'utf8' }).split('\0').slice(0, -1)
}

describe('shellQuote', () => {
  it('leaves plain words alone', () => {
    for (const w of ['docker', 'compose', '--wait-timeout', '180', '127.0.0.1:5000/mymdb-web:test', 'a=b,c@d%e+f']) assert.equal(shellQuote(w), w)
  })
  it('quotes spaces, $, quotes, globs, newlines and the empty string', () => {
    assert.equal(shellQuote(''), "''")
    assert.equal(shellQuote('a b'), "'a b'")
    assert.equal(shellQuote('$HOME'), "'$HOME'")
    assert.equal(shellQuote("it's"), `'it'\\''s'`)
    assert.equal(shellQuote('*'), "'*'")
    assert.equal(shellQuote('~/x'), "'~/x'")
    assert.equal(shellQuote('a\nb'), "'a\nb'")
  })
  it('bash reads every argument back exactly', () => {
    const nasty = ['', ' ', 'a b', '$HOME', '${X:-y}', '$(id)', '`id`', "it's", `"dq"`, "'", "''", 'a\nb', 'tab\there', '\\', 'x\\', '*', '; rm -rf /', '#c', '!x', 'ünï', '-n']
    assert.deepEqual(roundTrip(nasty), nasty)
  })
})

describe('remoteCommand', () => {
  it('prefixes strict mode and quotes each argument', () => {
    assert.equal(remoteCommand(['echo', 'a b', '$X']), "set -euo pipefail; echo 'a b' '$X'")
  })
  it('a script is an argument of sh -c, quoted like any other', () => {
    assert.equal(remoteCommand(['sh', '-c', 'docker info && docker compose version']), "set -euo pipefail; sh -c 'docker info && docker compose version'")
  })
  it('runs in a directory relative to the home directory (~/ dropped, quoted)', () => {
    assert.equal(remoteCommand(['docker', 'compose', 'pull'], '~/mymdb'), 'set -euo pipefail; cd mymdb && docker compose pull')
    assert.equal(remoteCommand(['ls'], '~/my dir'), "set -euo pipefail; cd 'my dir' && ls")
    assert.equal(showCommand(['ls'], '/srv/x'), 'cd /srv/x && ls')
  })
  it('refuses an empty argument list', () => {
    assert.throws(() => remoteCommand([]))
  })
  it('a quoted argv runs as one command under bash, with the strict mode on', () => {
    const out = execFileSync('bash', ['-c', remoteCommand(['printf', '%s|', 'a b', "c'd", '$HOME'])], { encoding: 'utf8' })
    assert.equal(out, "a b|c'd|$HOME|")
    // pipefail: a failing first stage fails the pipeline
    assert.throws(() => execFileSync('bash', ['-c', `${remoteCommand(['true'])}; false | true`], { stdio: 'ignore' }))
  })
  it('homeRelative', () => {
    assert.equal(homeRelative('~/mymdb/.env'), 'mymdb/.env')
    assert.equal(homeRelative('~'), '.')
    assert.equal(homeRelative('/etc/x'), '/etc/x')
  })
})

describe('check: one error format for commands here and on the host', () => {
  const result = (o: Partial<RunResult>): RunResult => {
    const exitCode = o.exitCode === undefined ? 0 : o.exitCode
    return { command: 'true', signal: null, stdout: '', stderr: '', ...o, exitCode, ok: exitCode === 0 }
  }
  it('passes a success through', () => {
    const r = result({ stdout: 'x' })
    assert.equal(check(r), r)
  })
  it('throws a CommandError with $ command, exit code and stderr', () => {
    const r = result({ command: 'cd mymdb && docker compose pull', exitCode: 18, stderr: 'Error response from daemon: connection refused\n' })
    try {
      check(r, 'pull the images')
      assert.fail('no error')
    } catch (e) {
      assert.ok(e instanceof CommandError)
      const text = e.format()
      assert.match(text, /^Could not pull the images\./)
      assert.match(text, /\$ cd mymdb && docker compose pull/)
      assert.match(text, /exit code 18/)
      assert.match(text, /connection refused/)
    }
  })
  it('a command killed or timed out reports the signal', () => {
    const r = result({ command: 'sleep 99', exitCode: null, signal: 'TIMEOUT' })
    assert.throws(() => check(r), (e: unknown) => e instanceof CommandError && /killed by TIMEOUT/.test(e.format()))
  })
  it('falls back to stdout when stderr is empty', () => {
    const r = result({ command: 'x', exitCode: 1, stdout: 'told on stdout' })
    assert.throws(() => check(r), (e: unknown) => e instanceof CommandError && /told on stdout/.test(e.format()))
  })
})

/** A pinned key (nothing answers at port 1 anyway). */
const ANY_KEY = { fingerprint: 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s', source: 'test' }

describe('connect', () => {
  it('gives up after the given attempts with a UserError naming the host', async () => {
    // Port 1 on loopback: refused at once.
    const retries: number[] = []
    const { private: privateKey } = sshKeyPair()
    await assert.rejects(
      connect({ host: '127.0.0.1', port: 1, username: 'admin', privateKey, hostKey: ANY_KEY, attempts: 2, retryDelayMs: 10, onRetry: (n) => retries.push(n) }),
      (e: unknown) => e instanceof UserError && /admin@127\.0\.0\.1:1: no connection after 2 attempts/.test(e.message),
    )
    assert.deepEqual(retries, [1])
  })
  it('an unreadable key is not retried', async () => {
    const retries: number[] = []
    await assert.rejects(
      connect({ host: '127.0.0.1', port: 1, username: 'admin', privateKey: 'not a key', hostKey: ANY_KEY, attempts: 5, retryDelayMs: 10, onRetry: (n) => retries.push(n) }),
      (e: unknown) => e instanceof UserError && /private key cannot be used/.test(e.message),
    )
    assert.deepEqual(retries, [])
  })
})
