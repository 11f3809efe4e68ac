// npm run bench -- backup: backup and restore of the local stack (own project mymdb-bench-backup,
// port 18095, removed afterwards): time and size with the sample catalogue, then with 100 000
// votes (as many users as it takes, each voting on every movie of the catalogue).
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { $ } from 'zx'
import { psqlArgs } from './measure.ts'

const REPO = new URL('..', import.meta.url).pathname
const env = { ...process.env, COMPOSE_PROJECT_NAME: 'mymdb-bench-backup', WEB_PORT: '18095', FORCE_COLOR: '0' }
const sh = $({ cwd: REPO, env, quiet: true })
export const VOTES = 100_000

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await fn()
  return (performance.now() - start) / 1000
}

const sql = (q: string) => sh`docker compose ${psqlArgs(q)}`

export async function benchBackup(record: (what: string, value: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mymdb-bench-backups-'))
  try {
    await sh`npm run --silent stop -- --delete-data --yes`
    await sh`npm run --silent up:local`
    for (const label of ['sample catalogue', `${VOTES.toLocaleString('en')} votes`]) {
      if (label !== 'sample catalogue') {
        const movies = Number((await sql('select count(*) from core_movie')).stdout.trim())
        const users = Math.ceil(VOTES / movies)
        await sql(`insert into auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) select '!', false, 'bench' || g, '', '', '', false, true, now() from generate_series(1, ${users}) g`)
        await sql(`insert into core_vote (value, user_id, movie_id, voted_on) select 1, u.id, m.id, now() from (select id from auth_user where username like 'bench%') u cross join core_movie m limit ${VOTES}`)
        console.log(`[bench] votes: ${(await sql('select count(*) from core_vote')).stdout.trim()}`)
      }
      for (const f of readdirSync(dir)) rmSync(join(dir, f))
      const backup = await timed(() => sh`npm run --silent backup -- --to ${dir}`)
      const file = join(dir, readdirSync(dir)[0] ?? '')
      const size = statSync(file).size / 1e6
      const restore = await timed(() => sh`npm run --silent restore -- --yes --no-safety-backup ${file}`)
      console.log(`[bench] ${label}: backup ${backup.toFixed(1)} s, ${size.toFixed(1)} MB; restore ${restore.toFixed(1)} s`)
      record(`backup, ${label}: time / file size`, `${backup.toFixed(1)} s / ${size.toFixed(1)} MB`)
      record(`restore (no safety backup), ${label}: until the site is healthy`, `${restore.toFixed(1)} s`)
    }
  } finally {
    await sh`npm run --silent stop -- --delete-data --yes`.nothrow()
    rmSync(dir, { recursive: true, force: true })
  }
}
