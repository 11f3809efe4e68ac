// A stack's status as npm run status shows it: the report (each container with its state, health,
// start, image and commit; the database size; the free disk; on the host the last deploys and
// backups), the parsers of what Docker prints for it, and the report as lines.
import type { BackupRecord } from './backup.ts'
import { LAST_BACKUP_OUTPUT } from './backupschedule.ts'
import { formatAge, utcTime } from './log.ts'
import type { DeployLine } from './releases.ts'

export interface ServiceStatus {
  service: string
  state: string
  health: string
  /** ISO time the container started (running ones). */
  startedAt?: string
  image?: string
  /** The git commit of the image (its org.opencontainers.image.revision label). */
  revision?: string
}

export interface StatusReport {
  services: ServiceStatus[]
  /** e.g. "12 MB" (null: the database did not answer). */
  databaseSize: string | null
  disk: { availableKb: number; totalKb: number; mount: string } | null
  /** The last deploys of ~/mymdb/deploys.log on the host, newest first. */
  deploys?: DeployLine[]
  /** On the host: the last backups (backups.log), the schedule, and the last scheduled run's output. */
  backups?: { lastOk: BackupRecord | null; last: BackupRecord | null; schedule: string | null; output: string }
  /** A Swarm of several nodes: each node, and the services with a task running there. */
  nodes?: NodeStatus[]
}

export interface NodeStatus {
  hostname: string
  /** Ready, Down, ... */
  status: string
  /** Leader, Reachable, Unreachable; '' for a worker. */
  manager: string
  /** The services running a task there (web twice: two replicas). */
  tasks: string[]
}

/** `docker node ls --format '{{.Hostname}}|{{.Status}}|{{.ManagerStatus}}'` with the running tasks of `docker service ps` (pure). */
export function parseNodes(nodeLs: string, tasks: { service: string; node: string; state: string }[]): NodeStatus[] {
  return nodeLs
    .split('\n')
    .map((l) => l.trim().split('|'))
    .filter(([hostname]) => hostname)
    .map(([hostname = '', status = '', manager = '']) => ({
      hostname,
      status,
      manager,
      tasks: tasks.filter((t) => t.state === 'running' && t.node === hostname).map((t) => t.service),
    }))
    .sort((a, b) => a.hostname.localeCompare(b.hostname))
}

/** What `docker inspect` prints per container for the report (parseInspect reads it). */
export const INSPECT_FORMAT = '{{.Name}}|{{.State.StartedAt}}|{{.Config.Image}}|{{index .Config.Labels "org.opencontainers.image.revision"}}'

