// The stack's life cycle, written once for this machine and the deploy host (in the style of
// Kamal: pure command builders, and a Stack that says where and how they run).
//
//   up:local   localStack(run, root, project, env)  Compose: docker compose --project-name <p> ... in the checkout
//   the host   hostStack(remote)                    a single-node Docker Swarm stack `mymdb`, rendered from
//                                                   the same docker-compose.yml and the host's ~/mymdb/.env
//                                                   (lib/stackfile.ts), so web is replaced without a gap
//              hostStack(remote, 'compose')         a host deployed before that (until its next deploy moves it)
//
// startStack: up with a health-gated wait (status and logs of what is unhealthy when that fails),
// the migrations checked, the sample catalogue loaded into an empty database. status, logs,
// manage, backup and restore use the same Stack and its verbs (exec, one-off, logs, ps).
import type { RawEnv } from './env.ts'
import { UserError } from './errors.ts'
import type { Log } from './log.ts'
import { stripControls } from './log.ts'
import { check, homeRelative, retryUnstarted, showCommand, type Cmd, type RunOptions, type RunResult, type Runner } from './sh.ts'
import type { Remote } from './ssh.ts'
import { STACK_NODES, SWARM_INIT } from './remote/cluster.ts'
import { parsePs, unhealthy, type PsEntry } from './compose.ts'
import { convergence, DB_CA_CONFIG_PREFIX, DB_NODE_LABEL, externalDatabase, parseServices, parseServiceTasks, splitImageRef, parseTaskContainers, STACK_NAME, stackImages, takesStartInterval, toStackFile, type JsonObject, type TaskContainer } from './stackfile.ts'
import { removeModeChanges } from './servicemode.ts'
import { createSecretsCmd, oneOffScript, pruneConfigsCmd, pruneSecretsCmd, secretsInput, withSwarmSecrets } from './swarmsecrets.ts'

/** Where the compose file and the production .env live on the host. */
export const REMOTE_DIR = '~/mymdb'

/** How a stack runs: Docker Compose (here), or a Docker Swarm stack (the host). */
export type StackKind = 'compose' | 'swarm'

export interface Stack {
  /** `this machine` or `admin@203.0.113.7:22`, for messages. */
  where: string
  run: Runner
  kind: StackKind
  /** The compose command of this stack with `args` (on the host too: it reads the .env and pulls). */
  compose(...args: string[]): Cmd
  /** Where compose runs (next to docker-compose.yml). */
  cwd: string
  /** The environment of compose here (the host's compose reads its .env). */
  env?: RawEnv
}

/** The stack on this machine: the checkout's docker-compose.yml, project `project`. */
export function localStack(run: Runner, root: string, project: string, env?: RawEnv): Stack {
  return { where: 'this machine', run, kind: 'compose', cwd: root, env, compose: (...args) => ['docker', 'compose', '--project-name', project, ...args] }
}

/** The stack on the deploy host: ~/mymdb/docker-compose.yml and its .env, run as a Swarm stack (or, before its first such deploy, by Compose). */
export function hostStack(remote: Pick<Remote, 'where' | 'run'>, kind: StackKind = 'swarm'): Stack {
  return { where: remote.where, run: remote.run, kind, cwd: REMOTE_DIR, compose: (...args) => ['docker', 'compose', ...args] }
}

/** The stack's services (docker-compose.yml): the front, the site, the database, the cache. */
export const SERVICES = ['proxy', 'web', 'db', 'cache'] as const
export type Service = (typeof SERVICES)[number]

/** A service's name in Swarm: mymdb_web. */
export const swarmService = (service: Service): string => `${STACK_NAME}_${service}`

/** The filter of `docker ps` and `docker container prune` for the containers of the host's stack. */
export const STACK_LABEL = `label=com.docker.stack.namespace=${STACK_NAME}`
const serviceLabel = (service: Service) => `label=com.docker.swarm.service.name=${swarmService(service)}`

