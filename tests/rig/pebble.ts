// The test rig's ACME CA (Let's Encrypt's test server pebble, from Debian) and its DNS (pebble's
// challtestsrv): see tests/rig/pebble/. The front on the SSH host gets its certificate from it
// exactly as from Let's Encrypt: pebble checks the name over HTTP on port 80 at the address
// --add-host gives it (the SSH host's address on the rig network). Tests add the site's A record
// to the DNS server, which the deploy then asks (MYMDB_DNS_SERVER).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import type { HttpGet } from '../../tasks/lib/remote/checks.ts'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { $ } from 'zx'
import { buildRigImage, ensureRigNetwork, publishedPort, RIG_NETWORK, rigIp } from './docker.ts'

const CONTEXT = new URL('./pebble', import.meta.url).pathname

export interface Pebble {
  container: string
  /** The ACME directory (MYMDB_ACME_CA), on the rig network. */
  directory: string
  /** PEM root of pebble's own HTTPS (MYMDB_ACME_CA_ROOT). */
  apiRoot: string
  /** The DNS server (MYMDB_DNS_SERVER): 127.0.0.1:<udp port>. */
  dnsServer: string
  /** The PEM root that signs the certificates pebble issues (new on every start of pebble). */
  issuingRoot(): Promise<string>
  /** Sets the name's A records on the DNS server (one address, or several). */
  addA(name: string, ip: string | readonly string[]): Promise<void>
  /** Removes the name's A records from the DNS server. */
  clearA(name: string): Promise<void>
  /** How many certificates pebble has issued so far (its log's "Issued certificate" lines). */
  issued(): Promise<number>
  stop(): Promise<void>
}

export interface PebbleOptions {
  name?: string
  /** Names pebble checks at these addresses (its /etc/hosts). */
  hosts: Record<string, string>
  /** Lifetime of issued certificates in seconds (default: 5 years). */
  certValiditySeconds?: number
  /** Every validation succeeds without asking the name's server (PEBBLE_VA_ALWAYS_VALID: benchmarks only). */
  alwaysValid?: boolean
}

export function buildPebbleImage(): Promise<string> {
  return buildRigImage('mymdb-rig-pebble', CONTEXT)
}

