import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { explainAwsError } from '../../tasks/lib/aws/clients.ts'
import { chmodSync, readFileSync, statSync } from 'node:fs'
import { holdsPort, parsePs, saveLocalSecrets, unhealthy, volumeNames, withLocalDefaults, LOCAL_DEFAULTS, VOLUMES } from '../../tasks/lib/compose.ts'
import { CommandError, ConfigError, UserError } from '../../tasks/lib/errors.ts'
import { controlFilter, formatDuration, plainOutput, stripControls } from '../../tasks/lib/log.ts'
import { LAYER_CHATTER } from '../../tasks/lib/images.ts'
import { isEntryPoint, parseFlags, reportError, runCli } from '../../tasks/lib/main.ts'
import { tempDir } from './fakes.ts'
import { check, retryUnstarted, showCommand, zxRunner, type Cmd, type RunResult } from '../../tasks/lib/sh.ts'
import { hostStack, runInChecked } from '../../tasks/lib/stack.ts'
import { captureLog } from './fakes.ts'

describe('errors and reporting', () => {
  it('a failed command that carried a secret (a signed link) is reported without it', () => {
    const url = 'https://b.s3.amazonaws.com/x.tar?X-Amz-Signature=abc123&X-Amz-Credential=AKIA'
    const err = new CommandError({ command: `sh -c 'python3 s3_backup.py get '\''${url}'\'' > "$0"' restore.d/x.tar`, exitCode: 1, stderr: `s3_backup: HTTPError: 403 for ${url}\n`, doing: 'download x.tar on the host' })
    const log = captureLog()
    assert.equal(reportError(err.hiding(url, '<link signed for 15 minutes>'), log), 1)
    const shown = log.err.join('')
    assert.doesNotMatch(shown, /X-Amz-Signature|abc123|AKIA/)
    assert.match(shown, /<link signed for 15 minutes>/)
    assert.match(shown, /Could not download x\.tar on the host/)
    assert.match(shown, /exit code 1/)
  })
  it('a UserError: one red line, its exit code, no stack', () => {
    const log = captureLog()
    assert.equal(reportError(new UserError('port 8080 is in use: set WEB_PORT'), log), 1)
    assert.equal(reportError(new ConfigError('bad option'), log), 2)
    assert.deepEqual(log.err, ['port 8080 is in use: set WEB_PORT\n', 'bad option\n'])
  })
  it('a failed command: $ command, exit code, stderr', () => {
    const log = captureLog()
    const err = new CommandError({ command: 'docker build .', exitCode: 17, stderr: 'no space left\n', doing: 'build the web image' })
    assert.equal(reportError(err, log), 1)
    assert.equal(log.err.join(''), 'Could not build the web image.\n$ docker build .\nexit code 17\nstderr:\n  no space left\n')
  })
  it('check() turns a failed RunResult into a CommandError; streamed output is cut to its tail', () => {
    const stderr = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n')
    const r = { command: 'x', exitCode: 3, signal: null, stdout: '', stderr, ok: false }
    assert.throws(() => check(r, 'do x', true), (e: unknown) => e instanceof CommandError && e.exitCode === 3 && !e.stderr.includes('line 39\n') && e.stderr.includes('line 49'))
    const ok = { ...r, ok: true, exitCode: 0 }
    assert.equal(check(ok), ok)
  })
  it('an unexpected error is printed in full (stack)', () => {
    const log = captureLog()
    assert.equal(reportError(new TypeError('boom'), log), 1)
    assert.match(log.err.join(''), /TypeError: boom\n\s+at /)
  })
})

describe('runCli', () => {
  const cli = { command: 'npm run thing', help: 'Usage: npm run thing', options: { 'dry-run': { type: 'boolean' }, only: { type: 'string' } } } as const
  it('-h and --help print the help and run nothing', async () => {
    for (const argv of [['-h'], ['--help'], ['--dry-run', '--help']]) {
      const log = captureLog()
      assert.equal(await runCli(argv, {}, { log }, cli, async () => assert.fail('ran')), 0)
      assert.equal(log.text(), 'Usage: npm run thing\n')
    }
  })
  it('passes the parsed options to the body', async () => {
    let seen: unknown
    assert.equal(await runCli(['--dry-run', '--only', 'web'], {}, { log: captureLog() }, cli, async (_deps, flags) => { seen = flags; return 3 }), 3)
    assert.deepEqual({ ...(seen as object) }, { 'dry-run': true, only: 'web' })
  })
  it('an unknown option: exit 2 pointing at --help, the body never runs', async () => {
    const log = captureLog()
    assert.equal(await runCli(['--dryrun'], {}, { log }, cli, async () => assert.fail('ran')), 2)
    assert.match(log.text(), /Unknown option '--dryrun'.*See: npm run thing -- --help/)
  })
})

