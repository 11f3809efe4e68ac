// Several hosts as one Docker Swarm: which node is a manager, who joins whom, and the commands
// that do it over the SSH sessions the deploy already holds. The first node is the one the
// cluster is formed on (it runs `SWARM_INIT`); the others join it with a token read from it and
// piped to them through this process (never on a command line, a disk or in the log), and the
// tokens are rotated once anyone joined, so a token seen in transit is worth nothing afterwards.
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { check, rerunWhile, retryUntil, type Cmd, type Runner } from '../sh.ts'
import { DB_NODE_LABEL } from '../stackfile.ts'

export type Role = 'manager' | 'worker'

/** Swarm keeps working while a majority of managers is up: three from three hosts on, else one. */
export function clusterRoles(hosts: number): Role[] {
  if (!Number.isInteger(hosts) || hosts < 1) throw new UserError(`a cluster needs 1 or more hosts, not ${hosts}`)
  const managers = hosts >= 3 ? 3 : 1
  return Array.from({ length: hosts }, (_, i) => (i < managers ? 'manager' : 'worker'))
}

/** Shell: the IPv4 address of the default route's interface (an EC2 instance's private IP, stable across reboots), in `addr`. */
export const ADVERTISE_ADDR = [
  `addr=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p')`,
  `[ -n "$addr" ] || addr=$(hostname -I 2>/dev/null | cut -d' ' -f1)`,
].join('\n')

/**
 * Shell: makes the host a single-node Swarm when it is not one (advertising ADVERTISE_ADDR).
 * Prints what it did.
 */
export const SWARM_INIT = [
  'state=$(docker info --format "{{.Swarm.LocalNodeState}}")',
  'if [ "$state" = active ]; then echo "already a swarm"; exit 0; fi',
  ADVERTISE_ADDR,
  'docker swarm init --advertise-addr "$addr" >/dev/null',
  'echo "swarm initialised (advertising $addr)"',
].join('\n')

/**
 * Shell, on a manager: prints how many nodes the Swarm has; on a cluster, first labels this node
 * (the first host: the database's volume is there) as the database's node, unless one is.
 */
export const STACK_NODES = [
  'n=$(docker node ls --quiet | wc -l)',
  `if [ "$n" -gt 1 ] && ! docker node inspect --format '{{index .Spec.Labels "${DB_NODE_LABEL}"}}' $(docker node ls --quiet) | grep -qx true; then`,
  `  docker node update --label-add ${DB_NODE_LABEL}=true "$(docker info --format '{{.Swarm.NodeID}}')" >/dev/null`,
  'fi',
  'echo "$n"',
].join('\n')

/** A node's Swarm state and address, one JSON line (`docker info`'s Swarm part). */
export const NODE_STATE: Cmd = ['sh', '-c', `${ADVERTISE_ADDR}\nprintf '{"addr":"%s","swarm":%s}\\n' "$addr" "$(docker info --format '{{json .Swarm}}')"`]

export interface NodeState {
  /** The address the others reach it at (where it advertises itself). */
  addr: string
  state: string
  nodeId: string
  /** The swarm it belongs to (a manager knows its id; a worker does not: ''). */
  clusterId: string
  manager: boolean
}

/** NODE_STATE's output (pure). */
export function parseNodeState(stdout: string, where: string): NodeState {
  try {
    const j = JSON.parse(stdout.trim()) as { addr: string; swarm: { LocalNodeState?: string; NodeID?: string; ControlAvailable?: boolean; Cluster?: { ID?: string } | null } }
    return { addr: j.addr, state: j.swarm.LocalNodeState ?? '', nodeId: j.swarm.NodeID ?? '', clusterId: j.swarm.Cluster?.ID ?? '', manager: j.swarm.ControlAvailable === true }
  } catch {
    throw new UserError(`${where}: could not read its Docker Swarm state (docker info printed: ${stdout.trim().slice(0, 200) || 'nothing'})`)
  }
}

export type ClusterAction =
  | { kind: 'init'; node: number }
  | { kind: 'join'; node: number; role: Role }
  | { kind: 'promote' | 'demote'; node: number }

/**
 * What makes the nodes one swarm with `roles` (pure): the first node's swarm is the cluster (made
 * when it has none); a node outside it joins; a member with the other role is promoted or
 * demoted. A node in another swarm, or one not reachable as a member, is a problem for a person.
 * `members`: the node ids the first node's swarm lists (a worker cannot tell which swarm it is in).
 */
