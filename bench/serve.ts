// npm run bench -- serve: how fast the shipped stack serves pages on this machine. Its own Compose
// project (mymdb-bench-serve, port 18096, removed afterwards), the sample catalogue plus votes, and
// next to it the ceiling: a hello-world WSGI app under the same uWSGI, nginx and front
// (bench/serve/compose.yml, port 18097), web on its own port (18098: the front's cost) and the
// front with a domain for the HTTPS figure (bench/httpsfront.ts, port 18099). autocannon (from npm) loads each page at 10, 50 and 200
// connections, in interleaved rounds; each figure is the median of the rounds. The load generator
// shares the machine's cores with the stack, so read the figures as ratios within one run.
import { $ } from 'zx'
import { startHttpsFront, HTTPS_DOMAIN, type HttpsFront } from './httpsfront.ts'
import { psqlArgs } from './measure.ts'

const REPO = new URL('..', import.meta.url).pathname
const PORT = 18096
const HELLO_PORT = 18097
const WEB_PORT = 18098
const HTTPS_PORT = 18099
const ROUNDS = 3
const SECONDS = 5
const CONNECTIONS = [10, 50, 200] as const
const USERS = 200
const env = {
  ...process.env,
  COMPOSE_PROJECT_NAME: 'mymdb-bench-serve',
  WEB_PORT: String(PORT),
  DJANGO_ALLOWED_HOSTS: `127.0.0.1,localhost,${HTTPS_DOMAIN}`,
  FORCE_COLOR: '0',
  MYMDB_BENCH_HELLO_PORT: String(HELLO_PORT),
  MYMDB_BENCH_WEB_PORT: String(WEB_PORT),
}
const sh = $({ cwd: REPO, env, quiet: true })
const compose = (...args: string[]) => sh`docker compose -f docker-compose.yml -f bench/serve/compose.yml ${args}`

const sql = (q: string) => compose(...psqlArgs(q))

interface Figures {
  rps: number
  p50: number
  p99: number
  errors: number
  timeouts: number
  non2xx: number
}

interface Target {
  name: string
  url: string
  cookie?: string
  /** The Host header (default 127.0.0.1) and autocannon's other options (TLS). */
  host?: string
  args?: string[]
}

