// What the rig's containers (moto, registry, SSH host) share: one docker network, images built
// from the project's own base image and tagged by a hash of their inputs (so a changed file
// rebuilds, an unchanged one is built once per machine), and lookups of published ports and IPs.
import { createHash } from 'node:crypto'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { $ } from 'zx'

export const RIG_NETWORK = 'mymdb-rig'

export async function ensureRigNetwork(): Promise<void> {
  const exists = await $({ nothrow: true, quiet: true })`docker network inspect ${RIG_NETWORK}`
  if (exists.exitCode !== 0) await $({ quiet: true })`docker network create ${RIG_NETWORK}`
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

/**
 * Builds `<name>:<hash of the inputs>` from the files of `contextDir` plus `extraFiles` (copied
 * into a temporary context), unless that image exists. Returns the image.
 */
export async function buildRigImage(name: string, contextDir: string, extraFiles: { name: string; path: string }[] = []): Promise<string> {
  const files = [...readdirSync(contextDir).map((f) => ({ name: f, path: join(contextDir, f) })), ...extraFiles]
  const image = `${name}:${contextHash(files)}`
  if ((await $({ nothrow: true, quiet: true })`docker image inspect ${image}`).exitCode === 0) return image
  const dir = mkdtempSync(join(tmpdir(), `${name}-`))
  try {
    for (const f of files) copyFileSync(f.path, join(dir, f.name))
    const base = await rigBaseImage()
    await $({ quiet: true, env: { ...process.env, DOCKER_BUILDKIT: '1' } })`docker build -t ${image} --build-arg BASE_IMAGE=${base} ${dir}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return image
}

/** Port of `container` that Docker published for `containerPort`/tcp (or udp) on 127.0.0.1. */
export async function publishedPort(container: string, containerPort: number, proto: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  const out = (await $({ quiet: true })`docker port ${container} ${`${containerPort}/${proto}`}`).stdout
  const line = out.split('\n').find((l) => l.startsWith('127.'))
  const port = Number(line?.split(':').pop())
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${container}: no port published for ${containerPort}/${proto} (docker port said: ${out.trim()})`)
  return port
}

/** The container's address on the rig network. */
export async function rigIp(container: string): Promise<string> {
  return (await $({ quiet: true })`docker inspect -f ${`{{(index .NetworkSettings.Networks "${RIG_NETWORK}").IPAddress}}`} ${container}`).stdout.trim()
}

/** Removes this machine's image tags under `prefix/` (e.g. what was pushed to a rig registry). */
export async function removeLocalTags(prefix: string): Promise<void> {
  const tags = (await $({ nothrow: true, quiet: true })`docker image ls --format {{.Repository}}:{{.Tag}}`).stdout
    .split('\n')
    .filter((t) => t.startsWith(`${prefix}/`))
  if (tags.length > 0) await $({ nothrow: true, quiet: true })`docker rmi ${tags}`
}

/** `n` TCP ports free on every one of `ips` right now (for rig hosts that share their ports over several loopback addresses). */
export async function freePorts(ips: readonly string[], n: number): Promise<number[]> {
  const listen = (ip: string, port: number) =>
    new Promise<Server | null>((res) => {
      const s = createServer()
      s.once('error', () => res(null))
      s.listen(port, ip, () => res(s))
    })
  const ports: number[] = []
  while (ports.length < n) {
    const first = await listen(ips[0]!, 0)
    if (!first) throw new Error(`no free port on ${ips[0]}`)
    const port = (first.address() as AddressInfo).port
    const rest = await Promise.all(ips.slice(1).map((ip) => listen(ip, port)))
    for (const s of [first, ...rest]) s?.close()
    if (rest.every(Boolean) && !ports.includes(port)) ports.push(port)
  }
  return ports
}
