// Stopping MyMDB on the host before its instance stops (npm run stop -- --aws): over SSH, so that
// PostgreSQL shuts down cleanly; best effort, since the instance is stopped either way.
import type { Log } from '../log.ts'
import { homeRelative } from '../sh.ts'
import { SshConnectionLost, type Remote } from '../ssh.ts'
import { REMOTE_DIR, scaleScript, SERVICES, swarmService } from '../stack.ts'

/**
 * The host's own command: stop MyMDB's containers if MyMDB is there (volumes untouched). A Swarm
 * stack is scaled to 0 (the next deploy scales it back; Swarm would restart a stopped container).
 */
export const STOP_CONTAINERS = [
  'sh',
  '-c',
  [
    `d=${homeRelative(REMOTE_DIR)}`,
    `if docker service inspect ${swarmService('web')} >/dev/null 2>&1; then`,
    ...scaleScript(SERVICES, 0).split('\n').map((l) => `  ${l}`),
    `  echo "the stack's services are scaled to 0"`,
    'elif [ -f "$d/docker-compose.yml" ]; then cd "$d" && docker compose stop',
    'else echo "no MyMDB on this host (no ~/$d/docker-compose.yml)"; fi',
  ].join('\n'),
]

/**
 * Stops the containers on the host before the instance goes down. Best effort: a host that
 * cannot be reached is reported and the caller stops the instance anyway (Docker then stops the
 * containers as the host shuts down). A connection lost while the command ran is made once more
 * and the command run again (it only scales to 0 what still runs). Returns whether it worked.
 */
export async function stopRemoteContainers(connect: () => Promise<Remote>, log: Log): Promise<boolean> {
  try {
    for (let attempt = 1; ; attempt++) {
      const remote = await connect()
      try {
        const r = await log.step('stop', 'stop the containers on the host (the database shuts down cleanly)', () =>
          remote.run(STOP_CONTAINERS, { stream: log.prefixed('compose'), timeoutMs: 180_000 }),
        )
        if (!r.ok) throw new Error(`stopping them exited with ${r.exitCode ?? r.signal}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`)
        return true
      } catch (e) {
        if (!(e instanceof SshConnectionLost) || attempt > 1) throw e
        log.warn(`[stop] the SSH connection was lost while the containers stopped: connecting again to finish`)
      } finally {
        remote.close()
      }
    }
  } catch (e) {
    log.warn(`[stop] could not stop the containers first (${e instanceof Error ? e.message : String(e)}); stopping the instance anyway: Docker stops them as the host shuts down`)
    return false
  }
}
