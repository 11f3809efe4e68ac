// The host's deploy history (~/mymdb/deploys.log, one JSON line per deploy or rollback): written
// by the start step, shown by status, and the list of releases a rollback can go back to (which
// one, and the migrations its code does not know).
import { envLine } from './envformat.ts'
import { ConfigError, UserError } from './errors.ts'
import { whoRuns } from './paths.ts'
import type { Cmd, RunResult } from './sh.ts'
import { oneOffCmd, REMOTE_DIR, runInChecked, type Stack } from './stack.ts'
import { IMAGE_NAMES, PINNED_IMAGES, refKey, type ImageName } from './vars.ts'
import { splitImageRef } from './stackfile.ts'

/** The file, next to the compose file, where the host keeps one JSON line per deploy (npm run status shows the last). */
export const DEPLOY_LOG_FILE = 'deploys.log'
export const DEPLOY_LOG = `${REMOTE_DIR}/${DEPLOY_LOG_FILE}`

export interface DeployLine {
  at: string
  by: string
  tag: string
  /** ok, failed; '' in records of earlier versions. */
  result: string
  seconds?: number
  error?: string
  /** The image each service ran (records since the front came in; cache '' in records before the cache came in). */
  images?: Record<ImageName, string>
  /** The tag this rollback went back from. */
  rollbackFrom?: string
}

/** One line of the deploy log (pure): when it started, who, which images, how it ended and how long it took. */
export function deployRecord(
  images: Record<ImageName, string>,
  by: string,
  at: Date,
  end: { ok: boolean; seconds: number; error?: string },
  rollbackFrom?: string,
): string {
  const tag = images.web.split(':').pop() ?? ''
  const error = end.error === undefined ? {} : { error: end.error.split('\n')[0]?.slice(0, 300) }
  const from = rollbackFrom === undefined ? {} : { rollback_from: rollbackFrom }
  return `${JSON.stringify({ at: at.toISOString(), by, tag, ...Object.fromEntries(IMAGE_NAMES.map((n) => [n, images[n]])), result: end.ok ? 'ok' : 'failed', seconds: Math.round(end.seconds), ...error, ...from })}\n`
}

/** Parses one line of the deploy log (pure); null when it is not one. */
export function parseDeployLine(line: string): DeployLine | null {
  try {
    const o = JSON.parse(line) as Record<string, unknown>
    if (typeof o.at !== 'string' || typeof o.by !== 'string' || typeof o.tag !== 'string') return null
    const images = typeof o.web === 'string' && typeof o.db === 'string' && typeof o.proxy === 'string'
      ? { images: { web: o.web, db: o.db, proxy: o.proxy, cache: typeof o.cache === 'string' ? o.cache : '' } }
      : {}
    return {
      at: o.at,
      by: o.by,
      tag: o.tag,
      result: typeof o.result === 'string' ? o.result : '',
      ...(typeof o.seconds === 'number' ? { seconds: o.seconds } : {}),
      ...(typeof o.error === 'string' ? { error: o.error } : {}),
      ...images,
      ...(typeof o.rollback_from === 'string' ? { rollbackFrom: o.rollback_from } : {}),
    }
  } catch {
    return null
  }
}

/** The deploy history of the stack's host, oldest first: all of it, or its last `lines` records. */
export async function readDeployLog(stack: Stack, lines?: number): Promise<DeployLine[]> {
  const read = lines === undefined ? `cat ${DEPLOY_LOG_FILE}` : `tail -n ${lines} ${DEPLOY_LOG_FILE}`
  const r = await runInChecked(stack, ['sh', '-c', `${read} 2>/dev/null || true`], { doing: `read the deploy history ${DEPLOY_LOG}` })
  return parseDeployLog(r.stdout)
}

/** Appends one record (deployRecord) to the host's deploy history. */
export function appendDeployRecord(stack: Stack, record: string): Promise<RunResult> {
  return runInChecked(stack, ['sh', '-c', `cat >> ${DEPLOY_LOG_FILE}`], { input: record, doing: `record it in ${DEPLOY_LOG}` })
}

/**
 * Runs a release (a deploy or a rollback) and records it in the host's history, ok or failed: a
 * failed run is recorded best effort (the connection may be what failed) and its error rethrown.
 * `images()` gives the images as they are when the run ends (a deploy pins some by digest).
 */
export async function recordRelease<T>(
  stack: Stack,
  images: () => Record<ImageName, string>,
  opts: { startedAt: Date; rollbackFrom?: string },
  release: () => Promise<T>,
): Promise<T> {
  const record = (end: { ok: boolean; error?: string }) =>
    appendDeployRecord(stack, deployRecord(images(), whoRuns(), opts.startedAt, { ...end, seconds: (Date.now() - opts.startedAt.getTime()) / 1000 }, opts.rollbackFrom))
  let result: T
  try {
    result = await release()
  } catch (e) {
    await record({ ok: false, error: e instanceof Error ? e.message : String(e) }).catch(() => undefined)
    throw e
  }
  await record({ ok: true })
  return result
}


