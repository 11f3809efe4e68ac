// New values for the site's secrets, written into the .env file they live in (npm run rotate).
// The next deploy applies them: Django signs with the new key and still accepts what the old one
// signed (DJANGO_SECRET_KEY_FALLBACKS); the host's database container sets its roles' passwords
// from its environment when it starts (docker/psql/docker-entrypoint.sh, MYMDB_DB_SET_PASSWORDS).
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import dotenv from 'dotenv'
import { ConfigError } from './errors.ts'
import { envLine, writeEnvFile } from './envformat.ts'

/** What can be rotated, by the name rotate takes, and the setting it changes. */
export const ROTATABLE = {
  'secret-key': 'DJANGO_SECRET_KEY',
  'db-password': 'DJANGO_DB_PASSWORD',
  'postgres-password': 'POSTGRES_PASSWORD',
} as const
export type Rotatable = keyof typeof ROTATABLE

/** Old secret keys kept as fallbacks (the newest first); older ones are dropped. */
export const MAX_FALLBACKS = 3

/** A fresh value: a 64-character key, or a 48-hex-digit password. */
export function newSecret(name: Rotatable): string {
  return name === 'secret-key' ? randomBytes(48).toString('base64url') : randomBytes(24).toString('hex')
}

/**
 * The settings to write for a rotation of `names` (pure), from the .env file's current values:
 * the secret key's old value becomes the first fallback. Problems (an unknown name, a value the
 * environment sets, a secret that is not in the file) are ConfigErrors, all at once.
 */
export function rotationChanges(
  names: readonly string[],
  file: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>,
  fresh: (name: Rotatable) => string = newSecret,
): { changes: Record<string, string>; said: string[] } {
  const problems: string[] = []
  if (names.length === 0) problems.push(`name what to rotate: ${Object.keys(ROTATABLE).join(', ')}`)
  const changes: Record<string, string> = {}
  const said: string[] = []
  for (const name of new Set(names)) {
    if (!(name in ROTATABLE)) {
      problems.push(`${name}: not a secret rotate knows (${Object.keys(ROTATABLE).join(', ')})`)
      continue
    }
    const key = ROTATABLE[name as Rotatable]
    const locked = [key, ...(name === 'secret-key' ? ['DJANGO_SECRET_KEY_FALLBACKS'] : [])].filter((k) => env[k] !== undefined)
    if (locked.length > 0) {
      problems.push(`${locked.join(', ')}: set in the environment, which wins over the .env file: change it where it is set`)
      continue
    }
    const old = file[key]?.trim() ?? ''
    if (old === '') {
      problems.push(`${key}: not in the .env file, so there is nothing to rotate (set it there first)`)
      continue
    }
    changes[key] = fresh(name as Rotatable)
    if (name === 'secret-key') {
      const kept = [old, ...(file.DJANGO_SECRET_KEY_FALLBACKS ?? '').split(/\s+/).filter((k) => k && k !== old)]
      changes.DJANGO_SECRET_KEY_FALLBACKS = kept.slice(0, MAX_FALLBACKS).join(' ')
      said.push(`DJANGO_SECRET_KEY: a new key; the old one is the first of DJANGO_SECRET_KEY_FALLBACKS, so logged-in visitors stay logged in${kept.length > MAX_FALLBACKS ? ` (the oldest of ${kept.length} fallbacks dropped)` : ''}`)
    } else said.push(`${key}: a new password (the database takes it when its container restarts, which the next deploy does)`)
  }
  if (problems.length > 0) throw new ConfigError(`npm run rotate: ${problems.join('; ')}`)
  return { changes, said }
}

/**
 * The .env text with `changes` (pure): each key's first active line replaced (later duplicates
 * dropped, comments and every other line kept), a key not there appended.
 */
export function withValues(text: string, changes: Readonly<Record<string, string>>): string {
  const done = new Set<string>()
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n')
  const out: string[] = []
  for (const line of lines) {
    const key = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(line)?.[1]
    if (key === undefined || !(key in changes)) out.push(line)
    else if (!done.has(key)) {
      out.push(envLine(key, changes[key] ?? ''))
      done.add(key)
    }
  }
  for (const [key, value] of Object.entries(changes)) if (!done.has(key)) out.push(envLine(key, value))
  return `${out.join('\n')}\n`
}

/** Rotates `names` in the .env file at `path`: written whole to a new file (mode 0600), then renamed over it. */
export function rotateEnvFile(path: string, names: readonly string[], env: Readonly<Record<string, string | undefined>>): string[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new ConfigError(`npm run rotate: ${path} cannot be read: the secrets to rotate live in the .env file`)
  }
  const { changes, said } = rotationChanges(names, dotenv.parse(text), env)
  writeEnvFile(path, withValues(text, changes))
  return said
}
