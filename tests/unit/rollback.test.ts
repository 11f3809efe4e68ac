import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError, UserError } from '../../tasks/lib/errors.ts'
import { deployRecord, envEdit, parseDeployLog, pickRelease, pruneRefs, releases, unknownMigrationsCmd } from '../../tasks/lib/releases.ts'
import { hostStack } from '../../tasks/lib/stack.ts'
import { main } from '../../tasks/rollback.ts'
import { fakeRemote, fakeLockTable, noDocker, swarmHost, testDeps, testKeyFile, TEST_HOST_KEY } from './fakes.ts'

const images = (tag: string) => ({ web: `reg:5000/mymdb-web:${tag}`, db: `reg:5000/mymdb-db@sha256:${'d'.repeat(64)}`, proxy: `reg:5000/mymdb-proxy@sha256:${'e'.repeat(64)}`, cache: `reg:5000/mymdb-cache@sha256:${'f'.repeat(64)}` })
const line = (tag: string, at: string, ok = true) => deployRecord(images(tag), 'ada@laptop', new Date(at), { ok, seconds: 30, ...(ok ? {} : { error: 'boom' }) })
const LOG = [
  '{"at":"2026-11-01T00:00:00Z","by":"old","tag":"v0","result":"ok"}\n', // before the front: no proxy image recorded
  line('v1', '2026-11-02T00:00:00Z'),
  line('v2', '2026-11-03T00:00:00Z'),
  line('v3', '2026-11-04T00:00:00Z', false),
  line('v2', '2026-11-05T00:00:00Z'),
  line('v4', '2026-11-06T00:00:00Z'),
].join('')

describe('releases and the pick of a rollback', () => {
  it('newest first, one per tag, only successful starts with all three images recorded', () => {
    assert.deepEqual(releases(parseDeployLog(LOG)).map((r) => [r.tag, r.at]), [
      ['v4', '2026-11-06T00:00:00.000Z'],
      ['v2', '2026-11-05T00:00:00.000Z'],
      ['v1', '2026-11-02T00:00:00.000Z'],
    ])
  })
  it('the one before the running one, or the named one; unknown and missing ones say why', () => {
    const list = releases(parseDeployLog(LOG))
    assert.equal(pickRelease(list).target.tag, 'v2')
    assert.equal(pickRelease(list, 'v1').target.tag, 'v1')
    assert.throws(() => pickRelease(list, 'v3'), (e: unknown) => e instanceof ConfigError && /no such release on the host; the releases, newest first: v4, v2, v1/.test(e.message))
    assert.throws(() => pickRelease([]), (e: unknown) => e instanceof UserError && /deploy first/.test(e.message))
    assert.throws(() => pickRelease(list.slice(0, 1)), (e: unknown) => e instanceof UserError && /only one release \(v4\)/.test(e.message))
  })
  it("the .env edit names the release's five image settings", () => {
    assert.equal(
      envEdit(images('v1')),
      `s|^MYMDB_WEB_IMAGE=.*$|MYMDB_WEB_IMAGE='reg:5000/mymdb-web'|;s|^MYMDB_TAG=.*$|MYMDB_TAG='v1'|;s|^MYMDB_DB_REF=.*$|MYMDB_DB_REF='${images('v1').db}'|;s|^MYMDB_PROXY_REF=.*$|MYMDB_PROXY_REF='${images('v1').proxy}'|;s|^MYMDB_CACHE_REF=.*$|MYMDB_CACHE_REF='${images('v1').cache}'|`,
    )
  })
  it('a release recorded before the cache came in keeps the running cache', () => {
    const old = '{"at":"2026-11-01T00:00:00Z","by":"old","tag":"v1","result":"ok","web":"reg:5000/mymdb-web:v1","db":"reg:5000/mymdb-db:v1","proxy":"reg:5000/mymdb-proxy:v1"}\n'
    const [release] = releases(parseDeployLog(old))
    assert.equal(release?.images.cache, '')
    const edit = envEdit(release!.images)
    assert.doesNotMatch(edit, /MYMDB_CACHE_REF/)
    assert.match(edit, /MYMDB_PROXY_REF='reg:5000\/mymdb-proxy:v1'/)
  })
  it("the schema check runs the release's own code in a throw-away container", () => {
    const remote = { where: 'h', run: async () => { throw new Error('no') } }
    // Swarm: the release's image with web's environment (from the service), on both stack networks
    const cmd = unknownMigrationsCmd(hostStack(remote), images('v1').web)
    assert.deepEqual(cmd.slice(0, 2), ['sh', '-c'])
    assert.match(cmd[2] ?? '', /^set -eu\nimage=reg:5000\/mymdb-web:v1\n[\s\S]*--env-file \/dev\/fd\/3 \$ca --entrypoint python3 "\$image" "\$@" 3<<EOF\n\$env\nEOF\n\)\ndocker network connect mymdb_back "\$c"\n\[ -n "\$\(docker ps --quiet --filter network=mymdb_front\)" \] \|\| hold=\$\(docker run --detach --rm --network mymdb_front --entrypoint sleep "\$image" 120\)\ndocker start --attach --interactive "\$c"$/)
    assert.deepEqual(cmd.slice(3, 7), ['sh', 'manage.py', 'shell', '-c'])
    assert.match(cmd.at(-1) ?? '', /MigrationLoader/)
    // a host still on Compose: compose run with the release's image
    const old = unknownMigrationsCmd(hostStack(remote, 'compose'), images('v1').web)
    assert.deepEqual(old.slice(0, 12), ['env', 'MYMDB_WEB_IMAGE=reg:5000/mymdb-web', 'MYMDB_TAG=v1', 'docker', 'compose', 'run', '--rm', '--no-deps', '-T', '--entrypoint', 'python3', 'web'])
  })
})

