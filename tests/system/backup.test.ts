// npm run backup / backups / restore on a real local stack (own Compose project and port):
// a round trip that survives deleting the data, and restores that must change nothing (a
// damaged file, a foreign file, a restore that fails half-way in the database).
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { $ } from 'zx'
import { copyOfCheckout, waitFor } from './stack.ts'

const PROJECT = 'mymdb-backup-test'
const PORT = 18084
const safety = mkdtempSync(join(tmpdir(), 'mymdb-safety-backups-'))
const env = { ...process.env, COMPOSE_PROJECT_NAME: PROJECT, WEB_PORT: String(PORT), WEB_BIND: '127.0.0.1', FORCE_COLOR: '0', MYMDB_BACKUP_DIR: safety }
/** Its own copy of the checkout (its own .env): the other test files may run up:local meanwhile. */
let checkout = ''
const task = (script: string, args: string[] = [], input = '') =>
  $({ cwd: checkout, env, nothrow: true, quiet: true, input })`npm run --silent ${script} -- ${args}`
/** Python in the web container (manage.py shell), its last output line. */
const py = async (code: string) => {
  const r = await task('manage', ['shell'], `${code}\n`)
  assert.equal(r.exitCode, 0, r.stderr)
  return r.stdout.trim().split('\n').pop() ?? ''
}
const KEEPER = 'from django.contrib.auth.models import User; u = User.objects.filter(username="keeper").first()'
const keeper = () => py(`${KEEPER}; print(u and u.check_password("Keeper-pass-1"), u and u.vote_set.count())`)
const get = async (path: string) => (await fetch(`http://127.0.0.1:${PORT}${path}`)).status
/** A page's HTML, with the session cookie `session` (a session key) when given. */
const page = async (path: string, session?: string) =>
  (await fetch(`http://127.0.0.1:${PORT}${path}`, { headers: session ? { cookie: `sessionid=${session}` } : {} })).text()

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC'

