// The stack file for `docker stack deploy` on the host, made from what `docker compose config
// --format json` prints there (in ~/mymdb, next to its .env: Compose does the interpolation,
// nested defaults included). Pure: JSON in, JSON out (JSON is YAML, and `docker stack deploy -c -`
// reads it from stdin). The spike that chose this: bench/SWARM-SPIKE.md.
//
// What `docker stack deploy` cannot take from docker-compose.yml as it is, and what Swarm needs:
//   - top-level `name` (refused by its schema) and `x-*` fields: dropped
//   - depends_on with conditions (refused): dropped; Swarm starts all services at once, and the
//     web container waits for the database itself (scripts/wait_for_db.sh)
//   - `restart`: dropped; Swarm restarts tasks itself (restart_policy any), after reboots too
//   - ports: long syntax, `mode: host` (no routing mesh: the proxy is the only publisher, and
//     the rig's kernel has no IPVS), published as a number, host_ip dropped
//   - networks: overlay; `back` stays internal; attachable, so that one-off containers
//     (docker run --network mymdb_back) reach the database. Attachable must be right when the
//     network is made: it cannot be changed later without removing the stack.
//   - names of networks and volumes come from the stack's namespace: mymdb_db-data, mymdb_media,
//     mymdb_proxy-data are the volumes Compose made, reused as they are
//   - web: MYMDB_MIGRATE_ON_START=0 (the deploy runs the migrations once, before the new version
//     takes traffic) and a shorter health-check start period (30 s: it no longer migrates)
//   - health checks every second until healthy (start_interval), where the host's Docker takes
//     it (25 and later; the local engine may be older, so docker-compose.yml cannot carry it)
//   - db: MYMDB_DB_SET_PASSWORDS=1 (its roles' passwords set from the environment at each start)
//   - deploy: endpoint_mode dnsrr (one replica each; no virtual IPs without IPVS); web is
//     updated start-first, the new task takes traffic only once healthy, and a new task that
//     does not become healthy is rolled back by Swarm; db, proxy and cache stop-first (one
//     PostgreSQL on one volume; the proxy owns the host's ports 80 and 443; a cache may be down),
//     and rolled back too when the new one does not start (the old image runs again). Swarm
//     watches a new task for as long as its health check takes to call it unhealthy.
//   - a Swarm of several nodes (a cluster): the front global (each node's ports 80 and 443
//     answer), web's replicas one per node (MYMDB_WEB_REPLICAS, the compose file's
//     x-web-replicas, says otherwise, on one host too), updated stop-first when there are two or
//     more (so they stay spread: clusterDeploy), the database placed on the node labelled
//     mymdb.db (the first host: its volume is there), one cache for every replica.
//   - MYMDB_DATABASE=rds (x-database): no db service and no db-data volume; web reads the CA
//     bundle of the database's certificate from a Swarm config (db-ca.pem beside the .env), named
//     by the bundle's id (x-db-ca-id)
//   - the fronts' shared storage (x-front-storage, several hosts): the proxy's /data is that
//     directory of the host (the same file system on every node) instead of its volume

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
export type JsonObject = { [k: string]: Json }

/** The stack's name on the host: its services are mymdb_web, mymdb_db, mymdb_proxy. */
export const STACK_NAME = 'mymdb'

/** How long a starting web task of the stack may fail its health check (it does not migrate). */
export const WEB_START_PERIOD = '30s'

/**
 * How often a task that is not yet healthy is checked, on a host whose Docker takes it (25 and
 * later): a new task counts as healthy within about a second of being ready, not only at its
 * service's next interval (3 s for web, 5 s for the front and the cache), and every deploy waits
 * that much less. Once healthy, and after the start period, the service's own interval applies.
 */
export const START_INTERVAL = '1s'

/** Seconds Swarm watches a new task after it became healthy, for a service without a health check. */
export const MONITOR_SECONDS = 15

