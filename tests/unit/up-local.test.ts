import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { describe, it } from 'node:test'
import { EnvError } from '../../tasks/lib/env.ts'
import { readFileSync, statSync } from 'node:fs'
import { main } from '../../tasks/up-local.ts'
import { localSettings, siteUrl } from '../../tasks/lib/compose.ts'
import { dockerOk, fakeRunner, noDocker, testDeps, type Answer } from './fakes.ts'

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, r))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

/** Docker with both images present, no volumes and nothing running, unless `extra` answers. */
function docker(extra: (cmd: string) => Answer = () => undefined) {
  return fakeRunner((cmd) => extra(cmd) ?? (cmd.startsWith('docker volume inspect') ? { exitCode: 1 } : dockerOk(cmd)))
}

describe('localSettings (local defaults)', () => {
  it('fills every required variable with a local-only default or a new random local-only secret', () => {
    const { values, composeEnv, generated } = localSettings({ PATH: '/usr/bin' })
    assert.deepEqual(generated, ['DJANGO_SECRET_KEY', 'DJANGO_DB_PASSWORD', 'POSTGRES_PASSWORD'])
    assert.match(values.DJANGO_SECRET_KEY, /^local-only-[A-Za-z0-9_-]{43}$/)
    assert.match(values.DJANGO_DB_PASSWORD, /^local-only-[0-9a-f]{48}$/)
    assert.match(values.POSTGRES_PASSWORD, /^local-only-[0-9a-f]{48}$/)
    // random: another checkout gets others
    assert.notEqual(localSettings({}).values.DJANGO_SECRET_KEY, values.DJANGO_SECRET_KEY)
    assert.deepEqual(values.DJANGO_ALLOWED_HOSTS, ['localhost', '127.0.0.1'])
    assert.equal(values.WEB_BIND, '127.0.0.1')
    assert.equal(values.WEB_PORT, 8080)
    assert.equal(values.COMPOSE_PROJECT_NAME, 'mymdb')
    // compose gets strings for everything, plus the rest of the environment
    assert.equal(composeEnv.WEB_PORT, '8080')
    assert.equal(composeEnv.DJANGO_SECURE_SSL, 'false')
    assert.equal(composeEnv.PATH, '/usr/bin')
  })
  it('user values win over the defaults', () => {
    const { values, composeEnv } = localSettings({
      DJANGO_SECRET_KEY: 'u'.repeat(30) + 'V'.repeat(30),
      WEB_PORT: '9090',
      DJANGO_ALLOWED_HOSTS: 'mymdb.test',
      COMPOSE_PROJECT_NAME: 'mymdb-e2e',
    })
    assert.equal(values.DJANGO_SECRET_KEY, 'u'.repeat(30) + 'V'.repeat(30))
    assert.deepEqual(localSettings({ DJANGO_SECRET_KEY: 'u'.repeat(60) }).generated, ['DJANGO_DB_PASSWORD', 'POSTGRES_PASSWORD'])
    assert.equal(values.WEB_PORT, 9090)
    assert.deepEqual(values.DJANGO_ALLOWED_HOSTS, ['mymdb.test'])
    assert.equal(composeEnv.COMPOSE_PROJECT_NAME, 'mymdb-e2e')
  })
  it('a wrong value is an EnvError (empty ones take the default)', () => {
    assert.throws(() => localSettings({ WEB_PORT: 'abc' }), (e: unknown) => e instanceof EnvError && e.invalid[0]?.name === 'WEB_PORT')
    assert.equal(localSettings({ WEB_PORT: '' }).values.WEB_PORT, 8080)
  })
  it('siteUrl', () => {
    assert.equal(siteUrl('127.0.0.1', 8080), 'http://127.0.0.1:8080/')
    assert.equal(siteUrl('0.0.0.0', 80), 'http://127.0.0.1:80/')
    assert.equal(siteUrl('::1', 8080), 'http://[::1]:8080/')
  })
})

