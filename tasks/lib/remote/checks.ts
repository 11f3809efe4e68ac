// The checks a start ends with, from this machine: the site answering 200 over HTTP (or HTTPS
// with its certificate checked, and HTTP redirecting), and before a certificate is asked for,
// the site's name resolving to the host.
import { Resolver } from 'node:dns/promises'
import http from 'node:http'
import https from 'node:https'
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { retryUntil } from '../sh.ts'

/** The site over HTTPS: its name, its CA, and the DNS record the start waits for first. */
export interface HttpsPlan {
  domain: string
  /** The ACME directory the certificate comes from. */
  ca: string
  /** The port the HTTPS check goes to (MYMDB_HOST_HTTPS_PORT). */
  port: number
  /** The addresses the domain must resolve to (the host's public IP; a cluster's: its load balancer's), when known. */
  ips?: string[]
  /** Seconds to wait for the DNS record (MYMDB_DNS_WAIT). */
  dnsWait: number
  /** MYMDB_DNS_SERVER, or the system resolver. */
  dnsServer?: string
}

/** The Host header for the checks: the first allowed host (".example.com" -> example.com). */
export function checkHostName(allowed: string[]): string {
  const first = allowed[0] ?? 'localhost'
  if (first.startsWith('*.')) return `www.${first.slice(2)}`
  if (first.startsWith('.')) return first.slice(1)
  return first
}

export interface HttpReply {
  status: number
  body: string
  location?: string
}
export type HttpGet = (url: string, hostHeader: string) => Promise<HttpReply>

/**
 * GET with an explicit Host header (fetch cannot set one), 10 s timeout; for https:// URLs the
 * certificate must be valid for that name (Node's CAs, and NODE_EXTRA_CA_CERTS).
 */
export const httpGet: HttpGet = (url, hostHeader) =>
  new Promise((resolvePromise, reject) => {
    const u = new URL(url)
    const secure = u.protocol === 'https:'
    // a connection of its own (agent: false): a probe must not reuse a pooled keep-alive socket
    // that the server closed meanwhile ("socket hang up" for a site that answers)
    const options = { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || (secure ? 443 : 80), path: u.pathname + u.search, method: 'GET', headers: { host: hostHeader }, timeout: 10_000, agent: false }
    const req = (secure ? https : http).request(
      secure ? { ...options, servername: hostHeader } : options,
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), location: res.headers.location }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
    req.on('error', reject)
    req.end()
  })