/**
 * Swarm's pause between replacing one task of a service and the next. Without one, a new task that
 * fails at once races the next replacement: Swarm's updater hands out the next replica in the same
 * moment it sees the failure, and at random stops a second healthy task first (seen on the rig: a
 * broken web replaced both replicas, no web at all until the rollback).
 */
export const UPDATE_DELAY = '1s'

/** Seconds in a Go duration as `docker compose config` writes it (`3s`, `1m30s`, `500ms`), or undefined. */
export function durationSeconds(d: Json | undefined): number | undefined {
  if (typeof d !== 'string' || !/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(d)) return undefined
  const unit: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }
  let total = 0
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * (unit[m[2]!] ?? 0)
  return total
}

/**
 * How long Swarm watches a new task of a service after it became healthy, before its update
 * counts as done (pure): as long as its health check takes to call it unhealthy (interval times
 * retries, Docker's default 3), so a version that fails right after its first good check is
 * rolled back too; MONITOR_SECONDS without a health check.
 */
export function monitorSeconds(healthcheck: Json | undefined): number {
  if (!isObj(healthcheck) || healthcheck.disable === true) return MONITOR_SECONDS
  const interval = durationSeconds(healthcheck.interval) ?? 30
  const retries = typeof healthcheck.retries === 'number' ? healthcheck.retries : 3
  return Math.max(1, Math.ceil(interval * retries))
}

/** Whether a value of a parsed JSON document is an object (not null, not an array). */
export const isObj = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)

function port(p: Json): JsonObject {
  if (!isObj(p)) throw new Error(`ports: expected the long syntax of docker compose config, got ${JSON.stringify(p)}`)
  const out: JsonObject = { target: Number(p.target), protocol: typeof p.protocol === 'string' ? p.protocol : 'tcp', mode: 'host' }
  if (p.published !== undefined && p.published !== null && p.published !== '') {
    const published = Number(p.published)
    if (!Number.isInteger(published)) throw new Error(`ports: a published range or name is not supported on the host: ${JSON.stringify(p.published)}`)
    out.published = published
  }
  return out
}

/** A service's deploy section: web start-first, the others stop-first; rolled back when the new task fails within `monitor` seconds. */
function deploySection(name: string, monitor: number): JsonObject {
  const order = name === 'web' ? 'start-first' : 'stop-first'
  return {
    replicas: 1,
    endpoint_mode: 'dnsrr',
    update_config: { order, parallelism: 1, delay: UPDATE_DELAY, failure_action: 'rollback', monitor: `${monitor}s` },
    rollback_config: { order, parallelism: 1 },
  }
}

/**
 * Whether the host's Docker takes `healthcheck.start_interval` in a stack file (pure), from
 * `docker version --format '{{.Client.Version}} {{.Server.Version}}'`: the CLI's stack file schema
 * and the engine both from 25 on (an older CLI refuses the key; Debian trixie ships 26, bookworm
 * 20.10). Anything unreadable counts as no.
 */
export function takesStartInterval(versions: string): boolean {
  const majors = versions.trim().split(/\s+/).map((v) => /^(\d+)\./.exec(v)?.[1])
  return majors.length === 2 && majors.every((m) => m !== undefined && Number(m) >= 25)
}

/** The node label that says where the database's volume is (a cluster's db task runs there only). */
export const DB_NODE_LABEL = 'mymdb.db'

/** How the stack is laid out: one host, or a cluster of `nodes` (see toStackFile). */
export interface StackShape {
  /** See START_INTERVAL. */
  startInterval?: boolean
  /** The Swarm's nodes (default 1). */
  nodes?: number
  /** Web's replicas on a cluster (default: one per node). */
  webReplicas?: number
  /** The front's /data on the cluster's shared storage (MYMDB_FRONT_STORAGE; toStackFile sets it). */
  sharedFront?: boolean
}

