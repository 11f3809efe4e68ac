// A steady load loop for the rig and the benches: GET <path> (or the paths in turn) at
// `perSecond` requests a second (each with a 5 s limit) until stopped, counting answers by
// status and the failures (no answer). Over HTTPS when `tls` is given: SNI and Host are the
// site's name, the certificate checked against `ca`.
import http from 'node:http'
import https from 'node:https'

export interface LoadResult {
  sent: number
  ok: number
  /** Answers other than 2xx, by status. */
  other: Record<number, number>
  failed: number
  /** The first few failures and answers other than 2xx (when, what went wrong), for messages. */
  errors: string[]
  /** The last answer other than 2xx after those (when), for messages. */
  lastOther?: string
}

export interface LoadOptions {
  perSecond?: number
  paths?: string | string[]
  /** HTTPS: the CA to trust (PEM); `host` is then the name the certificate must carry. */
  tls?: { ca: string }
  /** The loopback address to send to (default 127.0.0.1; a rig host of a cluster has its own). */
  address?: string
}

export function loadLoop(port: number, host: string, o: LoadOptions = {}): { stop(): Promise<LoadResult> } {
  const list = typeof o.paths === 'string' ? [o.paths] : (o.paths ?? ['/healthz'])
  const r: LoadResult = { sent: 0, ok: 0, other: {}, failed: 0, errors: [] }
  const pending = new Set<Promise<void>>()
  const one = () => {
    const path = list[r.sent % list.length]
    r.sent++
    const p = new Promise<void>((resolve) => {
      const options = { host: o.address ?? '127.0.0.1', port, path, headers: { host }, timeout: 5000, agent: false as const }
      const done = (res: http.IncomingMessage) => {
        res.resume()
        res.on('end', () => {
          const s = res.statusCode ?? 0
          if (s >= 200 && s < 300) r.ok++
          else {
            r.other[s] = (r.other[s] ?? 0) + 1
            const seen = `${new Date().toISOString()} ${path}: ${s}`
            if (r.errors.length < 5) r.errors.push(seen)
            else r.lastOther = seen
          }
          resolve()
        })
      }
      const req = o.tls ? https.get({ ...options, servername: host, ca: o.tls.ca }, done) : http.get(options, done)
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', (e) => {
        r.failed++
        if (r.errors.length < 5) r.errors.push(`${new Date().toISOString()} ${path}: ${e.message}`)
        resolve()
      })
    })
    pending.add(p)
    void p.then(() => pending.delete(p))
  }
  const timer = setInterval(one, 1000 / (o.perSecond ?? 25))
  return {
    async stop() {
      clearInterval(timer)
      await Promise.all(pending)
      return r
    },
  }
}

/** "718 sent: 718 2xx, 0 other, 0 without an answer" */
export function describeLoad(r: LoadResult): string {
  const other = Object.entries(r.other).map(([s, n]) => `${n} × ${s}`).join(', ')
  const seen = [...r.errors, ...(r.lastOther ? [`... the last: ${r.lastOther}`] : [])]
  return `${r.sent} sent: ${r.ok} 2xx, ${other || '0 other'}, ${r.failed} without an answer${seen.length > 0 ? ` (${seen.join('; ')})` : ''}`
}

/** `fn` under a load loop (from 2 s before it to 2 s after): its value and the answers. */
export async function underLoad<T>(port: number, host: string, o: LoadOptions, fn: () => Promise<T>): Promise<{ value: T; load: LoadResult }> {
  const load = loadLoop(port, host, o)
  await new Promise((res) => setTimeout(res, 2000))
  const value = await fn()
  await new Promise((res) => setTimeout(res, 2000))
  return { value, load: await load.stop() }
}