/** The lines of a deploy log that are records, oldest first. */
export function parseDeployLog(text: string): DeployLine[] {
  return text
    .split('\n')
    .map(parseDeployLine)
    .filter((d): d is DeployLine => d !== null)
}

export interface Release {
  tag: string
  at: string
  images: Record<ImageName, string>
}

/**
 * The releases that ran, newest first, one per tag (its latest successful start): the first is
 * what runs now. Records of failed starts, and of versions before the front came in (no proxy
 * image recorded), are not releases one can go back to.
 */
export function releases(log: readonly DeployLine[]): Release[] {
  const seen = new Set<string>()
  const out: Release[] = []
  for (const d of [...log].reverse()) {
    if (d.result !== 'ok' || !d.images || seen.has(d.tag)) continue
    seen.add(d.tag)
    out.push({ tag: d.tag, at: d.at, images: d.images })
  }
  return out
}

/**
 * Which release to go back to (pure): `to`, or the one before the running one. Throws
 * ConfigError for an unknown tag (listing the known ones), UserError when there is nothing to go
 * back to.
 */
export function pickRelease(list: readonly Release[], to?: string): { current: Release; target: Release } {
  const [current] = list
  if (!current) throw new UserError('the host has no release in its deploy history (~/mymdb/deploys.log) to go back to: deploy first with npm run deploy:aws')
  if (to === undefined) {
    const target = list[1]
    if (!target) throw new UserError(`only one release (${current.tag}) is recorded on the host: there is none before it`)
    return { current, target }
  }
  const target = list.find((r) => r.tag === to)
  if (!target) throw new ConfigError(`--to ${to}: no such release on the host; the releases, newest first: ${list.map((r) => r.tag).join(', ')}`)
  return { current, target }
}

/**
 * Python run by the target release's code against the database: the migrations the database
 * has applied that this code does not know, one per line (app.name).
 */
export const UNKNOWN_MIGRATIONS_PY = [
  'from django.db import connection',
  'from django.db.migrations.loader import MigrationLoader',
  'loader = MigrationLoader(connection)',
  'print("\\n".join(sorted(f"{a}.{n}" for (a, n) in loader.applied_migrations if (a, n) not in loader.disk_migrations)))',
].join('\n')

/** UNKNOWN_MIGRATIONS_PY in a throw-away container of the release's web image (the running stack is untouched). */
export function unknownMigrationsCmd(stack: Stack, web: string): Cmd {
  return oneOffCmd(stack, ['manage.py', 'shell', '-c', UNKNOWN_MIGRATIONS_PY], { image: web })
}

/** `docker image ls` of the host's images: reference, digest and id per line (see pruneRefs). */
export const IMAGE_LIST_FORMAT = '{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}'

/**
 * The image references to remove from the host (pure): images of the stack's repositories
 * (`repositories`, as the host names them) whose id is none of `keptIds` (the images of the
 * releases kept for rollbacks). `listing` is `docker image ls --no-trunc --format IMAGE_LIST_FORMAT`.
 */
export function pruneRefs(listing: string, repositories: readonly string[], keptIds: ReadonlySet<string>): string[] {
  const out: string[] = []
  for (const line of listing.split('\n')) {
    const [repo, tag, digest, id] = line.trim().split(/\s+/)
    if (!repo || !id || !repositories.includes(repo) || keptIds.has(id)) continue
    if (tag && tag !== '<none>') out.push(`${repo}:${tag}`)
    else if (digest && digest !== '<none>') out.push(`${repo}@${digest}`)
  }
  return [...new Set(out)]
}

/** The sed script that points the host's .env at a release's images (pure); an image recorded as '' (the cache, in records from before it came in) stays as it is. */
export function envEdit(images: Record<ImageName, string>): string {
  const { repository, tag = '' } = splitImageRef(images.web)
  const set = (key: string, value: string) => `s|^${key}=.*$|${envLine(key, value)}|`
  return [set('MYMDB_WEB_IMAGE', repository), set('MYMDB_TAG', tag), ...PINNED_IMAGES.filter((n) => images[n]).map((n) => set(refKey(n), images[n]))].join(';')
}

/**
 * Points the host's .env (in the stack's directory) at `images`, in place (no copy: the file holds
 * secrets; the images it named before are in the release history). Removes the plaintext copy
 * rollbacks before this one kept.
 */
export function pointEnvAt(images: Record<ImageName, string>): Cmd {
  return ['sh', '-c', 'rm -f .env.before-rollback && sed -i "$0" .env', envEdit(images)]
}
