// Spike material of issue 9 (session 5; not used by the tasks yet): see bench/swarm/MIGRATION-SPIKE.md.
// The stack file for `docker stack deploy`, from what `docker compose config --format json` prints
// on the host (in ~/mymdb, next to the .env). Pure: JSON in, JSON out (JSON is YAML, and
// `docker stack deploy -c -` reads it from stdin).
//
// What `docker stack deploy` cannot take from docker-compose.yml as is, and what Swarm needs:
//   - top-level `name` (rejected by the v3 schema) and `x-*` extension fields: dropped
//   - depends_on with conditions (rejected): dropped; Swarm starts all services at once, and the
//     web container waits for the database itself (scripts/wait_for_db.sh)
//   - `command: null`, `entrypoint: null` (compose config prints them): dropped
//   - `restart` (ignored with a warning): dropped; Swarm's restart_policy (condition any) is the default
//   - ports: long syntax, `mode: host` (no routing mesh: no IPVS in the rig's kernel, and the proxy
//     is the only publisher), host_ip dropped (Swarm cannot bind one address), published as a number
//   - networks: overlay; `back` internal; attachable (for `docker run --rm --network mymdb_back`)
//   - names of networks and volumes dropped: the stack's namespace gives the same names
//     (mymdb_db-data, mymdb_media, mymdb_proxy-data: the volumes Compose created are reused)
//   - deploy: endpoint_mode dnsrr everywhere (no VIPs without IPVS); web start-first with
//     automatic rollback when the new task does not become healthy; db and proxy stop-first
//     (one PostgreSQL on one volume; the proxy owns the host ports 80/443)
//   - the front finds the web tasks by DNS (MYMDB_UPSTREAM / MYMDB_UPSTREAM_DNS, see options)

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type Obj = { [k: string]: Json }

export interface StackOptions {
  /** proxy: MYMDB_UPSTREAM (start.sh's static upstream, default web:80 there). */
  upstream?: string
  /** proxy: MYMDB_UPSTREAM_DNS (host:port; the spike's start.sh writes `dynamic a host port`). */
  upstreamDns?: string
  /** Overlay networks attachable by `docker run --network` (default true). */
  attachable?: boolean
  /** Seconds Swarm watches a new web task after it became healthy before the update counts as done (default 15). */
  monitorSeconds?: number
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function port(p: Json): Obj {
  if (!isObj(p)) throw new Error(`ports: expected the long syntax of docker compose config, got ${JSON.stringify(p)}`)
  const out: Obj = { target: Number(p.target), protocol: (p.protocol as string) ?? 'tcp', mode: 'host' }
  if (p.published !== undefined && p.published !== null && p.published !== '') {
    const published = Number(p.published)
    if (!Number.isInteger(published)) throw new Error(`ports: a published range or name is not supported here: ${JSON.stringify(p.published)}`)
    out.published = published
  }
  return out
}

const WEB_DEPLOY: Obj = {
  replicas: 1,
  endpoint_mode: 'dnsrr',
  update_config: { order: 'start-first', parallelism: 1, failure_action: 'rollback', monitor: '15s' },
  rollback_config: { order: 'start-first', parallelism: 1 },
}
const SINGLE_DEPLOY: Obj = {
  replicas: 1,
  endpoint_mode: 'dnsrr',
  update_config: { order: 'stop-first', parallelism: 1 },
  rollback_config: { order: 'stop-first', parallelism: 1 },
}

/** The stack file (an object; JSON.stringify it) for `docker stack deploy -c - mymdb`. */
export function toStackFile(composeConfig: Obj, opts: StackOptions = {}): Obj {
  const attachable = opts.attachable ?? true
  const services: Obj = {}
  for (const [name, raw] of Object.entries((composeConfig.services ?? {}) as Obj)) {
    if (!isObj(raw)) continue
    const s: Obj = {}
    for (const [k, v] of Object.entries(raw)) {
      if (v === null || k.startsWith('x-') || ['depends_on', 'restart', 'container_name', 'pull_policy'].includes(k)) continue
      if (k === 'ports') s.ports = (v as Json[]).map(port)
      else s[k] = v
    }
    const deploy = name === 'web' ? structuredClone(WEB_DEPLOY) : structuredClone(SINGLE_DEPLOY)
    if (name === 'web' && opts.monitorSeconds !== undefined) (deploy.update_config as Obj).monitor = `${opts.monitorSeconds}s`
    s.deploy = { ...(isObj(raw.deploy) ? raw.deploy : {}), ...deploy }
    if (name === 'proxy') {
      const env = { ...(isObj(raw.environment) ? raw.environment : {}) }
      if (opts.upstream !== undefined) env.MYMDB_UPSTREAM = opts.upstream
      if (opts.upstreamDns !== undefined) env.MYMDB_UPSTREAM_DNS = opts.upstreamDns
      s.environment = env
    }
    services[name] = s
  }
  const networks: Obj = {}
  for (const [name, raw] of Object.entries((composeConfig.networks ?? {}) as Obj)) {
    const n: Obj = { driver: 'overlay', attachable }
    if (isObj(raw) && raw.internal === true) n.internal = true
    networks[name] = n
  }
  const volumes: Obj = {}
  for (const [name, raw] of Object.entries((composeConfig.volumes ?? {}) as Obj)) {
    const v: Obj = {}
    if (isObj(raw) && raw.driver) v.driver = raw.driver
    volumes[name] = v
  }
  return { services, networks, volumes }
}