/** What runs MyMDB on the host: its Swarm stack, Compose (deployed before zero-downtime deploys), or nothing yet. */
export type HostRuns = StackKind | 'none'

export const HOST_RUNS_CMD: Cmd = [
  'sh',
  '-c',
  `if docker service inspect ${swarmService('web')} >/dev/null 2>&1; then echo swarm; elif cd ${homeRelative(REMOTE_DIR)} 2>/dev/null && [ -f docker-compose.yml ] && [ -n "$(docker compose ps --all --quiet 2>/dev/null)" ]; then echo compose; else echo none; fi`,
]

/** Asks the host what runs MyMDB there. */
export async function hostRuns(remote: Pick<Remote, 'run'>): Promise<HostRuns> {
  const out = (await remote.run(HOST_RUNS_CMD)).stdout.trim()
  return out === 'compose' || out === 'none' ? out : 'swarm'
}

/** The host's stack as it runs now (a host still on Compose is operated with Compose). */
export async function openHostStack(remote: Pick<Remote, 'where' | 'run'>): Promise<Stack> {
  return hostStack(remote, (await hostRuns(remote)) === 'compose' ? 'compose' : 'swarm')
}

// --- commands (pure) ---------------------------------------------------------------------------

/** The seconds `up --wait` waits for healthy services (on the host: for the new version to take over). */
export const WAIT_TIMEOUT_SECONDS = 180

/**
 * Shell: `c` is set to a running container of a Swarm service on this node (a healthy one first:
 * during an update the new one may still be starting), or to '' when there is none.
 */
function localContainer(service: Service): string {
  const ps = (extra: string) => `docker ps --quiet --filter ${serviceLabel(service)} --filter status=running${extra} | head -n 1`
  return `c=$(${ps(' --filter health=healthy')}); [ -n "$c" ] || c=$(${ps('')})`
}

/** Shell: localContainer, or the script exits 1 naming the service. */
export function swarmContainer(service: Service): string {
  return `${localContainer(service)}; [ -n "$c" ] || { echo "no running ${service} container of the stack ${STACK_NAME} (npm run status -- --aws shows why)" >&2; exit 1; }`
}

/** `args` in a running container of `service`, stdin passed; with a terminal (`tty`) for shell, createsuperuser, ... */
export function execCmd(s: Stack, service: Service, args: readonly string[], o: { tty?: boolean; user?: string } = {}): Cmd {
  const user = o.user ? ['--user', o.user] : []
  if (s.kind === 'compose') return s.compose('exec', ...(o.tty ? [] : ['-T']), ...user, service, ...args)
  return ['sh', '-c', `${swarmContainer(service)}; exec docker exec ${[o.tty ? '-it' : '-i', ...user].join(' ')} "$c" "$@"`, 'sh', ...args]
}

/**
 * `python3 <args>` in a throw-away container of the web image (`image`, or the one web runs),
 * with web's environment and networks, stdin passed; `pass` names more variables taken from the
 * caller's environment. The running stack is untouched.
 */
export function oneOffCmd(s: Stack, args: readonly string[], o: { image?: string; pass?: readonly string[] } = {}): Cmd {
  const pass = (o.pass ?? []).flatMap((n) => ['-e', n])
  if (s.kind === 'compose') {
    const image = o.image ? splitImageRef(o.image) : undefined
    return [...(image ? ['env', `MYMDB_WEB_IMAGE=${image.repository}`, `MYMDB_TAG=${image.tag ?? 'latest'}`] : []), ...s.compose('run', '--rm', '--no-deps', '-T', ...pass, '--entrypoint', 'python3', 'web', ...args)]
  }
  return ['sh', '-c', oneOffScript(swarmService('web'), o.image ?? '', pass), 'sh', ...args]
}