describe('up:local main()', () => {
  it('--help runs nothing', async () => {
    const run = noDocker()
    const deps = testDeps(run)
    assert.equal(await main(['--help'], {}, deps), 0)
    assert.match(deps.log.text(), /Usage: npm run up:local/)
    assert.match(deps.log.text(), /DJANGO_SECRET_KEY, DJANGO_DB_PASSWORD, POSTGRES_PASSWORD: generated once for this checkout/)
    assert.equal(run.calls.length, 0)
  })
  it('WEB_PORT=abc: exit 2 with the grouped message, before any docker call', async () => {
    const run = noDocker()
    const deps = testDeps(run)
    assert.equal(await main([], { WEB_PORT: 'abc', DJANGO_LOG_LEVEL: 'LOUD' }, deps), 2)
    const err = deps.log.err.join('')
    assert.match(err, /^2 environment variables to fix:\n  Invalid:\n/)
    assert.match(err, /WEB_PORT="abc" - expected a TCP port number \(1-65535\)/)
    assert.match(err, /fix: set e\.g\. WEB_PORT=8080 in .*\.env/)
    assert.match(err, /DJANGO_LOG_LEVEL="LOUD"/)
    assert.equal(run.calls.length, 0)
  })
  it('a bad value in the .env file is reported the same way', async () => {
    const { tempDir } = await import('./fakes.ts')
    const run = noDocker()
    const deps = testDeps(run, { envFile: tempDir('WEB_BIND=localhost\n').envFile })
    assert.equal(await main([], {}, deps), 2)
    assert.match(deps.log.err.join(''), /WEB_BIND="localhost" - expected an IP address/)
  })
  it('starts the stack: compose up --wait with the env, sample data, URL', async () => {
    const port = await freePort()
    const run = docker()
    const deps = testDeps(run, { root: '/repo' })
    const code = await main([], { COMPOSE_PROJECT_NAME: 'mymdb-unit', WEB_PORT: String(port), PATH: '/bin' }, deps)
    assert.equal(code, 0, deps.log.text())
    const cmds = run.commands()
    const up = run.calls.find((c) => c.cmd.includes('up'))
    assert.deepEqual(up?.cmd, ['docker', 'compose', '--project-name', 'mymdb-unit', 'up', '--detach', '--wait', '--wait-timeout', '120'])
    assert.equal(up?.opts?.cwd, '/repo')
    // the generated secrets: kept in the env file (0600), and the same ones given to compose
    const kept = readFileSync(deps.envFile as string, 'utf8')
    assert.equal((statSync(deps.envFile as string).mode & 0o777).toString(8), '600')
    const key = /^DJANGO_SECRET_KEY='(local-only-[^']+)'$/m.exec(kept)?.[1]
    assert.ok(key, kept)
    assert.equal(up?.opts?.env?.DJANGO_SECRET_KEY, key)
    assert.match(kept, /^DJANGO_DB_PASSWORD='local-only-[0-9a-f]{48}'$/m)
    assert.equal(up?.opts?.env?.WEB_PORT, String(port))
    assert.equal(up?.opts?.env?.PATH, '/bin')
    assert.ok(cmds.includes('docker compose --project-name mymdb-unit exec -T web python3 manage.py load_sample_catalogue --if-empty'))
    assert.ok(!cmds.some((c) => c.startsWith('docker build')), 'images exist: no build')
    assert.ok(cmds.indexOf('docker info --format {{.ServerVersion}}') < cmds.findIndex((c) => c.includes(' up ')))
    const out = deps.log.text()
    assert.match(out, new RegExp(`MyMDB is running: http://127\\.0\\.0\\.1:${port}/`))
    assert.match(out, /stop with: npm run stop/)
  })
  it('generates the secrets once: a second run uses the kept ones and writes nothing', async () => {
    const { tempDir } = await import('./fakes.ts')
    const port = await freePort()
    const { envFile } = tempDir('# mine\nWEB_PORT=' + port + '\n')
    const first = testDeps(docker(), { envFile })
    assert.equal(await main([], { COMPOSE_PROJECT_NAME: 'mymdb-unit' }, first), 0, first.log.text())
    const kept = readFileSync(envFile, 'utf8')
    assert.match(kept, /^# mine\nWEB_PORT=\d+\n\n# Local-only secrets generated/)
    const run = docker()
    const second = testDeps(run, { envFile })
    assert.equal(await main([], { COMPOSE_PROJECT_NAME: 'mymdb-unit' }, second), 0, second.log.text())
    assert.equal(readFileSync(envFile, 'utf8'), kept)
    assert.doesNotMatch(second.log.text(), /generated/)
    const up = run.calls.find((c) => c.cmd.includes('up'))
    assert.equal(`DJANGO_DB_PASSWORD='${up?.opts?.env?.DJANGO_DB_PASSWORD}'`, /^DJANGO_DB_PASSWORD=.*$/m.exec(kept)?.[0])
  })
  it('a database volume of an earlier version keeps the fixed passwords it was made with', async () => {
    const { tempDir } = await import('./fakes.ts')
    const port = await freePort()
    const { envFile } = tempDir()
    const run = docker((cmd) => (cmd === 'docker volume inspect mymdb-unit_db-data' ? { stdout: '[]' } : undefined))
    const deps = testDeps(run, { envFile })
    assert.equal(await main([], { COMPOSE_PROJECT_NAME: 'mymdb-unit', WEB_PORT: String(port) }, deps), 0, deps.log.text())
    const kept = readFileSync(envFile, 'utf8')
    assert.match(kept, /^DJANGO_DB_PASSWORD='local-only-db-password'$/m)
    assert.match(kept, /^POSTGRES_PASSWORD='local-only-postgres-password'$/m)
    assert.match(kept, /^DJANGO_SECRET_KEY='local-only-[A-Za-z0-9_-]{43}'$/m)
  })
  it('an existing database that refuses the password: exit 2 within one login, the cause and the fixes, nothing written or deleted', async () => {
    const { tempDir } = await import('./fakes.ts')
    const port = await freePort()
    const { envFile } = tempDir(`WEB_PORT=${port}\nDJANGO_SECRET_KEY='${'k'.repeat(60)}'\nDJANGO_DB_PASSWORD='local-only-mine'\nPOSTGRES_PASSWORD='local-only-pg-mine'\n`)
    const before = readFileSync(envFile, 'utf8')
    const run = docker((cmd) => {
      if (cmd === 'docker volume inspect mymdb-unit_db-data') return { stdout: '[]' }
      if (cmd.includes(' db sh -c PGPASSWORD=')) return { exitCode: 2, stderr: 'psql: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "mymdb"\n' }
      return undefined
    })
    const deps = testDeps(run, { envFile })
    assert.equal(await main([], { COMPOSE_PROJECT_NAME: 'mymdb-unit' }, deps), 2, deps.log.text())
    const err = deps.log.err.join('')
    assert.match(err, /the database in the volume mymdb-unit_db-data was made with other passwords: it refuses DJANGO_DB_PASSWORD from .*\.env \(password authentication failed for user "mymdb"\)/)
    assert.match(err, /another checkout of MyMDB/)
    assert.match(err, /copy DJANGO_DB_PASSWORD and POSTGRES_PASSWORD from the other checkout's \.env/)
    assert.match(err, /COMPOSE_PROJECT_NAME=mymdb-unit-2/)
    assert.match(err, /npm run stop -- --delete-data \(with COMPOSE_PROJECT_NAME=mymdb-unit\)/)
    const cmds = run.commands()
    // the database alone was started, the login tried, then the db stopped again: web never started
    const upDb = cmds.indexOf('docker compose --project-name mymdb-unit up --detach --wait --wait-timeout 120 db')
    const login = cmds.findIndex((c) => c.startsWith('docker compose --project-name mymdb-unit exec -T -e DJANGO_DB_USER -e DJANGO_DB_PASSWORD -e DJANGO_DB_NAME db sh -c PGPASSWORD="$DJANGO_DB_PASSWORD" exec psql'))
    assert.ok(upDb >= 0 && login > upDb, cmds.join('\n'))
    // the password tried is this checkout's (from compose's environment, never the command line)
    assert.equal(run.calls[login]?.opts?.env?.DJANGO_DB_PASSWORD, 'local-only-mine')
    assert.ok(!cmds[login]?.includes('local-only-mine'))
    assert.ok(cmds.includes('docker compose --project-name mymdb-unit stop db'))
    assert.ok(!cmds.some((c) => / up .*--wait-timeout 120$/.test(c)), 'the whole stack is not started')
    assert.ok(!cmds.some((c) => c.includes('volume rm') || c.includes('down')), 'nothing deleted')
    assert.equal(readFileSync(envFile, 'utf8'), before)
  })
  it('no .env passwords and a volume that refuses the fixed ones of earlier versions: says so, and writes no .env', async () => {
    const { tempDir } = await import('./fakes.ts')
    const port = await freePort()
    const { envFile } = tempDir(`WEB_PORT=${port}\n`)
    const run = docker((cmd) => {
      if (cmd === 'docker volume inspect mymdb_db-data') return { stdout: '[]' }
      if (cmd.includes(' db sh -c PGPASSWORD=')) return { exitCode: 2, stderr: 'FATAL:  password authentication failed for user "mymdb"\n' }
      return undefined
    })
    const deps = testDeps(run, { envFile })
    assert.equal(await main([], {}, deps), 2, deps.log.text())
    const err = deps.log.err.join('')
    assert.match(err, /it refuses the fixed local password of earlier versions, tried because .*\.env has no DJANGO_DB_PASSWORD or POSTGRES_PASSWORD/)
    assert.match(err, /npm run stop -- --delete-data, then npm run up:local/)
    assert.equal(readFileSync(envFile, 'utf8'), `WEB_PORT=${port}\n`)
  })
  it('an existing database that takes the password: logged in before the stack starts, then up as usual', async () => {
    const port = await freePort()
    const run = docker((cmd) => (cmd === 'docker volume inspect mymdb_db-data' ? { stdout: '[]' } : undefined))
    const deps = testDeps(run)
    assert.equal(await main([], { WEB_PORT: String(port), DJANGO_DB_PASSWORD: 'local-only-x', POSTGRES_PASSWORD: 'local-only-y' }, deps), 0, deps.log.text())
    const cmds = run.commands()
    const login = cmds.findIndex((c) => c.includes(' db sh -c PGPASSWORD='))
    const up = cmds.indexOf('docker compose --project-name mymdb up --detach --wait --wait-timeout 120')
    assert.ok(login >= 0 && up > login, cmds.join('\n'))
    assert.ok(!cmds.includes('docker compose --project-name mymdb stop db'))
  })
  it('a running database (the stack, maybe of another checkout) is not restarted for the check, nor stopped after a refusal', async () => {
    const port = await freePort()
    const ps = JSON.stringify({ Name: 'mymdb-db-1', Service: 'db', State: 'running', Health: 'healthy', Publishers: [] })
    const run = docker((cmd) => {
      if (cmd === 'docker volume inspect mymdb_db-data') return { stdout: '[]' }
      if (cmd.endsWith('ps --all --format json')) return { stdout: `${ps}\n` }
      if (cmd.includes(' db sh -c PGPASSWORD=')) return { exitCode: 2, stderr: 'FATAL:  password authentication failed for user "mymdb"\n' }
      return undefined
    })
    const deps = testDeps(run)
    assert.equal(await main([], { WEB_PORT: String(port), DJANGO_DB_PASSWORD: 'local-only-x', POSTGRES_PASSWORD: 'local-only-y' }, deps), 2, deps.log.text())
    const cmds = run.commands()
    assert.ok(cmds.some((c) => c.includes(' db sh -c PGPASSWORD=')))
    assert.ok(!cmds.some((c) => c.includes(' up ') || c.endsWith(' stop db')), cmds.join('\n'))
    assert.match(deps.log.err.join(''), /it refuses DJANGO_DB_PASSWORD from/)
  })
  it('builds only the missing image (and all four with --build)', async () => {
    const port = await freePort()
    const run = docker((cmd) => {
      if (cmd.startsWith('docker image inspect') && cmd.endsWith('mymdb-db:latest')) return { exitCode: 1, stderr: 'No such image' }
      if (cmd.startsWith('git rev-parse')) return { stdout: 'abc1234\n' }
      return undefined
    })
    const deps = testDeps(run)
    assert.equal(await main([], { WEB_PORT: String(port) }, deps), 0, deps.log.text())
    const builds = run.calls.filter((c) => c.cmd[1] === 'build')
    assert.equal(builds.length, 1)
    assert.ok(builds[0]?.cmd.includes('docker/psql'))

    const run2 = docker((cmd) => (cmd.startsWith('git rev-parse') ? { stdout: 'abc1234\n' } : undefined))
    assert.equal(await main(['--build'], { WEB_PORT: String(port) }, testDeps(run2)), 0)
    assert.equal(run2.calls.filter((c) => c.cmd[1] === 'build').length, 4)
  })
  it('a busy port: exit 1 with the fix, nothing started', async () => {
    const s = createServer()
    await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, r))
    const port = (s.address() as { port: number }).port
    try {
      const run = docker()
      const deps = testDeps(run)
      assert.equal(await main([], { WEB_PORT: String(port) }, deps), 1)
      assert.match(deps.log.err.join(''), new RegExp(`port 127\\.0\\.0\\.1:${port} is already in use: .*WEB_PORT=`))
      assert.ok(!run.commands().some((c) => c.includes(' up ')))
    } finally {
      await new Promise<void>((r) => s.close(() => r()))
    }
  })
  it('the port held by our own running stack is fine', async () => {
    const s = createServer()
    await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, r))
    const port = (s.address() as { port: number }).port
    try {
      const ps = JSON.stringify({ Name: 'mymdb-web-1', Service: 'web', State: 'running', Health: 'healthy', Publishers: [{ URL: '127.0.0.1', TargetPort: 80, PublishedPort: port, Protocol: 'tcp' }] })
      const run = docker((cmd) => (cmd.includes(' ps ') ? { stdout: `${ps}\n` } : undefined))
      const deps = testDeps(run)
      assert.equal(await main([], { WEB_PORT: String(port) }, deps), 0, deps.log.text())
      assert.match(deps.log.text(), /already running: updating/)
    } finally {
      await new Promise<void>((r) => s.close(() => r()))
    }
  })
  it('when up --wait fails: compose ps, logs of unhealthy services, and the failed command', async () => {
    const port = await freePort()
    const ps = [
      { Service: 'db', State: 'running', Health: 'healthy' },
      { Service: 'web', State: 'running', Health: 'unhealthy' },
    ].map((o) => JSON.stringify(o)).join('\n')
    const run = docker((cmd) => {
      if (cmd.includes(' up ')) return { exitCode: 1, stderr: 'container mymdb-web-1 is unhealthy\n' }
      if (cmd.endsWith('ps --all --format json')) return { stdout: ps }
      if (cmd.endsWith('ps --all')) return { stdout: 'NAME  STATUS\nmymdb-web-1  Up (unhealthy)\n' }
      if (cmd.includes(' logs ')) return { stdout: '\x1b[2Kweb | Traceback: boom\n' }
      return undefined
    })
    const deps = testDeps(run)
    assert.equal(await main([], { WEB_PORT: String(port) }, deps), 1)
    const err = deps.log.err.join('')
    assert.match(err, /mymdb-web-1  Up \(unhealthy\)/)
    assert.match(err, /\$ docker compose --project-name mymdb logs --no-color --timestamps --tail 40 web\nweb \| Traceback: boom/)
    assert.ok(!run.commands().some((c) => c.includes('logs') && c.endsWith(' db')))
    assert.match(err, /\$ docker compose --project-name mymdb up --detach --wait --wait-timeout 120\nexit code 1\n/)
    assert.ok(!run.commands().some((c) => c.includes('load_sample_catalogue')))
    assert.match(deps.log.out.join(''), /\[up\] docker compose up \(waiting up to 120 s for healthy services\) failed/)
  })
})