export function planCluster(states: NodeState[], roles: readonly Role[], members: readonly string[], where: readonly string[]): ClusterAction[] {
  const [first] = states
  if (!first || states.length !== roles.length) throw new Error('planCluster: one state and one role per node')
  const problems: string[] = []
  const actions: ClusterAction[] = []
  if (first.state === 'inactive') actions.push({ kind: 'init', node: 0 })
  else if (first.state !== 'active' || !first.manager) problems.push(`${where[0]} (the first host) is a Swarm ${first.state === 'active' ? 'worker' : `node in state ${first.state}`}: it must be a manager of the cluster`)
  states.forEach((s, i) => {
    if (i === 0) return
    const inCluster = s.state === 'active' && members.includes(s.nodeId)
    if (s.state === 'inactive') actions.push({ kind: 'join', node: i, role: roles[i]! })
    else if (!inCluster) problems.push(`${where[i]} belongs to another Docker Swarm (state ${s.state}): run \`docker swarm leave --force\` on it, then deploy again`)
    else if (s.manager !== (roles[i] === 'manager')) actions.push({ kind: roles[i] === 'manager' ? 'promote' : 'demote', node: i })
  })
  if (problems.length > 0) throw new UserError(problems.join('\n'))
  return actions
}

/** Shell, on a manager: prints the join token of `role` (stdout only; the caller keeps it in memory). */
export const joinTokenCmd = (role: Role): Cmd => ['docker', 'swarm', 'join-token', '--quiet', role]

/** Shell, on the joining node: reads the token from stdin, joins the manager at `managerAddr`, advertising its own address. */
export const joinCmd = (managerAddr: string): Cmd => ['sh', '-c', `IFS= read -r token || exit 2\n${ADVERTISE_ADDR}\nexec docker swarm join --token "$token" --advertise-addr "$addr" "$1:2377" >/dev/null`, 'sh', managerAddr]

/** Shell, on a manager: new join tokens (the ones handed out before stop working), printing nothing of them. */
export const ROTATE_TOKENS: Cmd = ['sh', '-c', 'docker swarm join-token --rotate --quiet worker >/dev/null && docker swarm join-token --rotate --quiet manager >/dev/null']

/** The node ids of the swarm, on a manager. */
export const MEMBERS: Cmd = ['docker', 'node', 'ls', '--format', '{{.ID}}']

/** Each node's id and manager status (Leader, Reachable, Unreachable, or empty for a worker), on a manager. */
export const MANAGER_STATUS: Cmd = ['docker', 'node', 'ls', '--format', '{{.ID}} {{.ManagerStatus}}']

/**
 * The nodes whose role is not yet the wanted one (pure), from MANAGER_STATUS's output: a new or
 * promoted manager counts once it is Leader or Reachable (it has joined the managers' consensus,
 * a few seconds after the promotion is accepted), a worker once it has no manager status.
 */
export function rolesPending(stdout: string, nodeIds: readonly string[], roles: readonly Role[]): number[] {
  const status = new Map(stdout.split('\n').filter(Boolean).map((l) => [l.split(' ')[0]!, l.split(' ').slice(1).join(' ').trim()]))
  return nodeIds.flatMap((id, i) => {
    const st = status.get(id)
    const ok = st !== undefined && (roles[i] === 'manager' ? st === 'Leader' || st === 'Reachable' : st === '')
    return ok ? [] : [i]
  })
}

export interface ClusterNode {
  /** `admin@host:22`, for messages. */
  where: string
  run: Runner
}

async function readNodeState(n: ClusterNode): Promise<NodeState> {
  return parseNodeState(check(await n.run(NODE_STATE), `read the Docker Swarm state of ${n.where}`).stdout, n.where)
}

/** Waits until every node has its role in the swarm (a promotion or a manager's join takes a few seconds to count). */
async function waitForRoles(nodes: readonly ClusterNode[], roles: readonly Role[], log: Log, waitSeconds: number, pollMs: number): Promise<void> {
  // read again: a node that joined has its id only now
  const ids = (await Promise.all(nodes.map(readNodeState))).map((s) => s.nodeId)
  const deadline = Date.now() + waitSeconds * 1000
  let shown = ''
  for (;;) {
    const pending = rolesPending(check(await nodes[0]!.run(MANAGER_STATUS), 'list the swarm nodes').stdout, ids, roles)
    if (pending.length === 0) return
    if (Date.now() > deadline)
      throw new UserError(`${pending.map((i) => `${nodes[i]!.where} (wanted: ${roles[i]})`).join(', ')}: not in that role after ${waitSeconds} s; see \`docker node ls\` on ${nodes[0]!.where}`)
    const now = `[cluster] waiting for ${pending.map((i) => `${nodes[i]!.where} as a ${roles[i]}`).join(', ')}`
    if (now !== shown) log.info((shown = now))
    await new Promise((r) => setTimeout(r, pollMs))
  }
}