export const stackCommands = {
  up: (s: Stack, waitSeconds = WAIT_TIMEOUT_SECONDS) => s.compose('up', '--detach', '--wait', '--wait-timeout', String(waitSeconds)),
  // on a Swarm in a throw-away container of web's image (this node may run none of web's tasks)
  migrateCheck: (s: Stack) => (s.kind === 'swarm' ? oneOffCmd(s, ['manage.py', 'migrate', '--check']) : manageCmd(s, ['migrate', '--check'])),
  sampleData: (s: Stack) => (s.kind === 'swarm' ? oneOffCmd(s, ['manage.py', 'load_sample_catalogue', '--if-empty']) : manageCmd(s, ['load_sample_catalogue', '--if-empty'])),
  ps: (s: Stack): Cmd =>
    s.kind === 'compose' ? s.compose('ps', '--all', '--format', 'json') : ['docker', 'ps', '--all', '--no-trunc', '--filter', STACK_LABEL, '--format', '{{json .}}'],
  /** The services with a running container, one a line. */
  running: (s: Stack): Cmd =>
    s.kind === 'compose'
      ? s.compose('ps', '--status', 'running', '--services')
      : ['sh', '-c', `docker ps --filter ${STACK_LABEL} --filter status=running --format '{{.Label "com.docker.swarm.service.name"}}' | sed 's/^${STACK_NAME}_//'`],
  /** The id of web's running container (empty when none). */
  webContainer: (s: Stack): Cmd =>
    s.kind === 'compose' ? s.compose('ps', '--quiet', 'web') : ['sh', '-c', `docker ps --quiet --filter ${serviceLabel('web')} --filter status=running | head -n 1`],
  /** Stops web (restore: nothing writes to the database meanwhile). */
  stopWeb: (s: Stack): Cmd => (s.kind === 'compose' ? s.compose('stop', 'web') : ['sh', '-c', scaleScript(['web'], 0)]),
  /** Starts web again after stopWeb. */
  startWeb: (s: Stack): Cmd => (s.kind === 'compose' ? s.compose('start', 'web') : ['sh', '-c', scaleScript(['web'], 1)]),
  /** Compose: starts the database alone and waits until it is healthy (web and the rest stay as they are). */
  upDb: (s: Stack, waitSeconds = WAIT_TIMEOUT_SECONDS): Cmd => s.compose('up', '--detach', '--wait', '--wait-timeout', String(waitSeconds), 'db'),
  /**
   * Compose: logs in to the database as web will, over TCP with a password, with this stack's
   * DJANGO_DB_USER, DJANGO_DB_PASSWORD and DJANGO_DB_NAME (`-e NAME`: from compose's environment,
   * not the running container's; never on the command line). Exit 0 when it works, else psql's
   * error on stderr (`password authentication failed for user "mymdb"`).
   */
  dbLogin: (s: Stack): Cmd =>
    s.compose(
      'exec', '-T', '-e', 'DJANGO_DB_USER', '-e', 'DJANGO_DB_PASSWORD', '-e', 'DJANGO_DB_NAME', 'db', 'sh', '-c',
      'PGPASSWORD="$DJANGO_DB_PASSWORD" exec psql --no-psqlrc --host=127.0.0.1 --username="$DJANGO_DB_USER" --dbname="$DJANGO_DB_NAME" --tuples-only --command="select 1"',
    ),
}

/** psql's error for a login whose password (or user) is not the one the database was made with. */
export const LOGIN_REFUSED = /password authentication failed for user "[^"]*"/

/**
 * Shell: Swarm services scaled to n replicas (no container is stopped or started by hand: Swarm
 * would replace it), waiting up to 150 s until one of each runs on this node (1), or none of
 * theirs runs here and Swarm counts none as running on a node that is up (0: a container gone is
 * not yet a task Swarm counts as stopped; on a cluster they run elsewhere too; one on a node that
 * is down keeps its last state, Running). A global service (a cluster's front) is left as it is.
 */
