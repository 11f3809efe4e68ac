// The backup format and its commands, without Docker: names, the manifest check, and that the
// shell redirections hold any path.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { backupCommands, backupScript, fromFile, parseBackupOutput, parseManifest } from '../../tasks/lib/backup.ts'
import { main as restoreMain } from '../../tasks/restore.ts'
import { localStack } from '../../tasks/lib/stack.ts'
import { noDocker, tempDir, testDeps } from './fakes.ts'

const GOOD = { format: 'mymdb-backup', version: 1, createdAt: '2026-11-27T16:32:25.881Z', source: 'mymdb', database: 'mymdb', revision: 'abc1234', postgres: '17.12', media: true }

describe('backup format', () => {
  it('the backup script is valid POSIX sh, with and without the upload; its output is read back', () => {
    const s = localStack(noDocker(), '/repo', 'mymdb')
    for (const upload of [undefined, { envFile: 'backup.env' }]) {
      const script = backupScript(s, { dir: "/tmp/a b'c", source: 'mymdb', reason: 'manual', media: true, upload })
      execFileSync('sh', ['-n', '-c', script])
      assert.ok(script.includes(`dir='/tmp/a b'\\''c'`), script)
      assert.equal(script.includes('s3_backup.py'), upload !== undefined)
    }
    const r = parseBackupOutput(`${JSON.stringify(GOOD)}\nMYMDB_BACKUP 1234 /b/mymdb-mymdb-20261127T163225Z.tar\n`)
    assert.deepEqual(r, { size: 1234, file: '/b/mymdb-mymdb-20261127T163225Z.tar', manifest: { ...GOOD, reason: 'manual' } })
    assert.throws(() => parseBackupOutput('oops'), /no result line/)
  })
  it('a manifest is checked: format, version, the facts', () => {
    assert.deepEqual(parseManifest(JSON.stringify(GOOD)), { ...GOOD, reason: 'manual' })
    assert.throws(() => parseManifest('{'), /not JSON/)
    assert.throws(() => parseManifest(JSON.stringify({ ...GOOD, format: 'other' })), /not a mymdb-backup/)
    assert.throws(() => parseManifest(JSON.stringify({ ...GOOD, version: 2 })), /version 2 of the backup format; this MyMDB reads version 1/)
    assert.throws(() => parseManifest(JSON.stringify({ ...GOOD, database: '' })), /no database/)
  })
  it('fromFile: the shell reads the file, whatever its name', () => {
    const { dir } = tempDir()
    const path = join(dir, "a b $x 'q'.dump")
    writeFileSync(path, 'from the file')
    const cmd = fromFile(['cat'], path)
    assert.equal(execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' }), 'from the file')
  })
  it('the restore runs in one transaction, logged in as the application role (not postgres)', () => {
    const cmd = backupCommands.restore(localStack(noDocker(), '/repo', 'mymdb')).join(' ')
    assert.match(cmd, /^docker compose --project-name mymdb exec -T --user postgres db sh -c PGPASSWORD="\$DJANGO_DB_PASSWORD" pg_restore --host=127\.0\.0\.1 --username="\$DJANGO_DB_USER" --clean --if-exists --no-owner --single-transaction --exit-on-error/)
    assert.doesNotMatch(cmd, /--role/)
  })
})

describe('restore: checks before anything changes', () => {
  it('no file, or one that does not exist: exit 2 before any command', async () => {
    const d = testDeps(noDocker())
    assert.equal(await restoreMain([], {}, d), 2)
    assert.match(d.log.err.join(''), /name one backup file/)
    assert.equal(await restoreMain([join(tempDir().dir, 'none.tar')], {}, d), 2)
    assert.match(d.log.err.join(''), /is not a file/)
  })
})
