// Shared by the system tests: the test stack's coordinates and small HTTP/compose helpers.
// Tests use their own Compose project and port, so a developer's own `up:local` stack is untouched.
import { mkdtempSync, symlinkSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { $ } from 'zx'

export const PROJECT = 'mymdb-test'
export const PORT = 18080
export const BASE_URL = `http://127.0.0.1:${PORT}`
export const REPO = new URL('../..', import.meta.url).pathname

/** Environment for running the tasks (npm run up:local / stop) against the test stack. */
export const stackEnv = {
  ...process.env,
  COMPOSE_PROJECT_NAME: PROJECT,
  WEB_PORT: String(PORT),
  WEB_BIND: '127.0.0.1',
  // Short cache so tests see fresh pages without waiting.
  DJANGO_CACHE_TIMEOUT: '1',
}

/** Runs an npm script of this repo with the test stack's environment. */
export function npmRun(script: string, ...args: string[]) {
  return $({ cwd: REPO, env: stackEnv, nothrow: true, quiet: !process.env.VERBOSE })`npm run --silent ${script} -- ${args}`
}

/** `docker compose` for the test stack. */
export function compose(...args: string[]) {
  return $({ cwd: REPO, env: stackEnv, quiet: true })`docker compose ${args}`
}

export interface Reply { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** A plain HTTP request to 127.0.0.1, with an explicit Host header (fetch() cannot set one). */
export function request(path: string, opts: { host?: string; method?: string; body?: Buffer; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1', port: PORT, path, method: opts.method ?? 'GET',
        headers: { host: opts.host ?? `localhost:${PORT}`, ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** Polls until `check` resolves true, or fails after `seconds`. Returns the seconds it took. */
export async function waitFor(what: string, seconds: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now()
  for (;;) {
    try {
      if (await check()) return (Date.now() - start) / 1000
    } catch { /* not yet */ }
    if (Date.now() - start > seconds * 1000) throw new Error(`${what}: not within ${seconds} s`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/**
 * A copy of this checkout without its .env (node_modules shared), as a second clone would be: a
 * test that runs up:local there has its own .env, so test files can run side by side.
 */
export async function copyOfCheckout(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mymdb-checkout-'))
  await $({ quiet: true })`tar -C ${REPO} --exclude=./node_modules --exclude=./.git --exclude=./.env --exclude=./backups -cf - . | tar -C ${dir} -xf -`
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'))
  return dir
}
