// The host's Swarm stack: the stack file made from `docker compose config`, and how a deploy
// reads Swarm's answers (services, containers) to tell done, waiting and rolled back.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { latestTasks } from '../../tasks/lib/stack.ts'
import { modeChanges, removeServiceScript } from '../../tasks/lib/servicemode.ts'
import { convergence, durationSeconds, parseServices, parseServiceTasks, parseTaskContainers, runsImage, takesStartInterval, toStackFile, type JsonObject } from '../../tasks/lib/stackfile.ts'

/** What `docker compose config --format json` prints for our file on the host (shortened). */
const CONFIG: JsonObject = {
  name: 'mymdb',
  services: {
    proxy: { image: 'reg/mymdb-proxy@sha256:p', restart: 'unless-stopped', command: null, ports: [{ mode: 'ingress', host_ip: '0.0.0.0', target: 80, published: '80', protocol: 'tcp' }, { mode: 'ingress', host_ip: '0.0.0.0', target: 443, published: '443', protocol: 'tcp' }], networks: { front: null }, 'x-note': 'x' },
    web: { image: 'reg/mymdb-web:v2', depends_on: { db: { condition: 'service_healthy', required: true } }, environment: { DJANGO_SECRET_KEY: 'a$$b#"c' }, healthcheck: { test: ['CMD', 'true'], interval: '5s' }, networks: { front: null, back: null } },
    db: { image: 'reg/mymdb-db@sha256:d', volumes: [{ type: 'volume', source: 'db-data', target: '/var/lib/postgresql/data' }], networks: { back: null } },
  },
  networks: { front: { name: 'mymdb_front' }, back: { name: 'mymdb_back', internal: true } },
  volumes: { 'db-data': { name: 'mymdb_db-data' }, media: { name: 'mymdb_media' } },
}

