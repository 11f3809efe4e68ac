// The container registry of the test rig: Debian's docker-registry in a container built from
// tests/rig/registry/ on the local base image, on the rig network, its port published on
// 127.0.0.1 only (the outer Docker pushes there over plain HTTP: 127.0.0.0/8 is an insecure
// registry by default). Other rig containers (the SSH host) reach it at `internalAddress`. The
// same storage is served as Amazon ECR's registry on `ecrPort` (5001 inside): basic auth, user AWS
// with the token the AWS emulator hands out (tests/rig/ecr.ts names it so).
import { join } from 'node:path'
import { $ } from 'zx'
import { IMAGE_NAMES, type ImageName } from '../../tasks/lib/vars.ts'
import { buildRigImage, ensureRigNetwork, publishedPort, removeLocalTags, RIG_NETWORK, rigIp } from './docker.ts'

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
  /** Where this machine reaches the registry as ECR's (127.0.0.1:<ecrPort>; 5001 in the container). */
  ecrPort: number
  stop(): Promise<void>
}

/** Builds the registry image unless an image of the same inputs exists; returns its tag. */
export function buildRegistryImage(): Promise<string> {
  return buildRigImage('mymdb-rig-registry', CONTEXT)
}

/** Starts a fresh, empty registry (container `name`) and waits until it answers /v2/. */
export async function startRegistry(name = 'mymdb-rig-registry'): Promise<Registry> {
  const image = await buildRegistryImage()
  await ensureRigNetwork()
  await $({ nothrow: true, quiet: true })`docker rm -f -v ${name}`
  await $({ quiet: true })`docker run -d --name ${name} --network ${RIG_NETWORK} -p 127.0.0.1::5000 -p 127.0.0.1::5001 ${image}`
  let address = ''
  const stop = async () => {
    await $({ nothrow: true, quiet: true })`docker rm -f -v ${name}`
    // The local tags pushed here (127.0.0.1:<port>/...) would pile up run after run.
    if (address) await removeLocalTags(address)
  }
  try {
    const port = await publishedPort(name, 5000)
    const ecrPort = await publishedPort(name, 5001)
    const ip = await rigIp(name)
    address = `127.0.0.1:${port}`
    const deadline = Date.now() + 30_000
    for (;;) {
      const ok = (await fetch(`http://${address}/v2/`).then((r) => r.ok, () => false)) && (await fetch(`http://127.0.0.1:${ecrPort}/v2/`).then((r) => r.status === 401, () => false))
      if (ok) break
      if (Date.now() > deadline) {
        const logs = await $({ nothrow: true, quiet: true })`docker logs --tail 20 ${name}`
        throw new Error(`registry did not answer on http://${address}/v2/ within 30 s:\n${logs.stdout}${logs.stderr}`)
      }
      await new Promise((r) => setTimeout(r, 200))
    }
    return { address, port, internalAddress: `${ip}:5000`, container: name, ecrPort, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

/**
 * The registry a test file pushes to: under a path of its own (`<address>/<namespace>`) on the
 * registry that tests/run-system.ts started for the whole run (MYMDB_RIG_REGISTRY names its
 * container), or a fresh one of its own (`name`) when the file runs alone. On the shared one the
 * layers a file pushed before are mounted from its repositories instead of compressed and sent
 * again (docker push: "Mounted from ..."): the second file's push of the stack's ~570 MB took
 * 7.5 s instead of 25 to 45 s (docs/tests.md). stop() then removes only this file's local tags.
 */
export async function rigRegistry(name: string, namespace: string): Promise<Registry> {
  const shared = process.env.MYMDB_RIG_REGISTRY
  if (!shared) return startRegistry(name)
  const port = await publishedPort(shared, 5000)
  const address = `127.0.0.1:${port}/${namespace}`
  return {
    address,
    port,
    internalAddress: `${await rigIp(shared)}:5000/${namespace}`,
    container: shared,
    ecrPort: await publishedPort(shared, 5001),
    stop: () => removeLocalTags(address),
  }
}

/** A change to one image of a release pushed by pushStackImages. */
export interface ImageChange {
  /** Lines added to the image (FROM mymdb-<name>:latest): another release of it (a label) or a broken one. */
  dockerfile?: string
  /** Another local image pushed in its place (built apart, as on another machine). */
  image?: string
}

/**
 * Pushes the stack's images (built by tests/prepare.ts; built here when missing) to a rig
 * registry as <registry>/<image>:<tag>, the way npm run push names them. Returns the refs.
 * Unchanged images are the same images under the new tag.
 */
export async function pushStackImages(registry: Pick<Registry, 'address'>, tag: string, changes: Partial<Record<ImageName, ImageChange>> = {}): Promise<string[]> {
  for (const name of IMAGE_NAMES) {
    if ((await $({ nothrow: true, quiet: true })`docker image inspect ${`mymdb-${name}:latest`}`).exitCode !== 0) {
      await $({ cwd: new URL('../..', import.meta.url).pathname, quiet: true })`npm run build`
      break
    }
  }
  const refs: string[] = []
  for (const name of IMAGE_NAMES) {
    const ref = `${registry.address}/mymdb-${name}:${tag}`
    const change = changes[name]
    if (change?.dockerfile) {
      // the lines run as root (a RUN writes where the image's own user may not); the image's user stays
      const user = (await $({ quiet: true })`docker image inspect --format ${'{{.Config.User}}'} ${`mymdb-${name}:latest`}`).stdout.trim()
      const lines = user ? `USER root\n${change.dockerfile}\nUSER ${user}` : change.dockerfile
      const b = await $({ quiet: true, nothrow: true, input: `FROM mymdb-${name}:latest\n${lines}\n` })`docker build -q -t ${ref} -`
      if (b.exitCode !== 0) throw new Error(`docker build of ${ref}: ${b.stderr}`)
    } else await $({ quiet: true })`docker tag ${change?.image ?? `mymdb-${name}:latest`} ${ref}`
    refs.push(ref)
    await $({ quiet: true })`docker push ${ref}`
  }
  return refs
}

/**
 * A shell command for a RUN line of a web ImageChange: writes the migration core/<name>, after
 * core/<after>, running `sql` (undone by `reverse`; without one, undoing it does nothing).
 */
export function addMigration(name: string, after: string, sql: string, reverse?: string): string {
  const text = [
    'from django.db import migrations',
    'class Migration(migrations.Migration):',
    `    dependencies = [("core", "${after}")]`,
    `    operations = [migrations.RunSQL("${sql}", ${reverse ? `"${reverse}"` : 'migrations.RunSQL.noop'})]`,
  ].join('\\n')
  return `printf '${text}\\n' > /mymdb/django/core/migrations/${name}.py`
}