/**
 * A cluster's deploy sections (pure), beside the single host's: the front on every node (global:
 * each node's ports 80 and 443 answer), web's replicas spread over the nodes by Swarm, the
 * database on the node that holds its volume (labelled DB_NODE_LABEL), one cache for every replica.
 */
function clusterDeploy(name: string, deploy: JsonObject, shape: StackShape): JsonObject {
  const nodes = shape.nodes ?? 1
  if (name === 'web') {
    const replicas = shape.webReplicas ?? nodes
    if (nodes <= 1 || replicas < 2) return { ...deploy, replicas }
    // Several replicas over several nodes: each replaced one at a time, stopped before its new
    // task is placed (the others serve meanwhile; the front tries another address). Swarm places
    // a task on the node with the fewest of the service's tasks: the node just vacated, so the
    // replicas stay one per node. Started first, the old task still counts there and the new one
    // may land beside another (seen on the rig: two on one node, none on another).
    const stopFirst = (c: Json | undefined) => ({ ...(isObj(c) ? c : {}), order: 'stop-first' })
    return { ...deploy, replicas, update_config: stopFirst(deploy.update_config), rollback_config: stopFirst(deploy.rollback_config) }
  }
  // the front is global on a cluster, and on one host while it shares the cluster's storage (a
  // stage down to one host behind its front door): Swarm cannot change a service's mode in place
  // (the deploy removes it first, stack.ts), and this way the mode changes only when the front is
  // replaced anyway (its /data moves)
  if (name === 'proxy' && (nodes > 1 || shape.sharedFront)) {
    const { replicas: _one, ...rest } = deploy
    return { ...rest, mode: 'global' }
  }
  if (nodes <= 1) return deploy
  if (name === 'db') return { ...deploy, placement: { constraints: [`node.labels.${DB_NODE_LABEL} == true`] } }
  return deploy
}

/** Where web finds the CA bundle of the database's certificate (MYMDB_DATABASE=rds): a Swarm config, on every node. */
export const DB_CA_TARGET = '/run/mymdb/db-ca.pem'
/** The Swarm config of a bundle: this and the bundle's id (a new bundle is a new config; the deploy prunes the old ones). */
export const DB_CA_CONFIG_PREFIX = `${STACK_NAME}_db_ca_`
/** The bundle's file in the stack's directory on host 1 (the deploy uploads it). */
export const DB_CA_FILE = 'db-ca.pem'

/** Whether the host's .env puts the database on RDS (docker-compose.yml's x-database): the stack then has no db service. */
export function externalDatabase(composeConfig: JsonObject): boolean {
  return composeConfig['x-database'] === 'rds'
}

