// HTTPS on the deploy host against the rig: the SSH host (its own Docker engine), the registry,
// and the rig's ACME CA and DNS (pebble and its challtestsrv, tests/rig/pebble.ts). remote-up runs
// as a user runs it (a child process; NODE_EXTRA_CA_CERTS makes its final check trust the rig CA,
// as it trusts Let's Encrypt's root in production). The browser is chromium trusting only the rig
// CA (an NSS store of its own).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { chromium } from 'playwright-core'
import { connect, exec } from '../../tasks/lib/ssh.ts'
import { httpGet } from '../../tasks/remote-up.ts'
import { browserHomeTrusting, startPebble, type Pebble } from '../rig/pebble.ts'
import { pushStackImages, startRegistry, type Registry } from '../rig/registry.ts'
import { startSshHost, type SshHost } from '../rig/sshhost.ts'
import { sshKeyFile } from '../unit/fakes.ts'
import { $ } from 'zx'

const REPO = new URL('../..', import.meta.url).pathname
const DOMAIN = 'mymdb.test'
const TAG = 'tls'

const launch = (home: string) =>
  chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    env: { ...process.env, HOME: home },
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1`],
  })

/** The certificate the host's front serves for DOMAIN, checked against `ca` (throws when it does not verify). */
function servedCertificate(port: number, ca: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: DOMAIN, ca, timeout: 5000 }, () => {
      resolve(socket.getPeerCertificate())
      socket.end()
    })
    socket.on('error', reject)
  })
}

describe('HTTPS on the host: certificates from an ACME CA (pebble), DNS, redirect, HSTS, renewal', { timeout: 20 * 60_000 }, () => {
  let registry: Registry
  let host: SshHost
  let pebble: Pebble
  let short: Pebble | undefined
  let dir: string
  let keyFile: string
  let privateKey: string
  let root: string
  let pushed: string[] = []
  const timings: string[] = []

  const settings = (ca: Pebble, extra: Record<string, string> = {}) => {
    const caRoot = join(dir, `${ca.container}-api-root.pem`)
    writeFileSync(caRoot, ca.apiRoot)
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      MYMDB_HOST_ADDRESS: '127.0.0.1',
      MYMDB_HOST_SSH_PORT: String(host.sshPort),
      MYMDB_HOST_HTTP_PORT: String(host.httpPort),
      MYMDB_HOST_HTTPS_PORT: String(host.httpsPort),
      MYMDB_SSH_USER: host.user,
      MYMDB_SSH_KEY_FILE: keyFile,
      MYMDB_REGISTRY: registry.address,
      MYMDB_TAG: TAG,
      DJANGO_SECRET_KEY: 'rig-tls-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz',
      DJANGO_DB_PASSWORD: 'rig-db-password',
      POSTGRES_PASSWORD: 'rig-postgres-password',
      DJANGO_ALLOWED_HOSTS: '127.0.0.1',
      MYMDB_DOMAIN: DOMAIN,
      MYMDB_ACME_CA: ca.directory,
      MYMDB_ACME_CA_ROOT: caRoot,
      MYMDB_ACME_EMAIL: 'rig@mymdb.test',
      MYMDB_DNS_SERVER: pebble.dnsServer,
      MYMDB_DNS_WAIT: '120',
      ...extra,
    }
  }

  /** npm run remote:up as a child process; `onOutput` sees the output as it comes. */
  const remoteUp = (env: Record<string, string | undefined>, trust: string, onOutput: (text: string) => void = () => undefined) =>
    new Promise<{ code: number | null; text: string; seconds: number }>((resolve) => {
      const trustFile = join(dir, `trust-${Date.now()}.pem`)
      writeFileSync(trustFile, trust)
      const start = Date.now()
      const child = spawn('node', ['--import', 'tsx', 'tasks/remote-up.ts'], { cwd: REPO, env: { ...env, NODE_EXTRA_CA_CERTS: trustFile } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] })
      let text = ''
      const add = (b: Buffer) => {
        text += b.toString()
        onOutput(text)
      }
      child.stdout.on('data', add)
      child.stderr.on('data', add)
      child.on('close', (code) => resolve({ code, text, seconds: (Date.now() - start) / 1000 }))
    })

  const onHost = async (script: string) => {
    const conn = await connect({ host: '127.0.0.1', port: host.sshPort, username: 'admin', privateKey, attempts: 3 })
    try {
      return await exec(conn, ['sh', '-c', `cd mymdb && ${script}`])
    } finally {
      conn.end()
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mymdb-tls-'))
    keyFile = join(dir, 'id_ed25519')
    const keys = sshKeyFile(keyFile)
    privateKey = keys.private
    registry = await startRegistry('mymdb-rig-registry-tls')
    host = await startSshHost({ authorizedKey: keys.public, registry, name: 'mymdb-rig-sshhost-tls' })
    pushed = await pushStackImages(registry, TAG)
    // pebble checks the name at the SSH host's address on the rig network, port 80
    pebble = await startPebble({ hosts: { [DOMAIN]: host.ip } })
    root = await pebble.issuingRoot()
  })

  after(async () => {
    for (const line of timings) console.log(`timing: ${line}`)
    await host?.stop()
    await registry?.stop()
    await pebble?.stop()
    await short?.stop()
    for (const ref of pushed) await $({ nothrow: true, quiet: true })`docker rmi ${ref}`
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('a first start prints the DNS record and waits for it; then the front gets its certificate and the site answers over HTTPS', async () => {
    let added = false
    let sawRecord = ''
    const r = await remoteUp(settings(pebble), root, (text) => {
      if (added || !/waiting up to 120 s/.test(text)) return
      added = true
      sawRecord = text
      // the record appears a moment later, as after a DNS provider's delay
      setTimeout(() => void pebble.addA(DOMAIN, '127.0.0.1'), 3000)
    })
    assert.equal(r.code, 0, r.text)
    assert.match(sawRecord, /create this DNS record at your DNS provider \(it does not resolve yet\)/)
    assert.match(sawRecord, /mymdb\.test\. {2}A {2}127\.0\.0\.1/)
    assert.match(r.text, /\[dns\] mymdb\.test resolves to 127\.0\.0\.1/)
    assert.match(r.text, /MyMDB is running on 127\.0\.0\.1 .*https:\/\/mymdb\.test\//)
    timings.push(`first start with HTTPS (DNS wait ~3 s, pull, up, certificate, checks): ${r.seconds.toFixed(1)} s`)
    const cert = await servedCertificate(host.httpsPort, root)
    assert.equal(cert.subjectaltname, `DNS:${DOMAIN}`)
    const env = await onHost('cat .env')
    assert.match(env.stdout, /^DJANGO_SECURE_SSL='true'$/m)
    assert.match(env.stdout, /^DJANGO_ALLOWED_HOSTS='mymdb\.test,127\.0\.0\.1'$/m)
  })

  it('chromium, trusting only the rig CA, registers and logs in over HTTPS; HSTS and secure cookies; HTTP redirects to HTTPS', async () => {
    const home = await browserHomeTrusting([root])
    const browser = await launch(home)
    try {
      const context = await browser.newContext({ baseURL: `https://${DOMAIN}:${host.httpsPort}` })
      const page = await context.newPage()
      const first = await page.goto('/')
      assert.equal(first?.status(), 200)
      assert.match(first?.headers()['strict-transport-security'] ?? '', /max-age=31536000/)
      await page.goto('/user/register')
      await page.fill('#id_username', 'rig-tls')
      await page.fill('#id_password1', 'correct-horse-battery-staple-42')
      await page.fill('#id_password2', 'correct-horse-battery-staple-42')
      await page.click('#register-button')
      assert.equal(await page.locator('#logged-in-as').innerText(), 'Logged in as rig-tls')
      await context.clearCookies()
      await page.goto('/user/login')
      await page.fill('#id_username', 'rig-tls')
      await page.fill('#id_password', 'correct-horse-battery-staple-42')
      await page.click('#login-button')
      assert.equal(await page.locator('#logged-in-as').innerText(), 'Logged in as rig-tls')
      const session = (await context.cookies()).find((c) => c.name === 'sessionid')
      assert.equal(session?.secure, true)
    } finally {
      await browser.close()
      rmSync(home, { recursive: true, force: true })
    }
    const plain = await httpGet(`http://127.0.0.1:${host.httpPort}/movies/?page=2`, DOMAIN)
    assert.equal(plain.status, 308)
    assert.equal(plain.location, `https://${DOMAIN}/movies/?page=2`)
  })

  it("the browser refuses the certificate for another name (the host's address), and refuses it without the rig CA", async () => {
    const home = await browserHomeTrusting([root])
    const empty = mkdtempSync(join(tmpdir(), 'mymdb-browser-empty-'))
    const browser = await launch(home)
    const untrusting = await launch(empty)
    try {
      const page = await browser.newPage()
      await assert.rejects(page.goto(`https://127.0.0.1:${host.httpsPort}/`), /ERR_CERT_COMMON_NAME_INVALID/)
      const page2 = await untrusting.newPage()
      await assert.rejects(page2.goto(`https://${DOMAIN}:${host.httpsPort}/`), /ERR_CERT_AUTHORITY_INVALID/)
    } finally {
      await browser.close()
      await untrusting.close()
      rmSync(home, { recursive: true, force: true })
      rmSync(empty, { recursive: true, force: true })
    }
  })

  it('a redeploy issues no new certificate and leaves the front and the database running', async () => {
    const before = { serial: (await servedCertificate(host.httpsPort, root)).serialNumber, containers: (await onHost('docker compose ps -q proxy db')).stdout }
    const r = await remoteUp(settings(pebble), root)
    assert.equal(r.code, 0, r.text)
    assert.equal((await servedCertificate(host.httpsPort, root)).serialNumber, before.serial)
    assert.equal((await onHost('docker compose ps -q proxy db')).stdout, before.containers)
    timings.push(`redeploy with HTTPS (nothing changed): ${r.seconds.toFixed(1)} s`)
  })

  it('another CA (as from the staging CA to the real one) issues a new certificate; a short-lived one is renewed by the host on its own', async () => {
    short = await startPebble({ name: 'mymdb-rig-pebble-short', hosts: { [DOMAIN]: host.ip }, certValiditySeconds: 30 })
    const shortRoot = await short.issuingRoot()
    const r = await remoteUp(settings(short, { MYMDB_ACME_RENEW_INTERVAL: '5s' }), shortRoot)
    assert.equal(r.code, 0, r.text)
    const first = await servedCertificate(host.httpsPort, shortRoot)
    const start = Date.now()
    let renewed = first
    while (renewed.serialNumber === first.serialNumber && Date.now() - start < 90_000) {
      await new Promise((res) => setTimeout(res, 1000))
      renewed = await servedCertificate(host.httpsPort, shortRoot).catch(() => renewed)
    }
    assert.notEqual(renewed.serialNumber, first.serialNumber, 'renewed within 90 s')
    assert.ok(Date.parse(renewed.valid_to) > Date.parse(first.valid_to))
    timings.push(`renewal of a 30 s certificate: ${((Date.now() - start) / 1000).toFixed(1)} s after the start`)
  })
})
