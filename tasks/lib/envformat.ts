// One value of a .env file as this project writes them (here for Compose, and on the host):
// single-quoted, so that nothing in it is interpolated or unescaped (`$`, `#`, `"`, `\` and spaces
// stay as they are). A value such a file cannot hold exactly is refused, not changed.
import { randomBytes } from 'node:crypto'
import { renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { ConfigError } from './errors.ts'

/**
 * Writes a .env file (it holds secrets): the whole text to a new file only its owner reads,
 * then renamed over the old one, so that a killed run leaves the old file or the new one.
 */
export function writeEnvFile(path: string, text: string): void {
  const tmp = join(dirname(path), `.env.new-${randomBytes(4).toString('hex')}`)
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' })
    renameSync(tmp, path)
  } finally {
    rmSync(tmp, { force: true })
  }
}

/** What keeps `value` out of a .env file, or null when it can be written exactly. */
export function envValueProblem(value: string): string | null {
  if (/['\n\r\0]/.test(value) || value.endsWith('\\'))
    return 'contains a single quote, a line break or a trailing backslash, which a .env file cannot hold exactly'
  return null
}

/** `value` as a .env file holds it: '<value>'. A value it cannot hold is a ConfigError naming `key`. */
export function envValue(key: string, value: string): string {
  const problem = envValueProblem(value)
  if (problem) throw new ConfigError(`${key}: the value ${problem}; choose another value`)
  return `'${value}'`
}

/** A line of a .env file: KEY='value'. */
export function envLine(key: string, value: string): string {
  return `${key}=${envValue(key, value)}`
}