describe('the stack file', () => {
  const stack = toStackFile(CONFIG)
  const services = stack.services as Record<string, JsonObject>
  it('drops what docker stack deploy refuses or ignores; keeps the rest as Compose rendered it', () => {
    assert.equal(stack.name, undefined)
    assert.deepEqual(Object.keys(services), ['proxy', 'web', 'db'])
    for (const k of ['restart', 'command', 'x-note']) assert.equal(services.proxy![k], undefined, k)
    assert.equal(services.web!.depends_on, undefined)
    // the deploy migrates (manage.py release), never a starting web task; which may so start quickly
    assert.deepEqual(services.web!.environment, { DJANGO_SECRET_KEY: 'a$$b#"c', MYMDB_MIGRATE_ON_START: '0' })
    assert.deepEqual(services.web!.healthcheck, { test: ['CMD', 'true'], interval: '5s', start_period: '30s' })
    // the host's database takes its passwords from the environment at each start (a rotation)
    assert.deepEqual(services.db!.environment, { MYMDB_DB_SET_PASSWORDS: '1' })
    assert.deepEqual(services.db!.volumes, [{ type: 'volume', source: 'db-data', target: '/var/lib/postgresql/data' }])
  })
  it('the database on RDS (x-database: rds): no db service nor its volume; web gets the CA bundle as a config named by its id', () => {
    const rds = toStackFile({ ...CONFIG, 'x-database': 'rds', 'x-db-ca-id': '0123456789ab' })
    const svc = rds.services as Record<string, JsonObject>
    assert.deepEqual(Object.keys(svc), ['proxy', 'web'])
    assert.deepEqual(Object.keys(rds.volumes as JsonObject), ['media'])
    assert.deepEqual(svc.web!.configs, [{ source: 'db_ca', target: '/run/mymdb/db-ca.pem', mode: 0o444 }])
    assert.deepEqual(rds.configs, { db_ca: { name: 'mymdb_db_ca_0123456789ab', file: './db-ca.pem' } })
    // the container database: as before, no config
    assert.equal(toStackFile({ ...CONFIG, 'x-database': 'container' }).configs, undefined)
    assert.throws(() => toStackFile({ ...CONFIG, 'x-database': 'rds', 'x-db-ca-id': '' }), /MYMDB_DATABASE=rds needs MYMDB_DB_CA_ID/)
  })
  it("the fronts' shared storage (x-front-storage): the proxy's /data is that host directory on every node; without it, its volume", () => {
    const withVolume = { ...CONFIG, services: { ...(CONFIG.services as JsonObject), proxy: { ...((CONFIG.services as JsonObject).proxy as JsonObject), volumes: [{ type: 'volume', source: 'proxy-data', target: '/data', volume: {} }] } } }
    const shared = toStackFile({ ...withVolume, 'x-front-storage': '/mnt/mymdb-front/caddy' }).services as Record<string, JsonObject>
    assert.deepEqual(shared.proxy!.volumes, [{ type: 'bind', source: '/mnt/mymdb-front/caddy', target: '/data' }])
    const own = toStackFile({ ...withVolume, 'x-front-storage': '' }).services as Record<string, JsonObject>
    assert.deepEqual(own.proxy!.volumes, [{ type: 'volume', source: 'proxy-data', target: '/data', volume: {} }])
    assert.throws(() => toStackFile({ ...withVolume, 'x-front-storage': 'caddy; rm -rf /' }), /MYMDB_FRONT_STORAGE in the host's .env must be an absolute path/)
  })
  it('the front publishes on the host itself (no routing mesh), ports as numbers', () => {
    assert.deepEqual(services.proxy!.ports, [{ target: 80, published: 80, protocol: 'tcp', mode: 'host' }, { target: 443, published: 443, protocol: 'tcp', mode: 'host' }])
    assert.throws(() => toStackFile({ services: { proxy: { ports: [{ target: 80, published: '8000-8010' }] } } }), /a published range or name is not supported/)
  })
  it('web is replaced start-first and rolled back when unhealthy; db and proxy stop-first, rolled back when they do not start; no virtual IPs', () => {
    assert.deepEqual(services.web!.deploy, {
      replicas: 1,
      endpoint_mode: 'dnsrr',
      update_config: { order: 'start-first', parallelism: 1, delay: '1s', failure_action: 'rollback', monitor: '15s' },
      rollback_config: { order: 'start-first', parallelism: 1 },
    })
    for (const s of ['db', 'proxy'])
      assert.deepEqual(services[s]!.deploy, {
        replicas: 1,
        endpoint_mode: 'dnsrr',
        update_config: { order: 'stop-first', parallelism: 1, delay: '1s', failure_action: 'rollback', monitor: '15s' },
        rollback_config: { order: 'stop-first', parallelism: 1 },
      })
  })
  it('a cluster: the front on every node, one web replica per node (or as many as asked), the database on its labelled node; one host as before', () => {
    const deploy = (opts: Parameters<typeof toStackFile>[1]) => Object.fromEntries(Object.entries(toStackFile(CONFIG, opts).services as Record<string, JsonObject>).map(([n, s]) => [n, s.deploy as JsonObject]))
    const three = deploy({ nodes: 3 })
    assert.equal(three.proxy!.mode, 'global')
    assert.equal(three.proxy!.replicas, undefined, 'a global service takes no replicas')
    assert.deepEqual(three.proxy!.update_config, services.proxy!.deploy && (services.proxy!.deploy as JsonObject).update_config)
    assert.equal(three.web!.replicas, 3)
    assert.equal(deploy({ nodes: 3, webReplicas: 5 }).web!.replicas, 5)
    // two or more replicas over the nodes: replaced stop-first (they stay one per node); one replica, or one host: start-first
    const order = (d: Record<string, JsonObject>) => [(d.web!.update_config as JsonObject).order, (d.web!.rollback_config as JsonObject).order]
    assert.deepEqual(order(three), ['stop-first', 'stop-first'])
    assert.equal((three.web!.update_config as JsonObject).failure_action, 'rollback')
    assert.deepEqual(order(deploy({ nodes: 3, webReplicas: 1 })), ['start-first', 'start-first'])
    assert.deepEqual(order(deploy({ webReplicas: 2 })), ['start-first', 'start-first'])
    assert.deepEqual(three.db!.placement, { constraints: ['node.labels.mymdb.db == true'] })
    assert.equal(three.db!.replicas, 1)
    // MYMDB_WEB_REPLICAS from the host's .env (docker-compose.yml's x-web-replicas), on one host too
    const asked = (x: string, opts = {}) => ((toStackFile({ ...CONFIG, 'x-web-replicas': x }, opts).services as Record<string, JsonObject>).web!.deploy as JsonObject).replicas
    assert.equal(asked('2', { nodes: 3 }), 2)
    assert.equal(asked('2'), 2)
    assert.equal(asked('', { nodes: 3 }), 3, 'empty: one per node')
    assert.equal(asked(''), 1)
    assert.deepEqual(deploy({ nodes: 1 }), deploy({}))
    assert.equal(deploy({}).proxy!.mode, undefined)
    // one host still sharing the cluster's storage (down to one behind its front door): the front stays global
    const shared = (toStackFile({ ...CONFIG, 'x-front-storage': '/mnt/mymdb-front/caddy' }).services as Record<string, JsonObject>).proxy!.deploy as JsonObject
    assert.equal(shared.mode, 'global')
  })
  it('a service whose mode the stack file changes (Swarm cannot change it in place): found from `docker service inspect`, to be removed first', () => {
    const stack = toStackFile(CONFIG, { nodes: 3 })
    assert.deepEqual(modeChanges(stack, 'mymdb_proxy replicated\nmymdb_web replicated\nmymdb_cache replicated\n'), [{ service: 'mymdb_proxy', from: 'replicated', to: 'global' }])
    assert.deepEqual(modeChanges(toStackFile(CONFIG), 'mymdb_proxy global\nmymdb_web replicated\n'), [{ service: 'mymdb_proxy', from: 'global', to: 'replicated' }])
    // the same modes, a new stack, unreadable lines: nothing
    assert.deepEqual(modeChanges(stack, 'mymdb_proxy global\nmymdb_web replicated\n'), [])
    assert.deepEqual(modeChanges(stack, ''), [])
    assert.deepEqual(modeChanges(stack, 'Error: no such service\n'), [])
    assert.match(removeServiceScript('mymdb_proxy'), /^docker service rm mymdb_proxy >\/dev\/null\n.*label=com\.docker\.swarm\.service\.name=mymdb_proxy/)
    assert.throws(() => removeServiceScript('mymdb_proxy; rm -rf /'), /not a service name/)
  })
  it('Swarm watches a new task as long as its health check takes to call it unhealthy (interval x retries); 15 s without one', () => {
    const monitor = (healthcheck: JsonObject | undefined) => (toStackFile({ services: { web: { image: 'w', ...(healthcheck ? { healthcheck } : {}) } } }).services as Record<string, { deploy: { update_config: JsonObject } }>).web!.deploy.update_config.monitor
    assert.equal(monitor({ test: ['CMD', 'true'], interval: '3s', retries: 3 }), '9s')
    assert.equal(monitor({ test: ['CMD', 'true'], interval: '2s', retries: 5 }), '10s')
    assert.equal(monitor({ test: ['CMD', 'true'], interval: '1m30s' }), '270s', 'retries: Docker\'s default 3')
    assert.equal(monitor({ test: ['CMD', 'true'], interval: '500ms', retries: 3 }), '2s')
    assert.equal(monitor({ test: ['CMD', 'true'] }), '90s', 'interval: Docker\'s default 30 s')
    assert.equal(monitor(undefined), '15s')
    assert.equal(monitor({ disable: true }), '15s')
    assert.equal(durationSeconds('1h2m3.5s'), 3723.5)
    assert.equal(durationSeconds('soon'), undefined)
  })
  it("health checks every second until healthy where the host's Docker takes start_interval (CLI and engine 25 or later); the services' intervals stay", () => {
    const config: JsonObject = { services: { ...(CONFIG.services as JsonObject), cache: { image: 'c', healthcheck: { disable: true } } } }
    const checks = (opts?: { startInterval?: boolean }) => Object.fromEntries(Object.entries(toStackFile(config, opts).services as Record<string, JsonObject>).map(([n, s]) => [n, s.healthcheck]))
    assert.deepEqual(checks({ startInterval: true }), { proxy: undefined, web: { test: ['CMD', 'true'], interval: '5s', start_period: '30s', start_interval: '1s' }, db: undefined, cache: { disable: true } })
    assert.deepEqual(checks().web, { test: ['CMD', 'true'], interval: '5s', start_period: '30s' })
    assert.equal((toStackFile(config, { startInterval: true }).services as Record<string, { deploy: { update_config: JsonObject } }>).web!.deploy.update_config.monitor, '15s', 'the monitor window as before')
    assert.ok(takesStartInterval('26.1.5+dfsg1 26.1.5+dfsg1\n'))
    assert.ok(takesStartInterval('28.2.2 25.0.0'))
    assert.ok(!takesStartInterval('28.2.2 20.10.24+dfsg1'), 'an older engine')
    assert.ok(!takesStartInterval('24.0.7 26.1.5'), 'an older CLI refuses the key in a stack file')
    assert.ok(!takesStartInterval(''))
    assert.ok(!takesStartInterval('26.1.5'), 'no server version: no')
  })
  it('overlay networks, attachable from the first deploy (one-off containers), back stays internal; the volumes keep their names', () => {
    assert.deepEqual(stack.networks, { front: { driver: 'overlay', attachable: true }, back: { driver: 'overlay', attachable: true, internal: true } })
    assert.deepEqual(stack.volumes, { 'db-data': {}, media: {} })
  })
})

const service = (name: string, image: string, state = 'completed', message = '') => JSON.stringify({ Spec: { Name: name, TaskTemplate: { ContainerSpec: { Image: image } } }, ...(state ? { UpdateStatus: { State: state, Message: message } } : {}) })
const container = (service: string, image: string, status: string, state = 'running') =>
  JSON.stringify({ ID: `id-${service}-${status}`, Names: `mymdb_${service}.1.x`, Image: image, State: state, Status: status, Labels: `com.docker.stack.namespace=mymdb,com.docker.swarm.service.name=mymdb_${service},com.docker.swarm.task=`, CreatedAt: '' })
const D = '@sha256:1111'
const IMAGES = { web: 'reg/mymdb-web:v2', db: 'reg/mymdb-db@sha256:d' }

describe("reading Swarm's answers", () => {
  it('parses services and containers (health from the status, the stack prefix dropped)', () => {
    assert.deepEqual(parseServices(service('mymdb_web', `reg/mymdb-web:v2${D}`, 'updating')), [{ name: 'mymdb_web', image: `reg/mymdb-web:v2${D}`, updateState: 'updating', updateMessage: '' }])
    assert.deepEqual(parseServices(service('mymdb_db', 'x', ''))[0]?.updateState, '')
    const cs = parseTaskContainers([container('web', 'i', 'Up 3 seconds (health: starting)'), container('db', 'j', 'Up 2 hours (healthy)'), 'not json'].join('\n'))
    assert.deepEqual(cs.map((c) => [c.service, c.health]), [['web', 'starting'], ['db', 'healthy']])
    assert.ok(runsImage(`reg/mymdb-web:v2${D}`, 'reg/mymdb-web:v2'))
    assert.ok(!runsImage(`reg/mymdb-web:v21${D}`, 'reg/mymdb-web:v2'))
  })
  it('done only when every service runs its new image healthy and no update is under way', () => {
    const services = parseServices([service('mymdb_web', `reg/mymdb-web:v2${D}`), service('mymdb_db', 'reg/mymdb-db@sha256:d')].join('\n'))
    const healthy = parseTaskContainers([container('web', `reg/mymdb-web:v2${D}`, 'Up 1 minute (healthy)'), container('db', 'reg/mymdb-db@sha256:d', 'Up (healthy)')].join('\n'))
    assert.deepEqual(convergence(IMAGES, services, healthy), { state: 'done' })
    // the old web still serves, the new one starts
    const starting = parseTaskContainers([container('web', `reg/mymdb-web:v1${D}`, 'Up 1 hour (healthy)'), container('web', `reg/mymdb-web:v2${D}`, 'Up 2 seconds (health: starting)'), container('db', 'reg/mymdb-db@sha256:d', 'Up (healthy)')].join('\n'))
    assert.deepEqual(convergence(IMAGES, services, starting), { state: 'waiting', on: ['web (starting)'] })
    // healthy, but Swarm still watches it (monitor)
    const updating = parseServices([service('mymdb_web', `reg/mymdb-web:v2${D}`, 'updating'), service('mymdb_db', 'reg/mymdb-db@sha256:d')].join('\n'))
    assert.deepEqual(convergence(IMAGES, updating, healthy), { state: 'waiting', on: ['web (updating)'] })
    assert.deepEqual(convergence(IMAGES, [], []), { state: 'waiting', on: ['web (no service yet)', 'db (no service yet)'] })
  })
  it("the tasks of every node from docker service ps: Running (healthy) counts, Starting waits, wherever the task runs", () => {
    const task = (name: string, node: string, image: string, current: string) => JSON.stringify({ ID: `t-${name}-${node}`, Name: name, Image: image, Node: node, DesiredState: 'Running', CurrentState: current, Error: '' })
    const services = parseServices([service('mymdb_web', `reg/mymdb-web:v2${D}`), service('mymdb_db', 'reg/mymdb-db@sha256:d')].join('\n'))
    const tasks = parseServiceTasks([task('mymdb_web.1', 'node1', `reg/mymdb-web:v1${D}`, 'Running 1 hour ago'), task('mymdb_web.1', 'node3', `reg/mymdb-web:v2${D}`, 'Starting 2 seconds ago'), task('mymdb_db.1', 'node2', 'reg/mymdb-db@sha256:d', 'Running 2 hours ago'), 'not json'].join('\n'))
    assert.deepEqual(tasks.map((t) => [t.service, t.name, t.state, t.health]), [['web', 'mymdb_web.1@node1', 'running', 'healthy'], ['web', 'mymdb_web.1@node3', 'starting', 'starting'], ['db', 'mymdb_db.1@node2', 'running', 'healthy']])
    assert.deepEqual(convergence(IMAGES, services, tasks), { state: 'waiting', on: ['web (starting)'] })
    const running = parseServiceTasks([task('mymdb_web.1', 'node3', `reg/mymdb-web:v2${D}`, 'Running 1 second ago'), task('mymdb_db.1', 'node2', 'reg/mymdb-db@sha256:d', 'Running 2 hours ago')].join('\n'))
    assert.deepEqual(convergence(IMAGES, services, running), { state: 'done' })
  })
  it('a cluster: done once every replica of the new image is healthy, not at the first', () => {
    const task = (name: string, node: string, current: string) => JSON.stringify({ ID: `t-${name}-${node}`, Name: name, Image: `reg/mymdb-web:v2${D}`, Node: node, DesiredState: 'Running', CurrentState: current, Error: '' })
    const services = parseServices([service('mymdb_web', `reg/mymdb-web:v2${D}`, '')].join('\n'))
    const web = { web: IMAGES.web }
    const first = parseServiceTasks([task('mymdb_web.1', 'node1', 'Running 1 second ago'), task('mymdb_web.2', 'node2', 'Starting 3 seconds ago'), task('mymdb_web.3', 'node3', 'Preparing 9 seconds ago')].join('\n'))
    assert.deepEqual(convergence(web, services, first), { state: 'waiting', on: ['web (1 of 3 healthy)'] })
    const all = parseServiceTasks([1, 2, 3].map((i) => task(`mymdb_web.${i}`, `node${i}`, 'Running 1 second ago')).join('\n'))
    assert.deepEqual(convergence(web, services, all), { state: 'done' })
  })
  it('rolled back (the spec names the old image again; failed once its tasks are up again) or paused: failed, naming why and what still runs', () => {
    const back = parseServices([service('mymdb_web', `reg/mymdb-web:v1${D}`, 'rollback_completed', 'update rolled back due to failure'), service('mymdb_db', 'reg/mymdb-db@sha256:d')].join('\n'))
    assert.deepEqual(convergence(IMAGES, back, []), { state: 'failed', service: 'web', why: 'Swarm rolled web back: update rolled back due to failure', running: `reg/mymdb-web:v1${D}` })
    // a cluster's replica that Swarm stopped first (stop-first) and puts back: failed once it is
    // healthy again, also while Swarm has not yet made it (2 replicas, 1 task) or waits out the
    // restart delay (desired state Ready); a task it shut down does not count
    const task = (name: string, node: string, current: string, desired = 'Running', image = `reg/mymdb-web:v1${D}`) => JSON.stringify({ ID: `t-${name}-${node}-${current}`, Name: name, Image: image, Node: node, DesiredState: desired, CurrentState: current, Error: '' })
    const backTwo = parseServices([JSON.stringify({ Spec: { Name: 'mymdb_web', Mode: { Replicated: { Replicas: 2 } }, TaskTemplate: { ContainerSpec: { Image: `reg/mymdb-web:v1${D}` } } }, UpdateStatus: { State: 'rollback_completed', Message: 'rolled back' } })].join('\n'))
    assert.equal(backTwo[0]?.replicas, 2)
    const web = { web: IMAGES.web }
    const one = task('mymdb_web.1', 'node1', 'Running 5 minutes ago')
    const broken = task('mymdb_web.2', 'node3', 'Failed 3 seconds ago', 'Shutdown', `reg/mymdb-web:v2${D}`)
    assert.deepEqual(convergence(web, backTwo, parseServiceTasks([one, broken].join('\n'))), { state: 'waiting', on: ['web (rolled back: the previous version 1 of 2 healthy)'] })
    assert.deepEqual(convergence(web, backTwo, parseServiceTasks([one, broken, task('mymdb_web.2', 'node3', 'Pending 1 second ago', 'Ready')].join('\n'))), { state: 'waiting', on: ['web (rolled back: the previous version 1 of 2 healthy)'] })
    assert.deepEqual(convergence(web, backTwo, parseServiceTasks([one, broken, task('mymdb_web.2', 'node2', 'Starting 20 seconds ago')].join('\n'))), { state: 'waiting', on: ['web (rolled back: the previous version 1 of 2 healthy)'] })
    const whole = parseServiceTasks([one, broken, task('mymdb_web.2', 'node2', 'Running 1 second ago')].join('\n'))
    assert.deepEqual(convergence(web, backTwo, whole), { state: 'failed', service: 'web', why: 'Swarm rolled web back: rolled back', running: `reg/mymdb-web:v1${D}` })
    const paused = parseServices([service('mymdb_web', `reg/mymdb-web:v2${D}`), service('mymdb_db', 'reg/mymdb-db@sha256:d', 'paused', 'task failed')].join('\n'))
    assert.equal(convergence(IMAGES, paused, []).state, 'failed')
    // an earlier rollback does not fail a deploy of the version that runs
    const earlier = parseServices([service('mymdb_web', `reg/mymdb-web:v2${D}`, 'rollback_completed'), service('mymdb_db', 'reg/mymdb-db@sha256:d')].join('\n'))
    const healthy = parseTaskContainers([container('web', `reg/mymdb-web:v2${D}`, 'Up (healthy)'), container('db', 'reg/mymdb-db@sha256:d', 'Up (healthy)')].join('\n'))
    assert.deepEqual(convergence(IMAGES, earlier, healthy), { state: 'done' })
  })
  it('status shows per service its running container, a healthy one first, else the newest', () => {
    const cs = parseTaskContainers([container('web', 'new', 'Up 2 seconds (health: starting)'), container('web', 'old', 'Up 1 hour (healthy)'), container('db', 'd', 'Exited (0) 1 minute ago', 'exited'), container('db', 'd0', 'Exited (0) 1 hour ago', 'exited')].join('\n'))
    assert.deepEqual(latestTasks(cs).map((c) => [c.service, c.image, c.state]), [['web', 'old', 'running'], ['db', 'd', 'exited']])
  })
})
