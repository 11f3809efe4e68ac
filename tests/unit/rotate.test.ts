import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import dotenv from 'dotenv'
import { main } from '../../tasks/rotate.ts'
import { MAX_FALLBACKS, newSecret, rotationChanges, withValues } from '../../tasks/lib/rotation.ts'
import { deploySettings } from '../../tasks/lib/remote/settings.ts'
import { noDocker, tempDir, testDeps } from './fakes.ts'

const KEY = 'k'.repeat(60)
const ENV_TEXT = [
  '# the site',
  `DJANGO_SECRET_KEY='${KEY}'`,
  'DJANGO_DB_PASSWORD=old-db-pw # a comment after',
  '',
  '# the superuser',
  "POSTGRES_PASSWORD='old-pg-pw'",
  'AWS_REGION=us-west-2',
  '',
].join('\n')

describe('rotate', () => {
  it('new values: a 64-character key, 48-hex-digit passwords, never the same twice', () => {
    assert.match(newSecret('secret-key'), /^[A-Za-z0-9_-]{64}$/)
    assert.match(newSecret('db-password'), /^[0-9a-f]{48}$/)
    assert.notEqual(newSecret('postgres-password'), newSecret('postgres-password'))
  })

  it('the old key becomes the first fallback; at most MAX_FALLBACKS are kept', () => {
    const fresh = () => 'NEW'
    const one = rotationChanges(['secret-key'], { DJANGO_SECRET_KEY: 'a' }, {}, fresh)
    assert.deepEqual(one.changes, { DJANGO_SECRET_KEY: 'NEW', DJANGO_SECRET_KEY_FALLBACKS: 'a' })
    const many = rotationChanges(['secret-key'], { DJANGO_SECRET_KEY: 'd', DJANGO_SECRET_KEY_FALLBACKS: 'c b a' }, {}, fresh)
    assert.equal(many.changes.DJANGO_SECRET_KEY_FALLBACKS, ['d', 'c', 'b', 'a'].slice(0, MAX_FALLBACKS).join(' '))
    assert.match(many.said.join(), /oldest of 4 fallbacks dropped/)
  })

  it('refuses, all at once and before writing: no name, an unknown one, one the environment sets, one not in the file', () => {
    assert.throws(() => rotationChanges([], {}, {}), /name what to rotate: secret-key, db-password, postgres-password/)
    assert.throws(
      () => rotationChanges(['api-key', 'secret-key', 'db-password'], { DJANGO_SECRET_KEY: 'x' }, { DJANGO_SECRET_KEY: 'x' }),
      (e: Error) =>
        /api-key: not a secret rotate knows/.test(e.message) &&
        /DJANGO_SECRET_KEY: set in the environment, which wins over the \.env file/.test(e.message) &&
        /DJANGO_DB_PASSWORD: not in the \.env file/.test(e.message),
    )
  })

  it('the file: only the rotated lines change, duplicates go, a missing key is appended', () => {
    const text = 'A=1\n# c\nB=2\nB=3\n'
    assert.equal(withValues(text, { B: 'x', C: 'y' }), "A=1\n# c\nB='x'\nC='y'\n")
    assert.equal(withValues('', { C: 'y' }), "C='y'\n")
  })

  it('npm run rotate: writes new values into .env (mode 0600, no temporary file left) that a deploy reads back', async () => {
    const { dir, envFile } = tempDir(ENV_TEXT)
    const d = testDeps(noDocker(), { envFile })
    assert.equal(await main(['secret-key', 'db-password', 'postgres-password'], {}, d), 0, d.log.text())
    const after = dotenv.parse(readFileSync(envFile, 'utf8'))
    assert.equal(after.DJANGO_SECRET_KEY_FALLBACKS, KEY)
    assert.notEqual(after.DJANGO_SECRET_KEY, KEY)
    assert.notEqual(after.DJANGO_DB_PASSWORD, 'old-db-pw')
    assert.notEqual(after.POSTGRES_PASSWORD, 'old-pg-pw')
    assert.equal(after.AWS_REGION, 'us-west-2')
    assert.match(readFileSync(envFile, 'utf8'), /^# the superuser$/m)
    assert.equal(statSync(envFile).mode & 0o777, 0o600)
    assert.deepEqual(readdirSync(dir), ['.env'])
    assert.match(d.log.text(), /apply: npm run deploy:aws/)
    // what the deploy's settings make of them: production values, the fallback kept
    const s = deploySettings({ ...after, DJANGO_UPLOAD_S3_BUCKET: 'mymdb-uploads-x', MYMDB_REGISTRY: 'ecr', HOME: dir })
    assert.equal(s.DJANGO_SECRET_KEY_FALLBACKS, KEY)
    // a bad name: exit 2, the file untouched
    const before = readFileSync(envFile, 'utf8')
    const bad = testDeps(noDocker(), { envFile })
    assert.equal(await main(['api-key'], {}, bad), 2)
    assert.equal(readFileSync(envFile, 'utf8'), before)
  })

  it('no .env file: exit 2 saying where the secrets live', async () => {
    const { envFile } = tempDir()
    const d = testDeps(noDocker(), { envFile })
    assert.equal(await main(['db-password'], {}, d), 2)
    assert.match(d.log.text(), /cannot be read: the secrets to rotate live in the \.env file/)
    writeFileSync(envFile, '')
    assert.equal(await main(['db-password'], {}, testDeps(noDocker(), { envFile })), 2)
  })
})