export function scaleScript(services: readonly Service[], n: 0 | 1): string {
  const here = (test: string) => `[ ${test} "$(docker ps --quiet --filter "label=com.docker.swarm.service.name=$s" --filter status=running)" ]`
  const settled = n === 0 ? `${here('-z')} && ! runs_on_a_ready_node "$s"` : here('-n')
  return [
    // (a service the stack does not have, the db with MYMDB_DATABASE=rds, is left out)
    `set --; for s in ${services.map(swarmService).join(' ')}; do g=$(docker service inspect --format '{{if .Spec.Mode.Global}}global{{end}}' "$s" 2>/dev/null) || continue; [ -n "$g" ] || set -- "$@" "$s"; done`,
    `[ $# -eq 0 ] || docker service scale --detach $(printf '%s=${n} ' "$@") >/dev/null`,
    ...(n === 0 ? [`runs_on_a_ready_node() { { docker node ls --format 'node {{.Hostname}} {{.Status}}'; docker service ps --format 'task {{.Node}} {{.CurrentState}}' "$1"; } | awk '$1 == "node" && $3 == "Ready" { up[$2] = 1 } $1 == "task" && $3 == "Running" && ($2 in up) { found = 1 } END { exit !found }'; }`] : []),
    `settled() { for s in "$@"; do { ${settled}; } || return 1; done; }`,
    `i=0; until settled "$@"; do i=$((i+1)); [ $i -lt 150 ] || { echo "$*: not ${n === 0 ? 'stopped' : 'started'} after 150 s" >&2; exit 1; }; sleep 1; done`,
  ].join('\n')
}

/**
 * `manage.py <args>` in the web container; with a terminal (`tty`) for shell, createsuperuser, ...
 * On a Swarm node that runs none of web's tasks (a cluster's), in a throw-away container of web's
 * image instead (oneOffCmd).
 */
export function manageCmd(s: Stack, args: readonly string[], tty = false): Cmd {
  if (s.kind === 'compose') return execCmd(s, 'web', ['python3', 'manage.py', ...args], { tty })
  const here = `${localContainer('web')}; [ -z "$c" ] || exec docker exec ${tty ? '-it' : '-i'} "$c" python3 "$@"`
  return ['sh', '-c', `${here}\n${oneOffScript(swarmService('web'), '', [], tty)}`, 'sh', 'manage.py', ...args]
}

export interface LogsOptions {
  service?: Service
  follow?: boolean
  /** e.g. 10m, 2h, or a timestamp (docker's --since). */
  since?: string
  lines?: number
}

/** The logs of one service or all (Compose's, or Swarm's: every task of the service, old ones too). */
export function logsCmd(s: Stack, o: LogsOptions): Cmd {
  const options = [
    '--timestamps',
    ...(o.follow ? ['--follow'] : []),
    ...(o.since ? ['--since', o.since] : []),
    '--tail',
    o.lines === undefined ? 'all' : String(o.lines),
  ]
  if (s.kind === 'compose') return s.compose('logs', '--no-color', ...options, ...(o.service ? [o.service] : []))
  if (o.service) return ['docker', 'service', 'logs', ...options, swarmService(o.service)]
  // all services: one after the other, or side by side while following
  const each = `docker service logs ${options.join(' ')} "${STACK_NAME}_$s"`
  return ['sh', '-c', o.follow ? `for s in ${SERVICES.join(' ')}; do ${each} & done; wait` : `for s in ${SERVICES.join(' ')}; do ${each}; done`]
}

/** How a stack command is shown: `cd mymdb && docker compose ...` on the host, plain here. */
export function showStackCommand(s: Stack, cmd: Cmd): string {
  return s.cwd === REMOTE_DIR ? showCommand(cmd, s.cwd) : showCommand(cmd)
}

// --- running -----------------------------------------------------------------------------------

/** Runs a command of the stack in its directory and environment. */
export function runIn(s: Stack, cmd: Cmd, opts: RunOptions = {}): Promise<RunResult> {
  return retryUnstarted(() => s.run(cmd, { cwd: s.cwd, ...(s.env ? { env: s.env } : {}), ...opts }))
}

