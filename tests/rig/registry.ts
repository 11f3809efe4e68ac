// The container registry of the test rig: Debian's docker-registry in a container built from
// tests/rig/registry/ on the local base image, on the rig network, its port published on
// 127.0.0.1 only (the outer Docker pushes there over plain HTTP: 127.0.0.0/8 is an insecure
// registry by default). Other rig containers (the SSH host) reach it at `internalAddress`.
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { $ } from 'zx'
import { ensureRigNetwork, RIG_NETWORK } from './moto.ts'

const REPO = new URL('../..', import.meta.url).pathname
const CONTEXT = join(REPO, 'tests/rig/registry')

export interface Registry {
  /** `127.0.0.1:<port>`: where this machine's Docker pushes (images `127.0.0.1:<port>/name:tag`). */
  address: string
  port: number
  /** `<container ip>:5000` on the rig network, for other rig containers. */
  internalAddress: string
  /** The container's name (also its host name on the rig network). */
  container: string
  stop(): Promise<void>
}

/** Hash of the files of a build context: the image tag, so any change rebuilds. */
export function contextHash(files: { name: string; path: string }[]): string {
  const h = createHash('sha256')
  for (const f of [...files].sort((a, b) => a.name.localeCompare(b.name))) h.update(f.name).update('\0').update(readFileSync(f.path)).update('\0')
  return h.digest('hex').slice(0, 12)
}

/** Image of the base the project's own builds use: debian:trixie-slim when present, else mymdb-base:trixie. */
export async function rigBaseImage(fallback = 'mymdb-base:trixie'): Promise<string> {
  const slim = await $({ nothrow: true, quiet: true })`docker image inspect debian:trixie-slim`
  return slim.exitCode === 0 ? 'debian:trixie-slim' : fallback
}

/** Builds the registry image unless an image of the same inputs exists; returns its tag. */
export async function buildRegistryImage(): Promise<string> {
  const files = readdirSync(CONTEXT).map((name) => ({ name, path: join(CONTEXT, name) }))
  const image = `mymdb-rig-registry:${contextHash(files)}`
  if ((await $({ nothrow: true, quiet: true })`docker image inspect ${image}`).exitCode === 0) return image
  const base = await rigBaseImage()
  await $({ quiet: true, env: { ...process.env, DOCKER_BUILDKIT: '1' } })`docker build -t ${image} --build-arg BASE_IMAGE=${base} ${CONTEXT}`
  return image
}

/** Port of `container` that Docker published for `containerPort`/tcp on 127.0.0.1. */
export async function publishedPort(container: string, containerPort: number): Promise<number> {
  const out = (await $({ quiet: true })`docker port ${container} ${`${containerPort}/tcp`}`).stdout
  const line = out.split('\n').find((l) => l.startsWith('127.0.0.1:'))
  const port = Number(line?.split(':').pop())
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${container}: no port published for ${containerPort}/tcp (docker port said: ${out.trim()})`)
  return port
}

export async function rigIp(container: string): Promise<string> {
  return (await $({ quiet: true })`docker inspect -f ${`{{(index .NetworkSettings.Networks "${RIG_NETWORK}").IPAddress}}`} ${container}`).stdout.trim()
}

/** Starts a fresh, empty registry (container `name`) and waits until it answers /v2/. */
export async function startRegistry(name = 'mymdb-rig-registry'): Promise<Registry> {
  const image = await buildRegistryImage()
  await ensureRigNetwork()
  await $({ nothrow: true, quiet: true })`docker rm -f -v ${name}`
  await $({ quiet: true })`docker run -d --name ${name} --network ${RIG_NETWORK} -p 127.0.0.1::5000 ${image}`
  const stop = async () => {
    await $({ nothrow: true, quiet: true })`docker rm -f -v ${name}`
  }
  try {
    const port = await publishedPort(name, 5000)
    const ip = await rigIp(name)
    const address = `127.0.0.1:${port}`
    const deadline = Date.now() + 30_000
    for (;;) {
      const ok = await fetch(`http://${address}/v2/`).then((r) => r.ok, () => false)
      if (ok) break
      if (Date.now() > deadline) {
        const logs = await $({ nothrow: true, quiet: true })`docker logs --tail 20 ${name}`
        throw new Error(`registry did not answer on http://${address}/v2/ within 30 s:\n${logs.stdout}${logs.stderr}`)
      }
      await new Promise((r) => setTimeout(r, 200))
    }
    return { address, port, internalAddress: `${ip}:5000`, container: name, stop }
  } catch (e) {
    await stop()
    throw e
  }
}
