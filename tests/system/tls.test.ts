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
import https from 'node:https'
import { launchChromium, submitForm } from '../rig/browser.ts'
import { connect, exec } from '../../tasks/lib/ssh.ts'
import { parseHostKey, type HostKey } from '../../tasks/lib/hostkey.ts'
import { httpGet } from '../../tasks/lib/remote/checks.ts'
import { browserHomeTrusting, servedCertificate as servedFor, startPebble, type Pebble } from '../rig/pebble.ts'
import { addMigration, pushStackImages, rigRegistry, type Registry } from '../rig/registry.ts'
import { assertBrokenTasksFailed, assertNoneLost, inService, startSshHost, type SshHost } from '../rig/sshhost.ts'
import { retryUnstarted, shellQuote } from '../../tasks/lib/sh.ts'
import { containerTree, PROCESS_LIST_SCRIPT } from '../rig/processes.ts'
import { describeLoad, underLoad } from '../rig/load.ts'
import { lastLinesFirst } from '../rig/report.ts'
import { sshKeyFile } from '../unit/fakes.ts'
import { $ } from 'zx'

const REPO = new URL('../..', import.meta.url).pathname
const DOMAIN = 'mymdb.test'
const TAG = 'tls'
/** Another web release, one with its db image built again from scratch, and a broken one. */
const NEXT = 'tls-next'
const FRESH = 'tls-fresh'
const BROKEN = 'tls-broken'

const launch = (home: string) => launchChromium({ home, args: [`--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1`] })

/** The certificate the host's front serves for DOMAIN, checked against `ca` (throws when it does not verify). */
const servedCertificate = (port: number, ca: string) => servedFor({ port, name: DOMAIN, ca })

