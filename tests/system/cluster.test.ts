// Several hosts as one Docker Swarm (issue 21): formCluster over ssh2 on three rig SSH hosts with
// their own Docker engines, as the deploy will run it on the stage's instances; then the stack
// deployed onto the three (remote-up against the first), served by every node.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { $ } from 'zx'
import { parseHostKey, type HostKey } from '../../tasks/lib/hostkey.ts'
import { formCluster, type ClusterNode } from '../../tasks/lib/remote/cluster.ts'
import { httpGet } from '../../tasks/lib/remote/checks.ts'
import { openRemote, type Remote } from '../../tasks/lib/ssh.ts'
import { main } from '../../tasks/remote-up.ts'
import { collectStatus } from '../../tasks/status.ts'
import { formatStatus } from '../../tasks/lib/status.ts'
import { hostStack } from '../../tasks/lib/stack.ts'
import { pushStackImages, rigRegistry, type Registry } from '../rig/registry.ts'
import { describeLoad, loadLoop } from '../rig/load.ts'
import { lastLinesFirst } from '../rig/report.ts'
import { startSshHost, type SshHost } from '../rig/sshhost.ts'
import { captureLog, sshKeyFile } from '../unit/fakes.ts'

const REPO = new URL('../..', import.meta.url).pathname
const TAG = 'cluster'
const NEXT = 'cluster2'
const THIRD = 'cluster3'
const HOST_NAME = 'mymdb.test'

