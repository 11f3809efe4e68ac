// status, logs, manage, ssh without Docker or a host: their options, the commands they run here
// and on the host (fake runner / fake SSH session), what they show, and that bad input stops
// them before anything connects.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'
import { ConfigError } from '../../tasks/lib/errors.ts'
import { splitRest } from '../../tasks/lib/main.ts'
import { logsOptions, main as logsMain } from '../../tasks/logs.ts'
import { main as manageMain } from '../../tasks/manage.ts'
import { main as sshMain } from '../../tasks/ssh.ts'
import { main as statusMain } from '../../tasks/status.ts'
import { backupProblem, formatStatus, parseDf, parseInspect, parseNodes } from '../../tasks/lib/status.ts'
import { parseServiceTasks } from '../../tasks/lib/stackfile.ts'
import { parseDeployLine } from '../../tasks/lib/releases.ts'
import { formatAge, plainOutput } from '../../tasks/lib/log.ts'
import { parseBackupLog } from '../../tasks/lib/backup.ts'
import { absentStageServices, fakeRemote, fakeRunner, noDocker, swarmHost, testDeps, testKeyFile, TEST_HOST_KEY, type FakeRemote } from './fakes.ts'
import { parseHostKey } from '../../tasks/lib/hostkey.ts'
import { HOST_RUNS_CMD } from '../../tasks/lib/stack.ts'
import { showCommand } from '../../tasks/lib/sh.ts'

const PS = [
  { Name: 'mymdb-web-1', Service: 'web', State: 'running', Health: 'healthy', Publishers: [] },
  { Name: 'mymdb-db-1', Service: 'db', State: 'running', Health: 'healthy', Publishers: [] },
]
const INSPECT = '/mymdb-web-1|2026-11-27T10:00:00.5Z|127.0.0.1:5000/mymdb-web:abc1234|abc1234\n/mymdb-db-1|2026-11-27T09:00:00Z|127.0.0.1:5000/mymdb-db:abc1234|<no value>\n'
const DF = 'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 264000000 20000000 83886080 20% /\n'

/** Answers of a stack that runs (for the fake runner here and the fake session there). */
function stackAnswers(cmd: string) {
  if (/compose( --project-name \S+)? ps --all --format json/.test(cmd)) return { stdout: PS.map((p) => JSON.stringify(p)).join('\n') }
  if (cmd.startsWith('docker inspect')) return { stdout: INSPECT }
  if (cmd.includes('pg_database_size')) return { stdout: '12 MB\n' }
  if (cmd.includes('df -Pk')) return { stdout: DF.split('\n')[1] ?? '' }
  if (cmd.includes('deploys.log')) return { stdout: '{"at":"2026-11-27T10:00:00.123Z","by":"ada@laptop","tag":"abc1234","web":"x","db":"y"}\n' }
  return undefined
}

/** AWS with one running host of stage qa at 203.0.113.7. */
function awsWithHost(state = 'running'): () => AwsClients {
  return () =>
    ({
      region: 'us-west-2',
      ec2: {
        send: async () => ({
          Reservations: [{ Instances: [{ InstanceId: 'i-0abc', State: { Name: state }, PublicIpAddress: state === 'running' ? '203.0.113.7' : '', PublicDnsName: '', Tags: [{ Key: 'HostKey', Value: TEST_HOST_KEY }] }] }],
        }),
      },
    }) as unknown as AwsClients
}

const noAws = () => {
  throw new Error('AWS clients were made')
}

function hostEnv() {
  return { AWS_REGION: 'us-west-2', MYMDB_STAGE: 'qa', MYMDB_SSH_KEY_FILE: testKeyFile() }
}

/** A fake session factory that records where it connected. */
function opener(remote: FakeRemote) {
  const opened: string[] = []
  return {
    opened,
    openRemote: async (o: { host: string; port: number; username: string; hostKey: { fingerprint: string } }) => {
      opened.push(`${o.username}@${o.host}:${o.port}`)
      assert.equal(o.hostKey.fingerprint, parseHostKey(TEST_HOST_KEY, '')?.fingerprint, 'the pinned host key')
      return remote
    },
  }
}