/** The stack file (an object; JSON.stringify it) for `docker stack deploy -c - mymdb`, for one host or a cluster (StackShape). */
export function toStackFile(composeConfig: JsonObject, shape: StackShape = {}): JsonObject {
  // MYMDB_WEB_REPLICAS, from the host's .env (docker-compose.yml's x-web-replicas)
  const asked = Number(composeConfig['x-web-replicas'])
  const opts: StackShape = { webReplicas: Number.isInteger(asked) && asked > 0 ? asked : undefined, ...shape }
  // MYMDB_DATABASE=rds: no db service (nor its volume); web gets the CA bundle as a Swarm config,
  // named by its content's id (a config cannot change: a new bundle is a new config)
  const rds = externalDatabase(composeConfig)
  const caId = String(composeConfig['x-db-ca-id'] ?? '')
  if (rds && !/^[0-9a-f]{12}$/.test(caId)) throw new Error(`MYMDB_DATABASE=rds needs MYMDB_DB_CA_ID in the host's .env (12 hex digits; the deploy writes it), got ${JSON.stringify(caId)}`)
  const frontStorage = String(composeConfig['x-front-storage'] ?? '')
  if (frontStorage && !/^\/[A-Za-z0-9._/-]+$/.test(frontStorage)) throw new Error(`MYMDB_FRONT_STORAGE in the host's .env must be an absolute path, got ${JSON.stringify(frontStorage)}`)
  const services: JsonObject = {}
  for (const [name, raw] of Object.entries(isObj(composeConfig.services) ? composeConfig.services : {})) {
    if (!isObj(raw) || (rds && name === 'db')) continue
    const s: JsonObject = {}
    for (const [k, v] of Object.entries(raw)) {
      if (v === null || k.startsWith('x-') || ['depends_on', 'restart', 'container_name', 'pull_policy', 'deploy'].includes(k)) continue
      s[k] = k === 'ports' && Array.isArray(v) ? v.map(port) : v
    }
    s.deploy = clusterDeploy(name, deploySection(name, monitorSeconds(raw.healthcheck)), { ...opts, sharedFront: frontStorage !== '' })
    if (name === 'web') {
      // the deploy migrates once, before the new version takes traffic (manage.py release): a
      // starting web task never does, so several can start at once and a failed one changes nothing
      s.environment = { ...(isObj(s.environment) ? s.environment : {}), MYMDB_MIGRATE_ON_START: '0' }
      // so it is healthy within seconds, or judged soon
      if (isObj(s.healthcheck)) s.healthcheck = { ...s.healthcheck, start_period: WEB_START_PERIOD }
    }
    // the host's .env is where the passwords live: the database takes them when it starts (a
    // rotation); up:local leaves a volume's passwords as they were made
    if (name === 'db') s.environment = { ...(isObj(s.environment) ? s.environment : {}), MYMDB_DB_SET_PASSWORDS: '1' }
    if (opts.startInterval && isObj(s.healthcheck) && s.healthcheck.disable !== true) s.healthcheck = { ...s.healthcheck, start_interval: START_INTERVAL }
    if (rds && name === 'web') s.configs = [{ source: 'db_ca', target: DB_CA_TARGET, mode: 0o444 }]
    if (frontStorage && name === 'proxy' && Array.isArray(s.volumes))
      s.volumes = s.volumes.map((v) => (isObj(v) && v.target === '/data' ? { type: 'bind', source: frontStorage, target: '/data' } : v))
    services[name] = s
  }
  const networks: JsonObject = {}
  for (const [name, raw] of Object.entries(isObj(composeConfig.networks) ? composeConfig.networks : {}))
    networks[name] = { driver: 'overlay', attachable: true, ...(isObj(raw) && raw.internal === true ? { internal: true } : {}) }
  const volumes: JsonObject = {}
  for (const [name, raw] of Object.entries(isObj(composeConfig.volumes) ? composeConfig.volumes : {}))
    if (!(rds && name === 'db-data')) volumes[name] = isObj(raw) && typeof raw.driver === 'string' ? { driver: raw.driver } : {}
  return { services, networks, volumes, ...(rds ? { configs: { db_ca: { name: `${DB_CA_CONFIG_PREFIX}${caId}`, file: `./${DB_CA_FILE}` } } } : {}) }
}

/** The parts of an image reference `<repository>[:<tag>][@<digest>]` (the repository may hold a registry port). */
export function splitImageRef(ref: string): { repository: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@')
  const name = at < 0 ? ref : ref.slice(0, at)
  const digest = at < 0 ? undefined : ref.slice(at + 1)
  const colon = name.lastIndexOf(':')
  const tagged = colon > name.lastIndexOf('/')
  return { repository: tagged ? name.slice(0, colon) : name, ...(tagged ? { tag: name.slice(colon + 1) } : {}), ...(digest ? { digest } : {}) }
}

/** The image each service of a stack file runs (pure). */
export function stackImages(stack: JsonObject): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, s] of Object.entries(isObj(stack.services) ? stack.services : {})) if (isObj(s) && typeof s.image === 'string') out[name] = s.image
  return out
}

// --- what Swarm says about the stack --------------------------------------------------------