/** runIn, and a CommandError (`$ cmd`, exit code, stderr) when the command fails. */
export async function runInChecked(s: Stack, cmd: Cmd, opts: RunOptions & { doing?: string } = {}): Promise<RunResult> {
  return check(await runIn(s, cmd, opts), opts.doing, opts.stream !== undefined)
}

/** The stack's containers: Compose's (all states), or per Swarm service its running container (else its newest). [] when Docker cannot tell. */
export async function stackPs(s: Stack): Promise<PsEntry[]> {
  const r = await runIn(s, stackCommands.ps(s))
  if (!r.ok) return []
  try {
    if (s.kind === 'compose') return parsePs(r.stdout)
    return latestTasks(parseTaskContainers(r.stdout)).map((c) => ({ Name: c.name, Service: c.service, State: c.state, Health: c.health, Publishers: [] }))
  } catch {
    return []
  }
}

/** Per service, its running container (a healthy one first), else its newest (pure; `docker ps` lists newest first). */
export function latestTasks(containers: TaskContainer[]): TaskContainer[] {
  const out: TaskContainer[] = []
  for (const service of SERVICES) {
    const mine = containers.filter((c) => c.service === service)
    const pick = mine.find((c) => c.state === 'running' && c.health === 'healthy') ?? mine.find((c) => c.state === 'running') ?? mine[0]
    if (pick) out.push(pick)
  }
  return out
}

/** Shows the stack's status and the last log lines of the services that are not healthy. */
export async function showDiagnostics(s: Stack, log: Log, services?: readonly Service[]): Promise<void> {
  const ps: Cmd = s.kind === 'compose' ? s.compose('ps', '--all') : ['docker', 'service', 'ps', '--no-trunc', '--format', '{{.Name}}  {{.Image}}  {{.CurrentState}}  {{.Error}}', ...SERVICES.map(swarmService)]
  const r = await runIn(s, ps)
  log.detail(`$ ${showStackCommand(s, ps)}`)
  log.detail(stripControls(r.stdout + r.stderr).trimEnd())
  const bad = services ?? (unhealthy(await stackPs(s)) as Service[])
  for (const service of bad.length > 0 ? bad : SERVICES) {
    const logs = logsCmd(s, { service, lines: 40 })
    const l = await runIn(s, logs)
    log.detail(`$ ${showStackCommand(s, logs)}`)
    log.detail(stripControls(l.stdout + l.stderr).trimEnd())
  }
}

/**
 * Starts (or updates) the stack and waits until every service is healthy; then checks that the
 * migrations ran (the web container runs them at start) and loads the sample catalogue into an
 * empty database. On a failed start: status and logs, then an error (exit 1).
 */
/** What startStack runs on a Swarm host, in order: what a dry run of the start shows. */
export function startStackSteps(s: Stack): string[] {
  return [
    'docker swarm init, unless the host is a Swarm node already; a host still on Compose: docker compose down first (the volumes stay)',
    `${showStackCommand(s, s.compose('config', '--format', 'json'))} | (the stack file) | ${showCommand(STACK_DEPLOY)}`,
    'wait until every service runs its new image, healthy (a web version that is not is rolled back by Swarm: exit 1)',
    ...[stackCommands.migrateCheck(s), stackCommands.sampleData(s)].map((c) => showStackCommand(s, c)),
  ]
}