/** One autocannon run (JSON output). */
async function cannon(t: Target, connections: number): Promise<Figures> {
  const headers = ['--headers', `host=${t.host ?? '127.0.0.1'}`, ...(t.cookie ? ['--headers', `cookie=${t.cookie}`] : [])]
  const r = await $({ cwd: REPO, quiet: true })`node_modules/.bin/autocannon --json --connections ${connections} --duration ${SECONDS} --timeout 5 ${headers} ${t.args ?? []} ${t.url}`
  const j = JSON.parse(r.stdout) as { requests: { average: number }; latency: { p50: number; p99: number }; errors: number; timeouts: number; non2xx: number }
  return { rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, errors: j.errors, timeouts: j.timeouts, non2xx: j.non2xx }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

/** The web container's memory now (docker stats), e.g. "87.3MiB". */
async function webMemory(): Promise<string> {
  const id = (await compose('ps', '--quiet', 'web')).stdout.trim()
  return (await sh`docker stats --no-stream --format ${'{{.MemUsage}}'} ${id}`).stdout.split('/')[0]?.trim() ?? '?'
}

export async function benchServe(record: (what: string, value: string) => void): Promise<void> {
  let httpsFront: HttpsFront | undefined
  try {
    await sh`npm run --silent stop -- --delete-data --yes`
    await sh`npm run --silent up:local`
    // votes: USERS users, each voting on every movie
    await sql(`insert into auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) select '!', false, 'bench' || g, '', '', '', false, true, now() from generate_series(1, ${USERS}) g`)
    await sql(`insert into core_vote (value, user_id, movie_id, voted_on) select case when (u.id + m.id) % 3 = 0 then -1 else 1 end, u.id, m.id, now() from (select id from auth_user where username like 'bench%') u cross join core_movie m`)
    const votes = (await sql('select count(*) from core_vote')).stdout.trim()
    const movie = (await sql('select min(id) from core_movie')).stdout.trim()
    // a logged-in visitor: a session of bench1 (what the login form would set)
    const session = (await compose('exec', '-T', 'web', 'python3', 'manage.py', 'shell', '-c',
      "from django.test import Client; from django.contrib.auth.models import User; c = Client(); c.force_login(User.objects.get(username='bench1')); print(c.cookies['sessionid'].value)")).stdout.trim()
    // (web again, now also published on its own port)
    await compose('up', '--detach', '--wait', '--wait-timeout', '180', 'web', 'hello', 'hello-proxy')
    // the same front with a domain: HTTPS (Caddy) in front of the front's nginx
    const proxy = (await compose('ps', '--quiet', 'proxy')).stdout.trim()
    httpsFront = await startHttpsFront(proxy, `${env.COMPOSE_PROJECT_NAME}_front`, HTTPS_PORT)
    const site = `http://127.0.0.1:${PORT}`
    const targets: Target[] = [
      { name: 'movie list /', url: `${site}/` },
      { name: 'movie list /, at web without the front', url: `http://127.0.0.1:${WEB_PORT}/` },
      { name: 'movie list /, over HTTPS through the front', url: `${httpsFront.url}/`, host: HTTPS_DOMAIN, args: httpsFront.cannonArgs },
      { name: `movie detail /movie/${movie}/`, url: `${site}/movie/${movie}/` },
      { name: 'top 10 /movies/top', url: `${site}/movies/top` },
      { name: `movie detail /movie/${movie}/, logged in`, url: `${site}/movie/${movie}/`, cookie: `sessionid=${session}` },
      { name: '/healthz', url: `${site}/healthz` },
      { name: 'a static file', url: `${site}/static/admin/css/base.css` },
      { name: 'a 404', url: `${site}/no-such-page/` },
      { name: 'hello-world WSGI (the ceiling)', url: `http://127.0.0.1:${HELLO_PORT}/` },
    ]
    const runs = new Map<string, Figures[]>()
    let memory = ''
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of CONNECTIONS) {
        for (const t of targets) {
          const name = t.name
          const pending = cannon(t, c)
          if (c === 200 && name === 'movie list /' && round === ROUNDS) {
            await new Promise((res) => setTimeout(res, (SECONDS * 1000) / 2))
            memory = await webMemory()
          }
          const f = await pending
          const key = `${name} @ ${c}`
          runs.set(key, [...(runs.get(key) ?? []), f])
          console.log(`[bench] round ${round}: ${key}: ${f.rps.toFixed(0)} req/s, p50 ${f.p50} ms, p99 ${f.p99} ms, ${f.errors} errors, ${f.timeouts} timeouts, ${f.non2xx} non-2xx`)
        }
      }
    }
    record('serve: data', `sample catalogue, ${USERS} users, ${votes} votes; ${ROUNDS} interleaved rounds of ${SECONDS} s per page and connection count, medians`)
    for (const [key, fs] of runs) {
      const m = (k: keyof Figures) => median(fs.map((f) => f[k]))
      record(`serve: ${key} connections`, `${m('rps').toFixed(0)} req/s, p50 ${m('p50')} ms, p99 ${m('p99')} ms, ${m('errors')} errors, ${m('timeouts')} timeouts, ${m('non2xx')} non-2xx`)
    }
    for (const c of CONNECTIONS) {
      const ceiling = median((runs.get(`hello-world WSGI (the ceiling) @ ${c}`) ?? []).map((f) => f.rps))
      const ratios = targets.map((t) => t.name).filter((name) => !name.includes(', ')).slice(0, 3).map((name) => `${name.split(' /')[0]} ${(median((runs.get(`${name} @ ${c}`) ?? []).map((f) => f.rps)) / ceiling).toFixed(2)}`)
      record(`serve: pages / ceiling at ${c} connections`, ratios.join(', '))
    }
    // the front's cost for a page web's nginx answers from its cache (an anonymous visitor's movie list)
    for (const c of CONNECTIONS) {
      const rps = (name: string) => median((runs.get(`${name} @ ${c}`) ?? []).map((f) => f.rps))
      const front = rps('movie list /')
      const direct = rps('movie list /, at web without the front')
      const secure = rps('movie list /, over HTTPS through the front')
      const cost = (x: number) => (x >= direct ? `none (${(100 * (x / direct - 1)).toFixed(0)} % more than at web)` : `${(100 * (1 - x / direct)).toFixed(0)} %`)
      record(`serve: the front's cost, cached movie list at ${c} connections`, `${cost(front)} of the throughput over plain HTTP (${front.toFixed(0)} req/s through it, ${direct.toFixed(0)} at web); over HTTPS ${cost(secure)} (${secure.toFixed(0)} req/s)`)
    }
    record('serve: web container memory, movie list at 200 connections', memory)
  } finally {
    await httpsFront?.stop()
    await compose('down', '--volumes', '--remove-orphans').nothrow()
    await sh`npm run --silent stop -- --delete-data --yes`.nothrow()
  }
}
