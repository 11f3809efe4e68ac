// A TCP forwarder on 127.0.0.1 that a test puts between a task and a rig server (moto, the SSH
// host) to break the connection the way a network does. It does not answer anything itself:
// every byte either passes through unchanged or the connection is reset.
//
//   const proxy = await startFaultProxy(moto.port)      // AWS_ENDPOINT_URL=http://127.0.0.1:<proxy.port>
//   const lost = proxy.loseAnswerTo('Action=RunInstances')
//   ... the task's RunInstances reaches moto, its answer never comes back ...
//   proxy.cut()                                          // every open connection reset, now
//   proxy.freeze()                                       // the link goes silent: nothing passes
import net from 'node:net'

export interface FaultProxy {
  port: number
  /** Resets every open connection (both sides), as a dropped network link would. */
  cut(): void
  /** From now on nothing passes, in either direction, and nobody is told: a link gone silent. */
  freeze(): void
  /**
   * The first request whose bytes contain `marker` reaches the server, but its answer is lost:
   * the connection is reset as soon as the server replies. Every later request with `marker`
   * (the SDK's retries) is reset before it reaches the server. `count()`: requests seen.
   */
  loseAnswerTo(marker: string): { count(): number }
  close(): Promise<void>
}

/** Listens on 127.0.0.1:`listenPort` (default: any free port) and forwards to targetHost:targetPort. */
export async function startFaultProxy(targetPort: number, targetHost = '127.0.0.1', listenPort = 0): Promise<FaultProxy> {
  const open = new Set<net.Socket>()
  let rule: { marker: string; seen: number } | undefined
  let frozen = false

  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost)
    open.add(client)
    open.add(upstream)
    let doomed = false // this connection carried the request whose answer is to be lost
    let tail = ''
    const reset = () => {
      client.resetAndDestroy()
      upstream.resetAndDestroy()
    }
    client.on('data', (chunk: Buffer) => {
      if (frozen) return
      if (rule) {
        const text = tail + chunk.toString('latin1')
        tail = text.slice(-rule.marker.length)
        if (text.includes(rule.marker)) {
          rule.seen++
          if (rule.seen > 1) return reset()
          doomed = true
        }
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (frozen) return
      if (doomed) reset()
      else client.write(chunk)
    })
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.on('end', () => b.end())
      a.on('error', () => b.destroy())
      a.on('close', () => {
        open.delete(a)
        b.destroy()
      })
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(listenPort, '127.0.0.1', resolve)
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      for (const s of open) s.resetAndDestroy()
    },
    freeze() {
      frozen = true
    },
    loseAnswerTo(marker) {
      const r = { marker, seen: 0 }
      rule = r
      return { count: () => r.seen }
    },
    close() {
      for (const s of open) s.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