describe('explainAwsError', () => {
  it('fixable AWS errors become one line saying what to do', () => {
    const e = explainAwsError(Object.assign(new Error('no quota'), { name: 'InstanceLimitExceeded' }), 'launch the instance')
    assert.ok(e instanceof UserError)
    assert.match(e.message, /^could not launch the instance: the EC2 instance quota .* \(InstanceLimitExceeded\)$/)
  })
  it('a call cut off (reset, timeout) says the connection broke and to run the same command again', () => {
    for (const err of [
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      Object.assign(new Error('request has exceeded the configured 60000 ms requestTimeout'), { name: 'TimeoutError', code: 'ETIMEDOUT' }),
    ]) {
      const e = explainAwsError(err, 'create the security group')
      assert.ok(e instanceof UserError, err.message)
      assert.match(e.message, /^could not create the security group: the connection to AWS broke \(.+\)\. .*run the same npm command again$/)
    }
  })
  it('anything else (a bug, an outage) is passed on unchanged', () => {
    const err = Object.assign(new Error('We encountered an internal error'), { name: 'InternalError' })
    assert.equal(explainAwsError(err, 'create the bucket'), err)
  })
})

describe('parseFlags', () => {
  it('rejects unknown options with exit code 2 and a hint', () => {
    assert.throws(() => parseFlags(['--aws'], { help: { type: 'boolean' } }, 'npm run stop -- --help'), (e: unknown) => {
      assert.ok(e instanceof ConfigError)
      assert.equal(e.exitCode, 2)
      assert.match(e.message, /Unknown option '--aws'\. See: npm run stop -- --help/)
      return true
    })
  })
})

