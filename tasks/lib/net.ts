// The network as the deployer sees it: its own public address (for the SSH rule) and waiting
// until a TCP port answers (the host's SSH).
import { connect } from 'node:net'
import { UserError } from './errors.ts'
import type { Log } from './log.ts'
import { retryUntil } from './sh.ts'

/** Your public IPv4 as a /32 (https://checkip.amazonaws.com). */
export async function myPublicCidr(fetchFn: typeof fetch = fetch, timeoutMs = 5000): Promise<string> {
  let text = ''
  try {
    const r = await fetchFn('https://checkip.amazonaws.com', { signal: AbortSignal.timeout(timeoutMs) })
    if (!r.ok) throw new Error(`HTTP ${r.status}`)
    text = (await r.text()).trim()
  } catch (err) {
    throw new UserError(
      `could not find your public IP address (https://checkip.amazonaws.com: ${err instanceof Error ? err.message : String(err)}): set MYMDB_SSH_CIDR, e.g. MYMDB_SSH_CIDR=203.0.113.7/32`,
    )
  }
  if (!/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(text))
    throw new UserError(`https://checkip.amazonaws.com answered ${JSON.stringify(text.slice(0, 40))}, not an IPv4 address: set MYMDB_SSH_CIDR`)
  return `${text}/32`
}

/** Tries a TCP connection to host:port until it succeeds (true) or timeoutMs passes (false). */
export async function waitForTcp(host: string, port: number, timeoutMs: number, intervalMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  const attempt = () =>
    new Promise<true>((done, fail) => {
      const sock = connect({ host, port })
      const timer = setTimeout(() => finish(new Error('no answer')), Math.max(100, Math.min(5000, deadline - Date.now())))
      function finish(err?: Error) {
        clearTimeout(timer)
        sock.destroy()
        if (err) fail(err)
        else done(true)
      }
      sock.once('connect', () => finish())
      sock.once('error', (e) => finish(e))
    })
  return retryUntil(Math.max(1, Math.ceil(timeoutMs / Math.max(intervalMs, 1))), intervalMs, attempt, () => new Error('closed')).catch(() => false)
}

/** Seconds to wait for the SSH port. */
export const SSH_TIMEOUT_SECONDS = 300

/**
 * Waits until the host's SSH port answers (a new instance is still booting); a UserError after
 * SSH_TIMEOUT_SECONDS. `sshCidr`: where SSH is allowed from (the first thing to check).
 */
export async function waitForSsh(address: string, port: number, sshCidr: string, log: Log): Promise<void> {
  const up = await log.step('host', `waiting for SSH on ${address}:${port}`, () => waitForTcp(address, port, SSH_TIMEOUT_SECONDS * 1000), 15)
  if (!up)
    throw new UserError(
      `the SSH port ${address}:${port} did not answer within ${SSH_TIMEOUT_SECONDS} s: check that MYMDB_SSH_CIDR (${sshCidr}) is your address, and the instance's system log in the EC2 console`,
    )
}
