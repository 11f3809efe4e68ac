// The AWS emulator of the test rig: moto (Debian's python3-moto) in a container built from
// tests/rig/moto/Dockerfile on the local base image, on the rig's docker network, its port
// published on 127.0.0.1 only. State lives in memory; reset() wipes it between tests.
import { $ } from 'zx'
import { buildRigImage, ensureRigNetwork, publishedPort, RIG_NETWORK, rigIp } from './docker.ts'

const CONTEXT = new URL('moto', import.meta.url).pathname

export interface Moto {
  /** http://127.0.0.1:<port>: what AWS_ENDPOINT_URL is set to for the tasks under test. */
  endpoint: string
  /** The emulator's address on the rig network, for containers (e.g. the SSH host's). */
  internalEndpoint: string
  /** Environment for a task talking to the emulator (fake credentials, one attempt). */
  env: Record<string, string>
  reset(): Promise<void>
  stop(): Promise<void>
}

/** Builds the moto image unless one of the same inputs exists; returns its tag. */
export function buildMotoImage(): Promise<string> {
  return buildRigImage('mymdb-rig-moto', CONTEXT)
}

/** Starts a fresh emulator (a container named `name`), waits until it answers. */
export async function startMoto(name = 'mymdb-rig-moto'): Promise<Moto> {
  const image = await buildMotoImage()
  await ensureRigNetwork()
  await $({ nothrow: true, quiet: true })`docker rm -f ${name}`
  await $({ quiet: true })`docker run -d --name ${name} --network ${RIG_NETWORK} -p 127.0.0.1::5000 ${image} moto_server -H 0.0.0.0 -p 5000`
  const port = await publishedPort(name, 5000)
  const ip = await rigIp(name)
  const endpoint = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    const ok = await fetch(`${endpoint}/moto-api/`).then((r) => r.ok, () => false)
    if (ok) break
    if (Date.now() > deadline) throw new Error(`moto did not answer on ${endpoint} within 30 s`)
    await new Promise((r) => setTimeout(r, 200))
  }
  return {
    endpoint,
    internalEndpoint: `http://${ip}:5000`,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-west-2',
      AWS_MAX_ATTEMPTS: '1',
    },
    async reset() {
      const r = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' })
      if (!r.ok) throw new Error(`moto reset: HTTP ${r.status}`)
    },
    async stop() {
      await $({ nothrow: true, quiet: true })`docker rm -f ${name}`
    },
  }
}
