// Docker Compose helpers shared by the tasks: project name, volume names (and what --delete-data
// deletes), `compose ps` parsing, and the local-only defaults and generated secrets that let the
// stack run without settings (up:local's settings, and the address of its site).
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { checkEnv, formatEnv, type CleanEnv, type RawEnv } from './env.ts'
import { runChecked, type Runner } from './sh.ts'
import { LOCAL_ONLY_PREFIX, stackVars } from './vars.ts'
import { envLine, writeEnvFile } from './envformat.ts'

/** The project name in docker-compose.yml (`name: mymdb`); COMPOSE_PROJECT_NAME overrides it. */
export const DEFAULT_PROJECT = 'mymdb'

/**
 * The named volumes of docker-compose.yml (`volumes:` at its end) and what they hold; a unit test
 * keeps this list the same as the file's.
 */
export const VOLUMES = [
  { key: 'db-data', holds: 'the PostgreSQL database: users, movies, votes, everything entered in the site' },
  { key: 'media', holds: 'uploaded files: movie posters (unless uploads go to S3)' },
  { key: 'proxy-data', holds: "the front's HTTPS certificates and ACME account (with a domain; a new certificate is requested without them)" },
] as const

/** Docker's names of the project's volumes: `<project>_db-data`, `<project>_media`, `<project>_proxy-data`. */
export function volumeNames(project: string): string[] {
  return VOLUMES.map((v) => `${project}_${v.key}`)
}

/** The volumes Docker has for a Compose project, whatever the compose file says now: one name a line. */
export function projectVolumesCmd(project: string): string[] {
  return ['docker', 'volume', 'ls', '--quiet', '--filter', `label=com.docker.compose.project=${project}`]
}

/** What a volume of the project holds (VOLUMES), or that the compose file does not know it. */
export function volumeHolds(project: string, volume: string): string {
  const known = VOLUMES.find((v) => `${project}_${v.key}` === volume)
  return known ? known.holds : 'not in docker-compose.yml (made by another version of it): contents unknown'
}

export interface VolumeLoss {
  volume: string
  holds: string
  exists: boolean
}

/**
 * What --delete-data deletes for a project (pure): the volumes of docker-compose.yml
 * (`<project>_db-data`, `<project>_media`, `<project>_proxy-data`) and any other volume Docker has
 * for the project (`existing`: what Docker lists for it), each with what it holds and whether it
 * exists.
 */
export function volumesToDelete(project: string, existing: readonly string[]): VolumeLoss[] {
  const known = volumeNames(project)
  const others = existing.filter((v) => !known.includes(v)).sort()
  return [...known, ...others].map((volume) => ({ volume, holds: volumeHolds(project, volume), exists: existing.includes(volume) }))
}

/** The project's volumes that exist: those Docker labels as the project's, and the compose file's by name. */
export async function existingVolumes(run: Runner, project: string): Promise<string[]> {
  const listed = await runChecked(run, projectVolumesCmd(project), { doing: `list the volumes of the project ${project}` })
  const found = listed.stdout.split('\n').map((l) => l.trim()).filter(Boolean)
  for (const v of volumeNames(project)) if (!found.includes(v) && (await run(['docker', 'volume', 'inspect', v])).ok) found.push(v)
  return found
}

/** Non-secret local defaults of `npm run up:local` (docker-compose.yml has the same ones). */
export const LOCAL_DEFAULTS: Readonly<Record<string, string>> = {
  DJANGO_ALLOWED_HOSTS: 'localhost,127.0.0.1',
  WEB_BIND: '127.0.0.1',
  WEB_PORT: '8080',
}

/**
 * The secrets the stack needs. When unset, `npm run up:local` generates them once per checkout
 * (random, marked local-only so that every deploy refuses them) and keeps them in .env, so that
 * plain `docker compose ps|logs|exec` work in the project folder too.
 */
export const LOCAL_SECRETS = ['DJANGO_SECRET_KEY', 'DJANGO_DB_PASSWORD', 'POSTGRES_PASSWORD'] as const
export type LocalSecret = (typeof LOCAL_SECRETS)[number]

/**
 * The fixed database passwords of earlier versions: a database volume made with them only opens
 * with them, so they are kept (in .env) for such a volume.
 */