/** The nodes made one swarm with clusterRoles(n); returns what it did (nothing on a cluster as wanted). */
export async function formCluster(nodes: readonly ClusterNode[], log: Log, waitSeconds = 60, pollMs = 1000): Promise<ClusterAction[]> {
  const roles = clusterRoles(nodes.length)
  const states = await Promise.all(nodes.map(readNodeState))
  const first = nodes[0]!
  const members = states[0]!.state === 'active' ? check(await first.run(MEMBERS), 'list the swarm nodes').stdout.split('\n').filter(Boolean) : []
  const actions = planCluster(states, roles, members, nodes.map((n) => n.where))
  const tokens: Partial<Record<Role, string>> = {}
  for (const a of actions) {
    const node = nodes[a.node]!
    if (a.kind === 'init') {
      check(await first.run(['sh', '-c', SWARM_INIT]), `make ${first.where} a Docker Swarm manager`)
      log.info(`[cluster] ${first.where}: a new swarm`)
    } else if (a.kind === 'join') {
      tokens[a.role] ??= check(await first.run(joinTokenCmd(a.role)), `read the ${a.role} join token`).stdout.trim()
      check(await node.run(joinCmd(states[0]!.addr), { input: `${tokens[a.role]}\n` }), `join ${node.where} to the swarm as a ${a.role}`)
      log.info(`[cluster] ${node.where}: joined as a ${a.role}`)
    } else {
      await changeNode(first, [a.kind, states[a.node]!.nodeId], `${a.kind} ${node.where}`, pollMs)
      log.info(`[cluster] ${node.where}: ${a.kind}d`)
    }
  }
  if (actions.some((a) => a.kind === 'join')) {
    check(await first.run(ROTATE_TOKENS), 'rotate the join tokens')
    log.info('[cluster] join tokens rotated (the ones used no longer admit anyone)')
  }
  if (actions.length > 0) await waitForRoles(nodes, roles, log, waitSeconds, pollMs)
  return actions
}

/** Shell on a node leaving the swarm: waits (up to `seconds`) until none of the stack's containers runs there. */
export const waitNoTasksCmd = (seconds: number): Cmd => [
  'sh',
  '-c',
  `i=0; while [ -n "$(docker ps --quiet --filter label=com.docker.stack.namespace=mymdb)" ]; do i=$((i+1)); [ $i -lt ${seconds} ] || { echo "the stack's containers still run here after ${seconds} s" >&2; exit 1; }; sleep 1; done`,
]

/** How often a node change is sent again after Swarm answered that the node changed meanwhile. */
export const OUT_OF_SEQUENCE_TRIES = 5

/**
 * `docker node <args>` on a manager. Swarm changes a node object against the version it read; when
 * another change landed in between (a drain just before a demote, the node's own status report)
 * it answers "update out of sequence" and changed nothing, so the change is sent again, a few times.
 */
export async function changeNode(manager: ClusterNode, args: readonly string[], doing: string, pollMs = 1000): Promise<void> {
  check(await rerunWhile(/update out of sequence/, () => manager.run(['docker', 'node', ...args]), OUT_OF_SEQUENCE_TRIES, pollMs), doing)
}

/** Runs `cmd` on `node` until it succeeds (a swarm takes a moment to see a change), for at most `seconds`. */
async function until(node: ClusterNode, cmd: Cmd, doing: string, seconds: number, pollMs: number): Promise<void> {
  await retryUntil(
    Math.ceil((seconds * 1000) / pollMs),
    pollMs,
    async () => (check(await node.run(cmd), doing), true),
    (last) => new UserError(`${doing}: still failing after ${seconds} s: ${last}`),
  )
}

/**
 * Takes a host out of the swarm without a failed request: drained (Swarm moves its tasks to the
 * other nodes), waited for until
 * none of the stack's containers runs there, demoted when a manager, `docker swarm leave` on it,
 * then removed from the node list on the first host. Safe to repeat: a host not in a swarm is left as it is.
 */
export async function retireNode(first: ClusterNode, leaving: ClusterNode, log: Log, waitSeconds = 120, pollMs = 1000): Promise<void> {
  const st = await readNodeState(leaving)
  if (st.state === 'inactive') {
    log.info(`[cluster] ${leaving.where}: not in a swarm (left before)`)
    return
  }
  const members = check(await first.run(MEMBERS), 'list the swarm nodes').stdout.split('\n').filter(Boolean)
  if (!members.includes(st.nodeId)) throw new UserError(`${leaving.where} belongs to another Docker Swarm than the first host's: run \`docker swarm leave --force\` on it, then deploy again`)
  await changeNode(first, ['update', '--availability', 'drain', st.nodeId], `drain ${leaving.where}`, pollMs)
  log.info(`[cluster] ${leaving.where}: drained (Swarm moves its tasks to the other hosts)`)
  check(await leaving.run(waitNoTasksCmd(waitSeconds)), `wait until ${leaving.where} runs none of the stack's tasks`)
  if (st.manager) {
    await changeNode(first, ['demote', st.nodeId], `demote ${leaving.where}`, pollMs)
    log.info(`[cluster] ${leaving.where}: demoted`)
  }
  // a demoted manager leaves as a worker once it knows it is one
  await until(leaving, ['docker', 'swarm', 'leave'], `${leaving.where}: docker swarm leave`, waitSeconds, pollMs)
  // removable once the managers see it down
  await until(first, ['docker', 'node', 'rm', st.nodeId], `remove ${leaving.where} from the swarm's nodes`, waitSeconds, pollMs)
  log.info(`[cluster] ${leaving.where}: left the swarm and removed from its nodes`)
}