/** Parses `docker inspect --format INSPECT_FORMAT` lines (pure). */
export function parseInspect(stdout: string): Map<string, { startedAt: string; image: string; revision: string }> {
  const out = new Map<string, { startedAt: string; image: string; revision: string }>()
  for (const line of stdout.split('\n')) {
    const [name, startedAt = '', image = '', revision = ''] = line.trim().split('|')
    if (name) out.set(name.replace(/^\//, ''), { startedAt, image, revision: revision === '<no value>' ? '' : revision })
  }
  return out
}

/** Parses the last line of `df -Pk` (pure). */
export function parseDf(stdout: string): StatusReport['disk'] {
  const f = stdout.trim().split('\n').pop()?.split(/\s+/) ?? []
  const total = Number(f[1])
  const available = Number(f[3])
  if (!Number.isFinite(total) || !Number.isFinite(available) || f.length < 6) return null
  return { totalKb: total, availableKb: available, mount: f[5] ?? '' }
}

function gb(kb: number): string {
  return `${(kb / 1024 / 1024).toFixed(1)} GB`
}

/** The report as lines (pure). */
export function formatStatus(r: StatusReport, now = new Date()): string[] {
  const lines: string[] = []
  if (r.services.length === 0) lines.push('  no containers: not running (start it with npm run up:local, or npm run deploy:aws on AWS)')
  const width = Math.max(0, ...r.services.map((s) => s.service.length))
  for (const s of r.services) {
    const state = `${s.state}${s.health ? ` (${s.health})` : ''}`
    const started = s.state === 'running' && s.startedAt ? Date.parse(s.startedAt) : NaN
    const up = Number.isFinite(started) ? `up ${formatAge(now.getTime() - started)}` : ''
    const image = s.image ? `image ${s.image}` : ''
    const commit = s.revision ? `commit ${s.revision}` : ''
    lines.push(`  ${s.service.padEnd(width)}  ${[state, up, image, commit].filter(Boolean).join(', ')}`)
  }
  if (r.nodes) {
    const width = Math.max(0, ...r.nodes.map((n) => n.hostname.length))
    r.nodes.forEach((n, i) => {
      const state = [n.status, n.manager ? `manager ${n.manager}` : 'worker'].join(', ')
      lines.push(`  ${i === 0 ? 'nodes' : '     '}     ${n.hostname.padEnd(width)}  ${state}: ${n.tasks.length > 0 ? n.tasks.join(', ') : 'no task'}`)
    })
  }
  lines.push(`  database  ${r.databaseSize ?? '(not running)'}`)
  if (r.disk) lines.push(`  disk      ${gb(r.disk.availableKb)} free of ${gb(r.disk.totalKb)} (${r.disk.mount}, where Docker keeps its data)`)
  if (r.deploys !== undefined) {
    if (r.deploys.length === 0) lines.push('  deployed  (no record)')
    r.deploys.forEach((d, i) => {
      const took = d.seconds === undefined ? '' : ` in ${formatAge(d.seconds * 1000)}`
      const end = d.result === 'failed' ? `, FAILED${took}${d.error ? `: ${d.error}` : ''}` : d.result === 'ok' ? `, ok${took}` : ''
      lines.push(`  ${i === 0 ? 'deployed' : '        '}  ${utcTime(d.at)} by ${d.by}, tag ${d.tag}${end}`)
    })
  }
  if (r.backups) {
    const { lastOk, last, schedule, output } = r.backups
    lines.push(`  backup    ${lastOk ? `${utcTime(lastOk.at)} (${formatAge(now.getTime() - Date.parse(lastOk.at))} ago), ${(lastOk.size / 1e6).toFixed(1)} MB, ${lastOk.reason}: ${lastOk.name}` : '(none yet: npm run backup -- --aws)'}`)
    if (last && !last.ok && last.note) lines.push(`  backup    SKIPPED at ${utcTime(last.at)} (${last.reason}): ${last.note.replace(/^skipped: /, '')}`)
    else if (last && !last.ok)
      lines.push(`  backup    FAILED at ${utcTime(last.at)} (${last.reason})${last.reason === 'scheduled' && output ? `; ~/mymdb/${LAST_BACKUP_OUTPUT} ends: ${output.split('\n').pop()}` : ''}`)
    lines.push(`  schedule  ${schedule ? `${schedule} (cron on the host, its time zone)` : 'none (MYMDB_BACKUP_SCHEDULE=off, or deployed before backups existed)'}`)
  }
  return lines
}

/** `status --aws --check` fails when the last good backup is older than this. */
export const BACKUP_MAX_AGE_HOURS = 26

/**
 * What `status --aws --check` fails on (pure): no good backup yet, the newest one failed, or the
 * last good one is over BACKUP_MAX_AGE_HOURS old (a schedule that stopped running). null: fine.
 */
export function backupProblem(b: StatusReport['backups'], now = new Date()): string | null {
  if (!b?.lastOk) return 'no backup has been taken yet (npm run backup -- --aws takes one)'
  if (b.last && !b.last.ok && !b.last.note) return `the last backup failed (${b.last.reason}, at ${utcTime(b.last.at)})`
  const age = now.getTime() - Date.parse(b.lastOk.at)
  if (!(age <= BACKUP_MAX_AGE_HOURS * 3600_000)) return `the last good backup is ${formatAge(age)} old (more than ${BACKUP_MAX_AGE_HOURS} h)`
  return null
}
