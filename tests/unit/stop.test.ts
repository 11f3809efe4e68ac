import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { showCommand } from '../../tasks/lib/sh.ts'
import { describe, it } from 'node:test'
import { SshConnectionLost } from '../../tasks/lib/ssh.ts'
import { main } from '../../tasks/stop.ts'
import { volumesToDelete } from '../../tasks/lib/compose.ts'
import { STOP_CONTAINERS, stopRemoteContainers } from '../../tasks/lib/remote/stop.ts'
import { captureLog, dockerOk, fakeRemote, fakeRunner, noDocker, testDeps } from './fakes.ts'

describe('stop', () => {
  it('volumes to delete: the compose file\'s three and any other Docker has for the project, with what they hold', () => {
    const v = volumesToDelete('mymdb', ['mymdb_db-data', 'mymdb_proxy-data', 'mymdb_old-cache'])
    assert.deepEqual(v.map((x) => x.volume), ['mymdb_db-data', 'mymdb_media', 'mymdb_proxy-data', 'mymdb_old-cache'])
    assert.deepEqual(v.map((x) => x.exists), [true, false, true, true])
    assert.match(v[0]?.holds ?? '', /users.*votes/)
    assert.match(v[1]?.holds ?? '', /posters/)
    assert.match(v[2]?.holds ?? '', /HTTPS certificates/)
    assert.match(v[3]?.holds ?? '', /not in docker-compose\.yml/)
    assert.deepEqual(volumesToDelete('mymdb-e2e', []).map((x) => x.volume), ['mymdb-e2e_db-data', 'mymdb-e2e_media', 'mymdb-e2e_proxy-data'])
  })

  it('--help and unknown flags run nothing', async () => {
    const run = noDocker()
    const help = testDeps(run)
    assert.equal(await main(['--help'], {}, help), 0)
    assert.match(help.log.text(), /--delete-data/)
    assert.match(help.log.text(), /--aws/)
    const unknown = testDeps(run)
    assert.equal(await main(['--bogus'], {}, unknown), 2)
    assert.match(unknown.log.err.join(''), /Unknown option '--bogus'\. See: npm run stop -- --help/)
    // --aws without AWS_REGION: a settings error before Docker or AWS is asked anything
    const aws = testDeps(run)
    assert.equal(await main(['--aws'], {}, { ...aws, awsClients: () => assert.fail('no AWS call') }), 2)
    assert.match(aws.log.err.join(''), /AWS_REGION/)
    const bad = testDeps(run)
    assert.equal(await main([], { COMPOSE_PROJECT_NAME: 'Bad Name' }, bad), 2)
    assert.equal(run.calls.length, 0)
  })

  it('stops with docker compose down and keeps the volumes', async () => {
    const run = fakeRunner(dockerOk)
    const deps = testDeps(run, { root: '/repo' })
    assert.equal(await main([], {}, deps), 0, deps.log.text())
    const down = run.calls.find((c) => c.cmd.includes('down'))
    assert.deepEqual(down?.cmd, ['docker', 'compose', '--project-name', 'mymdb', 'down', '--remove-orphans'])
    assert.equal(down?.opts?.cwd, '/repo')
    // compose interpolates the whole file even for down: the required variables get placeholders
    assert.ok(down?.opts?.env?.DJANGO_SECRET_KEY)
    assert.ok(!run.commands().some((c) => c.includes('volume')))
    assert.match(deps.log.text(), /data kept in mymdb_db-data, mymdb_media, mymdb_proxy-data /)
  })

  it('--delete-data lists every volume and what is lost (the proxy\'s certificates and any other of the project), then deletes them and names them', async () => {
    const run = fakeRunner((cmd) => {
      if (cmd === 'docker volume ls --quiet --filter label=com.docker.compose.project=t1') return { stdout: 't1_db-data\nt1_proxy-data\nt1_leftover\n' }
      if (cmd === 'docker volume inspect t1_media') return { exitCode: 1 }
      return dockerOk(cmd)
    })
    const deps = testDeps(run)
    assert.equal(await main(['--delete-data'], { COMPOSE_PROJECT_NAME: 't1' }, deps), 0, deps.log.text())
    const out = deps.log.text()
    assert.match(out, /t1_db-data\s+the PostgreSQL database: users, movies, votes/)
    assert.match(out, /t1_media\s+uploaded files: movie posters .*\(does not exist\)/)
    assert.match(out, /t1_proxy-data\s+the front's HTTPS certificates/)
    assert.match(out, /t1_leftover\s+not in docker-compose\.yml/)
    const cmds = run.commands()
    const downAt = cmds.indexOf('docker compose --project-name t1 down --remove-orphans --volumes')
    assert.ok(downAt >= 0, cmds.join('\n'))
    assert.ok(cmds.indexOf('docker volume ls --quiet --filter label=com.docker.compose.project=t1') < downAt)
    for (const v of ['t1_db-data', 't1_proxy-data', 't1_leftover']) assert.ok(out.indexOf(v) < out.indexOf('docker compose down --volumes'), v)
    // the volumes still there after down (the fake says they exist) are removed explicitly
    assert.ok(cmds.includes('docker volume rm t1_db-data t1_proxy-data t1_leftover'), cmds.join('\n'))
    assert.match(out, /\[stop\] stopped; deleted: t1_db-data, t1_proxy-data, t1_leftover\n/)
  })

  it('--delete-data on a terminal asks first; no means nothing happens', async () => {
    const run = fakeRunner(dockerOk)
    let asked = ''
    const deps = testDeps(run, { interactive: true, confirm: async (q) => ((asked = q), false) })
    assert.equal(await main(['--delete-data'], {}, deps), 1)
    assert.equal(asked, 'Delete them?')
    assert.ok(!run.commands().some((c) => c.includes('down') || c.includes('volume rm')))
    assert.match(deps.log.err.join(''), /nothing deleted or stopped/)

    const run2 = fakeRunner(dockerOk)
    const yes = testDeps(run2, { interactive: true, confirm: async () => assert.fail('--yes: no question') })
    assert.equal(await main(['--delete-data', '--yes'], {}, yes), 0)
  })

  it('without Docker: says how to install it, never installs it itself', async () => {
    const run = fakeRunner((cmd) => (cmd.startsWith('docker') ? { exitCode: 127, stderr: 'docker: command not found' } : undefined))
    const deps = testDeps(run)
    assert.equal(await main([], {}, deps), 1)
    const err = deps.log.err.join('')
    assert.match(err, /Docker is not installed: run: sudo bash scripts\/install-docker\.sh/)
    assert.doesNotMatch(err, /--no-install/)
    assert.ok(!run.commands().some((c) => c.includes('install-docker')))
  })
})

describe('stop --aws: the containers first, over SSH (best effort)', () => {
  it('scales the Swarm stack to 0 (or runs docker compose stop in ~/mymdb on a host still on Compose), then closes the session', async () => {
    const log = captureLog()
    const remote = fakeRemote()
    assert.equal(await stopRemoteContainers(async () => remote, log), true)
    assert.deepEqual(remote.commands, [showCommand(STOP_CONTAINERS)])
    assert.match(STOP_CONTAINERS[2] ?? '', /if docker service inspect mymdb_web .*\n  set --; for s in mymdb_proxy mymdb_web mymdb_db mymdb_cache; do .*Spec\.Mode\.Global.*\n  \[ \$# -eq 0 \] \|\| docker service scale --detach \$\(printf '%s=0 ' "\$@"\)/)
    assert.match(STOP_CONTAINERS[2] ?? '', /\nelif \[ -f "\$d\/docker-compose\.yml" \]; then cd "\$d" && docker compose stop\n/)
    // done once no container of theirs runs here and Swarm counts none of their tasks as running on a node that is up
    assert.match(STOP_CONTAINERS[2] ?? '', /settled\(\) \{ for s in "\$@"; do \{ \[ -z "\$\(docker ps --quiet --filter "label=com\.docker\.swarm\.service\.name=\$s" --filter status=running\)" \] && ! runs_on_a_ready_node "\$s"; \} \|\| return 1; done; \}/)
    assert.ok(remote.closed)
    assert.doesNotMatch(log.text(), /could not/)
  })

  it('a connection lost while the command runs: connected again and the command run once more', async () => {
    const log = captureLog()
    let connects = 0
    let runs = 0
    const remote = fakeRemote(() => {
      if (++runs === 1) throw new SshConnectionLost('admin@203.0.113.7:22', 'the command')
      return undefined
    })
    assert.equal(await stopRemoteContainers(async () => (connects++, remote), log), true)
    assert.equal(connects, 2)
    assert.equal(remote.commands.length, 2)
    assert.match(log.text(), /the SSH connection was lost while the containers stopped: connecting again/)
    assert.doesNotMatch(log.text(), /could not stop/)
    // lost twice: given up, the instance is stopped anyway
    const lost = captureLog()
    const never = fakeRemote(() => { throw new SshConnectionLost('admin@203.0.113.7:22', 'the command') })
    assert.equal(await stopRemoteContainers(async () => never, lost), false)
    assert.equal(never.commands.length, 2)
    assert.match(lost.text(), /could not stop the containers first \(the SSH connection to admin@203\.0\.113\.7:22 was lost/)
  })

  it('a failing command, a lost connection or an unreadable key: a warning saying why, and false (the instance is stopped anyway)', async () => {
    const failing = fakeRemote(() => ({ exitCode: 1, stderr: 'permission denied while trying to connect to the Docker daemon socket' }))
    const cases: [Parameters<typeof stopRemoteContainers>[0], RegExp][] = [
      [async () => failing, /exited with 1: permission denied/],
      [async () => { throw new SshConnectionLost('admin@203.0.113.7:22', 'the connection') }, /SSH connection to admin@203\.0\.113\.7:22 was lost/],
      [async () => { throw new Error("ENOENT: no such file or directory, open '/home/u/.ssh/mymdb-production.pem'") }, /ENOENT.*mymdb-production\.pem/],
    ]
    for (const [connect, why] of cases) {
      const log = captureLog()
      assert.equal(await stopRemoteContainers(connect, log), false)
      assert.match(log.text(), /\[stop\] could not stop the containers first \(.+\); stopping the instance anyway/)
      assert.match(log.text(), why)
    }
    assert.ok(failing.closed, 'the session is closed after a failing command too')
  })
})

describe("stop's wait on a swarm: which tasks still count as running", () => {
  // the shell function of the script, run by sh with docker answering as a swarm of two nodes would
  const fn = (STOP_CONTAINERS[2] ?? '').split('\n').find((l) => l.includes('runs_on_a_ready_node() {')) ?? ''
  const runs = (nodes: string, tasks: string) => {
    const docker = `docker() { case "$1" in node) printf '${nodes}' ;; service) printf '${tasks}' ;; esac; }`
    return spawnSync('sh', ['-c', `${docker}\n${fn.trim()}\nruns_on_a_ready_node mymdb_web`]).status
  }
  it('a task Running on a node that is up counts; one on a node that is down (its last state) does not; a shut-down one does not', () => {
    assert.match(fn, /runs_on_a_ready_node\(\) \{/)
    const nodes = 'node node1 Ready\\nnode node2 Down\\n'
    assert.equal(runs(nodes, 'task node1 Running 2 minutes ago\\n'), 0)
    assert.equal(runs(nodes, 'task node2 Running 9 minutes ago\\ntask node1 Shutdown 3 seconds ago\\n'), 1)
    assert.equal(runs(nodes, 'task node1 Shutdown 3 seconds ago\\ntask node1 Complete 1 minute ago\\n'), 1)
    assert.equal(runs(nodes, ''), 1)
  })
})
