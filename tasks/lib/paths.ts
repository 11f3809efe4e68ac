import { hostname, userInfo } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A path of this machine with `~` or `~/...` meaning `home`; other relative paths from the working directory. */
export function expandHome(value: string, home: string): string {
  if (value === '~') return home
  if (value.startsWith('~/')) return join(home, value.slice(2))
  return isAbsolute(value) ? value : resolve(value)
}

/** Who runs this task, for the deploy history and the lock: user@machine. */
export function whoRuns(): string {
  return `${userInfo().username}@${hostname()}`
}

/** The repository root (two levels above tasks/lib). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '')
