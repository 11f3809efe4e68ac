// npm run bench -- serve: the HTTPS figure beside the plain one. A second front from the stack's
// proxy image, with MYMDB_DOMAIN, on the stack's front network (it reaches web as the shipped one
// does) and on the rig network, where pebble (the rig's ACME CA) gives it its certificate; pebble
// accepts every validation here (the bench's front is not reachable at a public name).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { $ } from 'zx'
import { startPebble } from '../tests/rig/pebble.ts'
import { RIG_NETWORK } from '../tests/rig/docker.ts'

export const HTTPS_DOMAIN = 'bench.mymdb.test'
const NAME = 'mymdb-bench-https-front'

export interface HttpsFront {
  url: string
  /** autocannon's options for it: the server name and the CA that signed its certificate. */
  cannonArgs: string[]
  stop(): Promise<void>
}

/** GET over HTTPS, the name sent as SNI and Host, trusting only `ca`; the status, or 0. */
function status(port: number, path: string, ca: string): Promise<number> {
  return new Promise((resolve) => {
    https
      .get({ host: '127.0.0.1', port, path, servername: HTTPS_DOMAIN, headers: { host: HTTPS_DOMAIN }, ca, timeout: 5000 }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      .on('error', () => resolve(0))
      .on('timeout', function (this: import('node:http').ClientRequest) {
        this.destroy()
      })
  })
}

/** Starts the HTTPS front for the stack whose proxy container is `proxyContainer`, published on 127.0.0.1:`port`. */
export async function startHttpsFront(proxyContainer: string, frontNetwork: string, port: number): Promise<HttpsFront> {
  const q = $({ quiet: true, nothrow: true })
  const dir = mkdtempSync(join(tmpdir(), 'mymdb-bench-https-'))
  const pebble = await startPebble({ name: 'mymdb-bench-serve-pebble', hosts: {}, alwaysValid: true })
  const stop = async () => {
    await q`docker rm -f ${NAME}`
    await pebble.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const image = (await $({ quiet: true })`docker inspect -f ${'{{.Image}}'} ${proxyContainer}`).stdout.trim()
    await q`docker rm -f ${NAME}`
    await $({ quiet: true })`docker create --name ${NAME} --network ${RIG_NETWORK} -p ${`127.0.0.1:${port}:443`} -e ${`MYMDB_DOMAIN=${HTTPS_DOMAIN}`} -e ${`MYMDB_ACME_CA=${pebble.directory}`} -e ${`MYMDB_ACME_CA_ROOT_B64=${Buffer.from(pebble.apiRoot).toString('base64')}`} ${image}`
    await $({ quiet: true })`docker network connect ${frontNetwork} ${NAME}`
    await $({ quiet: true })`docker start ${NAME}`
    const ca = await pebble.issuingRoot()
    const caFile = join(dir, 'issuing-root.pem')
    writeFileSync(caFile, ca)
    const deadline = Date.now() + 90_000
    while ((await status(port, '/healthz', ca)) !== 200) {
      if (Date.now() > deadline) {
        const logs = await q`docker logs --tail 30 ${NAME}`
        throw new Error(`the HTTPS front got no certificate in 90 s:\n${logs.stdout}${logs.stderr}`)
      }
      await new Promise((r) => setTimeout(r, 1000))
    }
    return { url: `https://127.0.0.1:${port}`, cannonArgs: ['--servername', HTTPS_DOMAIN, '--ca', caFile], stop }
  } catch (e) {
    await stop()
    throw e
  }
}
