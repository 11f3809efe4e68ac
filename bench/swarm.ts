// npm run bench -- swarm: the spike of issue 9 (zero-downtime web updates). On a fresh rig SSH
// host: single-node Docker Swarm, bench/swarm/stack.yml (Caddy in front, web start-first with
// rollback, PostgreSQL), the project's images. Under a load loop of 30 requests/s through the
// published port: two updates of web and one broken version (its health check fails); counts
// the answers by status and checks the database container stays the same.
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { $ } from 'zx'
import { rigBaseImage } from '../tests/rig/docker.ts'
import { startSshHost } from '../tests/rig/sshhost.ts'
import { sshKeyPair } from '../tests/unit/fakes.ts'
import { describeLoad, loadLoop } from './measure.ts'

const DIR = new URL('./swarm/', import.meta.url).pathname
const RATE = 30

export async function benchSwarm(record: (what: string, value: string) => void): Promise<void> {
  await $({ cwd: DIR, quiet: true })`docker build -q --build-arg BASE_IMAGE=${await rigBaseImage()} -f Dockerfile.proxy -t mymdb-proxy:spike .`
  const host = await startSshHost({ authorizedKey: sshKeyPair().public, name: 'mymdb-bench-swarm' })
  const sh = (script: string, input?: string) => $({ nothrow: true, quiet: true, input })`docker exec -i ${host.container} sh -c ${script}`
  const get = (path: string) =>
    new Promise<number>((res) => {
      const req = http.get({ host: '127.0.0.1', port: host.httpPort, path, headers: { host: '127.0.0.1' }, timeout: 5000 }, (r) => {
        r.resume()
        r.on('end', () => res(r.statusCode ?? 0))
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', () => res(-1))
    })
  /** `fn` under the load loop (from 3 s before to 3 s after): its seconds and the answers. */
  const underLoad = async (fn: () => Promise<unknown>) => {
    const load = loadLoop(host.httpPort, '127.0.0.1', { perSecond: RATE, paths: ['/healthz', '/'] })
    await new Promise((r) => setTimeout(r, 3000))
    const start = performance.now()
    await fn()
    const seconds = (performance.now() - start) / 1000
    await new Promise((r) => setTimeout(r, 3000))
    return { seconds, text: `${seconds.toFixed(1)} s; ${describeLoad(await load.stop())}` }
  }
  try {
    let start = performance.now()
    await $({ quiet: true })`sh -c ${`docker save mymdb-web:latest mymdb-db:latest mymdb-proxy:spike | docker exec -i ${host.container} docker load`}`
    record('swarm spike: images into the host engine (save + load)', `${((performance.now() - start) / 1000).toFixed(1)} s`)
    await sh('docker swarm init --advertise-addr "$(hostname -i | cut -d" " -f1)" >/dev/null')
    await sh('mkdir -p /root/spike && cat > /root/spike/stack.yml', readFileSync(join(DIR, 'stack.yml'), 'utf8'))
    start = performance.now()
    await sh('cd /root/spike && docker stack deploy --detach=true -c stack.yml mymdb')
    for (let i = 0; i < 180 && (await get('/healthz')) !== 200; i++) await new Promise((r) => setTimeout(r, 1000))
    record('swarm spike: stack deploy to the first 200 through Caddy (new database)', `${((performance.now() - start) / 1000).toFixed(1)} s`)
    const db = async () => (await sh('docker ps -q -f name=mymdb_db')).stdout.trim()
    const dbBefore = await db()
    for (const round of [1, 2]) {
      const r = await underLoad(() => sh(`docker service update --quiet --env-add SPIKE_ROUND=${round} mymdb_web`))
      record(`swarm spike: web update ${round} (start-first) under ${RATE} req/s`, r.text)
    }
    const broken = await underLoad(() => sh('docker service update --quiet --health-cmd "exit 1" --health-interval 2s --health-retries 2 --health-start-period 0s mymdb_web'))
    const state = (await sh('docker service inspect --format "{{.UpdateStatus.State}}" mymdb_web')).stdout.trim()
    record(`swarm spike: a broken version (health check fails) under ${RATE} req/s`, `${broken.text}; update state ${state}`)
    record('swarm spike: PostgreSQL container across the updates', (await db()) === dbBefore ? 'the same' : 'RESTARTED')
  } finally {
    await host.stop()
  }
}
