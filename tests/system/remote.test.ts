// remote-up against the test rig: a registry container and an SSH host container with its own
// Docker engine (tests/rig/). The images built by tests/prepare.ts are pushed to the registry by
// this machine's Docker; the SSH host's engine pulls them (~570 MB) the way the EC2 host would.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { $ } from 'zx'
import { connect, exec, openRemote, type OpenRemote } from '../../tasks/lib/ssh.ts'
import { parseHostKey, type HostKey } from '../../tasks/lib/hostkey.ts'
import { startImpostor } from '../rig/impostor.ts'
import type { StepSeams } from '../../tasks/lib/step.ts'
import { main } from '../../tasks/remote-up.ts'
import { httpGet } from '../../tasks/lib/remote/checks.ts'
import { startFaultProxy } from '../rig/faultproxy.ts'
import { pushStackImages, rigRegistry, type Registry } from '../rig/registry.ts'
import { inService, REMOVE_STACK, startSshHost, type SshHost } from '../rig/sshhost.ts'
import { lastLinesFirst } from '../rig/report.ts'
import { retryUnstarted } from '../../tasks/lib/sh.ts'
import { captureLog, sshKeyFile } from '../unit/fakes.ts'

const TAG = 'test'
const HOST_NAME = 'mymdb.test'
// `$`, `#`, spaces and quotes must reach Django unchanged through the remote .env.
const SECRET_KEY = 'rig-secret $HOME #not-a-comment "dq" ${X:-y} \\n-abcdefghijklmnopqrstuvwxyz0123'