/** GET over HTTPS trusting only `ca`. */
function getWithCa(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, timeout: 5000 }, (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      .on('error', reject)
      .on('timeout', function (this: http.ClientRequest) {
        this.destroy(new Error('timeout'))
      })
  })
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const name = opts.name ?? 'mymdb-rig-pebble'
  const image = await buildPebbleImage()
  await ensureRigNetwork()
  await $({ nothrow: true, quiet: true })`docker rm -f ${name}`
  const stop = async () => void (await $({ nothrow: true, quiet: true })`docker rm -f ${name}`)
  const hosts = Object.entries(opts.hosts).flatMap(([n, ip]) => ['--add-host', `${n}:${ip}`])
  const env = [
    ...(opts.certValiditySeconds ? ['-e', `PEBBLE_CERT_VALIDITY=${opts.certValiditySeconds}`] : []),
    ...(opts.alwaysValid ? ['-e', 'PEBBLE_VA_ALWAYS_VALID=1'] : []),
  ]
  try {
    await $({ quiet: true })`docker run -d --name ${name} --hostname ${name} --network ${RIG_NETWORK} ${hosts} ${env} -p 127.0.0.1::14000 -p 127.0.0.1::15000 -p 127.0.0.1::8053/udp -p 127.0.0.1::8055 ${image}`
    const ip = await rigIp(name)
    const acmePort = await publishedPort(name, 14000)
    const managementPort = await publishedPort(name, 15000)
    const dnsPort = await publishedPort(name, 8053, 'udp')
    const dnsApiPort = await publishedPort(name, 8055)
    let apiRoot = ''
    const deadline = Date.now() + 30_000
    for (;;) {
      const cat = await $({ nothrow: true, quiet: true })`docker exec ${name} cat /run/pebble/api-ca.pem`
      if (cat.exitCode === 0 && cat.stdout.includes('BEGIN CERTIFICATE')) {
        apiRoot = cat.stdout
        const dir = await getWithCa(`https://127.0.0.1:${acmePort}/dir`, apiRoot).catch(() => null)
        if (dir?.status === 200) break
      }
      if (Date.now() > deadline) {
        const logs = await $({ nothrow: true, quiet: true })`docker logs --tail 30 ${name}`
        throw new Error(`pebble did not come up:\n${logs.stdout}${logs.stderr}`)
      }
      await new Promise((r) => setTimeout(r, 250))
    }
    return {
      container: name,
      directory: `https://${ip}:14000/dir`,
      apiRoot,
      dnsServer: `127.0.0.1:${dnsPort}`,
      issuingRoot: async () => {
        const r = await getWithCa(`https://127.0.0.1:${managementPort}/roots/0`, apiRoot)
        if (r.status !== 200) throw new Error(`pebble /roots/0: HTTP ${r.status}`)
        return r.body
      },
      addA: async (host, address) => {
        const body = JSON.stringify({ host: host.endsWith('.') ? host : `${host}.`, addresses: typeof address === 'string' ? [address] : address })
        const r = await fetch(`http://127.0.0.1:${dnsApiPort}/add-a`, { method: 'POST', body })
        if (!r.ok) throw new Error(`challtestsrv add-a: HTTP ${r.status}`)
      },
      clearA: async (host) => {
        const r = await fetch(`http://127.0.0.1:${dnsApiPort}/clear-a`, { method: 'POST', body: JSON.stringify({ host: host.endsWith('.') ? host : `${host}.` }) })
        if (!r.ok) throw new Error(`challtestsrv clear-a: HTTP ${r.status}`)
      },
      issued: async () => {
        const logs = await $({ nothrow: true, quiet: true })`docker logs ${name}`
        return `${logs.stdout}\n${logs.stderr}`.split('\n').filter((l) => /issued certificate/i.test(l)).length
      },
      stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}

/**
 * A HOME for chromium whose NSS store trusts exactly `roots` (PEM) as server CAs: launched with
 * env HOME=<this>, chromium accepts the rig CA's certificates, and nothing of the machine's own
 * trust store changes. Needs certutil (Debian's libnss3-tools).
 */
export async function browserHomeTrusting(roots: string[]): Promise<string> {
  const home = mkdtempSync(join(tmpdir(), 'mymdb-browser-'))
  const db = join(home, '.pki', 'nssdb')
  mkdirSync(db, { recursive: true })
  await $({ quiet: true })`certutil -d ${`sql:${db}`} -N --empty-password`
  for (const [i, root] of roots.entries()) {
    const file = join(home, `root-${i}.pem`)
    writeFileSync(file, root)
    await $({ quiet: true })`certutil -d ${`sql:${db}`} -A -t C,, -n ${`mymdb-rig-${i}`} -i ${file}`
  }
  return home
}

/** The certificate a front at host:port serves for `name`, checked against `ca` (throws when it does not verify). */
export function servedCertificate(o: { host?: string; port: number; name: string; ca: string }): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: o.host ?? '127.0.0.1', port: o.port, servername: o.name, ca: o.ca, timeout: 5000 }, () => {
      resolve(socket.getPeerCertificate())
      socket.end()
    })
    socket.on('error', reject)
  })
}

/** The deploy's HTTP client for its final checks (the httpGet seam), trusting only `ca` over HTTPS: the rig CA's certificates. */
export function httpGetTrusting(ca: string): HttpGet {
  return (url, hostHeader) =>
    new Promise((resolve, reject) => {
      const u = new URL(url)
      const secure = u.protocol === 'https:'
      const options = { host: u.hostname, port: u.port || (secure ? 443 : 80), path: u.pathname + u.search, headers: { host: hostHeader }, timeout: 10_000, agent: false }
      const req = (secure ? https : http).get(secure ? { ...options, servername: hostHeader, ca } : options, (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, location: res.headers.location }))
      })
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
      req.on('error', reject)
    })
}