/** The headers of an HTTPS GET of DOMAIN's `path` at 127.0.0.1:port, its certificate checked against `ca`. */
function httpsHeaders(port: number, path: string, ca: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path, servername: DOMAIN, headers: { host: DOMAIN }, ca, timeout: 5000 }, (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
      })
      .on('error', reject)
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
  let hostKey = ''
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
      MYMDB_HOST_KEY: hostKey,
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
      MYMDB_HSTS_SECONDS: '600',
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

  /** The ids of the running proxy and db containers. */
  const frontAndDb = async () => (await onHost(`echo ${inService('proxy')} ${inService('db')}`)).stdout.trim()

  const onHost = async (script: string) => {
    const conn = await connect({ host: '127.0.0.1', port: host.sshPort, username: 'admin', privateKey, hostKey: parseHostKey(hostKey, 'the rig host') as HostKey, attempts: 3 })
    try {
      return await retryUnstarted(() => exec(conn, ['sh', '-c', `cd mymdb && ${script}`]))
    } finally {
      conn.end()
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mymdb-tls-'))
    keyFile = join(dir, 'id_ed25519')
    const keys = sshKeyFile(keyFile)
    privateKey = keys.private
    registry = await rigRegistry('mymdb-rig-registry-tls', 'tls')
    host = await startSshHost({ authorizedKey: keys.public, registry, name: 'mymdb-rig-sshhost-tls' })
    hostKey = await host.hostKey()
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
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    assert.match(sawRecord, /create this DNS record at your DNS provider \(it does not resolve yet\)/)
    assert.match(sawRecord, /mymdb\.test\. {2}A {2}127\.0\.0\.1/)
    assert.match(r.text, /\[dns\] mymdb\.test resolves to 127\.0\.0\.1/)
    assert.match(r.text, /MyMDB is running on 127\.0\.0\.1 .*https:\/\/mymdb\.test\//)
    assert.match(r.text, /its admin site: https:\/\/mymdb\.test\/admin-[0-9a-f]{12}\/ \(DJANGO_ADMIN_URL\)/)
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
      // HSTS from the front, as MYMDB_HSTS_SECONDS says, without subdomains or preload (not asked
      // for), on what nginx serves alone too (a stylesheet: Django never sees it)
      assert.equal(first?.headers()['strict-transport-security'], 'max-age=600')
      const css = await httpsHeaders(host.httpsPort, '/static/core/mymdb.css', root)
      assert.equal(css.status, 200)
      assert.equal(css.headers['strict-transport-security'], 'max-age=600')
      const login = { '#id_username': 'rig-tls', '#id_password': 'correct-horse-battery-staple-42' }
      await submitForm(page, '/user/register', { '#id_username': 'rig-tls', '#id_password1': login['#id_password'], '#id_password2': login['#id_password'] }, '#register-button')
      // (a post chromium aborted and sent again may find the user made by the first: then log in)
      if ((await page.locator('#logged-in-as').count()) === 0 && /already exists/.test(await page.locator('main').innerText())) await submitForm(page, '/user/login', login, '#login-button')
      assert.equal(await page.locator('#logged-in-as').innerText(), 'Logged in as rig-tls')
      await context.clearCookies()
      await submitForm(page, '/user/login', login, '#login-button')
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

  it('the front (Caddy and nginx) runs as the user caddy, not root, and owns its certificates', async () => {
    const proxy = (await onHost(`echo ${inService('proxy')}`)).stdout.trim()
    const uid = (await onHost(`docker exec ${proxy} id -u caddy`)).stdout.trim()
    assert.match(uid, /^[1-9]\d*$/)
    // the run script, Caddy and nginx's master and workers (not the listing's own exec or a health check's)
    const listed = (await onHost(`docker exec ${proxy} sh -c ${shellQuote(PROCESS_LIST_SCRIPT)}`)).stdout
    const procs = containerTree(listed)
    const names = new Set(procs.map((p) => p.name))
    for (const name of ['bash', 'caddy', 'nginx']) assert.ok(names.has(name), `${name} runs: ${listed}`)
    assert.deepEqual(procs.filter((p) => p.uids.some((u) => u !== uid)), [], `every process is caddy (${uid}):\n${listed}`)
    const owners = await onHost(`docker exec ${proxy} find /data /config ! -user caddy`)
    assert.equal(owners.exitCode, 0, owners.stderr)
    assert.equal(owners.stdout.trim(), '', 'every file under /data and /config is caddy\'s')
    const certs = await onHost(`docker exec ${proxy} find /data/caddy/certificates -name '*.crt'`)
    assert.match(certs.stdout, /mymdb\.test\.crt/)
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
    const before = { serial: (await servedCertificate(host.httpsPort, root)).serialNumber, containers: await frontAndDb() }
    const r = await remoteUp(settings(pebble), root)
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    assert.equal((await servedCertificate(host.httpsPort, root)).serialNumber, before.serial)
    assert.equal(await frontAndDb(), before.containers)
    timings.push(`redeploy with HTTPS (nothing changed): ${r.seconds.toFixed(1)} s`)
  })

  /** `fn` under a load loop of 25 requests/s through the HTTPS front. */
  const throughFront = <T>(fn: () => Promise<T>) => underLoad(host.httpsPort, DOMAIN, { perSecond: 25, paths: ['/healthz', '/', '/movies/top'], tls: { ca: root } }, fn)
  /** The image in the db service's spec (what Swarm runs for it). */
  const dbSpecImage = async () => (await onHost(`docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' mymdb_db`)).stdout.trim()
  /** The image each running web container runs. */
  const webImages = async () => (await onHost(`docker ps --no-trunc --filter status=running --filter label=com.docker.swarm.service.name=mymdb_web --format '{{.Image}}'`)).stdout.trim().split('\n')

  it('zero downtime: a new web version deployed under a load loop through the HTTPS front loses no request, gets no error; PostgreSQL and the front keep their containers', async () => {
    pushed.push(...(await pushStackImages(registry, NEXT, { web: { dockerfile: `LABEL rig.release=${NEXT}` } })))
    const before = await frontAndDb()
    const { value: r, load } = await throughFront(() => remoteUp(settings(pebble, { MYMDB_TAG: NEXT }), root))
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    timings.push(`zero-downtime redeploy of a new web version: ${r.seconds.toFixed(1)} s; ${describeLoad(load)}`)
    assert.equal(load.failed, 0, describeLoad(load))
    assert.deepEqual(load.other, {}, describeLoad(load))
    assert.ok(load.sent >= 20 * r.seconds, describeLoad(load))
    assert.equal(await frontAndDb(), before, 'the same db and proxy containers')
    const images = await webImages()
    assert.equal(images.length, 1, images.join(' '))
    assert.match(images[0] ?? '', new RegExp(`/mymdb-web:${NEXT}@sha256:`))
  })

  it('the db image built again (as on another machine: another image id, the same inputs label): the deploy keeps PostgreSQL and loses no request', async () => {
    // Another image with the label of the running one, as `npm run build -- --only db --no-cache`
    // on another machine makes (every layer new, so a new id; the label is a digest of the build's
    // inputs, tests/unit/build.test.ts): here a layer of metadata on top, made in a second instead
    // of a fresh PostgreSQL install (about 45 s, and 2 minutes beside the other test files).
    const fresh = await $({ quiet: true, nothrow: true, input: `FROM mymdb-db:latest\nLABEL rig.rebuilt=${FRESH}\n` })`docker build --quiet -t ${`mymdb-rig-fresh-db:${FRESH}`} -`
    assert.equal(fresh.exitCode, 0, fresh.stdout + fresh.stderr)
    const inspect = async (ref: string) => JSON.parse((await $({ quiet: true })`docker image inspect --format ${'{{json .}}'} ${ref}`).stdout) as { Id: string; Config: { Labels: Record<string, string> } }
    const [built, prepared] = [await inspect(`mymdb-rig-fresh-db:${FRESH}`), await inspect('mymdb-db:latest')]
    assert.notEqual(built.Id, prepared.Id, 'another image')
    assert.match(built.Config.Labels['org.mymdb.inputs'] ?? '', /^sha256:[0-9a-f]{64}$/)
    assert.equal(built.Config.Labels['org.mymdb.inputs'], prepared.Config.Labels['org.mymdb.inputs'], 'of the same inputs')
    pushed.push(`mymdb-rig-fresh-db:${FRESH}`) // removed afterwards with the pushed ones
    pushed.push(...(await pushStackImages(registry, FRESH, { web: { dockerfile: `LABEL rig.release=${FRESH}` }, db: { image: `mymdb-rig-fresh-db:${FRESH}` } })))
    const before = await frontAndDb()
    const runningDb = await dbSpecImage()
    const { value: r, load } = await throughFront(() => remoteUp(settings(pebble, { MYMDB_TAG: FRESH }), root))
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    timings.push(`redeploy with a db image built again from scratch: ${r.seconds.toFixed(1)} s; ${describeLoad(load)}`)
    assert.match(r.text, /\[pull\] db: built from the same sources and base image as the running one \(label org\.mymdb\.inputs\): it keeps running/)
    assert.equal(load.failed, 0, describeLoad(load))
    assert.deepEqual(load.other, {}, describeLoad(load))
    assert.equal(await frontAndDb(), before, 'the same db and proxy containers')
    assert.equal(await dbSpecImage(), runningDb)
    assert.equal((await onHost(`grep '^MYMDB_DB_REF=' .env`)).stdout.trim(), `MYMDB_DB_REF='${runningDb}'`)
    assert.match((await webImages()).join(' '), new RegExp(`/mymdb-web:${FRESH}@sha256:`))
  })

  it('a broken web version (its health check fails) never takes traffic: the running one keeps serving; it migrated first, and the deploy exits 1 saying the schema is ahead and how to go forward or back', async () => {
    // a broken release with a migration: the release step applies it, then the new web fails its health check
    pushed.push(
      ...(await pushStackImages(registry, BROKEN, {
        web: { dockerfile: `RUN ${addMigration('0002_rig_ahead', '0001_initial', 'CREATE TABLE rig_ahead (id integer)', 'DROP TABLE rig_ahead')} && echo 'raise RuntimeError("rig: a broken release")' > /mymdb/django/config/wsgi.py` },
      })),
    )
    const before = await frontAndDb()
    const { value: r, load } = await throughFront(() => remoteUp(settings(pebble, { MYMDB_TAG: BROKEN }), root))
    timings.push(`a broken web version, rolled back by Swarm: ${r.seconds.toFixed(1)} s; ${describeLoad(load)}`)
    assert.equal(r.code, 1, lastLinesFirst(r.text))
    assert.match(r.text, new RegExp(`the new web did not become healthy on admin@127\\.0\\.0\\.1:\\d+: Swarm rolled web back[^\\n]*\\. The previous version \\([^)]*/mymdb-web:${FRESH}@sha256:[0-9a-f]+\\) keeps serving`))
    assert.match(r.text, /Its migrations were applied before it started: the previous version now runs on the newer database schema, and pages that use what changed may fail\. Go forward: fix the new version and deploy again; or back: npm run rollback -- --allow-schema-change/)
    assert.match(r.text, /rig: a broken release|no app loaded/, 'the failed task\'s logs are shown')
    // and its uWSGI, which cannot load the app, was started again at most every few seconds, not every second
    assert.match(r.text, /uwsgi: started again within 10 s of the last start: waiting 5 s first/)
    const applied = await onHost(`docker exec --user postgres ${inService('db')} psql -tAc "select count(*) from django_migrations where name = '0002_rig_ahead'" mymdb`)
    assert.equal(applied.stdout.trim(), '1', applied.stderr)
    await assertNoneLost(host, { 'through the front': load })
    assert.equal(await frontAndDb(), before)
    assert.match((await webImages()).join(' '), new RegExp(`/mymdb-web:${FRESH}@sha256:`))
    // the broken task, stopped by Swarm for being unhealthy, ended failed, not complete
    await assertBrokenTasksFailed(host, BROKEN)
    const last = JSON.parse((await onHost('tail -n 1 deploys.log')).stdout) as { tag: string; result: string; error: string }
    assert.deepEqual([last.tag, last.result], [BROKEN, 'failed'])
  })

  it('a db image that does not start: Swarm puts the running one back, the data stays, the deploy exits 1 saying so', async () => {
    // the running release (web the same image) with a db image that exits at once; (the empty LABEL:
    // built from our db image it would carry its inputs digest, and the deploy would keep the running one)
    const bad = `LABEL org.mymdb.inputs=""\nENTRYPOINT ["sh", "-c", "echo rig: a database that does not start >&2; exit 1"]`
    await pushStackImages(registry, FRESH, { web: { image: `${registry.address}/mymdb-web:${FRESH}` }, db: { dockerfile: bad } })
    const psql = (sql: string) => onHost(`docker exec --user postgres ${inService('db')} psql -tAc "${sql}" mymdb`)
    const movies = (await psql('select count(*) from core_movie')).stdout.trim()
    const runningDb = await dbSpecImage()
    const r = await remoteUp(settings(pebble, { MYMDB_TAG: FRESH }), root)
    timings.push(`a db image that does not start, rolled back by Swarm: ${r.seconds.toFixed(1)} s`)
    assert.equal(r.code, 1, lastLinesFirst(r.text))
    assert.match(r.text, /the new db did not become healthy on admin@127\.0\.0\.1:\d+: Swarm rolled db back[^\n]*\. The previous version \([^)]*mymdb-db[^)]*\) runs again/)
    assert.match(r.text, /rig: a database that does not start/, 'the failed task\'s logs are shown')
    assert.equal(await dbSpecImage(), runningDb)
    // PostgreSQL runs again on its volume, and the site serves
    const healthz = () =>
      new Promise<string>((res) => {
        https
          .get({ host: '127.0.0.1', port: host.httpsPort, path: '/healthz', servername: DOMAIN, headers: { host: DOMAIN }, ca: root, agent: false, timeout: 5000 }, (page) => {
            page.resume()
            res(`HTTP ${page.statusCode}`)
          })
          .on('error', (e) => res(e.message))
      })
    let answer = ''
    for (const start = Date.now(); Date.now() - start < 90_000 && (answer = await healthz()) !== 'HTTP 200'; ) await new Promise((res) => setTimeout(res, 1000))
    assert.equal(answer, 'HTTP 200', 'the site serves again once the old db runs')
    assert.equal((await psql('select count(*) from core_movie')).stdout.trim(), movies)
    const last = JSON.parse((await onHost('tail -n 1 deploys.log')).stdout) as { tag: string; result: string; error: string }
    assert.deepEqual([last.tag, last.result], [FRESH, 'failed'])
    assert.match((await webImages()).join(' '), new RegExp(`/mymdb-web:${FRESH}@sha256:`))
  })

  it('another CA (as from the staging CA to the real one) issues a new certificate; a short-lived one is renewed by the host on its own', async () => {
    short = await startPebble({ name: 'mymdb-rig-pebble-short', hosts: { [DOMAIN]: host.ip }, certValiditySeconds: 30 })
    const shortRoot = await short.issuingRoot()
    const r = await remoteUp(settings(short, { MYMDB_ACME_RENEW_INTERVAL: '5s' }), shortRoot)
    assert.equal(r.code, 0, lastLinesFirst(r.text))
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
