// MyMDB backups: one tar file holding manifest.json (what it is), db.dump (pg_dump's custom
// format: online and consistent) and media.tar (the uploads, when they live in the media volume).
// Everything runs through the stack's runner with shell redirection, so the bytes never pass
// through Node and the same commands work here and on the host.
import type { Cmd } from './sh.ts'
import { inDb, runIn, runInChecked, type Stack } from './stack.ts'

export const BACKUP_FORMAT = 'mymdb-backup'
export const BACKUP_VERSION = 1

export interface Manifest {
  format: typeof BACKUP_FORMAT
  version: number
  /** ISO time the dump started. */
  createdAt: string
  /** The Compose project (local) or the stage's host it came from. */
  source: string
  database: string
  /** The git commit of the web image that ran (its revision label), '' when unknown. */
  revision: string
  postgres: string
  /** Whether media.tar is in the file. */
  media: boolean
}

/** The file name of a backup (pure): mymdb-<source>-20261127T163000Z.tar. */
export function backupName(source: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `mymdb-${source}-${stamp}.tar`
}

/** Reads and checks a manifest's text (pure); throws an Error saying why it is not one. */
export function parseManifest(text: string): Manifest {
  let m: Partial<Manifest>
  try {
    m = JSON.parse(text) as Partial<Manifest>
  } catch {
    throw new Error('its manifest.json is not JSON')
  }
  if (m.format !== BACKUP_FORMAT) throw new Error(`its manifest.json is not a ${BACKUP_FORMAT}`)
  if (m.version !== BACKUP_VERSION) throw new Error(`it is version ${String(m.version)} of the backup format; this MyMDB reads version ${BACKUP_VERSION}`)
  for (const k of ['createdAt', 'source', 'database', 'postgres'] as const)
    if (typeof m[k] !== 'string' || m[k] === '') throw new Error(`its manifest.json has no ${k}`)
  return { revision: '', media: false, ...m } as Manifest
}

/** `cmd`, its stdout written to `path` (by the shell where it runs, never through Node). */
export function toFile(cmd: Cmd, path: string): Cmd {
  return ['sh', '-c', '"$@" > "$0"', path, ...cmd]
}

/** `cmd`, its stdin read from `path`. */
export function fromFile(cmd: Cmd, path: string): Cmd {
  return ['sh', '-c', '"$@" < "$0"', path, ...cmd]
}

export const backupCommands = {
  /** pg_dump, custom format: a consistent snapshot of a running database. */
  dump: (s: Stack) => inDb(s, 'pg_dump --format=custom --no-password --dbname "$DJANGO_DB_NAME"'),
  /** The uploads in the media volume, as a tar stream. */
  media: (s: Stack) => s.compose('exec', '-T', 'web', 'tar', '-C', '/mymdb/media', '-cf', '-', '.'),
  /** Is this a readable pg_dump archive? (reads it whole, changes nothing) */
  listDump: (s: Stack) => inDb(s, 'pg_restore --list > /dev/null'),
  /**
   * Replaces the database's contents with the dump's, in one transaction: a damaged dump changes
   * nothing. Objects end up owned by the application role, as the db image made them.
   */
  restore: (s: Stack) =>
    inDb(s, 'pg_restore --clean --if-exists --no-owner --role="$DJANGO_DB_USER" --single-transaction --exit-on-error --no-password --dbname "$DJANGO_DB_NAME"'),
  /** Replaces the uploads with the archive's (the web container must run). */
  restoreMedia: (s: Stack) =>
    s.compose('exec', '-T', 'web', 'sh', '-c', 'find /mymdb/media -mindepth 1 -delete && tar -C /mymdb/media -xf -'),
  facts: (s: Stack) => inDb(s, 'printf "%s\\n%s\\n" "$DJANGO_DB_NAME" "$(psql --no-psqlrc -tAc "show server_version")"'),
}

/** Facts for the manifest: the database name and the server version. */
export async function databaseFacts(s: Stack): Promise<{ database: string; postgres: string }> {
  const r = await runInChecked(s, backupCommands.facts(s), { doing: 'ask the database its name and version' })
  const [database = '', postgres = ''] = r.stdout.trim().split('\n')
  return { database, postgres }
}

/** The manifest inside a backup file, read with tar (where the stack runs). */
export async function readManifest(s: Stack, file: string): Promise<Manifest> {
  const r = await runIn(s, ['tar', '-xOf', file, 'manifest.json'])
  if (!r.ok) throw new Error('it has no manifest.json (a MyMDB backup is a tar file with manifest.json and db.dump)')
  const manifest = parseManifest(r.stdout)
  const list = await runIn(s, ['tar', '-tf', file])
  const names = list.stdout.split('\n').map((l) => l.replace(/^\.\//, '').trim())
  if (!names.includes('db.dump')) throw new Error('it has no db.dump')
  if (manifest.media && !names.includes('media.tar')) throw new Error('its manifest says it holds the uploads, but media.tar is missing')
  return manifest
}
