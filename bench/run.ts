// npm run bench [-- local|deploy|startup|backup|https|serve]: measures, on this machine, and appends the figures to
// bench/RESULTS.md with the machine they ran on. Not a test: numbers, no verdicts.
// local (own Compose project mymdb-bench, port 18090, removed afterwards):
//   - cold build of the four images (--no-cache; the base image is present) and a code-only rebuild
//   - image sizes
//   - `npm run up:local` until the first page answers: new volumes, then existing ones
//   - `docker stop` of the web container
// deploy: npm run deploy:aws and friends against a fresh test rig (bench/deploy.ts).
// startup: every task's --help and bad-settings exit through npm run (bench/startup.ts).
// backup: backup and restore time and size, sample catalogue and 100 000 votes (bench/backup.ts).
// https: the time to the first HTTPS page on a new rig host, and a redeploy (bench/https.ts).
// serve: pages a second, latency and errors at 10, 50 and 200 connections, next to a hello-world ceiling (bench/serve.ts).
import { appendFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { $ } from 'zx'
import { benchBackup } from './backup.ts'
import { benchDeploy } from './deploy.ts'
import { benchHttps } from './https.ts'
import { benchServe } from './serve.ts'
import { benchStartup } from './startup.ts'

const REPO = new URL('..', import.meta.url).pathname
const env = { ...process.env, COMPOSE_PROJECT_NAME: 'mymdb-bench', WEB_PORT: '18090' }
const sh = $({ cwd: REPO, env, quiet: true })

async function seconds(what: string, fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await fn()
  const s = (performance.now() - start) / 1000
  console.log(`[bench] ${what}: ${s.toFixed(1)} s`)
  return s
}

async function firstPage(): Promise<void> {
  for (;;) {
    const r = await fetch('http://127.0.0.1:18090/').catch(() => null)
    if (r?.status === 200) return
    await new Promise((res) => setTimeout(res, 100))
  }
}

const results: [string, string][] = []
const record = (k: string, v: string) => results.push([k, v])
const only = process.argv[2]
if (only && !['local', 'deploy', 'startup', 'backup', 'https', 'serve'].includes(only)) throw new Error(`npm run bench -- [local|deploy|startup|backup|https|serve], not ${only}`)

if (!only || only === 'startup') await benchStartup(record)
if (!only || only === 'local') await benchLocal()
if (!only || only === 'deploy') await benchDeploy(record)
if (!only || only === 'backup') await benchBackup(record)
if (!only || only === 'https') await benchHttps(record)
if (!only || only === 'serve') await benchServe(record)

async function benchLocal(): Promise<void> {
  // build
  record('cold build, web + db + proxy + cache (--no-cache, base present)', `${(await seconds('cold build', () => sh`npm run --silent build -- --no-cache`)).toFixed(0)} s`)
  const stamp = `${REPO}/django/.bench-stamp`
  writeFileSync(stamp, String(Date.now()))
  try {
    record('code-only rebuild, web (one file in django/ changed)', `${(await seconds('code-only rebuild', () => sh`npm run --silent build -- --only web`)).toFixed(1)} s`)
  } finally {
    rmSync(stamp)
  }
  await sh`npm run --silent build -- --only web`
  for (const image of ['mymdb-base:trixie', 'mymdb-web:latest', 'mymdb-db:latest', 'mymdb-proxy:latest', 'mymdb-cache:latest']) {
    const size = Number((await sh`docker image inspect --format {{.Size}} ${image}`.nothrow()).stdout.trim())
    if (size) record(`image size ${image}`, `${(size / 1e6).toFixed(0)} MB`)
  }

  // run
  await sh`npm run --silent stop -- --delete-data`
  record('up:local to first page, new volumes (incl. sample data)', `${(await seconds('up (new)', async () => { await sh`npm run --silent up:local`; await firstPage() })).toFixed(1)} s`)
  await sh`npm run --silent stop`
  record('up:local to first page, existing volumes', `${(await seconds('up (existing)', async () => { await sh`npm run --silent up:local`; await firstPage() })).toFixed(1)} s`)
  record('docker stop of the web container', `${(await seconds('docker stop web', () => sh`docker compose stop web`)).toFixed(1)} s`)
  await sh`npm run --silent stop -- --delete-data`
}

// summary
const docker = (await sh`docker version --format {{.Server.Version}}`).stdout.trim()
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Docker ${docker}, Node ${process.version}`
const rev = (await sh`git rev-parse --short HEAD`).stdout.trim()
const table = results.map(([k, v]) => `| ${k} | ${v} |`).join('\n')
appendFileSync(`${REPO}/bench/RESULTS.md`, `\n## ${new Date().toISOString().slice(0, 16)}Z, commit ${rev}\n${machine}\n\n| what | measured |\n| --- | --- |\n${table}\n`)
console.log(table)