/** Starts the stack and waits until it is healthy; `afterStart` (the migrations of a first deploy) runs before the checks. */
export async function startStack(s: Stack, log: Log, waitSeconds = WAIT_TIMEOUT_SECONDS, pollMs = 2_000, afterStart?: () => Promise<void>): Promise<void> {
  if (s.kind === 'swarm') await deployStack(s, log, waitSeconds, pollMs)
  else {
    const up = await log.step('up', `docker compose up (waiting up to ${waitSeconds} s for healthy services)`, () =>
      runIn(s, stackCommands.up(s, waitSeconds), { stream: log.prefixed('compose') }),
    )
    if (!up.ok) {
      await showDiagnostics(s, log)
      check(up, `start the stack on ${s.where}: not every service became healthy within ${waitSeconds} s (status and logs above)`, true)
    }
  }
  if (afterStart) await afterStart()
  await log.step('migrate', 'check that the database migrations ran', async () => {
    const r = await runIn(s, stackCommands.migrateCheck(s))
    return check(r, 'check the database migrations (the deploy runs them, or the web container at start here; see npm run logs -- web)')
  })
  await log.step('data', 'sample catalogue (only if the database is empty)', () =>
    runInChecked(s, stackCommands.sampleData(s), {
      stream: log.prefixed('catalogue'),
      doing: 'load the sample catalogue',
    }),
  )
}

// --- the host's Swarm stack ------------------------------------------------------------------------

/**
 * `docker stack deploy` of a stack file from stdin; registry credentials passed to the node (ECR);
 * a service the stack no longer has removed (--prune: the db service once the database is on RDS;
 * its volume stays).
 */
export const STACK_DEPLOY: Cmd = ['docker', 'stack', 'deploy', '--prune', '--with-registry-auth', '--compose-file', '-', STACK_NAME]

/**
 * The host's stack started or updated by Swarm: the stack file rendered from the compose file and
 * the .env; a host still on Compose moved over first (a few seconds without the site, once); then
 * `docker stack deploy`, and a wait until every service runs its new image healthy. A web version
 * that does not become healthy never takes traffic: Swarm rolls it back, the old one keeps
 * serving, and this says so (exit 1), with the service's tasks and logs. A db, proxy or cache
 * image that does not start is rolled back the same way (after the time it was down).
 */
