// A stack service whose mode changes (replicated <-> global): Swarm cannot change a service's mode
// in place (`docker stack deploy` fails: "service mode change is not allowed"), so the deploy
// removes that service first and the stack deploy makes it anew. Only the front changes mode: a
// stage going from one host to several, or down to one after removing its front door; its /data
// moves then too, so it is replaced (stop-first) anyway. Its volumes stay.
import type { Log } from './log.ts'
import { runChecked, type Cmd, type Runner } from './sh.ts'
import { isObj, STACK_NAME, type JsonObject } from './stackfile.ts'

export type ServiceMode = 'global' | 'replicated'


/** Shell: `<service> <mode>` for each of the stack's services that exist (none: nothing). */
export const SERVICE_MODES: Cmd = [
  'sh',
  '-c',
  `docker service ls --quiet --filter label=com.docker.stack.namespace=${STACK_NAME} | xargs -r docker service inspect --format '{{.Spec.Name}} {{if .Spec.Mode.Global}}global{{else}}replicated{{end}}'`,
]

/** The stack file's services whose mode differs from the running one's (pure), by Swarm name. */
export function modeChanges(stackFile: JsonObject, running: string): { service: string; from: ServiceMode; to: ServiceMode }[] {
  const now = new Map(
    running
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((p): p is [string, ServiceMode] => p.length === 2 && (p[1] === 'global' || p[1] === 'replicated')),
  )
  const services = isObj(stackFile.services) ? stackFile.services : {}
  return Object.entries(services).flatMap(([name, s]) => {
    const service = `${STACK_NAME}_${name}`
    const from = now.get(service)
    const deploy = isObj(s) && isObj(s.deploy) ? s.deploy : {}
    const to: ServiceMode = deploy.mode === 'global' ? 'global' : 'replicated'
    return from && from !== to ? [{ service, from, to }] : []
  })
}

/** Shell: the service removed, and a wait (up to 60 s) until none of its containers runs on this node. */
export function removeServiceScript(service: string): string {
  if (!/^[a-z0-9_-]+$/.test(service)) throw new Error(`not a service name: ${JSON.stringify(service)}`)
  return [
    `docker service rm ${service} >/dev/null`,
    `i=0; while [ -n "$(docker ps --quiet --filter label=com.docker.swarm.service.name=${service})" ]; do i=$((i+1)); [ $i -lt 60 ] || { echo "${service}: its containers still run 60 s after it was removed" >&2; exit 1; }; sleep 1; done`,
  ].join('\n')
}

/** Removes each service of the stack whose mode the stack file changes (the deploy then makes it anew); says why. */
export async function removeModeChanges(run: Runner, stackFile: JsonObject, log: Log): Promise<void> {
  const modes = await run(SERVICE_MODES)
  if (!modes.ok) return
  for (const c of modeChanges(stackFile, modes.stdout)) {
    log.info(`[swarm] ${c.service}: ${c.from} now, ${c.to} in this deploy, which Swarm cannot change in place: removed first and made anew by the stack deploy (its volumes stay; its ports answer again once it runs)`)
    await runChecked(run, ['sh', '-c', removeServiceScript(c.service)], { doing: `remove ${c.service} before it changes mode` })
  }
}