describe('status', () => {
  it('parses docker inspect, df and the deploy log', () => {
    assert.deepEqual(parseInspect(INSPECT).get('mymdb-db-1'), { startedAt: '2026-11-27T09:00:00Z', image: '127.0.0.1:5000/mymdb-db:abc1234', revision: '' })
    assert.deepEqual(parseDf(DF), { totalKb: 264000000, availableKb: 83886080, mount: '/' })
    assert.equal(parseDf('garbage'), null)
    assert.deepEqual(parseDeployLine('{"at":"a","by":"b","tag":"c"}'), { at: 'a', by: 'b', tag: 'c', result: '' })
    assert.deepEqual(parseDeployLine('{"at":"a","by":"b","tag":"c","result":"failed","seconds":3,"error":"x"}'), { at: 'a', by: 'b', tag: 'c', result: 'failed', seconds: 3, error: 'x' })
    assert.equal(parseDeployLine('not json'), null)
  })
  it('formatAge', () => {
    assert.deepEqual([40_000, 5 * 60_000, 123 * 60_000, 76 * 3600_000].map(formatAge), ['40 s', '5 min', '2 h 3 min', '3 d 4 h'])
  })
  it('formats each service with state, health, uptime, image and commit', () => {
    const lines = formatStatus(
      {
        services: [{ service: 'web', state: 'running', health: 'healthy', startedAt: '2026-11-27T10:00:00Z', image: 'mymdb-web:latest', revision: 'abc1234' }],
        databaseSize: '12 MB',
        disk: { totalKb: 10 * 1024 * 1024, availableKb: 4 * 1024 * 1024, mount: '/' },
        deploys: [
          { at: '2026-11-27T10:00:00.123Z', by: 'ada@laptop', tag: 'abc1234', result: 'ok', seconds: 31 },
          { at: '2026-11-27T09:00:00Z', by: 'bob@ci', tag: 'abc1233', result: 'failed', seconds: 75, error: 'the site does not answer' },
          { at: '2026-11-26T09:00:00Z', by: 'bob@ci', tag: 'abc1232', result: '' },
        ],
      },
      new Date('2026-11-27T12:03:00Z'),
    )
    assert.deepEqual(lines, [
      '  web  running (healthy), up 2 h 3 min, image mymdb-web:latest, commit abc1234',
      '  database  12 MB',
      '  disk      4.0 GB free of 10.0 GB (/, where Docker keeps its data)',
      '  deployed  2026-11-27 10:00:00 UTC by ada@laptop, tag abc1234, ok in 31 s',
      '            2026-11-27 09:00:00 UTC by bob@ci, tag abc1233, FAILED in 1 min: the site does not answer',
      '            2026-11-26 09:00:00 UTC by bob@ci, tag abc1232',
    ])
  })
  it('a Swarm of several nodes: each node, its role and the services running there', () => {
    const task = (name: string, node: string, current: string) => JSON.stringify({ ID: `t-${name}-${node}`, Name: name, Image: 'i', Node: node, DesiredState: 'Running', CurrentState: current, Error: '' })
    const tasks = parseServiceTasks([task('mymdb_proxy.a', 'n1', 'Running 1 hour ago'), task('mymdb_web.1', 'n1', 'Running 1 hour ago'), task('mymdb_db.1', 'n1', 'Running 1 hour ago'), task('mymdb_web.2', 'n2', 'Running 1 hour ago'), task('mymdb_web.3', 'n3', 'Starting 2 seconds ago')].join('\n'))
    const nodes = parseNodes('n2|Ready|Reachable\nn1|Ready|Leader\nn3|Down|\n', tasks)
    assert.deepEqual(nodes.map((n) => [n.hostname, n.tasks]), [['n1', ['proxy', 'web', 'db']], ['n2', ['web']], ['n3', []]])
    assert.deepEqual(formatStatus({ services: [], databaseSize: '9 MB', disk: null, nodes }).slice(1, 4), [
      '  nodes     n1  Ready, manager Leader: proxy, web, db',
      '            n2  Ready, manager Reachable: web',
      '            n3  Down, worker: no task',
    ])
  })
  it('on the host: the last backup, a failed one with the end of its output, and the schedule', () => {
    const ok = { at: '2026-11-27T03:17:05Z', reason: 'scheduled', ok: true, size: 312000, name: 'mymdb-p-20261127T031705Z.tar', file: 's3://b/rolling/scheduled.tar?versionId=v1', note: '' }
    const base = { services: [], databaseSize: null, disk: null }
    const now = new Date('2026-11-27T12:17:05Z')
    assert.deepEqual(formatStatus({ ...base, backups: { lastOk: ok, last: ok, schedule: '17 3 * * *', output: '' } }, now).slice(-2), [
      '  backup    2026-11-27 03:17:05 UTC (9 h 0 min ago), 0.3 MB, scheduled: mymdb-p-20261127T031705Z.tar',
      '  schedule  17 3 * * * (cron on the host, its time zone)',
    ])
    const failed = { ...ok, at: '2026-11-28T03:17:02Z', ok: false, size: 0 }
    assert.deepEqual(formatStatus({ ...base, backups: { lastOk: ok, last: failed, schedule: null, output: 'pg_dump ...\nthe database is not running' } }, now).slice(-3), [
      '  backup    2026-11-27 03:17:05 UTC (9 h 0 min ago), 0.3 MB, scheduled: mymdb-p-20261127T031705Z.tar',
      '  backup    FAILED at 2026-11-28 03:17:02 UTC (scheduled); ~/mymdb/last-backup.log ends: the database is not running',
      '  schedule  none (MYMDB_BACKUP_SCHEDULE=off, or deployed before backups existed)',
    ])
    assert.deepEqual(parseBackupLog(`${JSON.stringify(ok)}\nnot json\n${JSON.stringify(failed)}\n`), [ok, failed])
  })
  it('here: the local stack through the runner, read-only', async () => {
    const run = fakeRunner(stackAnswers)
    const d = testDeps(run, { root: '/repo' })
    assert.equal(await statusMain([], { COMPOSE_PROJECT_NAME: 'mymdb-unit' }, d), 0, d.log.text())
    const text = d.log.text()
    assert.match(text, /MyMDB on this machine \(project mymdb-unit\)/)
    assert.match(text, /web\s+running \(healthy\), up .*, image 127\.0\.0\.1:5000\/mymdb-web:abc1234, commit abc1234/)
    assert.match(text, /database {2}12 MB/)
    assert.match(text, /80\.0 GB free/)
    assert.doesNotMatch(text, /deployed/)
    assert.ok(run.commands().every((c) => /^(docker compose --project-name mymdb-unit (ps|exec -T --user postgres db sh -c psql)|docker inspect|sh -c df)/.test(c)), run.commands().join('\n'))
  })
  it('--aws: the instance from AWS, then the same over SSH, and the last deploy', async () => {
    const remote = fakeRemote((c) => stackAnswers(c) ?? swarmHost()(c))
    const o = opener(remote)
    const d = testDeps(noDocker())
    assert.equal(await statusMain(['--aws'], hostEnv(), { ...d, awsClients: awsWithHost(), openRemote: o.openRemote }), 0, d.log.text())
    assert.deepEqual(o.opened, ['admin@203.0.113.7:22'])
    const text = d.log.text()
    assert.match(text, /stage qa in us-west-2: instance i-0abc running, 203\.0\.113\.7/)
    assert.match(text, /deployed {2}2026-11-27 10:00:00 UTC by ada@laptop, tag abc1234/)
    // the Swarm stack's containers, one per service
    assert.ok(remote.commands.includes("cd mymdb && docker ps --all --no-trunc --filter label=com.docker.stack.namespace=mymdb --format '{{json .}}'"))
    assert.match(text, /proxy +running \(healthy\)[\s\S]*web +running \(healthy\)[\s\S]*db +running \(healthy\)/)
    assert.ok(remote.closed)
    // a host still on Compose (deployed before the Swarm stack): Compose's ps
    const old = fakeRemote((c) => stackAnswers(c) ?? swarmHost({ runs: 'compose' })(c))
    assert.equal(await statusMain(['--aws'], hostEnv(), { ...d, awsClients: awsWithHost(), openRemote: opener(old).openRemote }), 0, d.log.text())
    assert.ok(old.commands.includes('cd mymdb && docker compose ps --all --format json'))
  })
  it('--aws with a stopped instance says so and connects to nothing', async () => {
    const d = testDeps(noDocker())
    const o = opener(fakeRemote())
    assert.equal(await statusMain(['--aws'], hostEnv(), { ...d, awsClients: awsWithHost('stopped'), openRemote: o.openRemote }), 0)
    assert.match(d.log.text(), /i-0abc stopped[\s\S]*the instance is stopped: nothing runs/)
    assert.deepEqual(o.opened, [])
  })
  it('--check: the backups fail it when there is none, the last one failed, or the last good one is over 26 h old', () => {
    const now = new Date('2026-12-04T12:00:00Z')
    const rec = (at: string, ok: boolean, note = '') => ({ at, reason: 'scheduled', ok, size: 1, name: 'mymdb-p-20261204T031700Z.tar', file: 's3://b/k.tar', note })
    const good = rec('2026-12-04T03:17:00Z', true)
    assert.equal(backupProblem({ lastOk: good, last: good, schedule: '17 3 * * *', output: '' }, now), null)
    assert.match(backupProblem(undefined, now) ?? '', /no backup has been taken yet/)
    assert.match(backupProblem({ lastOk: null, last: null, schedule: null, output: '' }, now) ?? '', /no backup has been taken yet/)
    assert.match(backupProblem({ lastOk: good, last: rec('2026-12-04T11:00:00Z', false), schedule: null, output: '' }, now) ?? '', /the last backup failed \(scheduled, at 2026-12-04 11:00:00 UTC\)/)
    const old = rec('2026-12-03T09:00:00Z', true)
    assert.match(backupProblem({ lastOk: old, last: old, schedule: null, output: '' }, now) ?? '', /the last good backup is 1 d.* old \(more than 26 h\)/)
    assert.equal(backupProblem({ lastOk: old, last: old, schedule: null, output: '' }, new Date('2026-12-04T10:59:00Z')), null)
    // a scheduled run skipped because a deploy held the lock is no failure (the catch-up takes it); age still counts
    const skipped = rec('2026-12-04T11:00:00Z', false, "skipped: another run held the stage's lock")
    assert.equal(backupProblem({ lastOk: good, last: skipped, schedule: null, output: '' }, now), null)
    assert.deepEqual(formatStatus({ services: [], databaseSize: null, disk: null, backups: { lastOk: good, last: skipped, schedule: null, output: '' } }, now).slice(-2, -1), [
      "  backup    SKIPPED at 2026-12-04 11:00:00 UTC (scheduled): another run held the stage's lock",
    ])
  })
  it('--check: without --aws exit 2 before anything; with a stopped host exit 3 saying no backups are taken', async () => {
    const d = testDeps(noDocker())
    assert.equal(await statusMain(['--check'], {}, d), 2)
    assert.match(d.log.err.join(''), /--check looks at the backups of the EC2 host: use it with --aws/)
    const s = testDeps(noDocker())
    const o = opener(fakeRemote())
    assert.equal(await statusMain(['--aws', '--check'], hostEnv(), { ...s, awsClients: awsWithHost('stopped'), openRemote: o.openRemote }), 3)
    assert.match(s.log.err.join(''), /check failed: the host is stopped: no backups are taken/)
    assert.deepEqual(o.opened, [])
  })
  it('--aws with bad settings: exit 2 naming them, before AWS or SSH', async () => {
    const d = testDeps(noDocker())
    const o = opener(fakeRemote())
    assert.equal(await statusMain(['--aws'], { AWS_REGION: 'nowhere', MYMDB_SSH_KEY_FILE: '/nonexistent/key' }, { ...d, awsClients: noAws, openRemote: o.openRemote }), 2)
    assert.match(d.log.err.join(''), /AWS_REGION[\s\S]*MYMDB_SSH_KEY_FILE="\/nonexistent\/key" - \/nonexistent\/key does not exist/)
    assert.deepEqual(o.opened, [])
  })
})