async function deployStack(s: Stack, log: Log, waitSeconds: number, pollMs: number): Promise<void> {
  await log.step('swarm', 'a single-node Docker Swarm on the host (zero-downtime updates)', async () => {
    const r = await runInChecked(s, ['sh', '-c', SWARM_INIT], { doing: 'make the host a Docker Swarm node' })
    if (r.stdout.trim()) log.info(`[swarm] ${r.stdout.trim()}`)
  })
  const config = await runInChecked(s, s.compose('config', '--format', 'json'), { doing: 'render the compose file with the .env' })
  let rendered: JsonObject
  try {
    rendered = JSON.parse(config.stdout) as JsonObject
  } catch {
    throw new UserError(`docker compose config on ${s.where} printed no JSON (is its Compose older than 2.17?): ${config.stdout.slice(0, 200)}`)
  }
  const versions = await runIn(s, ['docker', 'version', '--format', '{{.Client.Version}} {{.Server.Version}}'])
  const nodes = Number((await runInChecked(s, ['sh', '-c', STACK_NODES], { doing: "count the Swarm's nodes" })).stdout.trim()) || 1
  const { stack: stackFile, secrets } = withSwarmSecrets(toStackFile(rendered, { startInterval: versions.ok && takesStartInterval(versions.stdout), nodes }))
  const replicas = ((stackFile.services as Record<string, { deploy?: { replicas?: number } }> | undefined)?.web?.deploy?.replicas) ?? 1
  if (nodes > 1) log.info(`[swarm] a cluster of ${nodes} nodes: the front on every node, ${replicas} web replicas over them, ${externalDatabase(rendered) ? 'the database on RDS' : `the database on the node labelled ${DB_NODE_LABEL}`}`)
  if (Object.keys(secrets).length > 0)
    await log.step('secrets', `the stack's ${Object.keys(secrets).length} secrets as Swarm secrets (files in its containers, in no service spec)`, () =>
    runInChecked(s, createSecretsCmd(secrets), { input: secretsInput(secrets), doing: 'make the Swarm secrets' }),
  )
  const images = stackImages(stackFile)
  const compose = await runIn(s, s.compose('ps', '--all', '--quiet'))
  if (compose.ok && compose.stdout.trim() !== '')
    await log.step('swarm', 'the host ran MyMDB with Compose: moving it to the Swarm stack (the data volumes stay; the site is away for a few seconds, this once)', async () => {
      await runInChecked(s, s.compose('stop', 'proxy'), { doing: 'stop the Compose front' })
      await runInChecked(s, s.compose('down', '--remove-orphans'), { stream: log.prefixed('compose'), doing: 'remove the Compose containers and networks' })
    })
  await removeModeChanges((cmd, o) => runIn(s, cmd, o), stackFile, log)
  const started = Date.now()
  await log.step('up', `docker stack deploy ${STACK_NAME} (${Object.values(images).join(', ')}); waiting up to ${waitSeconds} s for the new version to be healthy`, async () => {
    await runInChecked(s, STACK_DEPLOY, { input: JSON.stringify(stackFile), stream: log.prefixed('swarm'), doing: 'deploy the stack' })
    let shown = ''
    for (;;) {
      const state = await swarmState(s, images)
      if (state.state === 'done') return
      if (state.state === 'failed') {
        await showDiagnostics(s, log, [state.service as Service])
        throw new UserError(
          `the new ${state.service} did not become healthy on ${s.where}: ${state.why}.${state.running ? ` The previous version (${state.running}) ${state.service === 'web' ? 'keeps serving' : 'runs again'}.` : ''} Its tasks and logs are above (npm run logs -- --aws ${state.service})`,
        )
      }
      const now = `waiting for ${state.on.join(', ')}`
      if (now !== shown) log.info(`[swarm] ${(shown = now)}`)
      if (Date.now() - started > waitSeconds * 1000) {
        await showDiagnostics(s, log)
        throw new UserError(`the stack on ${s.where} did not converge within ${waitSeconds} s (${now}); its status and logs are above`)
      }
      await new Promise((r) => setTimeout(r, pollMs))
    }
  })
  const pruned = await runIn(s, pruneSecretsCmd(Object.keys(secrets)))
  const gone = pruned.stdout.split('\n').filter(Boolean)
  if (gone.length > 0) log.info(`[secrets] removed ${gone.length} secret(s) of earlier values`)
  if (pruned.stderr.trim()) log.warn(`[secrets] ${stripControls(pruned.stderr.trim())}`)
  // the database's CA bundles of earlier deploys (MYMDB_DATABASE=rds)
  const configs = Object.values((stackFile.configs ?? {}) as Record<string, { name?: string }>).flatMap((c) => (c.name ? [c.name] : []))
  const oldBundles = await runIn(s, pruneConfigsCmd(DB_CA_CONFIG_PREFIX, configs))
  const bundles = oldBundles.stdout.split('\n').filter(Boolean)
  if (bundles.length > 0) log.info(`[configs] removed ${bundles.length} CA bundle(s) of earlier deploys`)
  if (oldBundles.stderr.trim()) log.warn(`[configs] ${stripControls(oldBundles.stderr.trim())}`)
}

/** Where the stack's deploy of `images` stands (see stackfile.convergence). */
async function swarmState(s: Stack, images: Record<string, string>) {
  const services = await runIn(s, ['docker', 'service', 'inspect', '--format', '{{json .}}', ...Object.keys(images).map((n) => swarmService(n as Service))])
  // the tasks of every node (a cluster's run elsewhere too), not this node's containers; those
  // Swarm restarts after a delay have the desired state Ready first (parseServiceTasks keeps them)
  const tasks = await runIn(s, ['docker', 'service', 'ps', '--no-trunc', '--format', '{{json .}}', ...Object.keys(images).map((n) => swarmService(n as Service))])
  return convergence(images, parseServices(services.stdout), parseServiceTasks(tasks.stdout))
}
