// npm run bench -- https: the time to the first HTTPS page on a new host, against the rig (an SSH
// host with its own Docker engine, Debian's docker-registry, and pebble as the ACME CA with its
// DNS server; the DNS record is in place from the start): remote:up with MYMDB_DOMAIN on a fresh
// host (pull, start, certificate, the HTTPS check), then a redeploy that changes nothing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { $ } from 'zx'
import { startPebble } from '../tests/rig/pebble.ts'
import { pushStackImages, startRegistry } from '../tests/rig/registry.ts'
import { startSshHost } from '../tests/rig/sshhost.ts'
import { sshKeyFile } from '../tests/unit/fakes.ts'
import { timer } from './measure.ts'

const REPO = new URL('..', import.meta.url).pathname
const DOMAIN = 'mymdb.test'

export async function benchHttps(record: (what: string, value: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mymdb-bench-https-'))
  const keyFile = join(dir, 'key.pem')
  const keys = sshKeyFile(keyFile)
  const registry = await startRegistry('mymdb-bench-registry')
  const host = await startSshHost({ authorizedKey: keys.public, registry, name: 'mymdb-bench-sshhost' })
  const pebble = await startPebble({ name: 'mymdb-bench-pebble', hosts: { [DOMAIN]: host.ip } })
  try {
    await pushStackImages(registry, 'bench')
    await pebble.addA(DOMAIN, '127.0.0.1')
    writeFileSync(join(dir, 'api-root.pem'), pebble.apiRoot)
    writeFileSync(join(dir, 'issuing-root.pem'), await pebble.issuingRoot())
    const sh = $({
      cwd: REPO,
      quiet: true,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        FORCE_COLOR: '0',
        NODE_EXTRA_CA_CERTS: join(dir, 'issuing-root.pem'),
        MYMDB_HOST_ADDRESS: '127.0.0.1',
        MYMDB_HOST_SSH_PORT: String(host.sshPort),
        MYMDB_HOST_HTTP_PORT: String(host.httpPort),
        MYMDB_HOST_HTTPS_PORT: String(host.httpsPort),
        MYMDB_SSH_KEY_FILE: keyFile,
        MYMDB_HOST_KEY: await host.hostKey(),
        MYMDB_REGISTRY: registry.address,
        MYMDB_TAG: 'bench',
        DJANGO_SECRET_KEY: 'bench-only-5d1f9a2c7e4b8d0f3a6c9e2b5d8f1a4c7e0b3d6f9a2c5e8b1d4f7a0c3e6b',
        DJANGO_DB_PASSWORD: 'bench-db-password',
        POSTGRES_PASSWORD: 'bench-postgres-password',
        DJANGO_ALLOWED_HOSTS: '127.0.0.1',
        MYMDB_DOMAIN: DOMAIN,
        MYMDB_ACME_CA: pebble.directory,
        MYMDB_ACME_CA_ROOT: join(dir, 'api-root.pem'),
        MYMDB_DNS_SERVER: pebble.dnsServer,
      },
    })
    const timed = timer(record)
    await timed('remote:up with MYMDB_DOMAIN on a new rig host until the first HTTPS page (pull ~570 MB, start, certificate from pebble, checks)', () => sh`node --import tsx tasks/remote-up.ts`)
    await timed('remote:up with MYMDB_DOMAIN again (nothing changed, no new certificate)', () => sh`node --import tsx tasks/remote-up.ts`)
  } finally {
    await pebble.stop()
    await host.stop()
    await registry.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
