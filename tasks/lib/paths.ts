import { fileURLToPath } from 'node:url'

/** The repository root (two levels above tasks/lib). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '')
