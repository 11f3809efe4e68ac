import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { canAutoInstall, checkCompose, checkEngine, checkPortFree, preflight } from '../../tasks/lib/docker.ts'
import { UserError } from '../../tasks/lib/errors.ts'
import { captureLog, dockerOk, fakeRunner, tempDir } from './fakes.ts'
import { writeFileSync } from 'node:fs'

describe('checkPortFree', () => {
  let server: Server
  let busy = 0
  before(async () => {
    server = createServer()
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
    busy = (server.address() as { port: number }).port
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('reports a port in use, with the fix', async () => {
    const p = await checkPortFree('127.0.0.1', busy)
    assert.ok(p)
    assert.equal(p.check, 'port')
    assert.equal(p.message, `port 127.0.0.1:${busy} is already in use`)
    assert.match(p.fix, /set another WEB_PORT in \.env, e\.g\. WEB_PORT=\d+/)
  })

  it('passes a free port (and leaves it free)', async () => {
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen({ host: '127.0.0.1', port: 0 }, resolve))
    const free = (probe.address() as { port: number }).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    assert.equal(await checkPortFree('127.0.0.1', free), null)
    assert.equal(await checkPortFree('127.0.0.1', free), null)
  })

  it('reports a bind address that is not on this host', async () => {
    const p = await checkPortFree('192.0.2.123', 8080)
    assert.ok(p)
    assert.match(p.message, /192\.0\.2\.123 is not an address of this host/)
    assert.match(p.fix, /WEB_BIND=127\.0\.0\.1/)
  })
})

describe('checkEngine / checkCompose', () => {
  it('passes when docker info works', async () => {
    assert.equal(await checkEngine(fakeRunner(() => ({ stdout: '26.1.0' }))), null)
  })
  it('docker missing: install fix', async () => {
    const p = await checkEngine(fakeRunner(() => ({ exitCode: 127, stderr: 'bash: line 1: docker: command not found' })))
    assert.equal(p?.message, 'Docker is not installed')
    assert.equal(p?.fix, 'run: sudo bash scripts/install-docker.sh')
    assert.equal(p?.installable, true)
  })
  it('engine down: start fix', async () => {
    const p = await checkEngine(
      fakeRunner(() => ({ exitCode: 1, stderr: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' })),
    )
    assert.match(p?.message ?? '', /not reachable \(Cannot connect to the Docker daemon/)
    assert.match(p?.fix ?? '', /systemctl start docker/)
  })
  it('no permission: docker group fix, not installable', async () => {
    const p = await checkEngine(fakeRunner(() => ({ exitCode: 1, stderr: 'permission denied while trying to connect to the Docker daemon socket' })))
    assert.match(p?.fix ?? '', /usermod -aG docker/)
    assert.equal(p?.installable, false)
  })
  it('Compose v2 present / v1 or missing', async () => {
    assert.equal(await checkCompose(fakeRunner(() => ({ stdout: '2.26.1\n' }))), null)
    assert.equal(await checkCompose(fakeRunner(() => ({ stdout: 'v2.29.7\n' }))), null)
    assert.match((await checkCompose(fakeRunner(() => ({ exitCode: 1, stderr: "docker: 'compose' is not a docker command." }))))?.fix ?? '', /install-docker\.sh/)
  })
})

describe('preflight', () => {
  const root = '/repo'
  const broken = () =>
    fakeRunner((cmd) => (cmd.startsWith('docker info') || cmd.startsWith('docker compose') ? { exitCode: 127, stderr: 'docker: command not found' } : undefined))

  it('passes silently when all is well', async () => {
    const run = fakeRunner(dockerOk)
    await preflight({ run, log: captureLog(), root, canInstall: true })
    assert.deepEqual(run.commands(), ['docker info --format {{.ServerVersion}}', 'docker compose version --short'])
  })

  it('without install rights: one UserError with every problem and its fix', async () => {
    const run = broken()
    await assert.rejects(preflight({ run, log: captureLog(), root, canInstall: false }), (err: unknown) => {
      assert.ok(err instanceof UserError)
      assert.match(err.message, /2 problems to fix first:/)
      assert.match(err.message, /Docker is not installed: run: sudo bash scripts\/install-docker\.sh/)
      assert.match(err.message, /Compose v2 is not installed: run: sudo bash scripts\/install-docker\.sh/)
      return true
    })
    assert.ok(!run.commands().some((c) => c.includes('install-docker')))
  })

  it('--no-install: reports instead of installing', async () => {
    const run = broken()
    await assert.rejects(preflight({ run, log: captureLog(), root, canInstall: true, install: false }), /--no-install given/)
    assert.ok(!run.commands().some((c) => c.includes('install-docker')))
  })

  it('root on Debian: runs scripts/install-docker.sh, then checks again', async () => {
    let installed = false
    const run = fakeRunner((cmd) => {
      if (cmd.includes('install-docker.sh')) {
        installed = true
        return undefined
      }
      if (!installed && cmd.startsWith('docker')) return { exitCode: 127, stderr: 'docker: command not found' }
      return { stdout: '2.26.1' }
    })
    await preflight({ run, log: captureLog(), root, canInstall: true })
    assert.ok(run.commands().includes('bash /repo/scripts/install-docker.sh'))
    assert.equal(run.commands().filter((c) => c.startsWith('docker info')).length, 2)
  })

  it('also checks the port when asked', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
    const port = (server.address() as { port: number }).port
    try {
      await assert.rejects(preflight({ run: fakeRunner(dockerOk), log: captureLog(), root, port: { host: '127.0.0.1', port } }), /already in use/)
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})

describe('canAutoInstall', () => {
  it('root on Debian or Ubuntu only', () => {
    const { dir } = tempDir()
    const debian = `${dir}/debian`
    const ubuntu = `${dir}/ubuntu`
    const fedora = `${dir}/fedora`
    writeFileSync(debian, 'ID=debian\nVERSION_CODENAME=bookworm\n')
    writeFileSync(ubuntu, 'ID=ubuntu\nID_LIKE=debian\n')
    writeFileSync(fedora, 'ID="fedora"\n')
    assert.equal(canAutoInstall(debian, 0), true)
    assert.equal(canAutoInstall(ubuntu, 0), true)
    assert.equal(canAutoInstall(fedora, 0), false)
    assert.equal(canAutoInstall(debian, 1000), false)
    assert.equal(canAutoInstall(`${dir}/missing`, 0), false)
  })
})