describe('runner', () => {
  const UNSTARTED = 'OCI runtime exec failed: exec failed: unable to start container process: waiting for init preliminary setup: read init-p: connection reset by peer: unknown'
  const result = (exitCode: number, stderr = ''): RunResult => ({ command: 'docker exec', exitCode, signal: null, stdout: '', stderr, ok: exitCode === 0 })
  it("a container process that never started (runc under load) runs again, 3 times at most; any other failure is returned as it is", async () => {
    let calls = 0
    const unstartedTwice = await retryUnstarted(async () => (++calls <= 2 ? result(126, UNSTARTED) : result(0)), 0)
    assert.deepEqual([calls, unstartedTwice.ok], [3, true])
    calls = 0
    const always = await retryUnstarted(async () => (++calls, result(126, UNSTARTED)), 0)
    assert.deepEqual([calls, always.exitCode], [3, 126])
    calls = 0
    const other = await retryUnstarted(async () => (++calls, result(1, 'Error response from daemon: No such container: abc')), 0)
    assert.deepEqual([calls, other.exitCode], [1, 1])
  })
  it("the stack's commands on the host: one whose process never started runs again, the same command with the same input", async () => {
    const seen: { cmd: Cmd; input?: string }[] = []
    const stack = hostStack({ where: 'the host', run: async (cmd, opts) => (seen.push({ cmd, input: opts?.input }), seen.length === 1 ? result(126, UNSTARTED) : result(0)) })
    const r = await runInChecked(stack, ['docker', 'exec', '-i', 'c', 'psql'], { input: 'select 1' })
    assert.equal(r.ok, true)
    assert.deepEqual(seen.map((x) => [x.cmd.join(' '), x.input]), [['docker exec -i c psql', 'select 1'], ['docker exec -i c psql', 'select 1']])
  })
  it('runs an argument list without a shell splitting it, and never throws', async () => {
    const run = zxRunner()
    const r = await run(['node', '-e', 'console.log(process.argv[1]); console.error("err"); process.exit(3)', 'a b; echo x'])
    assert.equal(r.stdout, 'a b; echo x\n')
    assert.equal(r.stderr, 'err\n')
    assert.equal(r.exitCode, 3)
    assert.equal(r.ok, false)
  })
  it('streams output line by line with a prefix', async () => {
    const log = captureLog()
    const sink = log.prefixed('t')
    await zxRunner()(['node', '-e', 'process.stdout.write("one\\ntw"); setTimeout(() => console.log("o"), 50)'], { stream: sink })
    assert.deepEqual(log.out, ['[t] one\n', '[t] two\n'])
  })
  it('output passed on as it comes (nothing kept), without control sequences, the exit code kept', async () => {
    const out: string[] = []
    const err: string[] = []
    const script = 'process.stdout.write("\\x1b[2Kdb-1 | a\\n\\x1b["); setTimeout(() => { process.stdout.write("2Kdb-1 | b\\n"); process.stderr.write("\\x1b[31moops\\x1b[0m\\n"); process.exit(3) }, 50)'
    const r = await zxRunner()(['node', '-e', script], { output: plainOutput((t) => out.push(t), (t) => err.push(t)) })
    assert.equal(r.exitCode, 3)
    assert.equal(r.ok, false)
    assert.equal(r.stdout, '', 'nothing kept')
    assert.equal(out.join(''), 'db-1 | a\ndb-1 | b\n')
    assert.ok(out.length >= 2, 'passed on as it came, not at the end')
    assert.equal(err.join(''), 'oops\n')
    const missing = await zxRunner()(['/nonexistent/command'], { output: plainOutput(() => {}, () => {}) })
    assert.equal(missing.ok, false)
  })
  it('controlFilter: a sequence cut by a chunk boundary is held until the next chunk', () => {
    const f = controlFilter()
    const parts = ['\x1b[2Kweb | one\n\x1b', '[2', 'Kweb | two \x1b[1;31mred\x1b[0m\n\x1b]0;title\x07end\x1b']
    assert.equal(parts.map(f).join('') + f.flush(), 'web | one\nweb | two red\nend')
    assert.equal(stripControls('a\x1b[2Kb\x1b[?25lc\x1b7d'), 'abcd')
  })
  it('shows commands copy-pastable', () => {
    assert.equal(showCommand(['docker', 'build', '--tag', 'a:b', '.']), 'docker build --tag a:b .')
    assert.equal(showCommand(['echo', 'a b']), "echo 'a b'")
  })
  it('steps: start line, end line with duration; a failed result ends as failed', async () => {
    const log = captureLog()
    await log.step('up', 'compose up', async () => ({ ok: true }))
    await log.step('up', 'compose up', async () => ({ ok: false }))
    await assert.rejects(log.step('x', 'thing', async () => assert.fail('boom')))
    assert.equal(log.out[0], '[up] compose up ...\n')
    assert.match(log.out[1] ?? '', /^\[up\] compose up done \(\d\.\d s\)\n$/)
    assert.match(log.out[3] ?? '', /^\[up\] compose up failed \(/)
    assert.match(log.out[5] ?? '', /^\[x\] thing failed \(/)
  })
  it('prefixed output drops blank lines and terminal control sequences', () => {
    const log = captureLog()
    const sink = log.prefixed('logs')
    sink('\x1b[2Kweb-1  | hello\n\n  \nlast')
    sink.flush()
    assert.deepEqual(log.out, ['[logs] web-1  | hello\n', '[logs] last\n'])
  })
  it("docker push progress keeps what changes (Pushed, the digest) and leaves out per-layer chatter", () => {
    const log = captureLog()
    const sink = log.prefixed('push', LAYER_CHATTER)
    sink('The push refers to repository [r/mymdb-web]\n5f70bf18a086: Preparing\n363477185443: Waiting\n')
    sink('c9255e55589f: Layer already exists\n5f70bf18a086: Pushed\nlatest: digest: sha256:cf69 size: 3644')
    sink.flush()
    assert.deepEqual(log.out, ['[push] The push refers to repository [r/mymdb-web]\n', '[push] 5f70bf18a086: Pushed\n', '[push] latest: digest: sha256:cf69 size: 3644\n'])
  })
  it('formats durations', () => {
    assert.equal(formatDuration(1234), '1.2 s')
    assert.equal(formatDuration(42_400), '42 s')
    assert.equal(formatDuration(185_000), '3 min 5 s')
  })
})

describe('isEntryPoint', () => {
  it('compares the module with the script node started', () => {
    const url = pathToFileURL('/work/x/tasks/build.ts').href
    assert.equal(isEntryPoint(url, '/work/x/tasks/build.ts'), true)
    assert.equal(isEntryPoint(url, '/work/x/tasks/build'), true)
    assert.equal(isEntryPoint(url, '/work/x/tasks/stop.ts'), false)
    assert.equal(isEntryPoint(url, undefined), false)
  })
})

describe('compose helpers', () => {
  it('volume names: <project>_db-data, <project>_media, <project>_proxy-data', () => {
    assert.deepEqual(volumeNames('mymdb'), ['mymdb_db-data', 'mymdb_media', 'mymdb_proxy-data'])
    assert.deepEqual(volumeNames('mymdb-e2e'), ['mymdb-e2e_db-data', 'mymdb-e2e_media', 'mymdb-e2e_proxy-data'])
  })
  it("VOLUMES are docker-compose.yml's named volumes, all of them (the list cannot drift from the file)", () => {
    const file = readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8')
    const block = /^volumes:\n((?:[ \t]+.*\n|\s*\n)*)/m.exec(file)?.[1] ?? ''
    const declared = [...block.matchAll(/^ {2}([A-Za-z0-9_.-]+):/gm)].map((m) => m[1])
    assert.ok(declared.length > 0, 'the top-level volumes: of docker-compose.yml')
    assert.deepEqual(VOLUMES.map((v) => v.key).sort(), declared.sort())
    // and every service mount of a named volume is one of them
    const mounted = [...file.matchAll(/^ {6}- ([A-Za-z0-9_.-]+):\//gm)].map((m) => m[1])
    for (const m of mounted) assert.ok(declared.includes(m), m)
  })
  it('parses compose ps JSON: one object a line, or an array', () => {
    const web = { Name: 'mymdb-web-1', Service: 'web', State: 'running', Health: 'healthy', Publishers: [{ URL: '127.0.0.1', TargetPort: 80, PublishedPort: 8080, Protocol: 'tcp' }] }
    const db = { Name: 'mymdb-db-1', Service: 'db', State: 'running', Health: 'unhealthy', Publishers: null }
    const lines = parsePs(`${JSON.stringify(web)}\n${JSON.stringify(db)}\n`)
    assert.deepEqual(parsePs(JSON.stringify([web, db])), lines)
    assert.equal(lines.length, 2)
    assert.equal(holdsPort(lines, 8080), true)
    assert.equal(holdsPort(lines, 8081), false)
    assert.deepEqual(unhealthy(lines), ['db'])
    assert.deepEqual(parsePs(''), [])
  })
  it('local defaults fill only what is unset or empty', () => {
    const env = withLocalDefaults({ WEB_PORT: '9000', DJANGO_ALLOWED_HOSTS: '', OTHER: 'x' })
    assert.equal(env.WEB_PORT, '9000')
    assert.equal(env.DJANGO_ALLOWED_HOSTS, LOCAL_DEFAULTS.DJANGO_ALLOWED_HOSTS)
    assert.equal(env.OTHER, 'x')
    assert.equal(env.WEB_BIND, '127.0.0.1')
    assert.equal(env.DJANGO_SECRET_KEY, undefined)
  })
  it('saveLocalSecrets: creates the file 0600 or appends to it (and makes it 0600)', () => {
    const { envFile } = tempDir()
    saveLocalSecrets(envFile, { DJANGO_SECRET_KEY: 'local-only-a' }, new Date('2026-01-02T00:00:00Z'))
    assert.equal(readFileSync(envFile, 'utf8'), "# Local-only secrets generated by npm run up:local on 2026-01-02: random, for this\n# checkout only; every deploy refuses them (set real ones for production).\nDJANGO_SECRET_KEY='local-only-a'\n")
    assert.equal(statSync(envFile).mode & 0o777, 0o600)
    const other = tempDir('A=1').envFile
    chmodSync(other, 0o644)
    saveLocalSecrets(other, { POSTGRES_PASSWORD: 'local-only-b' })
    assert.match(readFileSync(other, 'utf8'), /^A=1\n\n# Local-only secrets[^\n]*\n[^\n]*\nPOSTGRES_PASSWORD='local-only-b'\n$/)
    assert.equal(statSync(other).mode & 0o777, 0o600)
  })
})