describe('backup and restore of the local stack', { timeout: 15 * 60_000 }, () => {
  let dir: string
  let backup = ''
  let poster = ''

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mymdb-backups-'))
    checkout = await copyOfCheckout()
    await task('stop', ['--delete-data', '--yes'])
    const up = await task('up:local')
    assert.equal(up.exitCode, 0, up.stderr)
    // a user, a vote and a poster, as the site would make them
    poster = await py(
      [
        'from django.contrib.auth.models import User',
        'from core.models import Movie, Vote, MovieImage',
        'from django.core.files.base import ContentFile',
        'import base64',
        'u = User.objects.create_user("keeper", password="Keeper-pass-1")',
        'm = Movie.objects.order_by("id").first()',
        'Vote.objects.create(user=u, movie=m, value=1)',
        `print(MovieImage.objects.create(image=ContentFile(base64.b64decode("${PNG}"), name="p.png"), movie=m, user=u).image.url)`,
      ].join('\n'),
    )
    assert.match(poster, /^\/media\/movie_images\/[0-9a-f]{32}\.png$/)
  })

  after(async () => {
    await task('stop', ['--delete-data', '--yes'])
    for (const d of [dir, safety, checkout]) if (d) rmSync(d, { recursive: true, force: true })
  })

  test('npm run backup: one file, readable by its owner only, listed by npm run backups', async () => {
    const r = await task('backup', ['--to', dir])
    assert.equal(r.exitCode, 0, r.stderr)
    const files = readdirSync(dir)
    assert.equal(files.length, 1, files.join(' '))
    assert.match(files[0] ?? '', new RegExp(`^mymdb-${PROJECT}-\\d{8}T\\d{6}Z\\.tar$`))
    backup = join(dir, files[0] ?? '')
    assert.equal(statSync(backup).mode & 0o777, 0o600)
    assert.deepEqual((await $({ quiet: true })`tar -tf ${backup}`).stdout.trim().split('\n').sort(), ['db.dump', 'manifest.json', 'media.tar'])
    const list = await task('backups', ['--in', dir])
    assert.equal(list.exitCode, 0, list.stderr)
    assert.match(list.stdout, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC +[\d.]+ MB {2}mymdb \+ uploads {2}commit [0-9a-f]{7,}/)
  })

  test('the data is deleted; npm run restore brings back the user, the vote and the poster', async () => {
    const stop = await task('stop', ['--delete-data', '--yes'])
    assert.equal(stop.exitCode, 0, stop.stderr)
    assert.equal((await task('up:local')).exitCode, 0)
    assert.equal(await keeper(), 'None None', 'a new database: no keeper')
    assert.equal(await get(poster), 404)

    const r = await task('restore', ['--yes', backup])
    assert.equal(r.exitCode, 0, r.stderr)
    assert.match(r.stdout, /safety backup of the current data: .*mymdb-safety-backups-\w+\/mymdb-/)
    assert.equal(readdirSync(safety).length, 1, 'the safety backup is in MYMDB_BACKUP_DIR')
    assert.equal(await keeper(), 'True 1')
    assert.equal(await get(poster), 200)
    assert.equal(await get('/healthz'), 200)
  })

  test('a restore ends every session made since the backup: none stays valid in the cache', async () => {
    // the keeper exists in the backup with the same password: only the session itself is newer
    const session = await py(
      `${KEEPER}; from django.contrib.sessions.backends.cached_db import SessionStore; s = SessionStore(); ` +
        's["_auth_user_id"] = str(u.pk); s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"; ' +
        's["_auth_user_hash"] = u.get_session_auth_hash(); s.create(); print(s.session_key)',
    )
    assert.match(await page('/', session), /id="logged-in-as">Logged in as keeper/, 'the session works before the restore')
    const r = await task('restore', ['--yes', '--no-safety-backup', backup])
    assert.equal(r.exitCode, 0, r.stderr)
    const after = await page('/', session)
    assert.match(after, /<html/i)
    assert.doesNotMatch(after, /logged-in-as/, 'the session made after the backup ended with the restore')
  })

  test('a damaged file, a foreign file or no file: exit 2, nothing changed', async () => {
    const work = mkdtempSync(join(tmpdir(), 'mymdb-damaged-'))
    try {
      await $({ quiet: true, cwd: work })`tar -xf ${backup}`
      await $({ quiet: true, cwd: work })`truncate -s 20000 db.dump`
      await $({ quiet: true, cwd: work })`tar -cf damaged.tar manifest.json db.dump media.tar`
      const damaged = await task('restore', ['--yes', join(work, 'damaged.tar')])
      assert.equal(damaged.exitCode, 2, damaged.stdout)
      assert.match(damaged.stderr, /is damaged: its database dump does not read .*; nothing was changed/)
      writeFileSync(join(work, 'foreign.tar'), 'not a tar at all')
      const foreign = await task('restore', ['--yes', join(work, 'foreign.tar')])
      assert.equal(foreign.exitCode, 2)
      assert.match(foreign.stderr, /is not a MyMDB backup: it has no manifest\.json/)
      const none = await task('restore', ['--yes', join(work, 'nothing.tar')])
      assert.equal(none.exitCode, 2)
      assert.match(none.stderr, /is not a file/)
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
    assert.equal(await keeper(), 'True 1')
  })

  test('a forged dump with RESET ROLE gains nothing: the restore runs as the application role, fails, and changes nothing', async () => {
    // A compromised host could upload any file as a backup. Here: a real dump whose first CREATE
    // INDEX statement (in the dump's uncompressed table of contents) is overwritten, same length,
    // with SQL that returns to the session's own role and makes the application role a superuser.
    const work = mkdtempSync(join(tmpdir(), 'mymdb-forged-'))
    const superuser = async () =>
      (await $({ cwd: checkout, env, quiet: true })`docker compose exec -T --user postgres db sh -c ${'psql -tAc "select rolsuper from pg_roles where rolname = \'$DJANGO_DB_USER\'"'}`).stdout.trim()
    try {
      await $({ quiet: true, cwd: work })`tar -xf ${backup}`
      const dump = readFileSync(join(work, 'db.dump'))
      const found = /CREATE INDEX [^;\n]*;\n/.exec(dump.toString('latin1'))
      assert.ok(found, 'the dump has a CREATE INDEX statement')
      const payload = 'RESET ROLE; ALTER ROLE mymdb SUPERUSER; --'
      assert.ok(found[0].length > payload.length + 1)
      dump.write(`${payload}${' '.repeat(found[0].length - payload.length - 1)}\n`, found.index, 'latin1')
      writeFileSync(join(work, 'db.dump'), dump)
      await $({ quiet: true, cwd: work })`tar -cf forged.tar manifest.json db.dump media.tar`
      assert.equal(await superuser(), 'f')
      const r = await task('restore', ['--yes', '--no-safety-backup', join(work, 'forged.tar')])
      assert.equal(r.exitCode, 1, r.stdout + r.stderr)
      assert.match(r.stderr, /the database restore failed and was rolled back, the data is as it was/)
      assert.equal(await superuser(), 'f', 'the application role is still not a superuser')
      assert.equal(await keeper(), 'True 1')
      await waitFor('the site back after the refused restore', 60, async () => (await get('/healthz')) === 200)
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  })

  test('a restore that fails inside the database is rolled back: the data is as it was, the site runs', async () => {
    // A view of our own depends on a table the restore must drop: PostgreSQL refuses, mid-way.
    const psql = (sql: string) => $({ cwd: checkout, env, quiet: true })`docker compose exec -T --user postgres db sh -c ${`psql -v ON_ERROR_STOP=1 -d "$DJANGO_DB_NAME" -c '${sql}'`}`
    await psql('CREATE VIEW users_seen AS SELECT username FROM auth_user')
    await py(`${KEEPER}; u.set_password("Changed-after-backup-2"); u.save(); print("ok")`)
    // a poster uploaded after the backup: a restore that fails must leave it too
    const newer = await py(
      [
        'import base64; from django.core.files.base import ContentFile; from core.models import Movie, MovieImage',
        `${KEEPER}; m = Movie.objects.order_by("id").first()`,
        `print(MovieImage.objects.create(image=ContentFile(base64.b64decode("${PNG}"), name="n.png"), movie=m, user=u).image.url)`,
      ].join('\n'),
    )
    assert.equal(await get(newer), 200)
    try {
      const r = await task('restore', ['--yes', '--no-safety-backup', backup])
      assert.equal(r.exitCode, 1, r.stdout)
      assert.match(r.stderr, /the database restore failed and was rolled back, the data is as it was/)
      // the password set after the backup is still the one that works: nothing was restored
      assert.equal(await py(`${KEEPER}; print(u.check_password("Changed-after-backup-2"))`), 'True')
      await waitFor('the site back after the failed restore', 60, async () => (await get('/healthz')) === 200)
      assert.equal(await get(newer), 200, 'the poster uploaded after the backup is still there')
    } finally {
      await psql('DROP VIEW users_seen')
    }
  })
})
