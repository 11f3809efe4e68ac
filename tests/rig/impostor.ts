// An SSH server with a host key of its own, on loopback: what answers at a host's address when
// that address is no longer the host's (a released Elastic IP, a machine in the middle). It
// accepts any login and records what it receives: `connection`, `login <user>`, `exec <command>`,
// `sftp`. The tests point a task at it and check that nothing past `connection` arrived; given
// the host key a task expects, it is an SSH host that task may use (a command exits 0).
import type { AddressInfo } from 'node:net'
import ssh2 from 'ssh2'

export interface Impostor {
  port: number
  /** What it received, in order. */
  seen: string[]
  stop(): Promise<void>
}

/** `hostKey`: its private host key (default: a new one). */
export async function startImpostor(hostKey = ssh2.utils.generateKeyPairSync('ed25519').private): Promise<Impostor> {
  const seen: string[] = []
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
    seen.push('connection')
    conn.on('error', () => {})
    conn.on('authentication', (ctx) => {
      seen.push(`login ${ctx.username}`)
      ctx.accept()
    })
    conn.on('ready', () =>
      conn.on('session', (accept) => {
        const session = accept()
        session.on('exec', (acc, _rej, info) => {
          seen.push(`exec ${info.command}`)
          const ch = acc()
          ch.exit(0)
          ch.end()
        })
        session.on('sftp', () => seen.push('sftp'))
      }),
    )
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { port: (server.address() as AddressInfo).port, seen, stop: () => new Promise<void>((r) => server.close(() => r())) }
}
