// MyMDB backups: one tar file holding manifest.json (what it is), db.dump (pg_dump's custom
// format: online and consistent) and media.tar (the uploads, when they live in the media volume).
// Everything runs through the stack's runner with shell redirection, so the bytes never pass
// through Node and the same commands work here and on the host.
import { mkdirSync } from 'node:fs'
import { shellQuote, showCommand, type Cmd, type RunResult } from './sh.ts'
import type { Log } from './log.ts'
import { UserError } from './errors.ts'
import { execCmd, oneOffCmd, runIn, stackCommands, type Stack } from './stack.ts'
import { inDb, RDS_TEST } from './dbaccess.ts'
import { check } from './sh.ts'
import { backupKey } from './backupkeys.ts'

export const BACKUP_FORMAT = 'mymdb-backup'
/** On the host, next to the compose file: the backup bucket and role (written by the deploy, mode 0600). */
export const BACKUP_ENV_FILE = 'backup.env'
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
  /** Why it was taken: manual, scheduled, safety (before a restore), pre-migrate, final. */
  reason: string
}

export type BackupReason = 'manual' | 'scheduled' | 'safety' | 'pre-migrate' | 'final'

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
  return { revision: '', media: false, reason: 'manual', ...m } as Manifest
}

/** `cmd`, its stdin read from `path`. */
export function fromFile(cmd: Cmd, path: string): Cmd {
  return ['sh', '-c', '"$@" < "$0"', path, ...cmd]
}