/** GET of the SSH host's published port with a Host header (the task's own HTTP check). */
const get = (port: number, path: string, host = HOST_NAME) => httpGet(`http://127.0.0.1:${port}${path}`, host)

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`

describe('remote-up over SSH (registry + SSH host rig)', { timeout: 20 * 60_000 }, () => {
  let registry: Registry | undefined
  let host: SshHost | undefined
  let dir: string
  let keyFile: string
  let privateKey: string
  let hostKey = ''
  let pinned: HostKey
  const pushed: string[] = []
  const timings: string[] = []

  const env = (extra: Record<string, string> = {}) => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    MYMDB_HOST_ADDRESS: '127.0.0.1',
    MYMDB_HOST_SSH_PORT: String(host!.sshPort),
    MYMDB_HOST_HTTP_PORT: String(host!.httpPort),
    MYMDB_SSH_USER: host!.user,
    MYMDB_SSH_KEY_FILE: keyFile,
    // a host the deploy did not launch: its key is a setting
    MYMDB_HOST_KEY: hostKey,
    MYMDB_REGISTRY: registry!.address,
    MYMDB_TAG: TAG,
    DJANGO_SECRET_KEY: SECRET_KEY,
    DJANGO_DB_PASSWORD: 'rig-db-password',
    POSTGRES_PASSWORD: 'rig-postgres-password',
    DJANGO_ALLOWED_HOSTS: `${HOST_NAME},127.0.0.1`,
    DJANGO_CACHE_TIMEOUT: '1',
    ...extra,
  })

  /** Runs remote-up; `onOutput` sees the output so far, about every 100 ms. */
  const run = async (extra: Record<string, string> = {}, onOutput?: (text: string) => void, seams: StepSeams = {}) => {
    const log = captureLog()
    const start = Date.now()
    const watch = onOutput ? setInterval(() => onOutput(log.text()), 100) : undefined
    try {
      const code = await main([], env(extra), { log, envFile: join(dir, 'no.env'), pollSeconds: 1, interactive: false, ...seams })
      return { code, text: log.text(), took: seconds(start) }
    } finally {
      clearInterval(watch)
    }
  }

  const onHost = async (script: string) => {
    const conn = await connect({ host: '127.0.0.1', port: host!.sshPort, username: 'admin', privateKey, hostKey: pinned, attempts: 3 })
    try {
      return await retryUnstarted(() => exec(conn, ['sh', '-c', script]))
    } finally {
      conn.end()
    }
  }

  const dbContainerId = async () => {
    const r = await onHost(`echo ${inService('db')}`)
    assert.equal(r.exitCode, 0, r.stderr)
    return r.stdout.trim()
  }

  before(async () => {
    let t = Date.now()
    dir = mkdtempSync(join(tmpdir(), 'mymdb-remote-'))
    keyFile = join(dir, 'id_ed25519')
    const keys = sshKeyFile(keyFile)
    privateKey = keys.private

    registry = await rigRegistry('mymdb-rig-registry-remote', 'remote')
    host = await startSshHost({ authorizedKey: keys.public, registry, name: 'mymdb-rig-sshhost-remote' })
    hostKey = await host.hostKey()
    pinned = parseHostKey(hostKey, 'the rig host') as HostKey
    timings.push(`rig up (registry + SSH host with dockerd): ${seconds(t)}`)

    t = Date.now()
    pushed.push(...(await pushStackImages(registry, TAG)))
    timings.push(`push of the three images to the rig registry: ${seconds(t)}`)
  })

  after(async () => {
    for (const line of timings) console.log(`timing: ${line}`)
    await host?.stop()
    await registry?.stop()
    for (const ref of pushed) await $({ nothrow: true, quiet: true })`docker rmi ${ref}`
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /**
   * Runs remote-up through a fault proxy that breaks the SSH link once the output matches `when`.
   * Keepalives 2 s apart instead of 15: a silent link is noticed in about 8 s, not a minute.
   */
  const runBreakingSsh = async (when: RegExp, brk: 'cut' | 'freeze') => {
    const proxy = await startFaultProxy(host!.sshPort)
    try {
      let broken = false
      const openQuick: OpenRemote = (target) => openRemote({ ...target, keepaliveMs: 2000 })
      const r = await run({ MYMDB_HOST_SSH_PORT: String(proxy.port) }, (text) => {
        if (!broken && when.test(text)) {
          broken = true
          proxy[brk]()
        }
      }, { openRemote: openQuick })
      assert.ok(broken, r.text)
      return r
    } finally {
      await proxy.close()
    }
  }

  it('a host given by MYMDB_HOST_ADDRESS: no key known and no terminal, refused before connecting; with MYMDB_HOST_KEY, another key at the address gets nothing', async () => {
    const impostor = await startImpostor()
    try {
      const unknown = await run({ MYMDB_HOST_KEY: '', MYMDB_HOST_SSH_PORT: String(impostor.port) })
      assert.equal(unknown.code, 1, lastLinesFirst(unknown.text))
      assert.match(unknown.text, /no host key is known for it \(not in MYMDB_HOST_KEY, an instance tag or \S+mymdb-production\.known_hosts\), so nothing is sent to it: set MYMDB_HOST_KEY/)
      assert.deepEqual(impostor.seen, [], 'not even dialled')
      const other = await run({ MYMDB_HOST_SSH_PORT: String(impostor.port) })
      assert.equal(other.code, 1, lastLinesFirst(other.text))
      assert.match(other.text, /the host presented the key SHA256:\S+, not SHA256:\S+ \(MYMDB_HOST_KEY\); nothing was sent to it/)
    } finally {
      await impostor.stop()
    }
    assert.deepEqual([...new Set(impostor.seen)], ['connection'], 'no login, no command, no .env')
  })

  it('the SSH connection breaks during the pull: exit 1 saying so and to run again (the next test runs again)', async () => {
    const r = await runBreakingSsh(/\[pull\] docker compose pull/, 'cut')
    assert.equal(r.code, 1, lastLinesFirst(r.text))
    assert.match(r.text, /the SSH connection to admin@127\.0\.0\.1:\d+ was lost during `cd mymdb && docker compose pull --quiet`.*Run the same npm command again/)
    assert.doesNotMatch(r.text, /\n\s+at /, 'a one-line message, not a stack trace')
  })

  it('deploys: the site answers through the host with the sample catalogue', async () => {
    const r = await run()
    timings.push(`first remote-up (pull ~570 MB inside the host, up, checks): ${r.took}`)
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    assert.match(r.text, /MyMDB is running on 127\.0\.0\.1/)
    assert.match(r.text, new RegExp(`http://${HOST_NAME.replace('.', '\\.')}:${host!.httpPort}/`))
    const health = await get(host!.httpPort, '/healthz')
    assert.equal(health.status, 200)
    const home = await get(host!.httpPort, '/')
    assert.equal(home.status, 200)
    assert.match(home.body, /<a href="\/movie\/\d+\/">Star Wars<\/a>/)
    // the host's Docker (26) checks a starting task every second, each service keeps its interval once healthy
    const checks = await onHost(`for s in web db proxy cache; do docker service inspect --format "$s {{.Spec.TaskTemplate.ContainerSpec.Healthcheck.StartInterval}} {{.Spec.TaskTemplate.ContainerSpec.Healthcheck.Interval}}" mymdb_$s; done`)
    assert.deepEqual(checks.stdout.trim().split('\n'), ['web 1s 3s', 'db 1s 2s', 'proxy 1s 5s', 'cache 1s 5s'], checks.stderr)
  })

  it('the remote .env is mode 600, owned by admin, and its values reach the containers unchanged (a secret as a file)', async () => {
    const st = await onHost('stat -c "%a %U %G" mymdb/.env mymdb/docker-compose.yml')
    assert.equal(st.exitCode, 0, st.stderr)
    assert.deepEqual(st.stdout.trim().split('\n'), ['600 admin admin', '644 admin admin'])
    const images = await onHost('cd mymdb && docker compose config --images')
    assert.match(images.stdout, new RegExp(`${registry!.address.replace(/\./g, '\\.')}/mymdb-web:${TAG}`))
    // a secret reaches web as a Swarm secret, a file, not in its environment
    const key = await onHost(`docker exec ${inService('web')} cat /run/secrets/django_secret_key`)
    assert.equal(key.exitCode, 0, key.stderr)
    assert.equal(key.stdout, SECRET_KEY)
    assert.equal((await onHost(`docker exec ${inService('web')} printenv DJANGO_SECRET_KEY`)).exitCode, 1)
    const bind = await onHost('grep -E "^(WEB_BIND|WEB_PORT)=" mymdb/.env')
    assert.deepEqual(bind.stdout.trim().split('\n'), ["WEB_BIND='0.0.0.0'", "WEB_PORT='80'"])
  })

  it('a second run succeeds and keeps the database container (and its data)', async () => {
    const before = await dbContainerId()
    assert.notEqual(before, '')
    const r = await run()
    timings.push(`second remote-up (nothing to pull or recreate): ${r.took}`)
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    assert.equal(await dbContainerId(), before)
    assert.match(r.text, /already present|nothing loaded/i)
    assert.match((await get(host!.httpPort, '/')).body, /Star Wars/)
  })

  it('a failing remote command ends with exit code 1 and shows `$ command`, its exit code and stderr', async () => {
    const t = Date.now()
    const r = await run({ MYMDB_REGISTRY: '127.0.0.1:1' })
    timings.push(`failing remote-up (bad registry): ${seconds(t)}`)
    assert.equal(r.code, 1, lastLinesFirst(r.text))
    assert.match(r.text, /Could not pull the images from 127\.0\.0\.1:1/)
    assert.match(r.text, /\$ cd mymdb && docker compose pull --quiet/)
    assert.match(r.text, /exit code [1-9]/)
    assert.match(r.text, /stderr:\n.*127\.0\.0\.1:1/)
    // The running stack is untouched by the failed pull.
    assert.equal((await get(host!.httpPort, '/healthz')).status, 200)
  })

  it('the link goes silent during the start (no reset, nothing passes): keepalives notice it, exit 1; the site keeps running', async () => {
    const r = await runBreakingSsh(/\[up\] docker stack deploy/, 'freeze')
    timings.push(`silent SSH link noticed and reported: ${r.took}`)
    assert.equal(r.code, 1, lastLinesFirst(r.text))
    assert.match(r.text, /the SSH connection to admin@127\.0\.0\.1:\d+ was lost during `cd mymdb && docker (stack deploy|service inspect|ps)/)
    assert.equal((await get(host!.httpPort, '/healthz')).status, 200)
  })

  it('the host keeps the images of the last MYMDB_KEEP_RELEASES releases and removes older ones at each deploy', async () => {
    // two more releases with web images of their own (db and proxy unchanged), after the one running
    for (const tag of ['p1', 'p2']) pushed.push(...(await pushStackImages(registry!, tag, { web: { dockerfile: `LABEL rig.release=${tag}` } })))
    const webImages = async () => (await onHost(`docker image ls --format '{{.Tag}}' ${registry!.address}/mymdb-web`)).stdout.trim().split('\n').sort()
    assert.equal((await run({ MYMDB_TAG: 'p1', MYMDB_KEEP_RELEASES: '2' })).code, 0)
    assert.ok((await webImages()).includes(TAG), 'the release before p1 is one of the last 2')
    const r = await run({ MYMDB_TAG: 'p2', MYMDB_KEEP_RELEASES: '2' })
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    assert.match(r.text, /\[prune\] removed \d+ image\(s\) of releases older than the last 2 \(p2, p1 kept for rollbacks\)/)
    const left = await webImages()
    assert.ok(!left.includes(TAG), left.join(' '))
    assert.ok(left.includes('p1') && left.includes('p2'), left.join(' '))
    // the running release and its database are untouched
    assert.equal((await get(host!.httpPort, '/healthz')).status, 200)
  })

  it('a host that runs MyMDB with Compose (deployed before the Swarm stack) is moved to the stack by its next deploy; the data stays', async () => {
    // as an earlier version left a host: no stack, Compose running the same files and volumes
    const user = (code: string) => `python3 manage.py shell -c '${code}'`
    const back = await onHost(
      [
        REMOVE_STACK,
        'cd mymdb && docker compose up --detach --wait --wait-timeout 180',
        `docker compose exec -T web ${user('from django.contrib.auth.models import User; User.objects.create_user("kept-by-move", password="Kept-by-move-1")')}`,
      ].join(' && '),
    )
    assert.equal(back.exitCode, 0, back.stdout + back.stderr)
    const r = await run()
    timings.push(`remote-up moving a Compose host to the Swarm stack: ${r.took}`)
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    assert.match(r.text, /the host ran MyMDB with Compose: moving it to the Swarm stack/)
    assert.equal((await onHost('cd mymdb && docker compose ps --all --quiet')).stdout.trim(), '', 'no Compose container is left')
    const kept = await onHost(`docker exec ${inService('web')} ${user('from django.contrib.auth.models import User; print(User.objects.filter(username="kept-by-move").count())')}`)
    assert.equal(kept.stdout.trim().split('\n').pop(), '1', kept.stderr)
    assert.match((await get(host!.httpPort, '/')).body, /Star Wars/)
  })
})