describe('rollback main()', () => {
  const ENV = { AWS_REGION: 'us-west-2', MYMDB_HOST_ADDRESS: '127.0.0.1', MYMDB_SSH_KEY_FILE: testKeyFile(), MYMDB_STAGE: 'test', MYMDB_HOST_KEY: TEST_HOST_KEY }
  const host = (unknownMigrations = '', extra: (cmd: string) => { stdout?: string; exitCode?: number } | undefined = () => undefined) =>
    fakeRemote((cmd) => {
      const e = extra(cmd)
      if (e) return e
      if (cmd.includes('deploys.log 2>/dev/null')) return { stdout: LOG }
      if (cmd.includes('backups.log')) return { stdout: '{"at":"2026-11-05T23:00:00Z","reason":"pre-migrate","ok":true,"size":9,"file":"backups/mymdb-test-20261105T230000Z.tar"}\n' }
      if (cmd.includes('MigrationLoader')) return { stdout: unknownMigrations }
      return swarmHost()(cmd)
    })
  const deps = (remote: ReturnType<typeof fakeRemote>) => ({ ...testDeps(noDocker()), awsClients: () => ({ dynamodb: fakeLockTable() }) as never, openRemote: async () => remote })

  it('bad --to: exit 2 before any connection', async () => {
    const d = deps(host())
    assert.equal(await main(['--to', 'no tag!'], ENV, { ...d, openRemote: async () => assert.fail('connected') }), 2)
    assert.match(d.log.text(), /--to "no tag!": not an image tag/)
  })
  it('goes back to the previous release: .env pointed at its images, the stack updated, the rollback recorded', async () => {
    const remote = host()
    const d = deps(remote)
    assert.equal(await main([], ENV, d), 0, d.log.text())
    const cmds = remote.commands
    const edit = cmds.findIndex((c) => c.includes('sed -i') && c.includes('MYMDB_TAG=') && c.includes('mymdb-web'))
    const up = cmds.findIndex((c) => c.includes('docker stack deploy'))
    assert.ok(cmds.findIndex((c) => c.includes('MigrationLoader')) < edit && edit < up, cmds.join('\n'))
    assert.ok(cmds.some((c) => c.includes('docker image inspect') && c.includes('mymdb-web:v2')))
    const record = JSON.parse(remote.stdin.at(-1) ?? '{}')
    assert.equal(record.tag, 'v2')
    assert.equal(record.rollback_from, 'v4')
    assert.equal(record.result, 'ok')
    assert.match(d.log.text(), /v2 runs again on .* \(was v4/)
  })
  it('a release that lacks migrations the database has: refused, nothing changed, the pre-migrate backup named; --allow-schema-change goes on', async () => {
    const remote = host('core.0002_rig\n')
    const d = deps(remote)
    assert.equal(await main(['--to', 'v1'], ENV, d), 1)
    assert.match(d.log.text(), /the database has migrations v1 does not know: core\.0002_rig[\s\S]*nothing changed[\s\S]*npm run restore -- --aws mymdb-test-20261105T230000Z\.tar/)
    assert.ok(!remote.commands.some((c) => c.includes('sed -i') || c.includes('docker stack deploy')))
    const again = host('core.0002_rig\n')
    const d2 = deps(again)
    assert.equal(await main(['--to', 'v1', '--allow-schema-change'], ENV, d2), 0, d2.log.text())
    assert.ok(again.commands.some((c) => c.includes('docker stack deploy')))
  })
  it("images no longer on the host: refused with what to do instead; --dry-run changes nothing", async () => {
    const gone = host('', (cmd) => (cmd.includes('docker image inspect') ? { exitCode: 1, stderr: 'Error: No such image: reg:5000/mymdb-web:v2' } as never : undefined))
    const d = deps(gone)
    assert.equal(await main([], ENV, d), 1)
    assert.match(d.log.text(), /no longer all on the host[\s\S]*No such image[\s\S]*deploy that commit again/i)
    const dry = host()
    const d2 = deps(dry)
    assert.equal(await main(['--dry-run'], ENV, d2), 0, d2.log.text())
    assert.match(d2.log.text(), /dry run: would point/)
    assert.ok(!dry.commands.some((c) => c.includes('sed -i') || c.includes('docker stack deploy') || c.includes('cat >>')))
  })
  it("--dry-run says who holds the stage's lock and shows the plan; a real run stops at the lock before it connects", async () => {
    const table = fakeLockTable()
    const expires = String(Date.now() + 600_000)
    table.items.set('test', { stage: { S: 'test' }, by: { S: 'ada@laptop' }, command: { S: 'npm run deploy:aws' }, pid: { N: '42' }, since: { S: new Date().toISOString() }, expires: { N: expires }, token: { S: 't' } })
    const dry = host()
    const d = { ...deps(dry), awsClients: () => ({ dynamodb: table }) as never }
    assert.equal(await main(['--dry-run'], ENV, d), 0, d.log.text())
    assert.match(d.log.text(), /\[rollback\] note: stage test is locked by ada@laptop \(npm run deploy:aws, pid 42\).*; a real run would stop here/)
    assert.match(d.log.text(), /v4 -> v2[\s\S]*dry run: would point/)
    const real = host()
    const d2 = { ...deps(real), awsClients: () => ({ dynamodb: table }) as never, openRemote: async () => assert.fail('connected') }
    assert.equal(await main([], ENV, d2), 1, d2.log.text())
    assert.match(d2.log.text(), /locked by ada@laptop/)
  })
})

describe('pruneRefs', () => {
  it("removes the stack's images that no kept release uses, by tag or by digest; other repositories and kept ids stay", () => {
    const listing = [
      'reg:5000/mymdb-web v1 sha256:aaa sha256:id1',
      'reg:5000/mymdb-web v2 sha256:bbb sha256:id2',
      'reg:5000/mymdb-web latest sha256:bbb sha256:id2',
      'reg:5000/mymdb-db <none> sha256:ccc sha256:id3',
      'reg:5000/mymdb-db <none> sha256:ddd sha256:id4',
      'reg:5000/mymdb-proxy <none> <none> sha256:id5',
      'debian trixie-slim <none> sha256:id6',
    ].join('\n')
    assert.deepEqual(pruneRefs(listing, ['reg:5000/mymdb-web', 'reg:5000/mymdb-db', 'reg:5000/mymdb-proxy'], new Set(['sha256:id2', 'sha256:id4'])), ['reg:5000/mymdb-web:v1', 'reg:5000/mymdb-db@sha256:ccc'])
  })
})