export const backupCommands = {
  /** pg_dump, custom format: a consistent snapshot of a running database. */
  dump: (s: Stack) => inDb(s, 'pg_dump --format=custom --no-password --dbname "$DJANGO_DB_NAME"'),
  /** The uploads in the media volume, as a tar stream. */
  media: (s: Stack) => execCmd(s, 'web', ['tar', '-C', '/mymdb/media', '-cf', '-', '.']),
  /** Is this a readable pg_dump archive? (reads it whole, changes nothing) */
  listDump: (s: Stack) => inDb(s, 'pg_restore --list > /dev/null'),
  /**
   * Replaces the database's contents with the dump's, in one transaction: a damaged dump changes
   * nothing. It runs logged in as the application role (over TCP, with its password), never as
   * postgres: SQL planted in a dump (`RESET ROLE; ALTER ROLE ...`) has no superuser to return to.
   * Objects end up owned by the application role, as the db image made them.
   */
  restore: (s: Stack) =>
    inDb(
      s,
      'PGPASSWORD="${DJANGO_DB_PASSWORD:-$(cat "${DJANGO_DB_PASSWORD_FILE:-/dev/null}")}" pg_restore --host="${PGHOST:-127.0.0.1}" --username="$DJANGO_DB_USER" --clean --if-exists --no-owner --single-transaction --exit-on-error --no-password --dbname "$DJANGO_DB_NAME"',
    ),
  /** Empties the shared cache (memcached's flush_all, through bash's /dev/tcp: the image has no client). */
  flushCache: (s: Stack) =>
    execCmd(s, 'cache', ['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/11211; printf "flush_all\\r\\n" >&3; read -r -t 3 answer <&3; [[ $answer == OK* ]]']),
  /** Empties nginx's page cache in the web container, when it has one (a page no longer on disk is fetched anew). */
  dropPages: (s: Stack) => execCmd(s, 'web', ['sh', '-c', 'if [ -d "$0" ]; then find "$0" -mindepth 1 -delete; fi', '/var/lib/nginx/mymdb-pages']),
  /** Replaces the uploads with the archive's (the web container must run). */
  restoreMedia: (s: Stack) =>
    execCmd(s, 'web', ['sh', '-c', 'find /mymdb/media -mindepth 1 -delete && tar -C /mymdb/media -xf -']),
  /** A presigned URL downloaded to stdout, in a throw-away web container (on the host). */
  download: (s: Stack, url: string) => oneOffCmd(s, ['/mymdb/scripts/s3_backup.py', 'get', url]),
  facts: (s: Stack) => inDb(s, 'printf "%s\\n%s\\n" "$DJANGO_DB_NAME" "$(psql --no-psqlrc -tAc "show server_version")"'),
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

// --- taking a backup: one script, here, on the host, and from the host's schedule ----------------

export interface BackupScriptOptions {
  /** The folder of the file where the stack runs: absolute here, relative to ~/mymdb on the host. */
  dir: string
  /** Names the file: the Compose project here, the stage on the host. */
  source: string
  reason: BackupReason
  /** Archive the media volume too (not when the uploads are in S3). */
  media: boolean
  /**
   * Upload the file to the backup bucket with s3_backup.py in a throw-away web container, then
   * delete it: `envFile` (next to the compose file) names the bucket and the backup role.
   */
  upload?: { envFile: string }
  /**
   * Hold the stage's lock (lock.ts) while it runs, as the backup role (needs `upload`); when a run
   * of the deployer holds it, skip, recorded (the hourly catch-up takes the backup later). For the
   * schedule only: a deploy's own pre-migrate backup runs while the deploy holds the lock.
   */
  lock?: { stage: string; seconds: number }
  /**
   * Appends one JSON line per run to this file (next to the compose file), success or failure:
   * npm run status shows the last backup and a failed one from it.
   */
  record?: string
}

const q = (cmd: Cmd) => showCommand(cmd)

/** scripts/s3_backup.py in a throw-away web container, given the backup settings of backup.env. */
const s3Backup = (s: Stack, verb: 'put' | 'lock' | 'unlock'): Cmd =>
  oneOffCmd(s, ['/mymdb/scripts/s3_backup.py', verb], { pass: ['MYMDB_BACKUP_BUCKET', 'MYMDB_BACKUP_REGION', 'MYMDB_BACKUP_ROLE_ARN', 'MYMDB_BACKUP_EXTERNAL_ID'] })

// --- on the host: the files next to its compose file, and the schedule ---------------------------

/** Where the host keeps a backup while it is made (relative to ~/mymdb). */
export const HOST_BACKUP_DIR = 'backups'
/** One JSON line per backup on the host, success or failure (npm run status reads the last). */
export const BACKUP_LOG = 'backups.log'

/** A backup of the host's stack into the backup bucket, recorded in backups.log (the uploads are in S3). */
export function hostBackupOptions(stage: string, reason: BackupReason): BackupScriptOptions {
  return { dir: HOST_BACKUP_DIR, source: stage, reason, media: false, upload: { envFile: BACKUP_ENV_FILE }, record: BACKUP_LOG }
}

export interface BackupRecord {
  at: string
  reason: string
  ok: boolean
  size: number
  /** What npm run restore takes ('' in records from before names were recorded: see file). */
  name: string
  file: string
  /** Why a run that was not a failure did not back up (a skipped scheduled run), else ''. */
  note: string
}

/** The records of backups.log (pure), oldest first; lines that are not one are skipped. */
export function parseBackupLog(text: string): BackupRecord[] {
  const out: BackupRecord[] = []
  for (const line of text.split('\n')) {
    try {
      const r = JSON.parse(line) as Partial<BackupRecord>
      if (typeof r.at === 'string' && typeof r.ok === 'boolean') {
        const file = String(r.file ?? '')
        out.push({ at: r.at, reason: String(r.reason ?? ''), ok: r.ok, size: Number(r.size ?? 0), name: String(r.name ?? file.split('/').pop() ?? ''), file, note: String(r.note ?? '') })
      }
    } catch {
      // not a record
    }
  }
  return out
}

/** The last line a backup script prints: `MYMDB_BACKUP <size> <file>`. */
export const RESULT_MARK = 'MYMDB_BACKUP'

/**
 * The backup as one POSIX shell script (pure), built from the stack's commands: the same script
 * runs here (`npm run backup`), on the host over SSH (`--aws`) and from the host's schedule, so
 * there is one way to take a backup. The file appears complete or not at all; it is readable by
 * its owner only. Progress goes to stderr; stdout ends with the manifest and the result line.
 */
export function backupScript(s: Stack, o: BackupScriptOptions): string {
  const inspectRevision = ['docker', 'inspect', '--format', '{{index .Config.Labels "org.opencontainers.image.revision"}}']
  const upload = o.upload
    ? [
        `echo "upload to the backup bucket" >&2`,
        // uploaded from this run's own directory (removed with it), never from a shared name
        // where it goes decides how long it is kept (backupkeys.ts); s3_backup.py prints the version
        `key="${backupKey(o.reason, '$name')}"`,
        `version=$(${q(s3Backup(s, 'put'))} "$key" "$name" "$database" "$revision" "$created" "$reason" < "$work/backup.tar")`,
        'file="s3://$MYMDB_BACKUP_BUCKET/$key${version:+?versionId=$version}"',
      ]
    : []
  return [
    'set -eu',
    'umask 077',
    `dir=${shellQuote(o.dir.replace(/\/+$/, '') || '.')}`,
    `source=${shellQuote(o.source)}`,
    `reason=${shellQuote(o.reason)}`,
    'at=$(date -u +%s)',
    'created=$(date -u -d "@$at" +%Y-%m-%dT%H:%M:%SZ)',
    'name="mymdb-$source-$(date -u -d "@$at" +%Y%m%dT%H%M%SZ).tar"',
    'file="$dir/$name"',
    // this run's own directory, made once it runs (after the lock): a run that ends early (another
    // held the stage's lock) removes nothing of another's that started in the same second
    "work=''",
    'size=0',
    o.record
      ? `rec() { printf '{"at":"%s","reason":"%s","ok":%s,"size":%s,"name":"%s","file":"%s","note":"%s"}\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$reason" "$1" "$size" "$name" "$file" "\${2:-}" >> ${shellQuote(o.record)}; }`
      : 'rec() { :; }',
    'token=',
    o.lock ? `unlock() { [ -z "$token" ] || ${q(s3Backup(s, 'unlock'))} ${shellQuote(o.lock.stage)} "$token" >/dev/null 2>&1 || true; }` : 'unlock() { :; }',
    `trap 'rc=$?; unlock; [ -z "$work" ] || rm -rf "$work"; [ "$rc" = 0 ] || rec false' EXIT`,
    ...(o.upload ? [`set -a; . ./${o.upload.envFile}; set +a`] : []),
    ...(o.lock
      ? [
          `if token=$(${q(s3Backup(s, 'lock'))} ${shellQuote(o.lock.stage)} ${o.lock.seconds}); then :; else`,
          '  rc=$?',
          `  if [ "$rc" = 4 ]; then echo "skipped: another run holds the stage's lock (the hourly catch-up takes the backup once it ends)" >&2; rec false "skipped: another run held the stage's lock"; exit 0; fi`,
          '  exit "$rc"',
          'fi',
        ]
      : []),
    `running=" $(${q(stackCommands.running(s))} | tr '\\n' ' ') "`,
    // (a database on RDS is there without the stack)
    `case "$running" in *" db "*) ;; *) ${s.kind === 'swarm' ? `${RDS_TEST} || ` : ''}{ echo "the database is not running" >&2; exit 3; } ;; esac`,
    'mkdir -p "$dir"',
    'work=$(mktemp -d "$dir/.$name.XXXXXX")',
    `facts=$(${q(backupCommands.facts(s))})`,
    `database=$(printf '%s\\n' "$facts" | sed -n 1p)`,
    `postgres=$(printf '%s\\n' "$facts" | sed -n 2p)`,
    'echo "pg_dump of $database (PostgreSQL $postgres)" >&2',
    `${q(backupCommands.dump(s))} > "$work/db.dump"`,
    'media=false',
    ...(o.media
      ? [
          'case "$running" in',
          `  *" web "*) echo "uploads in the media volume" >&2; ${q(backupCommands.media(s))} > "$work/media.tar"; media=true ;;`,
          '  *) echo "warning: the web container is not running: the uploads in the media volume are NOT in this backup (start the stack for a full one)" >&2 ;;',
          'esac',
        ]
      : []),
    'revision=',
    `web=$(${q(stackCommands.webContainer(s))})`,
    `if [ -n "$web" ]; then revision=$(${q(inspectRevision)} "$web" 2>/dev/null || true); fi`,
    '[ "$revision" != "<no value>" ] || revision=',
    `j() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\\\"]/\\\\&/g')"; }`,
    `printf '{"format":"${BACKUP_FORMAT}","version":${BACKUP_VERSION},"createdAt":%s,"source":%s,"database":%s,"revision":%s,"postgres":%s,"media":%s,"reason":%s}\\n' ` +
      '"$(j "$created")" "$(j "$source")" "$(j "$database")" "$(j "$revision")" "$(j "$postgres")" "$media" "$(j "$reason")" > "$work/manifest.json"',
    'if [ "$media" = true ]; then set -- media.tar; else set --; fi',
    'tar -C "$work" -cf "$work/backup.tar" manifest.json db.dump "$@"',
    'size=$(stat -c %s "$work/backup.tar")',
    ...(o.upload ? upload : ['mv "$work/backup.tar" "$file"']),
    'rec true',
    'cat "$work/manifest.json"',
    `echo "${RESULT_MARK} $size $name $file"`,
  ].join('\n')
}

export interface BackupResult {
  /** Its name, mymdb-<source>-<time>.tar: what npm run restore takes. */
  name: string
  /** The file where the stack runs, or s3://bucket/key?versionId=... when uploaded. */
  file: string
  size: number
  manifest: Manifest
}

/** Reads what a backup script printed (pure): the manifest and the result line. */
export function parseBackupOutput(stdout: string): BackupResult {
  const lines = stdout.trim().split('\n')
  const last = lines.pop() ?? ''
  const m = new RegExp(`^${RESULT_MARK} (\\d+) (\\S+) (.+)$`).exec(last)
  if (!m) throw new Error(`the backup printed no result line (got: ${last.slice(0, 200)})`)
  return { size: Number(m[1]), name: m[2] ?? '', file: m[3] ?? '', manifest: parseManifest(lines.pop() ?? '') }
}

/** Runs the backup script where the stack runs, its progress shown as `[backup] ...` lines. */
export async function takeBackup(s: Stack, o: BackupScriptOptions, log: Log): Promise<BackupResult> {
  const r: RunResult = await log.step('backup', `${o.reason} backup of ${o.source} on ${s.where}`, () =>
    runIn(s, ['sh', '-c', backupScript(s, o)], { stream: log.prefixed('backup', new RegExp(`^(\\{|${RESULT_MARK} )`)) }),
  )
  if (r.exitCode === 3) throw new UserError(`the database of ${o.source} is not running on ${s.where}: start the stack, then back up`)
  check(r, `back up ${o.source} on ${s.where}`, true)
  return parseBackupOutput(r.stdout)
}

/** A backup of this machine's stack into `dir` (the uploads too, unless they go to S3). */
export function backupLocal(stack: Stack, dir: string, source: string, log: Log, reason: 'manual' | 'safety' = 'manual'): Promise<BackupResult> {
  mkdirSync(dir, { recursive: true })
  const inS3 = (stack.env?.DJANGO_UPLOAD_S3_BUCKET ?? '').trim() !== ''
  return takeBackup(stack, { dir, source, reason, media: !inS3 }, log)
}

/**
 * A backup of the host's stack into the backup bucket (the uploads are in S3 already). The
 * host's ~/mymdb/backup.env, written by the deploy, names the bucket and the backup role.
 */
export async function backupHost(stack: Stack, stage: string, log: Log, reason: 'manual' | 'safety' | 'pre-migrate' | 'final' = 'manual'): Promise<BackupResult> {
  const env = await runIn(stack, ['test', '-f', BACKUP_ENV_FILE])
  if (!env.ok)
    throw new UserError(`the host ${stack.where} has no ~/mymdb/${BACKUP_ENV_FILE} (it names the backup bucket): deploy with this version first (npm run deploy:aws)`)
  return takeBackup(stack, hostBackupOptions(stage, reason), log)
}
