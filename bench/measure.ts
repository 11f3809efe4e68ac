// What the benches share: a timer that prints and records a step's seconds, and a steady load
// loop: GET <path> (or the paths in turn) at `perSecond` requests a second (each with a 5 s limit) until stopped,
// counting answers by status and the failures (no answer).
import http from 'node:http'

export interface LoadResult {
  sent: number
  ok: number
  /** Answers other than 2xx, by status. */
  other: Record<number, number>
  failed: number
}

export function loadLoop(port: number, host: string, perSecond = 25, paths: string | string[] = '/healthz'): { stop(): Promise<LoadResult> } {
  const list = typeof paths === 'string' ? [paths] : paths
  const r: LoadResult = { sent: 0, ok: 0, other: {}, failed: 0 }
  const pending = new Set<Promise<void>>()
  const one = () => {
    const path = list[r.sent % list.length]
    r.sent++
    const p = new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path, headers: { host }, timeout: 5000, agent: false }, (res) => {
        res.resume()
        res.on('end', () => {
          const s = res.statusCode ?? 0
          if (s >= 200 && s < 300) r.ok++
          else r.other[s] = (r.other[s] ?? 0) + 1
          resolve()
        })
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', () => {
        r.failed++
        resolve()
      })
    })
    pending.add(p)
    void p.then(() => pending.delete(p))
  }
  const timer = setInterval(one, 1000 / perSecond)
  return {
    async stop() {
      clearInterval(timer)
      await Promise.all(pending)
      return r
    },
  }
}

/** "718 sent: 718 2xx, 0 other, 0 failed" */
export function describeLoad(r: LoadResult): string {
  const other = Object.entries(r.other).map(([s, n]) => `${n} × ${s}`).join(', ')
  return `${r.sent} sent: ${r.ok} 2xx, ${other || '0 other'}, ${r.failed} without an answer`
}

/** Runs a step, prints and records how long it took (seconds, one decimal). */
export function timer(record: (what: string, value: string) => void): (what: string, fn: () => Promise<unknown>) => Promise<void> {
  return async (what, fn) => {
    const start = performance.now()
    await fn()
    const s = (performance.now() - start) / 1000
    console.log(`[bench] ${what}: ${s.toFixed(1)} s`)
    record(what, `${s.toFixed(1)} s`)
  }
}