describe('logs', () => {
  it('options: service, --follow, --since, --lines, all problems at once', () => {
    assert.deepEqual(logsOptions([], {}), { service: undefined, follow: false, since: undefined, lines: 100 })
    assert.deepEqual(logsOptions(['web'], { follow: true, since: '10m', lines: '5' }), { service: 'web', follow: true, since: '10m', lines: 5 })
    assert.deepEqual(logsOptions(['db'], { since: '2026-11-27T10:00' }).since, '2026-11-27T10:00')
    assert.throws(
      () => logsOptions(['nginx'], { since: 'yesterday', lines: '-3' }),
      (e: unknown) => e instanceof ConfigError && /no service "nginx"/.test(e.message) && /--since "yesterday"/.test(e.message) && /--lines "-3"/.test(e.message),
    )
  })
  it('here: docker compose logs with the options, attached to this terminal', async () => {
    const run = fakeRunner()
    const d = testDeps(run, { root: '/repo' })
    assert.equal(await logsMain(['web', '--since', '10m', '-n', '20', '--follow'], {}, { ...d, tty: true }), 0)
    assert.deepEqual(run.calls[0]?.cmd, ['docker', 'compose', '--project-name', 'mymdb', 'logs', '--no-color', '--timestamps', '--follow', '--since', '10m', '--tail', '20', 'web'])
    assert.equal(run.calls[0]?.opts?.interactive, true)
    assert.equal(run.calls[0]?.opts?.output, undefined)
    assert.equal(run.calls[0]?.opts?.cwd, '/repo')
  })
  it('here, into a pipe or a file: the same command, its output passed on without control sequences (Compose writes ESC[2K even with --no-color)', async () => {
    // what docker compose logs writes, in chunks that cut a sequence in two
    const chunks = ['\x1b[2Kdb-1  | 2026-12-04T12:39:46Z ready\n\x1b[', '2Kdb-1  | 2026-12-04T12:39:47Z \x1b[1mbold\x1b[0m\n', '\x1b[2K']
    const run = fakeRunner()
    const compose: typeof run = Object.assign(async (cmd: readonly string[], opts?: Parameters<typeof run>[1]) => {
      for (const c of chunks) opts?.output?.stdout(c)
      opts?.output?.stderr('\x1b[31mno such service\x1b[0m\n')
      opts?.output?.flush?.()
      return run(cmd, opts)
    }, { calls: run.calls, commands: run.commands })
    const out: string[] = []
    const err: string[] = []
    const d = testDeps(compose, { root: '/repo' })
    assert.equal(await logsMain(['db', '-n', '2'], {}, { ...d, tty: false, plain: plainOutput((t) => out.push(t), (t) => err.push(t)) }), 0)
    assert.deepEqual(run.calls[0]?.cmd, ['docker', 'compose', '--project-name', 'mymdb', 'logs', '--no-color', '--timestamps', '--tail', '2', 'db'])
    assert.equal(run.calls[0]?.opts?.interactive, undefined, 'not attached to the terminal')
    assert.equal(out.join(''), 'db-1  | 2026-12-04T12:39:46Z ready\ndb-1  | 2026-12-04T12:39:47Z bold\n')
    assert.equal(err.join(''), 'no such service\n')
  })
  it('--aws into a pipe: docker service logs on the host, passed on without control sequences and without a terminal there', async () => {
    const remote = fakeRemote()
    const run = remote.run
    let seen: Parameters<typeof run>[1]
    remote.run = async (cmd, opts) => {
      if (opts?.output) {
        seen = opts
        opts.output.stdout('\x1b[2Kmymdb_db.1.x@host | 2026-12-04T12:00:00Z ready\r\n')
        opts.output.flush?.()
      }
      return run(cmd, opts)
    }
    const o = opener(remote)
    const out: string[] = []
    const d = testDeps(noDocker())
    const env = { ...hostEnv(), MYMDB_HOST_ADDRESS: '127.0.0.1', MYMDB_HOST_SSH_PORT: '2222', MYMDB_HOST_KEY: TEST_HOST_KEY }
    assert.equal(await logsMain(['--aws', 'db'], env, { ...d, awsClients: noAws, openRemote: o.openRemote, tty: false, plain: plainOutput((t) => out.push(t)) }), 0, d.log.text())
    assert.deepEqual(remote.commands, [showCommand(HOST_RUNS_CMD), 'cd mymdb && docker service logs --timestamps --tail 100 mymdb_db'])
    assert.equal(seen?.interactive, undefined, 'no terminal on the host')
    assert.equal(out.join(''), 'mymdb_db.1.x@host | 2026-12-04T12:00:00Z ready\r\n')
  })
  it('--aws: the same command in ~/mymdb on the host, found by MYMDB_HOST_ADDRESS without asking AWS', async () => {
    const remote = fakeRemote()
    const o = opener(remote)
    const d = testDeps(noDocker())
    const env = { ...hostEnv(), MYMDB_HOST_ADDRESS: '127.0.0.1', MYMDB_HOST_SSH_PORT: '2222', MYMDB_HOST_KEY: TEST_HOST_KEY }
    assert.equal(await logsMain(['--aws', 'db'], env, { ...d, awsClients: noAws, openRemote: o.openRemote }), 0, d.log.text())
    assert.deepEqual(o.opened, ['admin@127.0.0.1:2222'])
    assert.deepEqual(remote.commands, [showCommand(HOST_RUNS_CMD), 'cd mymdb && docker service logs --timestamps --tail 100 mymdb_db'])
    assert.ok(remote.closed)
  })
  it('a bad option: exit 2 before anything runs', async () => {
    const d = testDeps(noDocker())
    assert.equal(await logsMain(['--lines', 'many'], {}, d), 2)
    assert.match(d.log.err.join(''), /--lines "many"/)
  })
})

