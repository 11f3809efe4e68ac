// The AWS emulator of the test rig: moto (Debian's python3-moto) in a container built from
// tests/rig/moto/Dockerfile on the local base image, on the rig's docker network, its port
// published on 127.0.0.1 only. State lives in memory; reset() wipes it between tests.
import { $ } from 'zx'

const REPO = new URL('../..', import.meta.url).pathname
export const MOTO_IMAGE = 'mymdb-moto:latest'
export const RIG_NETWORK = 'mymdb-rig'

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

/** Builds the moto image if missing, from the same base image `npm run build` used. */
export async function buildMotoImage(baseImage = 'mymdb-base:trixie'): Promise<void> {
  const present = await $({ nothrow: true, quiet: true })`docker image inspect ${MOTO_IMAGE}`
  if (present.exitCode === 0) return
  const base = (await $({ nothrow: true, quiet: true })`docker image inspect debian:trixie-slim`).exitCode === 0 ? 'debian:trixie-slim' : baseImage
  await $({ quiet: true, env: { ...process.env, DOCKER_BUILDKIT: '1' } })`docker build -t ${MOTO_IMAGE} --build-arg BASE_IMAGE=${base} ${REPO}/tests/rig/moto`
}

export async function ensureRigNetwork(): Promise<void> {
  const exists = await $({ nothrow: true, quiet: true })`docker network inspect ${RIG_NETWORK}`
  if (exists.exitCode !== 0) await $({ quiet: true })`docker network create ${RIG_NETWORK}`
}

/** Starts a fresh emulator (a container named `name`), waits until it answers. */
export async function startMoto(name = 'mymdb-rig-moto'): Promise<Moto> {
  await buildMotoImage()
  await ensureRigNetwork()
  await $({ nothrow: true, quiet: true })`docker rm -f ${name}`
  await $({ quiet: true })`docker run -d --name ${name} --network ${RIG_NETWORK} -e MOTO_PORT=5000 -p 127.0.0.1::5000 ${MOTO_IMAGE} moto_server -H 0.0.0.0 -p 5000`
  const port = (await $({ quiet: true })`docker port ${name} 5000/tcp`).stdout.trim().split('\n')[0]?.split(':').pop()
  const ip = (await $({ quiet: true })`docker inspect -f ${`{{(index .NetworkSettings.Networks "${RIG_NETWORK}").IPAddress}}`} ${name}`).stdout.trim()
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
