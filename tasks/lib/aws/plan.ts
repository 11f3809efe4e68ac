// The shape every AWS resource module plans in: one printable line per resource saying what
// apply will do to it. Apply executes the plan and reads nothing again.
import type { Log } from '../log.ts'

export type Action = 'exists' | 'create' | 'update' | 'import' | 'start' | 'remove'

/** One resource of a plan: `key pair mymdb-production  create  ed25519, ...`. */
export interface PlanLine {
  resource: string
  action: Action
  detail: string
}

/** Prints plan lines as an aligned table under `[tag]`. */
export function showPlanLines(tag: string, lines: PlanLine[], log: Log): void {
  const width = Math.max(0, ...lines.map((p) => p.resource.length))
  for (const p of lines) log.info(`[${tag}]   ${p.resource.padEnd(width)}  ${p.action.padEnd(6)}  ${p.detail}`)
}