describe('manage', () => {
  it('the task options come first; everything from the first other word on goes to manage.py', () => {
    assert.deepEqual(splitRest(['--aws', 'migrate', '--plan']), { own: ['--aws'], rest: ['migrate', '--plan'] })
    assert.deepEqual(splitRest(['--', '--version']), { own: [], rest: ['--version'] })
    assert.deepEqual(splitRest(['-h']), { own: ['-h'], rest: [] })
  })
  it('here: manage.py in the web container, -T without a terminal, its exit code', async () => {
    const run = fakeRunner((c) => (c.includes('showmigrations') ? { exitCode: 3 } : undefined))
    const d = testDeps(run)
    assert.equal(await manageMain(['migrate', '--plan'], {}, { ...d, tty: false }), 0)
    assert.deepEqual(run.calls[0]?.cmd, ['docker', 'compose', '--project-name', 'mymdb', 'exec', '-T', 'web', 'python3', 'manage.py', 'migrate', '--plan'])
    assert.equal(await manageMain(['showmigrations'], {}, { ...d, tty: false }), 3)
    // from a terminal: a TTY for prompts and shells
    assert.equal(await manageMain(['createsuperuser'], {}, { ...d, tty: true }), 0)
    assert.deepEqual(run.calls.at(-1)?.cmd.slice(4), ['exec', 'web', 'python3', 'manage.py', 'createsuperuser'])
  })
  it('--aws: on the host, arguments quoted one by one', async () => {
    const remote = fakeRemote()
    const o = opener(remote)
    const d = testDeps(noDocker())
    assert.equal(await manageMain(['--aws', 'shell', '-c', 'print("a b")'], hostEnv(), { ...d, tty: false, awsClients: awsWithHost(), openRemote: o.openRemote }), 0)
    assert.equal(remote.commands.length, 2)
    // in a web container of this node, else (a cluster's node without one) in a throw-away container of web's image
    assert.match(remote.commands[1] ?? '', /^cd mymdb && sh -c 'c=\$\(docker ps --quiet --filter label=com\.docker\.swarm\.service\.name=mymdb_web --filter status=running --filter health=healthy .* exec docker exec -i "\$c" python3 "\$@"\n.*docker create --interactive --network mymdb_front .*' sh manage\.py shell -c 'print\("a b"\)'$/s)
  })
  it('no arguments, or an unknown option before them: exit 2', async () => {
    const d = testDeps(noDocker())
    assert.equal(await manageMain([], {}, d), 2)
    assert.match(d.log.err.join(''), /give manage\.py its arguments/)
    assert.equal(await manageMain(['--frobnicate', 'check'], {}, d), 2)
  })
})

