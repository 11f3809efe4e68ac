// The backup format and its commands, without Docker: names, the manifest check, and that the
// shell redirections hold any path.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { backupCommands, backupScript, fromFile, parseBackupOutput, parseManifest } from '../../tasks/lib/backup.ts'
import { main as restoreMain } from '../../tasks/restore.ts'
import { localStack } from '../../tasks/lib/stack.ts'
import { backupKey, keyKind } from '../../tasks/lib/backupkeys.ts'
import { catchUpScript, cronLines, installCronCmd, longestGapSeconds } from '../../tasks/lib/backupschedule.ts'
import { findBackup, type BucketBackup } from '../../tasks/lib/aws/backupbucket.ts'
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
    const r = parseBackupOutput(`${JSON.stringify(GOOD)}\nMYMDB_BACKUP 1234 mymdb-mymdb-20261127T163225Z.tar /b/mymdb-mymdb-20261127T163225Z.tar\n`)
    assert.deepEqual(r, { size: 1234, name: 'mymdb-mymdb-20261127T163225Z.tar', file: '/b/mymdb-mymdb-20261127T163225Z.tar', manifest: { ...GOOD, reason: 'manual' } })
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
    assert.match(cmd, /^docker compose --project-name mymdb exec -T --user postgres db sh -c PGPASSWORD="\$\{DJANGO_DB_PASSWORD:-\$\(cat "\$\{DJANGO_DB_PASSWORD_FILE:-\/dev\/null\}"\)\}" pg_restore --host="\$\{PGHOST:-127\.0\.0\.1\}" --username="\$DJANGO_DB_USER" --clean --if-exists --no-owner --single-transaction --exit-on-error/)
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

describe('backups in the bucket', () => {
  it('the key says how long it is kept: one rolling key per kind, final and pre-migrate each under a key of their own', () => {
    assert.equal(backupKey('scheduled', 'mymdb-p-20261204T031700Z.tar'), 'rolling/scheduled.tar')
    assert.equal(backupKey('safety', 'x'), 'rolling/safety.tar')
    assert.equal(backupKey('final', 'mymdb-p-20261204T031700Z.tar'), 'kept/final/mymdb-p-20261204T031700Z.tar')
    assert.equal(backupKey('pre-migrate', 'mymdb-p-20261204T031700Z.tar'), 'kept/pre-migrate/mymdb-p-20261204T031700Z.tar')
    assert.deepEqual(keyKind('rolling/manual.tar'), { layout: 'rolling', reason: 'manual' })
    assert.deepEqual(keyKind('kept/final/mymdb-p-20261204T031700Z.tar'), { layout: 'kept', reason: 'final' })
    assert.deepEqual(keyKind('mymdb-p-20261204T031700Z.tar'), { layout: 'legacy', reason: '' })
    for (const other of ['uploads/a.png', 'rolling/manual.txt', 'notes.tar', 'kept/final.tar']) assert.equal(keyKind(other), undefined, other)
    // the script uploads to the key of its kind
    const s = localStack((() => assert.fail('nothing runs')) as never, '/repo', 'mymdb')
    assert.match(backupScript(s, { dir: 'b', source: 'p', reason: 'final', media: false, upload: { envFile: 'backup.env' } }), /key="kept\/final\/\$name"/)
    assert.match(backupScript(s, { dir: 'b', source: 'p', reason: 'scheduled', media: false, upload: { envFile: 'backup.env' } }), /key="rolling\/scheduled\.tar"/)
  })
  it('a restore takes the one backup of that name, or of that version id; never one of two claiming a name, nor one without a digest', () => {
    const item = (name: string, versionId: string, sha256: string, o: Partial<BucketBackup> = {}): BucketBackup => ({
      at: '2026-12-04T03:17:00.000Z', size: 1, database: 'mymdb', media: false, revision: '', reason: 'manual', where: name, name, key: 'rolling/manual.tar', versionId, sha256, legacy: false, ...o,
    })
    const real = item('mymdb-p-20261204T031700Z.tar', 'v-real', 'a'.repeat(64))
    const old = item('mymdb-p-20261101T031700Z.tar', 'v-old', '', { key: 'mymdb-p-20261101T031700Z.tar', legacy: true })
    assert.equal(findBackup([real, old], 'mymdb-p-20261204T031700Z.tar', 'b'), real)
    assert.equal(findBackup([real, old], 'v-real', 'b'), real)
    assert.equal(findBackup([real, old], 'mymdb-p-20261101T031700Z.tar', 'b'), old, 'made before digests: allowed (the restore warns)')
    assert.throws(() => findBackup([real], 'mymdb-p-20000101T000000Z.tar', 'b'), /no backup mymdb-p-20000101T000000Z\.tar in s3:\/\/b/)
    const claim = item('mymdb-p-20261204T031700Z.tar', 'v-claim', 'b'.repeat(64))
    assert.throws(() => findBackup([claim, real], 'mymdb-p-20261204T031700Z.tar', 'b'), /2 backups in s3:\/\/b are named mymdb-p-20261204T031700Z\.tar[\s\S]*v-claim[\s\S]*v-real/)
    assert.equal(findBackup([claim, real], 'v-real', 'b'), real)
    const unsigned = item('mymdb-p-20261205T031700Z.tar', 'v-none', '')
    assert.throws(() => findBackup([unsigned], 'mymdb-p-20261205T031700Z.tar', 'b'), /has no SHA-256 recorded with it/)
    assert.throws(() => findBackup([unsigned], 'v-none', 'b'), /has no SHA-256 recorded with it/)
  })
})