export const LEGACY_DB_SECRETS: Readonly<Partial<Record<LocalSecret, string>>> = {
  DJANGO_DB_PASSWORD: 'local-only-db-password',
  POSTGRES_PASSWORD: 'local-only-postgres-password',
}

/** New random local-only secrets (the key 54 characters, passwords 59). */
export function newLocalSecrets(): Record<LocalSecret, string> {
  return {
    DJANGO_SECRET_KEY: `${LOCAL_ONLY_PREFIX}${randomBytes(32).toString('base64url')}`,
    DJANGO_DB_PASSWORD: `${LOCAL_ONLY_PREFIX}${randomBytes(24).toString('hex')}`,
    POSTGRES_PASSWORD: `${LOCAL_ONLY_PREFIX}${randomBytes(24).toString('hex')}`,
  }
}

/** The local secrets that `raw` leaves unset or empty. */
export function missingSecrets(raw: RawEnv): LocalSecret[] {
  return LOCAL_SECRETS.filter((k) => (raw[k] ?? '').trim() === '')
}

/** `raw` with `defaults` (LOCAL_DEFAULTS and any secrets given) filled in where unset or empty (set values win). */
export function withLocalDefaults(raw: RawEnv, defaults: Readonly<Record<string, string>> = LOCAL_DEFAULTS): RawEnv {
  const out: RawEnv = { ...raw }
  for (const [k, v] of Object.entries(defaults)) if (out[k] === undefined || out[k]?.trim() === '') out[k] = v
  return out
}

/**
 * Keeps generated secrets in the env file: appended under a comment (the file is created if
 * missing), values single-quoted, and the file made mode 0600 since it now holds secrets.
 */
export function saveLocalSecrets(path: string, values: Partial<Record<LocalSecret, string>>, now = new Date()): void {
  const lines = Object.entries(values).map(([k, v]) => envLine(k, v))
  if (lines.length === 0) return
  const before = existsSync(path) ? readFileSync(path, 'utf8') : ''
  const gap = before === '' ? '' : before.endsWith('\n') ? '\n' : '\n\n'
  const block = [
    `# Local-only secrets generated by npm run up:local on ${now.toISOString().slice(0, 10)}: random, for this`,
    '# checkout only; every deploy refuses them (set real ones for production).',
    ...lines,
  ].join('\n')
  writeEnvFile(path, `${before}${gap}${block}\n`)
}

/**
 * The stack's settings: environment + .env, local defaults for what is unset, `secrets` for the
 * secrets that are unset, checked. Throws EnvError (exit 2). `composeEnv` is the complete
 * environment for `docker compose`; `generated` names the secrets that came from `secrets`.
 */
export function localSettings(
  raw: RawEnv,
  secrets: Readonly<Partial<Record<LocalSecret, string>>> = newLocalSecrets(),
): { values: CleanEnv<typeof stackVars>; composeEnv: RawEnv; generated: LocalSecret[] } {
  const generated = missingSecrets(raw)
  const filled = withLocalDefaults(raw, { ...LOCAL_DEFAULTS, ...Object.fromEntries(generated.map((k) => [k, secrets[k] ?? ''])) })
  const values = checkEnv(stackVars, filled)
  // This machine serves plain HTTP: a deploy's MYMDB_DOMAIN in .env is not for it (its front
  // would ask a CA for that name's certificate).
  return { values, composeEnv: { ...filled, ...formatEnv(stackVars, values), MYMDB_DOMAIN: '' }, generated }
}

/** The address to open in a browser for a bind address and port. */
export function siteUrl(bind: string, port: number): string {
  const host = bind === '0.0.0.0' ? '127.0.0.1' : bind === '::' ? '[::1]' : bind.includes(':') ? `[${bind}]` : bind
  return `http://${host}:${port}/`
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


/** True when a running container of the project publishes `port` (so a busy port is our own stack). */
export function holdsPort(entries: PsEntry[], port: number): boolean {
  return entries.some((e) => e.State === 'running' && e.Publishers.some((p) => p.PublishedPort === port))
}

/** Services that are not running or not healthy. */
export function unhealthy(entries: PsEntry[]): string[] {
  return [...new Set(entries.filter((e) => e.State !== 'running' || (e.Health !== '' && e.Health !== 'healthy')).map((e) => e.Service))]
}