/** Polls `url` until it answers 200, for up to `seconds`. Throws UserError with the last answer. */
export async function waitFor200(get: HttpGet, url: string, hostHeader: string, seconds: number, pauseMs = 2_000, hint?: string): Promise<HttpReply> {
  return retryUntil(
    Math.max(1, Math.ceil((seconds * 1000) / Math.max(pauseMs, 50))),
    pauseMs,
    async () => {
      const r = await get(url, hostHeader)
      if (r.status === 200) return r
      throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 200).trim()}`)
    },
    (last) =>
      new UserError(
        `the site does not answer ${url} (Host: ${hostHeader}) with 200 within ${seconds} s; last: ${last}. ${hint ?? `Is the port open to you (security group), and does DJANGO_ALLOWED_HOSTS hold ${hostHeader}?`}`,
      ),
  )
}

// --- DNS ----------------------------------------------------------------------------------

/** The addresses of a name, IPv4 (A) and IPv6 (AAAA) ([] when it has none); `server` is ip[:port] or the system resolver. */
export type ResolveName = (name: string, server?: string) => Promise<string[]>

export const resolveName: ResolveName = async (name, server) => {
  const r = new Resolver({ timeout: 5_000, tries: 2 })
  if (server) r.setServers([server])
  const none = (e: unknown) => {
    const code = (e as { code?: string }).code
    if (code === 'ENOTFOUND' || code === 'ENODATA') return []
    throw e
  }
  const [v4, v6] = await Promise.all([r.resolve4(name).catch(none), r.resolve6(name).catch(none)])
  return [...v4, ...v6]
}

/** The DNS records the site needs (pure), as a DNS provider shows them: one A record per address. */
export function dnsRecord(h: Pick<HttpsPlan, 'domain' | 'ips'>): string {
  return (h.ips && h.ips.length > 0 ? h.ips : ["<the host's public IP>"]).map((ip) => `${h.domain}.  A  ${ip}`).join('; ')
}

/** The addresses as a sentence ends them: `a`, `a or b`. */
const either = (ips: readonly string[]) => (ips.length > 1 ? `${ips.slice(0, -1).join(', ')} or ${ips.at(-1)}` : (ips[0] ?? ''))

/**
 * True when the name resolves to the host's addresses and nowhere else (pure): the CA checks the
 * name at one of its addresses, IPv6 first when there is an AAAA record, and the host has no IPv6
 * address. Without a known address: when it resolves at all.
 */
export function pointsAtHost(resolved: string[], ips: readonly string[] | undefined): boolean {
  return ips && ips.length > 0 ? resolved.length > 0 && resolved.every((a) => ips.includes(a)) : resolved.length > 0
}

/**
 * Waits until MYMDB_DOMAIN resolves to the host's address (to anything, when the address is not
 * known), so the CA's check of the name reaches this host: asking for a certificate before that
 * fails and counts against the CA's rate limits. Says which record to create, and what the name
 * resolves to meanwhile. Throws UserError after `dnsWait` seconds.
 */
export async function waitForDns(h: HttpsPlan, log: Log, resolve: ResolveName = resolveName, pollMs = 5_000): Promise<void> {
  const via = h.dnsServer ? ` (asking ${h.dnsServer})` : ''
  const look = async () => {
    try {
      return { ips: await resolve(h.domain, h.dnsServer) }
    } catch (e) {
      return { ips: [], error: e instanceof Error ? e.message : String(e) }
    }
  }
  const ok = (ips: string[]) => pointsAtHost(ips, h.ips)
  const known = h.ips && h.ips.length > 0 ? h.ips : undefined
  const others = (ips: string[]) => (known ? ips.filter((a) => !known.includes(a)) : [])
  const describe = (r: { ips: string[]; error?: string }) =>
    r.error
      ? `the lookup failed: ${r.error}`
      : r.ips.length === 0
        ? 'it does not resolve yet'
        : `it resolves to ${r.ips.join(', ')}${others(r.ips).length > 0 ? `; remove the records for ${others(r.ips).join(', ')} (the site has only ${either(known ?? [])}, no IPv6)` : ''}`
  let last = await look()
  if (ok(last.ips)) {
    log.info(`[dns] ${h.domain} resolves to ${last.ips.join(', ')}${via}`)
    return
  }
  log.info(`[dns] create ${known && known.length > 1 ? 'these DNS records' : 'this DNS record'} at your DNS provider (${describe(last)}):`)
  for (const record of dnsRecord(h).split('; ')) log.info(`[dns]   ${record}`)
  log.info(`[dns] waiting up to ${h.dnsWait} s for it${via} before asking for a certificate (MYMDB_DNS_WAIT) ...`)
  const deadline = Date.now() + h.dnsWait * 1000
  let shown = describe(last)
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))))
    last = await look()
    if (ok(last.ips)) {
      log.info(`[dns] ${h.domain} resolves to ${last.ips.join(', ')}`)
      return
    }
    if (describe(last) !== shown) log.info(`[dns] ${h.domain}: ${(shown = describe(last))}`)
  }
  throw new UserError(
    `${h.domain} does not resolve to ${known ? `${either(known)} only` : 'an address'} after ${h.dnsWait} s (${describe(last)}). Create the DNS record${known && known.length > 1 ? 's' : ''} "${dnsRecord(h)}" and no other A or AAAA record for the name, then run the deploy again (the host and its data stay); MYMDB_DNS_WAIT sets how long to wait`,
  )
}
