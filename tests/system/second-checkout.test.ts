// A database volume made with other passwords (another checkout of MyMDB on the same machine, or
// a .env deleted since): npm run up:local must say so within seconds, name the cause and the fix,
// and leave the data as it was. Real containers, on their own Compose project and port, from two
// copies of this checkout (each with its own .env, as two clones have).
import assert from 'node:assert/strict'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { $ } from 'zx'
import { copyOfCheckout } from './stack.ts'

const PROJECT = 'mymdb-second-test'
const PORT = 18086
const VOLUME = `${PROJECT}_db-data`

// Only what a shell has, plus the test project: no secrets from the caller's environment.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DJANGO_|POSTGRES_|MYMDB_|COMPOSE_|WEB_)/.test(k)))
Object.assign(env, { COMPOSE_PROJECT_NAME: PROJECT, WEB_PORT: String(PORT), WEB_BIND: '127.0.0.1', FORCE_COLOR: '0' })

const task = (dir: string, script: string, args: string[] = [], input = '') =>
  $({ cwd: dir, env, nothrow: true, quiet: true, input })`npm run --silent ${script} -- ${args}`

/** up:local, timed (seconds). */
async function upTimed(dir: string) {
  const start = Date.now()
  const r = await task(dir, 'up:local')
  return { r, seconds: (Date.now() - start) / 1000 }
}

const KEEPER = 'from django.contrib.auth.models import User; print("keeper:", User.objects.filter(username="keeper").exists())'
const volumeExists = async () => (await $({ nothrow: true, quiet: true })`docker volume inspect ${VOLUME}`).exitCode === 0

/** What every refusal must say: the volume, the cause, and each way on. */
function assertExplains(stderr: string) {
  assert.match(stderr, new RegExp(`the database in the volume ${VOLUME} was made with other passwords`), stderr)
  assert.match(stderr, /password authentication failed for user "mymdb"/)
  assert.match(stderr, /another checkout of MyMDB on this machine, or with a \.env that has since been deleted/)
  assert.match(stderr, /Nothing was changed/)
  assert.match(stderr, /copy DJANGO_DB_PASSWORD and POSTGRES_PASSWORD from the other checkout's \.env/)
  assert.match(stderr, new RegExp(`COMPOSE_PROJECT_NAME=${PROJECT}-2`))
  assert.match(stderr, new RegExp(`npm run stop -- --delete-data \\(with COMPOSE_PROJECT_NAME=${PROJECT}\\)`))
  assert.doesNotMatch(stderr, /502/)
}

describe('a database volume made with other passwords', { timeout: 10 * 60_000 }, () => {
  let first = ''
  let second = ''

  before(async () => {
    first = await copyOfCheckout()
    second = await copyOfCheckout()
    await task(first, 'stop', ['--delete-data', '--yes'])
    // the first checkout makes the volume with its own generated passwords, and a user in it
    const up = await task(first, 'up:local')
    assert.equal(up.exitCode, 0, up.stdout + up.stderr)
    const made = await task(first, 'manage', ['shell'], 'from django.contrib.auth.models import User; User.objects.create_user("keeper", password="Keeper-pass-1")\n')
    assert.equal(made.exitCode, 0, made.stderr)
    const stop = await task(first, 'stop')
    assert.equal(stop.exitCode, 0, stop.stderr)
  })

  after(async () => {
    if (first) await task(first, 'stop', ['--delete-data', '--yes'])
    for (const d of [first, second]) if (d) rmSync(d, { recursive: true, force: true })
  })

  test('a second checkout (no .env): up:local fails within seconds, names the cause and the fix, writes no .env', async () => {
    const { r, seconds } = await upTimed(second)
    assert.equal(r.exitCode, 2, r.stdout + r.stderr)
    assert.ok(seconds < 45, `took ${seconds} s`)
    assertExplains(r.stderr)
    assert.match(r.stderr, /it refuses the fixed local password of earlier versions, tried because .*\.env has no DJANGO_DB_PASSWORD or POSTGRES_PASSWORD/)
    assert.ok(!existsSync(join(second, '.env')), 'no .env written')
    assert.ok(await volumeExists())
  })

  test('.env with other passwords: the same, quickly, and the .env stays as it was', async () => {
    const envFile = join(first, '.env')
    const original = readFileSync(envFile, 'utf8')
    const changed = original
      .replace(/^DJANGO_DB_PASSWORD=.*$/m, "DJANGO_DB_PASSWORD='local-only-not-the-one'")
      .replace(/^POSTGRES_PASSWORD=.*$/m, "POSTGRES_PASSWORD='local-only-not-this-either'")
    assert.notEqual(changed, original)
    writeFileSync(envFile, changed)
    try {
      const { r, seconds } = await upTimed(first)
      assert.equal(r.exitCode, 2, r.stdout + r.stderr)
      assert.ok(seconds < 45, `took ${seconds} s`)
      assertExplains(r.stderr)
      assert.match(r.stderr, new RegExp(`it refuses DJANGO_DB_PASSWORD from ${envFile.replace(/[.]/g, '\\.')}`))
      assert.equal(readFileSync(envFile, 'utf8'), changed)
      // nothing of the stack left running: the db started for the check is stopped again
      const running = await $({ cwd: first, env, quiet: true })`docker compose ps --status running --services`
      assert.equal(running.stdout.trim(), '')
    } finally {
      writeFileSync(envFile, original)
    }
  })

  test('the data is still there: with the passwords it was made with, up:local runs and the user is in it', async () => {
    assert.ok(await volumeExists())
    const up = await task(first, 'up:local')
    assert.equal(up.exitCode, 0, up.stdout + up.stderr)
    const keeper = await task(first, 'manage', ['shell'], `${KEEPER}\n`)
    assert.equal(keeper.exitCode, 0, keeper.stderr)
    assert.match(keeper.stdout, /keeper: True/)
  })

  test('npm run stop -- --delete-data names every volume it deletes (the proxy\'s certificates too), before and after, and leaves none', async () => {
    const projectVolumes = async () =>
      (await $({ quiet: true })`docker volume ls --quiet --filter label=com.docker.compose.project=${PROJECT}`).stdout.trim().split('\n').filter(Boolean).sort()
    const volumes = await projectVolumes()
    assert.deepEqual(volumes, [`${PROJECT}_db-data`, `${PROJECT}_media`, `${PROJECT}_proxy-data`])
    const r = await task(first, 'stop', ['--delete-data', '--yes'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const listing = r.stdout.slice(0, r.stdout.indexOf('docker compose down'))
    for (const v of volumes) assert.match(listing, new RegExp(`^ {2}${v} +\\S`, 'm'), `${v} listed before:\n${r.stdout}`)
    assert.match(r.stdout, new RegExp(`^\\[stop\\] stopped; deleted: ${volumes.join(', ')}$`, 'm'))
    assert.deepEqual(await projectVolumes(), [])
  })
})