describe('two backups in the same second', () => {
  it("a run that ends early (here: no database running) removes nothing of another run's files of the same second", () => {
    const { dir } = tempDir()
    // stand-ins: docker answers nothing (no service runs), date's clock is fixed
    writeFileSync(join(dir, 'docker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 })
    writeFileSync(join(dir, 'date'), '#!/bin/sh\ncase "$*" in *+%s*) echo 1765000000 ;; *) exec /usr/bin/date "$@" ;; esac\n', { mode: 0o755 })
    const s = localStack(noDocker(), dir, 'mymdb')
    const script = backupScript(s, { dir: join(dir, 'backups'), source: 'mymdb', reason: 'manual', media: false })
    const name = `mymdb-mymdb-${new Date(1765000000 * 1000).toISOString().replace(/[-:]|\.\d+/g, '')}.tar`
    // what another run of that second has made so far: its work directory (as this script names one, and as earlier versions did)
    const theirs = [join(dir, 'backups', `.${name}.AbC123`), join(dir, 'backups', `${name}.partial.d`)]
    for (const d of theirs) mkdirSync(d, { recursive: true })
    writeFileSync(join(theirs[0]!, 'manifest.json'), '{}')
    let failed: unknown
    try {
      execFileSync('sh', ['-c', script], { cwd: dir, env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, stdio: 'pipe' })
    } catch (e) {
      failed = e
    }
    assert.match(String((failed as { stderr?: Buffer })?.stderr ?? ''), /the database is not running/)
    for (const d of theirs) assert.ok(existsSync(d), `${d} is still there`)
    assert.ok(existsSync(join(theirs[0]!, 'manifest.json')))
  })
})

describe('the backup schedule on the host', () => {
  it('the catch-up check: nothing while the last good backup is younger than the limit; a backup when it is older, or there is none', () => {
    const { dir } = tempDir()
    writeFileSync(join(dir, 'backup.sh'), 'echo "backup ran"\n')
    const script = catchUpScript(3600)
    const run = () => execFileSync('sh', ['-c', `${script}\ncat last-backup.log 2>/dev/null || true`], { cwd: dir, encoding: 'utf8' })
    assert.match(run(), /catch-up: the last good backup is from never: taking the one the schedule missed\nbackup ran/)
    const rec = (at: Date, ok: boolean) => `{"at":"${at.toISOString().replace(/\.\d+Z$/, 'Z')}","reason":"scheduled","ok":${ok},"size":1,"name":"n","file":"f"}\n`
    writeFileSync(join(dir, 'last-backup.log'), '')
    writeFileSync(join(dir, 'backups.log'), rec(new Date(Date.now() - 600_000), true) + rec(new Date(), false))
    assert.equal(run(), '', 'a good backup ten minutes old: nothing (a failed one after it does not count)')
    writeFileSync(join(dir, 'backups.log'), rec(new Date(Date.now() - 7_200_000), true))
    assert.match(run(), /the last good backup is from \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: taking the one the schedule missed\nbackup ran/)
  })
  it('the crontab: both lines replace earlier ones of ours, other lines stay', () => {
    const { dir } = tempDir()
    // a crontab stand-in that keeps the table in a file: `crontab -l` prints it, `crontab -` reads all, then replaces it
    writeFileSync(join(dir, 'crontab'), '#!/bin/sh\nif [ "$1" = -l ]; then cat "$(dirname "$0")/table"; else t=$(cat); printf "%s\\n" "$t" > "$(dirname "$0")/table"; fi\n', { mode: 0o755 })
    writeFileSync(join(dir, 'table'), '5 5 * * * other job\n17 3 * * * cd "$HOME/mymdb" && sh backup.sh > last-backup.log 2>&1 # mymdb-backup\n')
    const install = (lines: string[]) => {
      const cmd = installCronCmd(lines)
      execFileSync(cmd[0]!, cmd.slice(1), { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } })
      return readFileSync(join(dir, 'table'), 'utf8')
    }
    assert.equal(install(cronLines('0 4 * * *')), `5 5 * * * other job\n${cronLines('0 4 * * *').join('\n')}\n`)
    assert.match(cronLines('0 4 * * *')[1] ?? '', /^30 \* \* \* \* cd "\$HOME\/mymdb" && sh catch-up\.sh # mymdb-backup-catch-up$/)
    assert.equal(install([]), '5 5 * * * other job\n')
    assert.equal(longestGapSeconds('*/15 * * * *'), 900)
    assert.equal(longestGapSeconds('@weekly'), 7 * 86400)
  })
})
