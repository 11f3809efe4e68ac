// Makes a fresh machine ready for the system tests, the way `npm run up:local` would: the same
// Docker preflight (installs and starts the engine, Compose v2 and buildx as root on Debian),
// then chromium, certutil (the browser's trust store, for the rig's CA) and shellcheck from
// Debian, then the stack's images, built once for the whole run, and the rig's images and network
// (built here, once, because the test files then run side by side).
import { $ } from 'zx'
import { main as build } from '../tasks/build.ts'
import { preflight } from '../tasks/lib/docker.ts'
import { ensureRigNetwork } from './rig/docker.ts'
import { buildMotoImage } from './rig/moto.ts'
import { buildPebbleImage } from './rig/pebble.ts'
import { buildRegistryImage } from './rig/registry.ts'
import { buildSshHostImage } from './rig/sshhost.ts'

const NEEDED = [
  { command: 'chromium', pkg: 'chromium' },
  { command: 'shellcheck', pkg: 'shellcheck' },
  { command: 'certutil', pkg: 'libnss3-tools' },
  { command: 'openssl', pkg: 'openssl' },
]

async function installMissingTools(): Promise<void> {
  const missing: string[] = []
  for (const tool of NEEDED) {
    if ((await $({ nothrow: true, quiet: true })`command -v ${tool.command}`).exitCode !== 0) missing.push(tool.pkg)
  }
  if (missing.length === 0) return
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}: run sudo apt-get install ${missing.join(' ')}`)
  console.log(`[prepare] installing ${missing.join(', ')} from Debian`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const install = () => $({ env, quiet: true })`apt-get install -y -qq --no-install-recommends ${missing}`
  try {
    await install()
  } catch {
    await $({ env, quiet: true, nothrow: true })`apt-get update -qq`
    await install()
  }
}

await preflight()
await installMissingTools()
process.exitCode = await build([], process.env)
if (process.exitCode === 0) {
  await ensureRigNetwork()
  for (const image of [buildMotoImage, buildRegistryImage, buildSshHostImage, buildPebbleImage]) await image()
}