describe('several hosts as one Docker Swarm (three SSH hosts of the rig)', { timeout: 10 * 60_000 }, () => {
  const hosts: SshHost[] = []
  const remotes: Remote[] = []
  let dir = ''
  let keyFile = ''
  /** The host the kill test killed. */
  let downNode = ''
  let registry: Registry | undefined
  const pushed: string[] = []
  const nodes = (n: number): ClusterNode[] => remotes.slice(0, n)
  /** `docker node ls` on the first host: hostname, status, manager status per node, sorted. */
  const nodeList = async () => {
    const r = await hosts[0]!.dockerExec('docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}')
    assert.equal(r.exitCode, 0, r.stderr)
    return r.stdout.trim().split('\n').map((l) => l.trim()).sort()
  }
  const tokens = async () => {
    const read = async (role: string) => (await hosts[0]!.dockerExec('docker', 'swarm', 'join-token', '--quiet', role)).stdout.trim()
    return { worker: await read('worker'), manager: await read('manager') }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mymdb-cluster-'))
    keyFile = join(dir, 'id')
    const keys = sshKeyFile(keyFile)
    registry = await rigRegistry('mymdb-rig-registry-cluster', 'cluster')
    hosts.push(...(await Promise.all([1, 2, 3].map((i) => startSshHost({ authorizedKey: keys.public, registry, name: `mymdb-rig-node${i}` })))))
    pushed.push(...(await pushStackImages(registry, TAG)))
    for (const h of hosts) {
      const hostKey = parseHostKey(await h.hostKey(), h.container) as HostKey
      remotes.push(await openRemote({ host: h.host, port: h.sshPort, username: h.user, privateKey: keys.private, hostKey, attempts: 3 }))
    }
  })
  after(async () => {
    for (const r of remotes) r.close()
    await Promise.all(hosts.map((h) => h.stop()))
    await registry?.stop()
    for (const ref of pushed) await $({ nothrow: true, quiet: true })`docker rmi ${ref}`
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('two hosts: a swarm made on the first, the second joins as a worker; three: the worker promoted, the third joins, three managers; tokens rotated, never in the log or on a disk', async () => {
    const log = captureLog()
    const two = await formCluster(nodes(2), log)
    assert.deepEqual(two.map((a) => a.kind), ['init', 'join'])
    assert.deepEqual(await nodeList(), ['mymdb-rig-node1 Ready Leader', 'mymdb-rig-node2 Ready'])

    const before = await tokens()
    assert.match(before.worker, /^SWMTKN-/)
    const three = await formCluster(nodes(3), log)
    assert.deepEqual(three.map((a) => `${a.kind} ${a.node}`), ['promote 1', 'join 2'])
    assert.deepEqual(await nodeList(), ['mymdb-rig-node1 Ready Leader', 'mymdb-rig-node2 Ready Reachable', 'mymdb-rig-node3 Ready Reachable'])
    // the tokens handed out were rotated once the third joined
    const after = await tokens()
    assert.notEqual(after.worker, before.worker)
    assert.notEqual(after.manager, before.manager)
    // nothing of a token in what the deploy printed, nor in any file on a host outside Swarm's own (encrypted) state
    assert.match(log.text(), /\[cluster\] admin@127\.0\.0\.1:\d+: joined as a manager/)
    assert.doesNotMatch(log.text(), /SWMTKN/)
    for (const h of hosts) {
      const found = await h.dockerExec('sh', '-c', 'grep -rIl SWMTKN- /home /root /tmp /etc /run /var --exclude-dir=swarm 2>/dev/null; true')
      assert.equal(found.stdout.trim(), '', `${h.container}: files holding a join token`)
    }

    // run again with the same hosts: nothing to do
    assert.deepEqual(await formCluster(nodes(3), log), [])
  })

  /** remote-up against the first node, as deploy:aws will run it once the cluster is formed. */
  const deploy = async (extra: Record<string, string> = {}) => {
    const log = captureLog()
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      MYMDB_HOST_ADDRESS: '127.0.0.1',
      MYMDB_HOST_SSH_PORT: String(hosts[0]!.sshPort),
      MYMDB_HOST_HTTP_PORT: String(hosts[0]!.httpPort),
      MYMDB_SSH_USER: hosts[0]!.user,
      MYMDB_SSH_KEY_FILE: keyFile,
      MYMDB_HOST_KEY: await hosts[0]!.hostKey(),
      MYMDB_REGISTRY: registry!.address,
      MYMDB_TAG: TAG,
      DJANGO_SECRET_KEY: 'rig-cluster-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz',
      DJANGO_DB_PASSWORD: 'rig-db-password',
      POSTGRES_PASSWORD: 'rig-postgres-password',
      DJANGO_ALLOWED_HOSTS: `${HOST_NAME},127.0.0.1`,
      ...extra,
    }
    const started = Date.now()
    const code = await main([], env, { log, envFile: join(dir, 'no.env'), pollSeconds: 1, interactive: false })
    assert.equal(code, 0, lastLinesFirst(log.text(), 20))
    return { text: log.text(), seconds: ((Date.now() - started) / 1000).toFixed(1) }
  }
  /** Per running task of a service: its node and state, sorted. */
  const where = async (service: string) => {
    const r = await hosts[0]!.dockerExec('docker', 'service', 'ps', '--filter', 'desired-state=running', '--format', '{{.Node}}|{{.CurrentState}}|{{.Image}}', `mymdb_${service}`)
    assert.equal(r.exitCode, 0, r.stderr)
    return r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('|')).map(([node, state, image]) => ({ node: node!, state: state!.split(' ')[0]!, image: image ?? '' })).sort((a, b) => a.node.localeCompare(b.node))
  }

  it('the stack deployed onto the three: every node serves the site, web runs on each, the database on the first (its volume is there)', async () => {
    const { text, seconds } = await deploy()
    console.log(`timing: a deploy onto three nodes (images pulled by each): ${seconds} s`)
    assert.match(text, /\[swarm\] a cluster of 3 nodes: the front on every node, 3 web replicas over them/)
    const nodes3 = [1, 2, 3].map((i) => `mymdb-rig-node${i} Running`)
    const placed = async (service: string) => (await where(service)).map((t) => `${t.node} ${t.state}`)
    assert.deepEqual(await placed('web'), nodes3, 'one web replica on each node')
    assert.deepEqual(await placed('proxy'), nodes3, 'the front on every node')
    assert.deepEqual(await placed('db'), ['mymdb-rig-node1 Running'])
    // each node's port 80 answers, whichever node's web task takes the request
    for (const h of hosts) {
      const health = await httpGet(`http://127.0.0.1:${h.httpPort}/healthz`, HOST_NAME)
      assert.equal(health.status, 200, `${h.container}: ${health.body}`)
      const home = await httpGet(`http://127.0.0.1:${h.httpPort}/`, HOST_NAME)
      assert.match(home.body, /<a href="\/movie\/\d+\/">Star Wars<\/a>/, h.container)
    }
  })

  it('a new web version rolled over the nodes under load on all three ports loses no request; MYMDB_WEB_REPLICAS=2 leaves two', async () => {
    pushed.push(...(await pushStackImages(registry!, NEXT, { web: { dockerfile: `LABEL rig.release=${NEXT}` } })))
    const loads = hosts.map((h) => loadLoop(h.httpPort, HOST_NAME, { perSecond: 9, paths: ['/healthz', '/'] }))
    await new Promise((res) => setTimeout(res, 2000))
    const { seconds } = await deploy({ MYMDB_TAG: NEXT, MYMDB_WEB_REPLICAS: '2' })
    await new Promise((res) => setTimeout(res, 2000))
    const answers = await Promise.all(loads.map((l) => l.stop()))
    console.log(`timing: a rolling deploy of web on three nodes: ${seconds} s; answers meanwhile: ${answers.map((a, i) => `node${i + 1}: ${describeLoad(a)}`).join('; ')}`)
    answers.forEach((a, i) => {
      assert.ok(a.sent >= 9 * 20, `node${i + 1}: ${describeLoad(a)}`)
      assert.equal(a.ok, a.sent, `node${i + 1}: ${describeLoad(a)}`)
    })
    const web = await where('web')
    assert.equal(web.length, 2, JSON.stringify(web))
    for (const t of web) assert.match(t.image, new RegExp(`/mymdb-web:${NEXT}(@|$)`))
  })

  it('status shows every node and the services running there; manage works on the first host when web runs elsewhere', async () => {
    const lines = formatStatus(await collectStatus(hostStack(remotes[0]!), true))
    const nodeLines = lines.filter((l) => /^ {2}(nodes| {5}) {5}mymdb-rig-node\d/.test(l))
    assert.equal(nodeLines.length, 3, lines.join('\n'))
    for (const l of nodeLines) assert.match(l, /mymdb-rig-node\d +Ready, manager (Leader|Reachable): .*proxy/, lines.join('\n'))
    assert.equal(nodeLines.join(' ').match(/web/g)?.length, 2, lines.join('\n'))
    assert.match(nodeLines.find((l) => l.includes('node1')) ?? '', /\bdb\b/)

    // web away from the first host, where the deploy and the operate commands connect
    const moved = await hosts[0]!.dockerExec('docker', 'service', 'update', '--quiet', '--constraint-add', 'node.hostname!=mymdb-rig-node1', 'mymdb_web')
    assert.equal(moved.exitCode, 0, moved.stderr)
    assert.ok(!(await where('web')).some((t) => t.node === 'mymdb-rig-node1'))
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_REGION: 'us-east-1',
      MYMDB_HOST_ADDRESS: '127.0.0.1',
      MYMDB_HOST_SSH_PORT: String(hosts[0]!.sshPort),
      MYMDB_HOST_KEY: await hosts[0]!.hostKey(),
      MYMDB_SSH_USER: hosts[0]!.user,
      MYMDB_SSH_KEY_FILE: keyFile,
      FORCE_COLOR: '0',
    }
    const shell = await $({ cwd: REPO, env, nothrow: true, quiet: true, input: 'from core.models import Movie\nprint("movies:", Movie.objects.count())\n' })`node --import tsx tasks/manage.ts --aws shell`
    assert.equal(shell.exitCode, 0, shell.stderr)
    assert.match(shell.stdout, /movies: [1-9]\d*/)
  })

  it('a node killed: the swarm keeps a leader and takes orders, its web task runs on the others within a minute, and they serve throughout', async () => {
    // the victim: a node besides the first (the leader, with the database) that runs a web task
    const runsWeb = (await where('web')).map((t) => t.node)
    const v = [1, 2].find((i) => runsWeb.includes(`mymdb-rig-node${i + 1}`))
    assert.ok(v !== undefined, `web runs on node1 only: ${runsWeb.join(', ')}`)
    const victim = `mymdb-rig-node${v + 1}`
    const others = [0, 1, 2].filter((i) => i !== v)
    const running = others.map((i) => loadLoop(hosts[i]!.httpPort, HOST_NAME, { perSecond: 10, paths: ['/healthz', '/'] }))
    await new Promise((res) => setTimeout(res, 2000))
    const killed = Date.now()
    // its container killed, as a host that is gone: two managers of three are a majority
    await $`docker kill ${hosts[v]!.container}`
    let list: string[] = []
    for (let i = 0; i < 30; i++) {
      list = await nodeList()
      if (list.includes(`${victim} Down Unreachable`)) break
      await new Promise((r) => setTimeout(r, 1000))
    }
    assert.deepEqual(list, [1, 2, 3].map((i) => `mymdb-rig-node${i}`).map((n) => (n === victim ? `${n} Down Unreachable` : n === 'mymdb-rig-node1' ? `${n} Ready Leader` : `${n} Ready Reachable`)))
    const survivor = hosts[others[1]!]!
    const label = await survivor.dockerExec('docker', 'node', 'update', '--label-add', 'probe=1', survivor.container)
    assert.equal(label.exitCode, 0, label.stderr)
    // its web task runs again on the others within a minute
    let web: string[] = []
    for (let i = 0; i < 60; i++) {
      web = (await where('web')).filter((t) => t.state === 'Running').map((t) => t.node)
      if (web.length === 2 && !web.includes(victim)) break
      await new Promise((res) => setTimeout(res, 1000))
    }
    const rescheduled = ((Date.now() - killed) / 1000).toFixed(1)
    await new Promise((res) => setTimeout(res, 2000))
    const loads = await Promise.all(running.map((l) => l.stop()))
    console.log(`timing: web back to its two replicas on the nodes left ${rescheduled} s after ${victim} was killed; answers meanwhile: ${loads.map((l, i) => `node${others[i]! + 1}: ${describeLoad(l)}`).join('; ')}`)
    assert.equal(web.length, 2, `web's running tasks a minute after ${victim} died: ${web.join(', ')}`)
    assert.ok(!web.includes(victim))
    // the other nodes' ports lost no request
    loads.forEach((l, i) => assert.equal(l.ok, l.sent, `node${others[i]! + 1}: ${describeLoad(l)}`))
    downNode = victim
  })

  it('with that host still down (one manager of three), a deploy of a new web version works', async () => {
    assert.ok(downNode, 'the test before killed a host')
    pushed.push(...(await pushStackImages(registry!, THIRD, { web: { dockerfile: `LABEL rig.release=${THIRD}` } })))
    const { seconds } = await deploy({ MYMDB_TAG: THIRD, MYMDB_WEB_REPLICAS: '2' })
    console.log(`timing: a deploy with ${downNode} down: ${seconds} s`)
    const web = (await where('web')).filter((t) => t.state === 'Running')
    assert.equal(web.length, 2, JSON.stringify(web))
    for (const t of web) assert.match(t.image, new RegExp(`/mymdb-web:${THIRD}(@|$)`))
    for (const h of hosts.filter((h) => h.container !== downNode)) assert.match((await httpGet(`http://127.0.0.1:${h.httpPort}/`, HOST_NAME)).body, /Star Wars/, h.container)
  })
})
