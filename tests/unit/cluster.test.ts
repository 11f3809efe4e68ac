import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { changeNode, clusterRoles, formCluster, OUT_OF_SEQUENCE_TRIES, joinCmd, parseNodeState, planCluster, rolesPending, type NodeState } from '../../tasks/lib/remote/cluster.ts'
import type { Cmd, RunOptions, RunResult } from '../../tasks/lib/sh.ts'
import { captureLog } from './fakes.ts'

const where = ['admin@a:22', 'admin@b:22', 'admin@c:22', 'admin@d:22']
const node = (state: string, nodeId = '', manager = false, clusterId = ''): NodeState => ({ addr: '10.0.0.1', state, nodeId, manager, clusterId })

describe('cluster', () => {
  it('roles: one manager up to two hosts, three from three on (a majority survives one lost)', () => {
    assert.deepEqual(clusterRoles(1), ['manager'])
    assert.deepEqual(clusterRoles(2), ['manager', 'worker'])
    assert.deepEqual(clusterRoles(3), ['manager', 'manager', 'manager'])
    assert.deepEqual(clusterRoles(5), ['manager', 'manager', 'manager', 'worker', 'worker'])
    assert.throws(() => clusterRoles(0), /1 or more hosts, not 0/)
  })
  it("a node's state from docker info's Swarm part; anything else is an error naming the host", () => {
    const s = parseNodeState('{"addr":"10.0.0.7","swarm":{"LocalNodeState":"active","NodeID":"n1","ControlAvailable":true,"Cluster":{"ID":"c1"}}}\n', 'admin@a:22')
    assert.deepEqual(s, { addr: '10.0.0.7', state: 'active', nodeId: 'n1', clusterId: 'c1', manager: true })
    assert.deepEqual(parseNodeState('{"addr":"10.0.0.8","swarm":{"LocalNodeState":"inactive","NodeID":"","ControlAvailable":false,"Cluster":null}}', 'b'), { addr: '10.0.0.8', state: 'inactive', nodeId: '', clusterId: '', manager: false })
    assert.throws(() => parseNodeState('permission denied', 'admin@a:22'), /admin@a:22: could not read its Docker Swarm state \(docker info printed: permission denied\)/)
  })
  it('plan: a new cluster is made on the first host and the others join in their roles', () => {
    assert.deepEqual(planCluster([node('inactive'), node('inactive'), node('inactive')], clusterRoles(3), [], where.slice(0, 3)), [
      { kind: 'init', node: 0 },
      { kind: 'join', node: 1, role: 'manager' },
      { kind: 'join', node: 2, role: 'manager' },
    ])
  })
  it('plan: a cluster as wanted needs nothing; a grown one joins the new host and promotes a worker that must now be a manager', () => {
    const two = [node('active', 'n0', true, 'c'), node('active', 'n1', false)]
    assert.deepEqual(planCluster(two, clusterRoles(2), ['n0', 'n1'], where.slice(0, 2)), [])
    assert.deepEqual(planCluster([...two, node('inactive')], clusterRoles(3), ['n0', 'n1'], where.slice(0, 3)), [
      { kind: 'promote', node: 1 },
      { kind: 'join', node: 2, role: 'manager' },
    ])
    const four = [node('active', 'n0', true, 'c'), node('active', 'n1', true, 'c'), node('active', 'n2', true, 'c'), node('active', 'n3', true, 'c')]
    assert.deepEqual(planCluster(four, clusterRoles(4), ['n0', 'n1', 'n2', 'n3'], where), [{ kind: 'demote', node: 3 }])
  })
  it('plan: a host in another swarm, or a first host that is no manager, is reported (all of them), nothing done', () => {
    assert.throws(
      () => planCluster([node('active', 'w0', false), node('active', 'x1', true, 'other'), node('active', 'x2', false)], clusterRoles(3), ['w0'], where.slice(0, 3)),
      (e: Error) => {
        assert.match(e.message, /admin@a:22 \(the first host\) is a Swarm worker: it must be a manager/)
        assert.match(e.message, /admin@b:22 belongs to another Docker Swarm \(state active\): run `docker swarm leave --force` on it, then deploy again/)
        assert.match(e.message, /admin@c:22 belongs to another Docker Swarm/)
        return true
      },
    )
  })
  it('roles count once Swarm says so: a manager when Leader or Reachable (a promotion takes seconds), a worker without a manager status', () => {
    const ls = 'n0 Leader\nn1 \nn2 Reachable\nn3 Unreachable\n'
    assert.deepEqual(rolesPending(ls, ['n0', 'n1', 'n2'], clusterRoles(3)), [1])
    assert.deepEqual(rolesPending('n0 Leader\nn1 Reachable\nn2 Reachable\n', ['n0', 'n1', 'n2'], clusterRoles(3)), [])
    assert.deepEqual(rolesPending(ls, ['n0', 'n1'], clusterRoles(2)), [])
    assert.deepEqual(rolesPending(ls, ['n0', 'n3', 'n9'], clusterRoles(3)), [1, 2])
  })
  it('the join token reaches the joining host on stdin only: never on a command line, in the log or in an error', async () => {
    const token = 'SWMTKN-1-abcdef-secret'
    const seen: { where: string; cmd: string; input?: string }[] = []
    const state = (s: string) => ({ command: '', exitCode: 0, signal: null, stdout: s, stderr: '', ok: true })
    const fakeNode = (w: string, inactive: string): { where: string; run: (cmd: Cmd, o?: RunOptions) => Promise<RunResult> } => ({
      where: w,
      run: async (cmd, o) => {
        const text = cmd.join(' ')
        seen.push({ where: w, cmd: text, input: o?.input })
        if (text.includes('docker info')) return state(inactive)
        if (text.includes('join-token --quiet')) return state(`${token}\n`)
        if (text.includes('docker swarm join --token')) return { ...state(''), exitCode: 1, ok: false, stderr: 'Error response from daemon: could not connect' }
        return state('')
      },
    })
    const fresh = '{"addr":"10.0.0.1","swarm":{"LocalNodeState":"inactive"}}'
    const log = captureLog()
    await assert.rejects(formCluster([fakeNode('a', fresh), fakeNode('b', fresh)], log), (e: Error) => {
      assert.match(e.message, /join b to the swarm as a worker/)
      assert.doesNotMatch(e.message, /SWMTKN/)
      return true
    })
    assert.deepEqual(seen.filter((s) => s.input !== undefined).map((s) => [s.where, s.input]), [['b', `${token}\n`]])
    assert.ok(seen.every((s) => !s.cmd.includes('SWMTKN')), 'no token on a command line')
    assert.doesNotMatch(log.text(), /SWMTKN/)
    assert.deepEqual(joinCmd('10.0.0.1').slice(-1), ['10.0.0.1'])
  })
  it("a node change Swarm refused as out of sequence (another change landed first) is sent again; any other failure is reported at once", async () => {
    const sent: string[] = []
    const manager = (answers: string[]) => ({
      where: 'admin@a:22',
      run: async (cmd: Cmd): Promise<RunResult> => {
        sent.push(cmd.join(' '))
        const stderr = answers.shift() ?? ''
        return { command: cmd.join(' '), exitCode: stderr ? 1 : 0, signal: null, stdout: '', stderr, ok: !stderr }
      },
    })
    const race = 'Error response from daemon: rpc error: code = Unknown desc = update out of sequence'
    await changeNode(manager([race, race]), ['demote', 'n1'], 'demote b', 1)
    assert.deepEqual(sent, ['docker node demote n1', 'docker node demote n1', 'docker node demote n1'])
    sent.length = 0
    await assert.rejects(changeNode(manager(Array(OUT_OF_SEQUENCE_TRIES + 1).fill(race)), ['demote', 'n1'], 'demote b', 1), (e: Error & { stderr?: string }) => /demote b/.test(e.message) && /update out of sequence/.test(e.stderr ?? ''))
    assert.equal(sent.length, OUT_OF_SEQUENCE_TRIES)
    sent.length = 0
    await assert.rejects(changeNode(manager(['Error response from daemon: node n1 not found']), ['promote', 'n1'], 'promote b', 1), (e: Error & { stderr?: string }) => /promote b/.test(e.message) && /not found/.test(e.stderr ?? ''))
    assert.equal(sent.length, 1)
  })
})
