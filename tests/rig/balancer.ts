// The test rig's network load balancer (tests/rig/balancer/: HAProxy in TCP mode), standing in
// for an AWS Network Load Balancer in front of a stage's hosts: ports 80 and 443 passed through
// to the targets in turn (TLS ends on them), a target that refuses connections taken out within
// about two seconds. On the rig network under its own name; both ports published on 127.0.0.1.
import { $ } from 'zx'
import { buildRigImage, ensureRigNetwork, publishedPort, RIG_NETWORK, rigIp } from './docker.ts'

const CONTEXT = new URL('./balancer', import.meta.url).pathname

export interface Balancer {
  container: string
  /** Its address on the rig network (what a name the site uses resolves to, for pebble). */
  ip: string
  httpPort: number
  httpsPort: number
  stop(): Promise<void>
}

export function buildBalancerImage(): Promise<string> {
  return buildRigImage('mymdb-rig-balancer', CONTEXT)
}

/** Starts the balancer in front of `targets` (names or addresses on the rig network). */
export async function startBalancer(name: string, targets: readonly string[]): Promise<Balancer> {
  const image = await buildBalancerImage()
  await ensureRigNetwork()
  await $({ nothrow: true, quiet: true })`docker rm -f ${name}`
  await $({ quiet: true })`docker run -d --name ${name} --network ${RIG_NETWORK} -p 127.0.0.1::80 -p 127.0.0.1::443 ${image} ${targets}`
  const stop = async () => void (await $({ nothrow: true, quiet: true })`docker rm -f ${name}`)
  try {
    return { container: name, ip: await rigIp(name), httpPort: await publishedPort(name, 80), httpsPort: await publishedPort(name, 443), stop }
  } catch (e) {
    const logs = await $({ nothrow: true, quiet: true })`docker logs --tail 20 ${name}`
    await stop()
    throw new Error(`${name} did not start: ${e instanceof Error ? e.message : String(e)}\n${logs.stdout}${logs.stderr}`)
  }
}