/** One service as `docker service inspect` shows it (the parts a deploy looks at). */
export interface ServiceInfo {
  name: string
  /** The image in the service's spec (Swarm adds @sha256:... to a tag it resolved). */
  image: string
  /** The last update's state: updating, completed, paused, rollback_started, rollback_completed, rollback_paused ('' when never updated). */
  updateState: string
  updateMessage: string
  /** How many tasks a replicated service asks for (undefined: global, one a node). */
  replicas?: number
}

/** A container of the stack as `docker ps --format json` shows it. */
export interface TaskContainer {
  id: string
  name: string
  /** The service without the stack's prefix: web, db, proxy, cache. */
  service: string
  image: string
  state: string
  /** The Swarm node it runs on (`docker service ps`; '' from `docker ps`: this one). */
  node: string
  /** healthy, unhealthy, starting, or '' without a health check. */
  health: string
  createdAt: string
}

/** Parses `docker service inspect --format '{{json .}}' ...` (one JSON object a line, or an array). */
export function parseServices(stdout: string): ServiceInfo[] {
  const text = stdout.trim()
  if (text === '') return []
  const items: unknown[] = text.startsWith('[') ? (JSON.parse(text) as unknown[]) : text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown)
  return items.filter(isObj).map((o) => {
    const spec = isObj(o.Spec) ? o.Spec : {}
    const task = isObj(spec.TaskTemplate) ? spec.TaskTemplate : {}
    const container = isObj(task.ContainerSpec) ? task.ContainerSpec : {}
    const update = isObj(o.UpdateStatus) ? o.UpdateStatus : {}
    const replicated = isObj(spec.Mode) && isObj(spec.Mode.Replicated) ? spec.Mode.Replicated : {}
    return {
      name: typeof spec.Name === 'string' ? spec.Name : '',
      image: typeof container.Image === 'string' ? container.Image : '',
      updateState: typeof update.State === 'string' ? update.State : '',
      updateMessage: typeof update.Message === 'string' ? update.Message : '',
      ...(typeof replicated.Replicas === 'number' ? { replicas: replicated.Replicas } : {}),
    }
  })
}

const SERVICE_LABEL = 'com.docker.swarm.service.name'

/** Parses `docker ps --all --format '{{json .}}'` of the stack's containers (one object a line). */
export function parseTaskContainers(stdout: string, stack = STACK_NAME): TaskContainer[] {
  const out: TaskContainer[] = []
  for (const line of stdout.split('\n')) {
    if (!line.trim().startsWith('{')) continue
    const o = JSON.parse(line) as Record<string, unknown>
    const labels = new Map(String(o.Labels ?? '').split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const))
    const service = (labels.get(SERVICE_LABEL) ?? '').replace(new RegExp(`^${stack}_`), '')
    if (!service) continue
    const status = String(o.Status ?? '')
    const health = /\((healthy|unhealthy|health: starting)\)/.exec(status)?.[1]?.replace('health: ', '') ?? ''
    out.push({ id: String(o.ID ?? ''), name: String(o.Names ?? ''), service, image: String(o.Image ?? ''), state: String(o.State ?? ''), node: '', health, createdAt: String(o.CreatedAt ?? '') })
  }
  return out
}

/**
 * Parses `docker service ps --format '{{json .}}'` (one object a line): the tasks of every node
 * that Swarm wants running (desired state Running, or Ready: a task it restarts after the
 * restart delay), as TaskContainers; the ones it shut down are left out. Swarm keeps a task with
 * a health check `Starting` until its container is healthy, and says `Running` from then on
 * (seen on the rig: within a second).
 */
