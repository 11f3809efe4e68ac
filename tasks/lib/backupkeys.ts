// Where a backup lives in the stage's backup bucket (pure). Lifecycle rules work on key prefixes
// and on the versions of one key, so the key says how long a backup is kept:
//   rolling/<kind>.tar           scheduled, manual, safety: each backup a new version of its kind's
//                                key (the newest N of each kind are kept, see bucketplan.ts)
//   kept/<kind>/<name>           final, pre-migrate: one key each, written once, never expire
//   mymdb-<stage>-<time>.tar     made before this layout (expire as they always did)
// A backup's name (mymdb-<stage>-<time>.tar) is what people see and type; the host stores it with
// the object (metadata `name`), next to its SHA-256 (`sha256`).
export const ROLLING_PREFIX = 'rolling/'
export const KEPT_PREFIX = 'kept/'
export const LEGACY_PREFIX = 'mymdb-'

/** A backup's name: mymdb-<stage>-<yyyymmddThhmmssZ>.tar (the stage allows letters, digits, -). */
export const BACKUP_NAME = /^mymdb-[A-Za-z0-9-]+-\d{8}T\d{6}Z\.tar$/

/** Backups of these kinds are kept until deleted on purpose; the others roll. */
const KEPT_REASONS: readonly string[] = ['final', 'pre-migrate']

/** Whether a backup of this kind is kept until deleted (and written only once under its own key). */
export function isKeptReason(reason: string): boolean {
  return KEPT_REASONS.includes(reason)
}

/** The object key of a backup (pure). */
export function backupKey(reason: string, name: string): string {
  return isKeptReason(reason) ? `${KEPT_PREFIX}${reason}/${name}` : `${ROLLING_PREFIX}${reason}.tar`
}

export type KeyKind = { layout: 'rolling' | 'kept'; reason: string } | { layout: 'legacy'; reason: '' }

/** What a key in the backup bucket holds (pure); undefined: not a backup. */
export function keyKind(key: string): KeyKind | undefined {
  const rolling = /^rolling\/([a-z-]+)\.tar$/.exec(key)
  if (rolling?.[1]) return { layout: 'rolling', reason: rolling[1] }
  const kept = /^kept\/([a-z-]+)\/[^/]+\.tar$/.exec(key)
  if (kept?.[1]) return { layout: 'kept', reason: kept[1] }
  if (!key.includes('/') && key.startsWith(LEGACY_PREFIX) && key.endsWith('.tar')) return { layout: 'legacy', reason: '' }
  return undefined
}