describe('ssh', () => {
  it('a login shell on the host, or one command run by its shell', async () => {
    const remote = fakeRemote((c) => (c.includes('false') ? { exitCode: 1 } : undefined))
    const o = opener(remote)
    const d = testDeps(noDocker())
    const deps = { ...d, awsClients: awsWithHost(), openRemote: o.openRemote }
    // (the log as the message: an exit 2 here says why)
    assert.equal(await sshMain([], hostEnv(), deps), 0, d.log.text())
    assert.equal(await sshMain(['docker', 'ps'], hostEnv(), deps), 0, d.log.text())
    assert.equal(await sshMain(['false'], hostEnv(), deps), 1, d.log.text())
    assert.deepEqual(remote.commands, ['bash --login', "sh -c 'docker ps'", 'sh -c false'])
    assert.deepEqual(o.opened, ['admin@203.0.113.7:22', 'admin@203.0.113.7:22', 'admin@203.0.113.7:22'])
  })
  it('--node N: host N of the stage (found by its Node tag, pinned by its own key); a host that is not there, or a bad number: said', async () => {
    const instance = (node: number) => ({ InstanceId: `i-${node}`, State: { Name: 'running' }, PublicIpAddress: `203.0.113.${node + 6}`, PublicDnsName: '', Tags: [{ Key: 'HostKey', Value: TEST_HOST_KEY }, { Key: 'Node', Value: String(node) }] })
    // (two hosts without a front door: the load balancer's lookup finds none)
    const two = () => ({ region: 'us-west-2', ec2: { send: async () => ({ Reservations: [{ Instances: [instance(1), instance(2)] }] }) }, ...absentStageServices([]) }) as unknown as AwsClients
    const remote = fakeRemote()
    const o = opener(remote)
    const d = testDeps(noDocker())
    assert.equal(await sshMain(['--node', '2', 'docker', 'ps'], hostEnv(), { ...d, awsClients: two, openRemote: o.openRemote }), 0, d.log.text())
    assert.deepEqual(o.opened, ['admin@203.0.113.8:22'])
    assert.deepEqual(remote.commands, ["sh -c 'docker ps'"])
    assert.equal(await sshMain(['--node', '3'], hostEnv(), { ...d, awsClients: two, openRemote: o.openRemote }), 1)
    assert.match(d.log.err.join(''), /no host 3 \(mymdb-qa-3\) in stage qa in us-west-2/)
    assert.equal(await sshMain(['--node', 'two'], hostEnv(), { ...d, awsClients: noAws, openRemote: o.openRemote }), 2)
    assert.match(d.log.err.join(''), /--node two: expected a host's number, 1 or more/)
    assert.deepEqual(splitRest(['--node', '2', 'docker', 'ps', '-a'], ['node']), { own: ['--node', '2'], rest: ['docker', 'ps', '-a'] })
    // status --aws names every host of the stage, and reports over SSH from host 1
    const onHost1 = fakeRemote((c) => stackAnswers(c) ?? swarmHost()(c))
    const o1 = opener(onHost1)
    const s = testDeps(noDocker())
    assert.equal(await statusMain(['--aws'], hostEnv(), { ...s, awsClients: two, openRemote: o1.openRemote }), 0, s.log.text())
    assert.deepEqual(o1.opened, ['admin@203.0.113.7:22'])
    assert.match(s.log.text(), /stage qa in us-west-2: instance i-1 running, 203\.0\.113\.7\n {2}host 2: instance i-2 running, 203\.0\.113\.8\n/)
  })
  it('no host for the stage: a one-line fix', async () => {
    const none = () => ({ region: 'us-west-2', ec2: { send: async () => ({ Reservations: [] }) } }) as unknown as AwsClients
    const d = testDeps(noDocker())
    assert.equal(await sshMain([], hostEnv(), { ...d, awsClients: none, openRemote: opener(fakeRemote()).openRemote }), 1)
    assert.match(d.log.err.join(''), /no EC2 host for stage qa in us-west-2: deploy first with npm run deploy:aws/)
  })
})