export function parseServiceTasks(stdout: string, stack = STACK_NAME): TaskContainer[] {
  const out: TaskContainer[] = []
  for (const line of stdout.split('\n')) {
    if (!line.trim().startsWith('{')) continue
    const o = JSON.parse(line) as Record<string, unknown>
    if (o.DesiredState !== undefined && !['running', 'ready'].includes(String(o.DesiredState).toLowerCase())) continue
    const service = String(o.Name ?? '').replace(/\.[^.]*$/, '').replace(new RegExp(`^${stack}_`), '')
    if (!service) continue
    const current = String(o.CurrentState ?? '').split(' ')[0]?.toLowerCase() ?? ''
    out.push({ id: String(o.ID ?? ''), name: `${String(o.Name ?? '')}@${String(o.Node ?? '')}`, service, image: String(o.Image ?? ''), state: current, node: String(o.Node ?? ''), health: current === 'running' ? 'healthy' : current, createdAt: '' })
  }
  return out
}

/** Does a container run `ref` (as deployed: a tag or a digest; Swarm adds the digest it resolved)? */
export function runsImage(containerImage: string, ref: string): boolean {
  return containerImage === ref || containerImage.startsWith(`${ref}@`)
}

/** Swarm's task states before running (`docker service ps`: a task with a health check is `starting` until healthy). */
const STARTING_STATES = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting'])

/**
 * A service's tasks that run `ref` (pure): how many are up (running, healthy or without a health
 * check) and how many Swarm is still bringing up (a cluster's replicas, a global front), and the
 * health of a running one.
 */
function tasksOf(containers: TaskContainer[], service: string, ref: string): { up: number; coming: number; health: string } {
  const mine = containers.filter((c) => c.service === service && runsImage(c.image, ref))
  return {
    up: mine.filter((c) => c.state === 'running' && (c.health === '' || c.health === 'healthy')).length,
    coming: mine.filter((c) => STARTING_STATES.has(c.state)).length,
    health: mine.find((c) => c.state === 'running')?.health ?? '',
  }
}

export type Convergence = { state: 'done' } | { state: 'waiting'; on: string[] } | { state: 'failed'; service: string; why: string; running?: string }

/**
 * Where a deploy of `images` (service → the image deployed) stands (pure): done when every
 * service's update is over and a running, healthy container runs the image deployed; failed
 * when Swarm paused the update, or rolled it back (the spec then names the old image again) and
 * the old image's tasks are all up again; waiting otherwise, on the services named.
 */
export function convergence(images: Record<string, string>, services: ServiceInfo[], containers: TaskContainer[], stack = STACK_NAME): Convergence {
  const waiting: string[] = []
  for (const [service, ref] of Object.entries(images)) {
    const info = services.find((s) => s.name === `${stack}_${service}`)
    if (!info) {
      waiting.push(`${service} (no service yet)`)
      continue
    }
    const why = info.updateMessage ? `: ${info.updateMessage}` : ''
    if (['updating', 'rollback_started'].includes(info.updateState)) {
      waiting.push(`${service} (${info.updateState.replace('_', ' ')})`)
      continue
    }
    if (!runsImage(info.image, ref)) {
      // rolled back: over once the previous version's tasks that Swarm puts back (a replica it had
      // stopped first, restarted after the restart delay; a db) are healthy again, so that "the
      // previous version serves" is whole (none up and none coming: said at once, nothing to wait for)
      const back = tasksOf(containers, service, info.image)
      if (back.coming === 0 && (back.up >= (info.replicas ?? 0) || back.up === 0)) return { state: 'failed', service, why: `Swarm rolled ${service} back${why}`, running: info.image }
      waiting.push(`${service} (rolled back: the previous version ${back.up} of ${Math.max(back.up + back.coming, info.replicas ?? 0)} healthy)`)
      continue
    }
    if (info.updateState === 'paused' || info.updateState === 'rollback_paused') return { state: 'failed', service, why: `Swarm paused the update of ${service}${why}` }
    const { up, coming, health } = tasksOf(containers, service, ref)
    if (up > 0 && coming === 0) continue
    waiting.push(up + coming > 1 ? `${service} (${up} of ${up + coming} healthy)` : `${service} (${health || 'starting'})`)
  }
  return waiting.length === 0 ? { state: 'done' } : { state: 'waiting', on: waiting }
}
