// Docker Compose helpers shared by the tasks: project name, volume names, `compose ps` parsing,
// and the local-only defaults that let the stack run without a .env.
import type { RawEnv } from './env.ts'
import type { Runner } from './sh.ts'

/** The project name in docker-compose.yml (`name: mymdb`); COMPOSE_PROJECT_NAME overrides it. */
export const DEFAULT_PROJECT = 'mymdb'

/** The named volumes of docker-compose.yml and what they hold. */
export const VOLUMES = [
  { key: 'db-data', holds: 'the PostgreSQL database: users, movies, votes, everything entered in the site' },
  { key: 'media', holds: 'uploaded files: movie posters (unless uploads go to S3)' },
] as const

/** Docker's names of the project's volumes: `<project>_db-data`, `<project>_media`. */
export function volumeNames(project: string): string[] {
  return VOLUMES.map((v) => `${project}_${v.key}`)
}

/** `docker compose --project-name <project> …` (run in the repository root, next to docker-compose.yml). */
export function composeCmd(project: string, ...args: string[]): string[] {
  return ['docker', 'compose', '--project-name', project, ...args]
}

/**
 * Local-only values for `npm run up:local`: none of them is a secret, all are marked as such,
 * and they never leave this machine (the site is published on 127.0.0.1 by default).
 */
export const LOCAL_DEFAULTS: Readonly<Record<string, string>> = {
  DJANGO_SECRET_KEY: 'local-only-not-secret-k7Qz2Vw9Lr4Tx8Nb3Hc6Jf1Ym5Pd0Gs_e.u+i=o!a*',
  DJANGO_DB_PASSWORD: 'local-only-db-password',
  POSTGRES_PASSWORD: 'local-only-postgres-password',
  DJANGO_ALLOWED_HOSTS: 'localhost,127.0.0.1',
  WEB_BIND: '127.0.0.1',
  WEB_PORT: '8080',
}

/** `raw` with LOCAL_DEFAULTS filled in where a variable is unset or empty (set values win). */
export function withLocalDefaults(raw: RawEnv, defaults: Readonly<Record<string, string>> = LOCAL_DEFAULTS): RawEnv {
  const out: RawEnv = { ...raw }
  for (const [k, v] of Object.entries(defaults)) if (out[k] === undefined || out[k]?.trim() === '') out[k] = v
  return out
}

export interface PsEntry {
  Name: string
  Service: string
  State: string
  Health: string
  Publishers: { URL: string; TargetPort: number; PublishedPort: number; Protocol: string }[]
}

/** Parses `docker compose ps --format json`: a JSON array (older Compose) or one object a line. */
export function parsePs(stdout: string): PsEntry[] {
  const text = stdout.trim()
  if (text === '') return []
  const items: unknown[] = text.startsWith('[') ? JSON.parse(text) : text.split('\n').filter(Boolean).map((l) => JSON.parse(l))
  return items.map((i) => {
    const o = i as Partial<PsEntry>
    return {
      Name: o.Name ?? '',
      Service: o.Service ?? '',
      State: o.State ?? '',
      Health: o.Health ?? '',
      Publishers: Array.isArray(o.Publishers) ? o.Publishers : [],
    }
  })
}

/** The project's containers (all states). An empty list when Compose cannot tell. */
export async function composePs(run: Runner, opts: { project: string; root: string; env: RawEnv }): Promise<PsEntry[]> {
  const r = await run(composeCmd(opts.project, 'ps', '--all', '--format', 'json'), { cwd: opts.root, env: opts.env })
  if (!r.ok) return []
  try {
    return parsePs(r.stdout)
  } catch {
    return []
  }
}

/** True when a running container of the project publishes `port` (so a busy port is our own stack). */
export function holdsPort(entries: PsEntry[], port: number): boolean {
  return entries.some((e) => e.State === 'running' && e.Publishers.some((p) => p.PublishedPort === port))
}

/** Services that are not running or not healthy. */
export function unhealthy(entries: PsEntry[]): string[] {
  return [...new Set(entries.filter((e) => e.State !== 'running' || (e.Health !== '' && e.Health !== 'healthy')).map((e) => e.Service))]
}
