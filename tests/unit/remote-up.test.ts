import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { EnvError } from '../../tasks/lib/env.ts'
import { ConfigError, UserError } from '../../tasks/lib/errors.ts'
import { main } from '../../tasks/remote-up.ts'
import { checkHostName, dnsRecord, pointsAtHost, waitFor200, waitForDns, type HttpGet, type ResolveName } from '../../tasks/lib/remote/checks.ts'
import { ENV_FILE_KEYS, productionEnvFile } from '../../tasks/lib/remote/envfile.ts'
import { envValue } from '../../tasks/lib/envformat.ts'
import { planRemoteUp } from '../../tasks/lib/remote/plan.ts'
import { remoteSteps } from '../../tasks/lib/remote/up.ts'
import { remoteUp } from '../../tasks/lib/remote/up.ts'
import { keepUnchanged } from '../../tasks/lib/remote/pin.ts'
import { pushedDigest } from '../../tasks/lib/images.ts'
import { captureLog } from './fakes.ts'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { envEdit } from '../../tasks/lib/releases.ts'
import { HOST_RUNS_CMD, hostStack, oneOffCmd } from '../../tasks/lib/stack.ts'
import { DB_CA_CONFIG_PREFIX } from '../../tasks/lib/stackfile.ts'
import { STACK_NODES } from '../../tasks/lib/remote/cluster.ts'
import { pruneConfigsCmd, pruneSecretsCmd } from '../../tasks/lib/swarmsecrets.ts'
import { showCommand } from '../../tasks/lib/sh.ts'
import { unmountScript } from '../../tasks/lib/remote/frontstore.ts'
import { SERVICE_MODES } from '../../tasks/lib/servicemode.ts'
import { fakeRemote, noDocker, swarmHost, testDeps, testKeyFile, TEST_HOST_KEY, type FakeRemote } from './fakes.ts'

const SECRET = 'k'.repeat(40) + '$HOME #x "q" \\ ${A}'

const ENV_PLAN = {
  MYMDB_HOST_ADDRESS: '127.0.0.1',
  MYMDB_HOST_SSH_PORT: '2222',
  MYMDB_HOST_HTTP_PORT: '8081',
  MYMDB_SSH_KEY_FILE: '/keys/id',
  MYMDB_HOST_KEY: TEST_HOST_KEY,
  MYMDB_REGISTRY: '127.0.0.1:5000',
  MYMDB_TAG: 'abc123',
  DJANGO_SECRET_KEY: SECRET,
  DJANGO_DB_PASSWORD: 'db-pw',
  POSTGRES_PASSWORD: 'pg-pw',
  DJANGO_ALLOWED_HOSTS: 'mymdb.example.com,203.0.113.7',
}
const ENV = ENV_PLAN

/** Parses the .env the way Compose reads single-quoted values (literal up to the closing quote). */
function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([A-Z0-9_]+)='([^']*)'$/.exec(line)
    assert.ok(m, `not KEY='value': ${line}`)
    out[m[1]!] = m[2]!
  }
  return out
}


function okHttp(): HttpGet & { calls: string[] } {
  const calls: string[] = []
  const get = (async (url: string, host: string) => {
    calls.push(`${url} Host: ${host}`)
    return { status: 200, body: 'ok' }
  }) as HttpGet & { calls: string[] }
  get.calls = calls
  return get
}

function deps(remote: FakeRemote | undefined, http = okHttp()) {
  return {
    ...testDeps(noDocker()),
    openRemote: async () => {
      if (!remote) throw new Error('must not connect')
      return remote
    },
    httpGet: http,
    readKey: () => 'PRIVATE KEY',
    pollSeconds: 0,
  }
}

describe('productionEnvFile', () => {
  const plan = planRemoteUp(ENV)
  const values = parseEnvFile(plan.envFile)

  it('holds every needed key, with the registry prefix and the production bind', () => {
    assert.equal(values.WEB_BIND, '0.0.0.0')
    assert.equal(values.WEB_PORT, '80')
    assert.equal(values.MYMDB_WEB_IMAGE, '127.0.0.1:5000/mymdb-web')
    assert.equal(values.MYMDB_DB_IMAGE, '127.0.0.1:5000/mymdb-db')
    assert.equal(values.MYMDB_TAG, 'abc123')
    assert.equal(values.DJANGO_SECRET_KEY, SECRET)
    assert.equal(values.DJANGO_DB_PASSWORD, 'db-pw')
    assert.equal(values.POSTGRES_PASSWORD, 'pg-pw')
    assert.equal(values.DJANGO_ALLOWED_HOSTS, 'mymdb.example.com,203.0.113.7')
    assert.equal(values.DJANGO_DB_NAME, 'mymdb')
    assert.equal(values.DJANGO_SECURE_SSL, 'false')
    for (const k of Object.keys(values)) assert.ok((ENV_FILE_KEYS as readonly string[]).includes(k))
  })
  it('leaves unset optional values out (no empty or "undefined" values)', () => {
    assert.ok(!('DJANGO_UPLOAD_S3_BUCKET' in values))
    assert.ok(!('AWS_S3_ENDPOINT_URL' in values))
    assert.doesNotMatch(plan.envFile, /undefined|=''/)
  })
  it('includes the bucket settings when set', () => {
    const v = parseEnvFile(
      planRemoteUp({ ...ENV, DJANGO_UPLOAD_S3_BUCKET: 'mymdb-uploads', AWS_S3_REGION_NAME: 'us-west-2', AWS_S3_ENDPOINT_URL: 'http://127.0.0.1:5001' }).envFile,
    )
    assert.equal(v.DJANGO_UPLOAD_S3_BUCKET, 'mymdb-uploads')
    assert.equal(v.AWS_S3_REGION_NAME, 'us-west-2')
    assert.equal(v.AWS_S3_ENDPOINT_URL, 'http://127.0.0.1:5001')
  })
  it('single-quotes values, so $, #, spaces, " and \\ are taken literally by Compose', () => {
    assert.equal(envValue('X', 'a $B #c "d" \\e'), `'a $B #c "d" \\e'`)
    assert.match(plan.envFile, /^DJANGO_SECRET_KEY='k+\$HOME #x "q" \\ \$\{A\}'$/m)
  })
  it('refuses values the .env format cannot hold exactly', () => {
    for (const bad of ["it's", 'a\nb', 'a\rb', 'trailing\\'])
      assert.throws(() => envValue('DJANGO_DB_PASSWORD', bad), (e: unknown) => e instanceof ConfigError && /DJANGO_DB_PASSWORD/.test(e.message))
    assert.throws(() => planRemoteUp({ ...ENV, POSTGRES_PASSWORD: "o'brien" }), (e: unknown) => e instanceof EnvError && /POSTGRES_PASSWORD=.* - contains a single quote/.test(e.message))
  })
  it('refuses to write a file without a required value', () => {
    assert.throws(() => productionEnvFile({ WEB_BIND: '0.0.0.0' }), (e: unknown) => e instanceof ConfigError && /DJANGO_SECRET_KEY/.test(e.message))
  })
})

describe('planRemoteUp', () => {
  it('requires the production secrets: no local defaults', () => {
    const { DJANGO_SECRET_KEY: _a, DJANGO_DB_PASSWORD: _b, POSTGRES_PASSWORD: _c, ...rest } = ENV
    assert.throws(
      () => planRemoteUp(rest),
      (e: unknown) =>
        e instanceof EnvError &&
        ['DJANGO_SECRET_KEY', 'DJANGO_DB_PASSWORD'].every((n) => e.missing.some((p) => p.name === n)) &&
        // the db container's superuser password: required with it, not with the database on RDS
        /POSTGRES_PASSWORD=\(not set\) - required with the database in the stack's own container/.test(e.message),
    )
  })

  it('needs a host address (env or --address)', () => {
    const { MYMDB_HOST_ADDRESS: _a, ...rest } = ENV
    assert.throws(() => planRemoteUp(rest), (e: unknown) => e instanceof EnvError && /MYMDB_HOST_ADDRESS/.test(e.message))
    assert.equal(planRemoteUp(rest, { address: '198.51.100.2' }).address, '198.51.100.2')
  })
  it('images, ports, key file and the check host', () => {
    const p = planRemoteUp(ENV)
    assert.deepEqual(p.images, { web: '127.0.0.1:5000/mymdb-web:abc123', db: '127.0.0.1:5000/mymdb-db:abc123', proxy: '127.0.0.1:5000/mymdb-proxy:abc123', cache: '127.0.0.1:5000/mymdb-cache:abc123' })
    assert.equal(p.sshPort, 2222)
    assert.equal(p.httpPort, 8081)
    assert.equal(p.user, 'admin')
    assert.equal(p.keyFile, '/keys/id')
    assert.equal(p.hostName, 'mymdb.example.com')
    assert.deepEqual(p.pull, { kind: 'anonymous', host: '127.0.0.1:5000' })
    const { MYMDB_SSH_KEY_FILE: _k, ...rest } = ENV
    assert.match(planRemoteUp({ ...rest, MYMDB_STAGE: 'staging' }).keyFile, /\/\.ssh\/mymdb-staging\.pem$/)
    // HOME of the task's environment, as the host step uses it to save the key
    assert.equal(planRemoteUp({ ...rest, MYMDB_STAGE: 'staging', HOME: '/home/u' }).keyFile, '/home/u/.ssh/mymdb-staging.pem')
    assert.equal(planRemoteUp({ ...ENV, MYMDB_SSH_KEY_FILE: '~/k.pem', HOME: '/home/u' }).keyFile, '/home/u/k.pem')
  })
  it('with the backup target (the deploy): backup.env, the backup script and its crontab line; off removes the line', () => {
    const backup = { bucket: 'b-backups', region: 'us-west-2', roleArn: 'arn:aws:iam::1:role/mymdb-production-backup', externalId: 'e'.repeat(48) }
    assert.equal(planRemoteUp(ENV).schedule, undefined, 'alone, remote:up knows no backup bucket')
    const p = planRemoteUp(ENV, { backup })
    assert.equal(
      p.backupEnv,
      `# Written by the deploy (MyMDB Deploy): where the host writes its backups, and as whom.\n# The external id lets the host role assume the backup role; no container is given this file.\nMYMDB_BACKUP_BUCKET='b-backups'\nMYMDB_BACKUP_REGION='us-west-2'\nMYMDB_BACKUP_ROLE_ARN='arn:aws:iam::1:role/mymdb-production-backup'\nMYMDB_BACKUP_EXTERNAL_ID='${'e'.repeat(48)}'\n`,
    )
    assert.deepEqual(p.schedule?.lines, [
      '17 3 * * * cd "$HOME/mymdb" && sh backup.sh > last-backup.log 2>&1 # mymdb-backup',
      // hourly, half an hour off the schedule: a backup when the last good one is older than a day and an hour
      '47 * * * * cd "$HOME/mymdb" && sh catch-up.sh # mymdb-backup-catch-up',
    ])
    assert.match(p.schedule?.catchUp ?? '', / -lt 90000 \]/)
    assert.match(p.schedule?.script ?? '', /^reason=scheduled$/m)
    assert.match(p.schedule?.script ?? '', /s3_backup\.py/)
    assert.match(p.schedule?.script ?? '', />> backups\.log; }/)
    // the schedule holds the stage's lock while it runs (skips when a deploy holds it); a deploy's own backups do not take it
    assert.match(p.schedule?.script ?? '', /s3_backup\.py lock production 3600\); then :; else/)
    assert.match(p.schedule?.script ?? '', /if \[ "\$rc" = 4 \]; then .*rec false "skipped: another run held the stage's lock"; exit 0; fi/)
    assert.match(remoteSteps(p).join('\n'), /crontab: 17 3 \* \* \* cd/)
    const daily = planRemoteUp({ ...ENV, MYMDB_BACKUP_SCHEDULE: '@daily' }, { backup }).schedule
    assert.equal(daily?.lines[0]?.startsWith('@daily cd '), true)
    assert.match(daily?.catchUp ?? '', / -lt 90000 \]/)
    // weekdays at noon: the longest gap is Friday to Monday
    assert.match(planRemoteUp({ ...ENV, MYMDB_BACKUP_SCHEDULE: '0 12 * * 1-5' }, { backup }).schedule?.catchUp ?? '', / -lt 262800 \]/)
    assert.deepEqual(planRemoteUp({ ...ENV, MYMDB_BACKUP_SCHEDULE: 'off' }, { backup }).schedule?.lines, [])
    for (const bad of ['17 3 * *', '61 3 * * *', '17 3 * * 8', 'nightly', '*/0 * * * *'])
      assert.throws(() => planRemoteUp({ ...ENV, MYMDB_BACKUP_SCHEDULE: bad }, { backup }), (e: unknown) => e instanceof EnvError && /MYMDB_BACKUP_SCHEDULE/.test(e.message), bad)
  })
  it('registry: an address, not ecr; login needs both user and password', () => {
    assert.throws(() => planRemoteUp({ ...ENV, MYMDB_REGISTRY: 'ecr' }), /MYMDB_REGISTRY="ecr" - ecr: this step needs the registry address/)
    assert.throws(() => planRemoteUp({ ...ENV, MYMDB_REGISTRY: 'bad registry' }), /MYMDB_REGISTRY="bad registry" - names no registry/)
    assert.throws(() => planRemoteUp({ ...ENV, MYMDB_REGISTRY_USERNAME: 'me' }), /MYMDB_REGISTRY_PASSWORD=\(not set\) - is needed with MYMDB_REGISTRY_USERNAME/)
    // custom image names: the host pulls what push pushed (<registry>/<last part of the name>)
    const custom = planRemoteUp({ ...ENV, MYMDB_WEB_IMAGE: 'team/movies-web', MYMDB_DB_IMAGE: 'movies-db' })
    assert.deepEqual(custom.images, { web: '127.0.0.1:5000/movies-web:abc123', db: '127.0.0.1:5000/movies-db:abc123', proxy: '127.0.0.1:5000/mymdb-proxy:abc123', cache: '127.0.0.1:5000/mymdb-cache:abc123' })
    // an --address is checked like MYMDB_HOST_ADDRESS, and the problem names the option
    assert.throws(() => planRemoteUp(ENV, { address: 'https://203.0.113.7' }), /--address "https:\/\/203\.0\.113\.7" - expected host names or IP addresses/)
    // production refuses up:local's secrets and values a .env cannot hold
    assert.throws(() => planRemoteUp({ ...ENV, DJANGO_DB_PASSWORD: 'local-only-db-password' }), /DJANGO_DB_PASSWORD=\(hidden, 22 characters\) - is a local-only value of npm run up:local/)
    assert.throws(() => planRemoteUp({ ...ENV, POSTGRES_PASSWORD: "it's-a-secret" }), /POSTGRES_PASSWORD=\(hidden, 13 characters\) - contains a single quote/)
    const p = planRemoteUp({ ...ENV, MYMDB_REGISTRY: 'docker.io/me/', MYMDB_REGISTRY_USERNAME: 'me', MYMDB_REGISTRY_PASSWORD: 'tok' })
    assert.equal(p.images.web, 'docker.io/me/mymdb-web:abc123')
    assert.deepEqual(p.pull, { kind: 'anonymous', host: 'docker.io' })
    assert.deepEqual(planRemoteUp({ ...ENV, MYMDB_REGISTRY: 'docker.io/me/', MYMDB_PULL_USERNAME: 'reader', MYMDB_PULL_PASSWORD: 'ro' }).pull, { kind: 'login', host: 'docker.io', username: 'reader', password: 'ro' })
    assert.throws(() => planRemoteUp({ ...ENV, MYMDB_PULL_USERNAME: 'reader' }), /set both MYMDB_PULL_USERNAME and MYMDB_PULL_PASSWORD/)
  })
  it('checkHostName', () => {
    assert.equal(checkHostName(['example.com', 'x']), 'example.com')
    assert.equal(checkHostName(['.example.com']), 'example.com')
    assert.equal(checkHostName(['*.example.com']), 'www.example.com')
  })
})

describe('remote-up main()', () => {
  // main() checks that the key file is a private key before it connects
  const ENV = { ...ENV_PLAN, MYMDB_SSH_KEY_FILE: testKeyFile() }
  it('--help connects to nothing', async () => {
    const d = deps(undefined)
    assert.equal(await main(['--help'], {}, d), 0)
    assert.match(d.log.text(), /Usage: npm run remote:up/)
  })
  it('an unknown option is exit 2', async () => {
    const d = deps(undefined)
    assert.equal(await main(['--nope'], ENV, d), 2)
  })
  it('missing settings: exit 2 before any connection, secrets listed', async () => {
    const d = deps(undefined)
    assert.equal(await main([], { MYMDB_HOST_ADDRESS: '127.0.0.1', MYMDB_REGISTRY: 'r:5000', DJANGO_ALLOWED_HOSTS: 'a.test' }, d), 2)
    assert.match(d.log.text(), /DJANGO_SECRET_KEY[\s\S]*DJANGO_DB_PASSWORD[\s\S]*POSTGRES_PASSWORD/)
  })
  it('--dry-run lists the steps, connects to nothing, shows no secret', async () => {
    const d = deps(undefined)
    assert.equal(await main(['--dry-run'], { ...ENV, MYMDB_REGISTRY_USERNAME: 'me', MYMDB_REGISTRY_PASSWORD: 'push-secret', MYMDB_PULL_USERNAME: 'reader', MYMDB_PULL_PASSWORD: 'tok-secret' }, d), 0)
    const text = d.log.text()
    assert.match(text, /cd mymdb && docker compose pull --quiet/)
    assert.match(text, /write ~\/\.docker\/config\.json \(0600\); docker login --username reader --password-stdin 127\.0\.0\.1:5000 \(MYMDB_PULL_PASSWORD on stdin\)/)
    assert.doesNotMatch(text, /push-secret|docker login --username me/)
    assert.match(text, /nothing was done/)
    assert.doesNotMatch(text, /tok-secret|db-pw|pg-pw|kkkk/)
  })
  it('uploads the files, pulls, starts, checks migrations, loads the catalogue, checks HTTP', async () => {
    const remote = fakeRemote(swarmHost())
    const http = okHttp()
    const d = deps(remote, http)
    const code = await main([], ENV, d)
    assert.equal(code, 0, d.log.text())
    assert.deepEqual(
      remote.uploads.map((u) => [u.path, u.mode]),
      [
        ['~/mymdb/docker-compose.yml', 0o644],
        ['~/mymdb/.env', 0o600],
        ['~/.docker/config.json', 0o600],
      ],
    )
    assert.match(remote.uploads[0]!.content, /^services:/m)
    assert.equal(remote.uploads[1]!.content, planRemoteUp(ENV).envFile)
    const steps = remote.commands.slice(1)
    // in a throw-away container of the image web runs now (this node may run none of web's tasks)
    const inWeb = (args: string) => showCommand(oneOffCmd(hostStack(remote), ['manage.py', ...args.split(' ')]), 'mymdb')
    assert.equal(steps[0], showCommand(HOST_RUNS_CMD))
    assert.equal(steps[2], `cd mymdb && sh -c 'for r in "$@"; do docker image inspect --format "{{range .RepoDigests}}{{println .}}{{end}}" "$r" 2>/dev/null; done' sh 127.0.0.1:5000/mymdb-db:abc123 127.0.0.1:5000/mymdb-proxy:abc123 127.0.0.1:5000/mymdb-cache:abc123`)
    // the running db, proxy and cache images and the inputs labels of them and of the pulled ones
    assert.match(steps[3] ?? '', /^cd mymdb && sh -c 'svc=\$1 lbl=\$2; .*docker service inspect --format "\$svc" "mymdb_\$1".*' sh '\{\{\.Spec\.TaskTemplate\.ContainerSpec\.Image\}\}' '\{\{index \.Config\.Labels "org\.mymdb\.inputs"\}\}' db 127\.0\.0\.1:5000\/mymdb-db:abc123 proxy 127\.0\.0\.1:5000\/mymdb-proxy:abc123 cache 127\.0\.0\.1:5000\/mymdb-cache:abc123$/s)
    // the release step, while the old version serves: the new image's migrations checked (none here)
    assert.equal(steps[4], "cd mymdb && docker ps --all --no-trunc --filter label=com.docker.stack.namespace=mymdb --format '{{json .}}'")
    assert.match(steps[5] ?? '', /^cd mymdb && sh -c 'set -eu\nimage=127\.0\.0\.1:5000\/mymdb-web:abc123\n.*docker create .* manage\.py migrate --check$/s)
    assert.match(steps[6] ?? '', /^cd mymdb && sh -c 'state=\$\(docker info .*\n.*docker swarm init --advertise-addr "\$addr"/s)
    assert.deepEqual([steps[1], ...steps.slice(7)], [
      'cd mymdb && docker compose pull --quiet',
      'cd mymdb && docker compose config --format json',
      // whether the host's Docker takes start_interval in the stack file
      "cd mymdb && docker version --format '{{.Client.Version}} {{.Server.Version}}'",
      // how many nodes the Swarm has (one: the single host's stack file)
      showCommand(['sh', '-c', STACK_NODES], 'mymdb'),
      'cd mymdb && docker compose ps --all --quiet',
      // a service whose mode changes is removed first (none here)
      showCommand(SERVICE_MODES, 'mymdb'),
      'cd mymdb && docker stack deploy --prune --with-registry-auth --compose-file - mymdb',
      "cd mymdb && docker service inspect --format '{{json .}}' mymdb_proxy mymdb_web mymdb_db mymdb_cache",
      // the tasks of every node: Running once healthy
      "cd mymdb && docker service ps --no-trunc --format '{{json .}}' mymdb_proxy mymdb_web mymdb_db mymdb_cache",
      // converged: the Swarm secrets of earlier values removed
      showCommand(pruneSecretsCmd([]), 'mymdb'),
      // and the database's CA bundles of earlier deploys (none kept: this stack has no database on RDS)
      showCommand(pruneConfigsCmd(DB_CA_CONFIG_PREFIX, []), 'mymdb'),
      inWeb('migrate --check'),
      inWeb('load_sample_catalogue --if-empty'),
      "cd mymdb && sh -c 'cat >> deploys.log'",
      // no front door: the shared storage of a removed one unmounted, where /etc/fstab has it
      showCommand(['sh', '-c', unmountScript()]),
      // the containers of replaced tasks, the images of older releases: the history read, the kept images' ids, the host's images (none here)
      'cd mymdb && docker container prune --force --filter label=com.docker.stack.namespace=mymdb',
      "cd mymdb && sh -c 'cat deploys.log 2>/dev/null || true'",
      `cd mymdb && sh -c 'for r in "$@"; do docker image inspect --format "{{.Id}}" "$r" 2>/dev/null; done' sh 127.0.0.1:5000/mymdb-web:abc123 127.0.0.1:5000/mymdb-db:abc123 127.0.0.1:5000/mymdb-proxy:abc123 127.0.0.1:5000/mymdb-cache:abc123`,
      "cd mymdb && docker image ls --no-trunc --format '{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}'",
    ])
    // the stack file went to docker stack deploy on stdin: web start-first, rolled back when unhealthy
    const stackFile = JSON.parse(remote.stdin[remote.commands.findIndex((c) => c.includes('stack deploy'))] ?? '{}')
    assert.deepEqual(stackFile.services.web.deploy.update_config, { order: 'start-first', parallelism: 1, delay: '1s', failure_action: 'rollback', monitor: '15s' })
    assert.equal(stackFile.name, undefined)
    assert.deepEqual(remoteSteps(planRemoteUp(ENV)).slice(2, 6), [
      'write ~/.docker/config.json (0600) without logins (anonymous pulls)',
      'cd mymdb && docker compose pull --quiet',
      'manage.py migrate --check in a throw-away container of 127.0.0.1:5000/mymdb-web:abc123; when it fails: manage.py release (the migrations) in one, before the new version starts (a first deploy: once the database runs)',
      'docker swarm init, unless the host is a Swarm node already; a host still on Compose: docker compose down first (the volumes stay)',
    ])
    assert.match(remoteSteps(planRemoteUp(ENV))[6] ?? '', /docker compose config --format json \| \(the stack file\) \| docker stack deploy --prune --with-registry-auth --compose-file - mymdb$/)
    // the deploy is recorded on the host: when, who, which images
    const record = JSON.parse(remote.stdin.find((x) => x?.startsWith('{"at"')) ?? '{}')
    assert.equal(record.tag, 'abc123')
    assert.equal(record.result, 'ok')
    assert.equal(typeof record.seconds, 'number')
    assert.equal(record.web, '127.0.0.1:5000/mymdb-web:abc123')
    assert.match(record.by, /.+@.+/)
    assert.ok(Math.abs(Date.parse(record.at) - Date.now()) < 60_000)
    assert.ok(remote.closed)
    assert.deepEqual(http.calls, ['http://127.0.0.1:8081/healthz Host: mymdb.example.com', 'http://127.0.0.1:8081/ Host: mymdb.example.com'])
    assert.match(d.log.text(), /MyMDB is running on 127\.0\.0\.1 .*http:\/\/mymdb\.example\.com:8081\//)
    assert.doesNotMatch(d.log.text(), /db-pw|pg-pw/)
  })
  it('several addresses (MYMDB_HOST_ADDRESS, host 1 first): the others joined into one Swarm after Docker answers on host 1, and each front checked', () => {
    // (several hosts keep the database on RDS)
    const ca = join(mkdtempSync(join(tmpdir(), 'mymdb-ca-')), 'ca.pem')
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
    const three = { ...ENV, MYMDB_HOST_ADDRESS: '10.0.0.1,10.0.0.2,10.0.0.3', MYMDB_DATABASE: 'rds', MYMDB_DB_CA_FILE: ca }
    const steps = remoteSteps(planRemoteUp(three, { database: { address: 'db.example', port: 5432, masterSecretArn: 'arn:s', region: 'us-west-2' } }))
    assert.throws(() => planRemoteUp({ ...three, MYMDB_DATABASE: 'container' }), /MYMDB_DATABASE="container" - 3 hosts need MYMDB_DATABASE=rds: a database on one host's disk is lost with that host/)
    assert.equal(steps[0], 'docker info; docker compose version')
    assert.equal(steps[1], 'hosts 2 (10.0.0.2), 3 (10.0.0.3): docker info; then one Docker Swarm with host 1, 3 managers (hosts 1-3), the rest workers; join tokens read on host 1 and piped to the joining host, rotated afterwards')
    assert.match(steps.at(-1) ?? '', /^GET http:\/\/10\.0\.0\.1:\d+\/healthz and \/ .*; \/healthz on hosts 2, 3 too/)
    assert.ok(!remoteSteps(planRemoteUp(ENV)).some((l) => l.includes('Docker Swarm with host 1')))
  })
  it("a cluster's front door: the shared storage mounted on every host after the swarm, the front's /data on it; the DNS record at the load balancer; with a domain it is required", () => {
    const ca = join(mkdtempSync(join(tmpdir(), 'mymdb-ca-')), 'ca.pem')
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
    const database = { address: 'db.example', port: 5432, masterSecretArn: 'arn:s', region: 'us-west-2' }
    const three = { ...ENV, MYMDB_HOST_ADDRESS: '10.0.0.1,10.0.0.2,10.0.0.3', MYMDB_DATABASE: 'rds', MYMDB_DB_CA_FILE: ca, MYMDB_DOMAIN: 'movies.example.com' }
    assert.throws(() => planRemoteUp(three, { database }), /several hosts with MYMDB_DOMAIN need the fronts' shared storage.*npm run front makes it/)
    const p = planRemoteUp(three, { database, frontStorage: 'fs-12345678.efs.us-west-2.amazonaws.com', frontAddresses: ['198.51.100.7', '198.51.100.8'] })
    assert.equal(p.frontStorage, 'fs-12345678.efs.us-west-2.amazonaws.com')
    assert.match(p.envFile, /^MYMDB_FRONT_STORAGE='\/mnt\/mymdb-front\/caddy'$/m)
    assert.deepEqual(p.https?.ips, ['198.51.100.7', '198.51.100.8'])
    const steps = remoteSteps(p)
    const mount = steps.findIndex((l) => l.startsWith("the fronts' shared storage fs-12345678.efs.us-west-2.amazonaws.com"))
    assert.ok(mount > steps.findIndex((l) => l.includes('one Docker Swarm with host 1')) && mount < steps.findIndex((l) => l.startsWith('upload ~/mymdb/docker-compose.yml')), steps.join('\n'))
    assert.match(steps[0] ?? '', /wait until movies\.example\.com resolves to 198\.51\.100\.7, 198\.51\.100\.8 \(DNS record: movies\.example\.com\.  A  198\.51\.100\.7; movies\.example\.com\.  A  198\.51\.100\.8\)/)
    assert.match(steps.at(-1) ?? '', /^GET https:\/\/10\.0\.0\.1:\d+\/healthz and \/ .*; \/healthz over HTTPS on hosts 2, 3 too \(each host's front has the certificate\)$/)
    // one host: no storage, the front's own volume
    assert.doesNotMatch(planRemoteUp(ENV).envFile, /MYMDB_FRONT_STORAGE/)
  })

  it('run alone (no digests from push): db, proxy and cache pinned by the digests of the pulled images, in the .env on the host', async () => {
    const D = (n: string) => `127.0.0.1:5000/mymdb-${n}@sha256:${n[0]!.repeat(64)}`
    const remote = fakeRemote((c) => (c.includes('{{range .RepoDigests}}') ? { stdout: `other/mymdb-db@sha256:${'9'.repeat(64)}\n${D('db')}\n${D('proxy')}\n${D('cache')}\n` } : swarmHost()(c)))
    const d = deps(remote, okHttp())
    assert.equal(await main([], ENV, d), 0, d.log.text())
    assert.deepEqual(remote.uploads.map((u) => u.path), ['~/mymdb/docker-compose.yml', '~/mymdb/.env', '~/.docker/config.json'])
    // the host's .env edited as a rollback edits it, before the stack is deployed
    const edit = remote.commands.findIndex((c) => c.startsWith('cd mymdb && sh -c \'rm -f .env.before-rollback && sed -i "$0" .env\''))
    assert.ok(edit > 0 && edit < remote.commands.findIndex((c) => c.includes('docker stack deploy')), remote.commands.join('\n'))
    const all = { web: '127.0.0.1:5000/mymdb-web:abc123', db: D('db'), proxy: D('proxy'), cache: D('cache') }
    const pinned = execFileSync('sed', [envEdit(all)], { input: remote.uploads[1]!.content }).toString()
    assert.ok(remote.commands[edit]!.endsWith(showCommand([envEdit(all)])), remote.commands[edit])
    assert.match(pinned, new RegExp(`^MYMDB_DB_REF='${D('db').replace(/[.]/g, '\\.')}'$`, 'm'))
    assert.match(pinned, new RegExp(`^MYMDB_PROXY_REF='${D('proxy').replace(/[.]/g, '\\.')}'$`, 'm'))
    assert.match(pinned, new RegExp(`^MYMDB_CACHE_REF='${D('cache').replace(/[.]/g, '\\.')}'$`, 'm'))
    assert.equal(pinned.replace(/^MYMDB_(DB|PROXY|CACHE)_REF=.*\n/gm, ''), remote.uploads[1]!.content.replace(/^MYMDB_(DB|PROXY|CACHE)_REF=.*\n/gm, ''))
    const record = JSON.parse(remote.stdin.find((x) => x?.startsWith('{"at"')) ?? '{}')
    assert.deepEqual([record.db, record.proxy], [D('db'), D('proxy')])
  })
  it('a db and a cache built again from the same sources (another machine, an empty build cache): the running images stay, PostgreSQL is not restarted', async () => {
    const L = (c: string) => `sha256:${c.repeat(64)}`
    const running = (n: string) => `127.0.0.1:5000/mymdb-${n}@sha256:${'7'.repeat(64)}`
    const pushed = { web: DIGEST('a'), db: DIGEST('b'), proxy: DIGEST('c'), cache: DIGEST('e') }
    // db and cache: the same inputs as the running ones; proxy: changed
    const facts = [`db\t${running('db')}\t${L('1')}\t${L('1')}`, `proxy\t${running('proxy')}\t${L('2')}\t${L('3')}`, `cache\t${running('cache')}\t${L('4')}\t${L('4')}`].join('\n')
    const remote = fakeRemote((c) => (c.includes('"mymdb_$1"') ? { stdout: `${facts}\n` } : swarmHost()(c)))
    const d = deps(remote, okHttp())
    await remoteUp(planRemoteUp(ENV, { digests: pushed }), { ...d, root: new URL('../..', import.meta.url).pathname } as never)
    const text = d.log.text()
    assert.match(text, /\[pull\] db, cache: built from the same sources and base image as the running ones \(label org\.mymdb\.inputs\): they keep running/)
    const images = { web: '127.0.0.1:5000/mymdb-web:abc123', db: running('db'), proxy: `127.0.0.1:5000/mymdb-proxy@${pushed.proxy}`, cache: running('cache') }
    const edit = remote.commands.findIndex((c) => c.endsWith(showCommand([envEdit(images)])))
    assert.ok(edit > 0 && edit < remote.commands.findIndex((c) => c.includes('docker stack deploy')), remote.commands.join('\n'))
    const record = JSON.parse(remote.stdin.find((x) => x?.startsWith('{"at"')) ?? '{}')
    assert.deepEqual([record.db, record.proxy, record.cache], [images.db, images.proxy, images.cache])
  })
  it('with the backup target: backup.env and backup.sh uploaded, the crontab set; a schema change gets a backup before the new version starts', async () => {
    const backup = { bucket: 'b-backups', region: 'us-west-2', roleArn: 'arn:aws:iam::1:role/mymdb-production-backup', externalId: 'e'.repeat(48) }
    const manifest = { format: 'mymdb-backup', version: 1, createdAt: '2026-11-27T10:00:00Z', source: 'production', database: 'mymdb', revision: '', postgres: '17', media: false, reason: 'pre-migrate' }
    const answers = (cmd: string) =>
      cmd.includes('docker create') && cmd.includes('\nimage=127.0.0.1:5000/mymdb-web:abc123\n') && cmd.endsWith('manage.py migrate --check')
        ? { exitCode: 1, stdout: '  core\n    0002_new\n' }
        : cmd.includes('reason=pre-migrate')
          ? { stdout: `${JSON.stringify(manifest)}\nMYMDB_BACKUP 1234 mymdb-production-20261127T100000Z.tar s3://b-backups/kept/pre-migrate/mymdb-production-20261127T100000Z.tar?versionId=v1\n` }
          : swarmHost()(cmd)
    const remote = fakeRemote(answers)
    const d = deps(remote)
    await remoteUp(planRemoteUp(ENV, { backup }), { ...d, root: new URL('../..', import.meta.url).pathname } as never)
    assert.deepEqual(remote.uploads.map((u) => [u.path, u.mode]), [
      ['~/mymdb/docker-compose.yml', 0o644],
      ['~/mymdb/.env', 0o600],
      ['~/mymdb/backup.env', 0o600],
      ['~/.docker/config.json', 0o600],
      ['~/mymdb/backup.sh', 0o700],
      ['~/mymdb/catch-up.sh', 0o700],
    ])
    const i = (re: RegExp) => remote.commands.findIndex((c) => re.test(c))
    assert.ok(i(/migrate --check'?$/) < i(/reason=pre-migrate/), remote.commands.join('\n'))
    // the new version's code in a throw-away container of its image, with web's environment
    assert.match(remote.commands[i(/docker create/)] ?? '', /\nimage=127\.0\.0\.1:5000\/mymdb-web:abc123\n/)
    assert.ok(i(/reason=pre-migrate/) < i(/docker stack deploy/), 'the backup comes before the new version starts')
    assert.ok(i(/crontab -/) > i(/docker stack deploy/))
    assert.match(d.log.text(), /before the migrations: s3:\/\/b-backups\/kept\/pre-migrate\/mymdb-production-20261127T100000Z\.tar\?versionId=v1/)

    // the backup fails: the new version is not started
    const failing = fakeRemote((cmd) => (cmd.includes('reason=pre-migrate') ? { exitCode: 1, stderr: 'no space left' } : answers(cmd)))
    const d2 = deps(failing)
    await assert.rejects(remoteUp(planRemoteUp(ENV, { backup }), { ...d2, root: new URL('../..', import.meta.url).pathname } as never), /the backup before the migrations failed, so the new version was not started \(the old one still runs\)/)
    assert.ok(!failing.commands.some((c) => /docker stack deploy/.test(c)))
  })
  it('--address wins over MYMDB_HOST_ADDRESS', async () => {
    const http = okHttp()
    const d = deps(fakeRemote(swarmHost()), http)
    assert.equal(await main(['--address', '127.0.0.2'], ENV, d), 0)
    assert.match(http.calls[0]!, /^http:\/\/127\.0\.0\.2:8081\/healthz/)
  })
  it('logs in with the pull-only password on stdin, never on the command line; the push login stays here', async () => {
    const remote = fakeRemote(swarmHost())
    const d = deps(remote)
    assert.equal(await main([], { ...ENV, MYMDB_REGISTRY_USERNAME: 'me', MYMDB_REGISTRY_PASSWORD: 'push-secret', MYMDB_PULL_USERNAME: 'reader', MYMDB_PULL_PASSWORD: 'tok-secret' }, d), 0)
    const i = remote.commands.findIndex((c) => c.startsWith('docker login'))
    assert.equal(remote.commands[i], 'docker login --username reader --password-stdin 127.0.0.1:5000')
    assert.equal(remote.stdin[i], 'tok-secret')
    assert.ok(remote.commands.every((c) => !c.includes('tok-secret')))
    assert.ok([...remote.commands, ...remote.stdin, ...remote.uploads.map((u) => u.content)].every((c) => !c?.includes('push-secret')), 'the push password is sent nowhere')
    // the Docker configuration is written fresh (a login an older deploy left is gone), before the login
    const config = remote.uploads.find((u) => u.path === '~/.docker/config.json')
    assert.deepEqual([config?.mode, JSON.parse(config?.content ?? 'null')], [0o600, {}])
    assert.ok(i < remote.commands.findIndex((c) => c.includes('compose pull')))
  })
  it('a failing pull: exit 1 with $ command, exit code and stderr; nothing started', async () => {
    const remote = fakeRemote((c) => (c.includes('compose pull') ? { exitCode: 18, stderr: 'Get "http://127.0.0.1:1/v2/": connection refused\n' } : undefined))
    const d = deps(remote)
    assert.equal(await main([], ENV, d), 1)
    const text = d.log.text()
    assert.match(text, /Could not pull the images from 127\.0\.0\.1:5000 \(the host pulls without a login; for private repositories set MYMDB_PULL_USERNAME and MYMDB_PULL_PASSWORD, a read-only token\)\./)
    assert.match(text, /\$ cd mymdb && docker compose pull --quiet/)
    assert.match(text, /exit code 18/)
    assert.match(text, /connection refused/)
    assert.ok(!remote.commands.some((c) => c.includes('compose up')))
    assert.ok(remote.closed)
    // the history keeps the failed deploy
    const record = JSON.parse(remote.stdin.find((x) => x?.startsWith('{"at"')) ?? '{}')
    assert.equal(remote.commands.at(-1), "cd mymdb && sh -c 'cat >> deploys.log'")
    assert.deepEqual([record.result, record.tag, typeof record.seconds], ['failed', 'abc123', 'number'])
    assert.match(record.error, /could not pull the images from 127\.0\.0\.1:5000/)
  })
  it('a new web version that does not become healthy: Swarm rolls it back, the old one keeps serving; exit 1 naming why, its tasks and logs shown', async () => {
    const old = '127.0.0.1:5000/mymdb-web:old'
    const remote = fakeRemote((c) =>
      c.includes('docker service ps') ? { stdout: 'mymdb_web.1  127.0.0.1:5000/mymdb-web:abc123  Shutdown 3 seconds ago  task: non-zero exit (1)\n' } : c.includes('docker service logs') ? { stdout: 'mymdb_web.1.x@h | *** no app loaded. GAME OVER ***\n' } : swarmHost({ specImages: { web: old }, updateState: 'rollback_completed' })(c),
    )
    const d = deps(remote)
    assert.equal(await main([], ENV, d), 1)
    const text = d.log.text()
    assert.match(text, /the new web did not become healthy on admin@127\.0\.0\.1:2222: Swarm rolled web back: update rolled back due to failure or early termination of task\. The previous version \(127\.0\.0\.1:5000\/mymdb-web:old@sha256:0+\) keeps serving/)
    assert.match(text, /\$ cd mymdb && docker service ps --no-trunc .* mymdb_proxy mymdb_web mymdb_db mymdb_cache\nmymdb_web\.1 .*non-zero exit \(1\)/)
    assert.match(text, /\$ cd mymdb && docker service logs --timestamps --tail 40 mymdb_web\n.*GAME OVER/)
    assert.ok(!remote.commands.some((c) => /docker exec -i .* manage\.py migrate/.test(c)), 'nothing checked in the old version')
    const record = JSON.parse(remote.stdin.find((x) => x?.startsWith('{"at"')) ?? '{}')
    assert.equal(record.result, 'failed')
  })
  it('a host still on Compose: the pre-migrate check runs there, then Compose is taken down (front first) and the stack deployed', async () => {
    const remote = fakeRemote((c) => (c.endsWith('docker compose ps --all --quiet') ? { stdout: 'abc\ndef\n' } : swarmHost({ runs: 'compose' })(c)))
    const backup = { bucket: 'b-backups', region: 'us-west-2', roleArn: 'arn:aws:iam::1:role/mymdb-production-backup', externalId: 'e'.repeat(48) }
    const d = deps(remote)
    await remoteUp(planRemoteUp(ENV, { backup }), { ...d, root: new URL('../..', import.meta.url).pathname } as never)
    const i = (s: string) => remote.commands.findIndex((c) => c.endsWith(s))
    // Compose's own ps says whether its db runs (the stack is not there yet)
    assert.ok(i('docker compose ps --all --format json') > 0)
    assert.ok(i('docker compose stop proxy') > i('docker compose ps --all --quiet'))
    assert.ok(i('docker compose down --remove-orphans') > i('docker compose stop proxy'))
    assert.ok(i('docker stack deploy --prune --with-registry-auth --compose-file - mymdb') > i('docker compose down --remove-orphans'))
    assert.match(d.log.text(), /the host ran MyMDB with Compose: moving it to the Swarm stack/)
  })
  it('Docker missing on the host: waits, then a UserError naming install-docker.sh', async (t) => {
    t.mock.timers.enable({ apis: ['Date'] })
    let n = 0
    const remote = fakeRemote((c) => {
      if (!c.includes('docker info')) return undefined
      n++
      t.mock.timers.tick(200_000)
      return { exitCode: 127, stderr: 'bash: docker: command not found\n' }
    })
    const d = deps(remote)
    assert.equal(await main([], ENV, d), 1)
    assert.ok(n >= 2)
    assert.match(d.log.text(), /install-docker\.sh[\s\S]*command not found/)
    assert.deepEqual(remote.uploads, [])
  })
})

describe('waitFor200', () => {
  it('returns the first 200', async () => {
    let n = 0
    const get: HttpGet = async () => (++n < 3 ? { status: 503, body: 'starting' } : { status: 200, body: 'ok' })
    assert.equal((await waitFor200(get, 'http://127.0.0.1:1/healthz', 'h', 5, 0)).body, 'ok')
    assert.equal(n, 3)
  })
  it('fails with the last answer', async () => {
    const get: HttpGet = async () => ({ status: 400, body: 'Bad Request' })
    await assert.rejects(waitFor200(get, 'http://127.0.0.1:1/', 'wrong.test', 0, 0), (e: unknown) => e instanceof UserError && /HTTP 400: Bad Request[\s\S]*wrong\.test/.test(e.message))
  })
})

const DIGEST = (c: string) => `sha256:${c.repeat(64)}`

describe('HTTPS with MYMDB_DOMAIN (plan)', () => {
  const HTTPS = { ...ENV, MYMDB_DOMAIN: 'Movies.Example.com', MYMDB_ACME_EMAIL: 'ops@example.com', MYMDB_HOST_HTTPS_PORT: '8443' }
  it('the domain comes first in the allowed hosts, Django HTTPS on, the ACME settings for the front', () => {
    const p = planRemoteUp(HTTPS, { publicIp: '198.51.100.4' })
    const env = parseEnvFile(p.envFile)
    assert.equal(env.MYMDB_DOMAIN, 'movies.example.com')
    assert.equal(env.DJANGO_ALLOWED_HOSTS, 'movies.example.com,mymdb.example.com,203.0.113.7')
    assert.equal(env.DJANGO_SECURE_SSL, 'true')
    assert.equal(env.MYMDB_ACME_CA, 'https://acme-v02.api.letsencrypt.org/directory')
    assert.equal(env.MYMDB_ACME_EMAIL, 'ops@example.com')
    assert.equal(env.MYMDB_ACME_RENEW_INTERVAL, '10m')
    assert.equal(env.WEB_HTTPS_PORT, '443')
    assert.equal(p.hostName, 'movies.example.com')
    assert.deepEqual(p.https, { domain: 'movies.example.com', ca: 'https://acme-v02.api.letsencrypt.org/directory', port: 8443, ips: ['198.51.100.4'], dnsWait: 900 })
    assert.match(remoteSteps(p)[0] ?? '', /wait until movies\.example\.com resolves to 198\.51\.100\.4/)
  })
  it('without a domain: no ACME settings on the host, DJANGO_SECURE_SSL as set, no DNS wait', () => {
    const p = planRemoteUp({ ...ENV, MYMDB_ACME_EMAIL: 'ops@example.com' })
    const env = parseEnvFile(p.envFile)
    for (const k of ['MYMDB_DOMAIN', 'MYMDB_ACME_CA', 'MYMDB_ACME_EMAIL', 'MYMDB_ACME_CA_ROOT_B64']) assert.equal(env[k], undefined, k)
    assert.equal(env.DJANGO_SECURE_SSL, 'false')
    assert.equal(p.https, undefined)
  })
  it("a private CA's root goes to the host as base64; a file that is not a certificate is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mymdb-ca-'))
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
    writeFileSync(join(dir, 'root.pem'), pem)
    writeFileSync(join(dir, 'not.pem'), 'hello')
    const p = planRemoteUp({ ...HTTPS, MYMDB_ACME_CA_ROOT: join(dir, 'root.pem') })
    assert.equal(Buffer.from(parseEnvFile(p.envFile).MYMDB_ACME_CA_ROOT_B64 ?? '', 'base64').toString(), pem)
    assert.throws(() => planRemoteUp({ ...HTTPS, MYMDB_ACME_CA_ROOT: join(dir, 'not.pem') }), (e: unknown) => e instanceof EnvError && /MYMDB_ACME_CA_ROOT[\s\S]*not a PEM certificate/.test(e.message))
    assert.throws(() => planRemoteUp({ ...HTTPS, MYMDB_ACME_CA_ROOT: join(dir, 'missing.pem') }), (e: unknown) => e instanceof EnvError && /MYMDB_ACME_CA_ROOT[\s\S]*cannot be read/.test(e.message))
  })
  it("MYMDB_WEB_REPLICAS goes to the host's .env when set (the stack file reads it there); a bad count is refused", () => {
    assert.equal(parseEnvFile(planRemoteUp({ ...HTTPS, MYMDB_WEB_REPLICAS: '4' }).envFile).MYMDB_WEB_REPLICAS, '4')
    assert.equal(parseEnvFile(planRemoteUp(HTTPS).envFile).MYMDB_WEB_REPLICAS, undefined)
    assert.throws(() => planRemoteUp({ ...HTTPS, MYMDB_WEB_REPLICAS: '0' }), (e: unknown) => e instanceof EnvError && /MYMDB_WEB_REPLICAS[\s\S]*a whole number/.test(e.message))
  })
  it('HSTS: a day by default, from the settings, for the front only with a domain; preload only with subdomains and a year', () => {
    const hsts = (extra: Record<string, string>) => {
      const env = parseEnvFile(planRemoteUp({ ...HTTPS, ...extra }).envFile)
      return [env.MYMDB_HSTS_SECONDS, env.MYMDB_HSTS_SUBDOMAINS, env.MYMDB_HSTS_PRELOAD]
    }
    assert.deepEqual(hsts({}), ['86400', 'false', 'false'])
    assert.deepEqual(hsts({ MYMDB_HSTS_SECONDS: '31536000', MYMDB_HSTS_SUBDOMAINS: 'true', MYMDB_HSTS_PRELOAD: 'true' }), ['31536000', 'true', 'true'])
    assert.deepEqual(hsts({ MYMDB_DOMAIN: '' }), [undefined, undefined, undefined])
    assert.throws(
      () => planRemoteUp({ ...HTTPS, MYMDB_HSTS_PRELOAD: 'true', MYMDB_HSTS_SECONDS: '600' }),
      (e: unknown) => e instanceof EnvError && /MYMDB_HSTS_PRELOAD[\s\S]*needs MYMDB_HSTS_SUBDOMAINS=true and MYMDB_HSTS_SECONDS of at least 31536000/.test(e.message),
    )
  })
  it("the admin's address: derived from the secret key (stable, not /admin/), or the setting", () => {
    const first = parseEnvFile(planRemoteUp(ENV).envFile).DJANGO_ADMIN_URL ?? ''
    assert.match(first, /^admin-[0-9a-f]{12}$/)
    assert.equal(parseEnvFile(planRemoteUp(ENV).envFile).DJANGO_ADMIN_URL, first)
    assert.notEqual(parseEnvFile(planRemoteUp({ ...ENV, DJANGO_SECRET_KEY: `${ENV.DJANGO_SECRET_KEY}x` }).envFile).DJANGO_ADMIN_URL, first)
    assert.equal(parseEnvFile(planRemoteUp({ ...ENV, DJANGO_ADMIN_URL: 'staff-1' }).envFile).DJANGO_ADMIN_URL, 'staff-1')
    assert.throws(() => planRemoteUp({ ...ENV, DJANGO_ADMIN_URL: 'a/b' }), (e: unknown) => e instanceof EnvError && /DJANGO_ADMIN_URL[\s\S]*one path segment/.test(e.message))
  })
  it('bad domain, email, renew interval and DNS server: all reported at once', () => {
    assert.throws(
      () => planRemoteUp({ ...ENV, MYMDB_DOMAIN: '203.0.113.7', MYMDB_ACME_EMAIL: 'nobody', MYMDB_ACME_RENEW_INTERVAL: '10 minutes', MYMDB_DNS_SERVER: 'dns.example' }),
      (e: unknown) =>
        e instanceof EnvError && ['MYMDB_DOMAIN', 'MYMDB_ACME_EMAIL', 'MYMDB_ACME_RENEW_INTERVAL', 'MYMDB_DNS_SERVER'].every((k) => e.message.includes(k)) && /certificates are for names/.test(e.message),
    )
    assert.throws(() => planRemoteUp({ ...ENV, MYMDB_DOMAIN: '*.example.com' }), /MYMDB_DOMAIN/)
    assert.throws(() => planRemoteUp({ ...ENV, MYMDB_DOMAIN: 'localhost' }), /MYMDB_DOMAIN/)
    assert.equal(planRemoteUp({ ...ENV, MYMDB_DOMAIN: 'a.test', MYMDB_DNS_SERVER: '127.0.0.1:8053' }).https?.dnsServer, '127.0.0.1:8053')
  })
})

describe('images on the host', () => {
  it('db, proxy and cache pinned by the pushed digests, web by the tag; without digests all by the tag', () => {
    const pinned = planRemoteUp(ENV, { digests: { web: DIGEST('a'), db: DIGEST('b'), proxy: DIGEST('c'), cache: DIGEST('e') } })
    assert.deepEqual(pinned.images, {
      web: '127.0.0.1:5000/mymdb-web:abc123',
      db: `127.0.0.1:5000/mymdb-db@${DIGEST('b')}`,
      proxy: `127.0.0.1:5000/mymdb-proxy@${DIGEST('c')}`,
      cache: `127.0.0.1:5000/mymdb-cache@${DIGEST('e')}`,
    })
    const env = parseEnvFile(pinned.envFile)
    assert.equal(env.MYMDB_DB_REF, pinned.images.db)
    assert.equal(env.MYMDB_PROXY_REF, pinned.images.proxy)
    assert.equal(env.MYMDB_CACHE_REF, pinned.images.cache)
    assert.equal(env.MYMDB_CACHE_IMAGE, '127.0.0.1:5000/mymdb-cache')
    assert.equal(parseEnvFile(planRemoteUp(ENV).envFile).MYMDB_DB_REF, '127.0.0.1:5000/mymdb-db:abc123')
  })
  it('keepUnchanged: a running db, proxy or cache stays when the new image carries its inputs digest, from the same repository', () => {
    const L = (c: string) => `sha256:${c.repeat(64)}`
    const images = { web: 'r/mymdb-web:t', db: `r/mymdb-db@${DIGEST('b')}`, proxy: `r/mymdb-proxy@${DIGEST('c')}`, cache: `r/mymdb-cache@${DIGEST('e')}` }
    const old = (n: string) => `r/mymdb-${n}@${DIGEST('f')}`
    assert.deepEqual(keepUnchanged(images, {}), { images, kept: [] })
    assert.deepEqual(
      keepUnchanged(images, {
        db: { running: old('db'), runningInputs: L('1'), newInputs: L('1') },
        proxy: { running: old('proxy'), runningInputs: L('1'), newInputs: L('2') },
        cache: { running: old('cache'), runningInputs: '<no value>', newInputs: '<no value>' },
      }),
      { images: { ...images, db: old('db') }, kept: ['db'] },
      'same digest: kept; other digest, or no label (an image from before the label): the new one',
    )
    // another registry (the deploy moved): the new image, whatever its inputs
    assert.deepEqual(keepUnchanged(images, { db: { running: `q/mymdb-db@${DIGEST('f')}`, runningInputs: L('1'), newInputs: L('1') } }).kept, [])
    // no service yet (a first deploy): nothing kept
    assert.deepEqual(keepUnchanged(images, { db: { running: '', runningInputs: '', newInputs: L('1') } }).kept, [])
  })
  it("the digest in docker push's output", () => {
    assert.equal(pushedDigest(`abc: Pushed\nabc123: digest: ${DIGEST('d')} size: 1570\n`), DIGEST('d'))
    assert.equal(pushedDigest('no digest here'), undefined)
  })
})

describe('waitForDns', () => {
  const H = { domain: 'movies.example.com', ca: 'x', port: 443, ips: ['198.51.100.4'], dnsWait: 2 }
  it('already resolving: one line, no wait', async () => {
    const log = captureLog()
    await waitForDns(H, log, async () => ['198.51.100.4'], 0)
    assert.match(log.text(), /movies\.example\.com resolves to 198\.51\.100\.4/)
    assert.doesNotMatch(log.text(), /create this DNS record/)
  })
  it('prints the record to create, says what the name resolves to meanwhile, goes on once it points here', async () => {
    const answers = [[], ['192.0.2.1'], ['192.0.2.1'], ['198.51.100.4']]
    const asked: (string | undefined)[] = []
    const resolve: ResolveName = async (_name, server) => (asked.push(server), answers.shift() ?? [])
    const log = captureLog()
    await waitForDns({ ...H, dnsServer: '127.0.0.1:8053' }, log, resolve, 1)
    const text = log.text()
    assert.match(text, /create this DNS record at your DNS provider \(it does not resolve yet\)/)
    assert.ok(text.includes(dnsRecord(H)), text)
    assert.match(text, /movies\.example\.com\.  A  198\.51\.100\.4/)
    assert.match(text, /waiting up to 2 s for it \(asking 127\.0\.0\.1:8053\)/)
    assert.equal(text.match(/resolves to 192\.0\.2\.1/g)?.length, 1, text)
    assert.match(text, /movies\.example\.com resolves to 198\.51\.100\.4\n?$/)
    assert.ok(asked.every((s) => s === '127.0.0.1:8053'))
  })
  it('gives up after MYMDB_DNS_WAIT: UserError with the record and what to do', async () => {
    const log = captureLog()
    await assert.rejects(
      waitForDns({ ...H, dnsWait: 0 }, log, async () => ['192.0.2.1'], 0),
      (e: unknown) => e instanceof UserError && /does not resolve to 198\.51\.100\.4 only after 0 s \(it resolves to 192\.0\.2\.1; remove the records for 192\.0\.2\.1/.test(e.message) && e.message.includes('no other A or AAAA record') && e.message.includes('run the deploy again') && e.message.includes(dnsRecord(H)),
    )
  })
  it('an AAAA record (or a second A record) beside the right one: it waits until only the host is left, and says which to remove', async () => {
    const answers = [['198.51.100.4', '2001:db8::7'], ['198.51.100.4', '192.0.2.1'], ['198.51.100.4']]
    const log = captureLog()
    await waitForDns(H, log, async () => answers.shift() ?? [], 1)
    assert.equal(answers.length, 0)
    assert.match(log.text(), /it resolves to 198\.51\.100\.4, 2001:db8::7; remove the records for 2001:db8::7 \(the site has only 198\.51\.100\.4, no IPv6\)/)
    assert.match(log.text(), /remove the records for 192\.0\.2\.1/)
    assert.deepEqual([pointsAtHost(['198.51.100.4'], ['198.51.100.4']), pointsAtHost(['198.51.100.4', '::1'], ['198.51.100.4']), pointsAtHost([], undefined), pointsAtHost(['::1'], undefined)], [true, false, false, true])
  })
  it("a cluster's load balancer: a record per address printed; any of its addresses (and only those) will do", async () => {
    const lb = { ...H, ips: ['198.51.100.4', '198.51.100.5', '198.51.100.6'] }
    const answers = [[], ['198.51.100.5', '192.0.2.1'], ['198.51.100.5', '198.51.100.6']]
    const log = captureLog()
    await waitForDns(lb, log, async () => answers.shift() ?? [], 1)
    const text = log.text()
    assert.match(text, /create these DNS records at your DNS provider/)
    for (const ip of lb.ips) assert.ok(text.includes(`[dns]   movies.example.com.  A  ${ip}`), text)
    assert.match(text, /remove the records for 192\.0\.2\.1 \(the site has only 198\.51\.100\.4, 198\.51\.100\.5 or 198\.51\.100\.6, no IPv6\)/)
    assert.match(text, /movies\.example\.com resolves to 198\.51\.100\.5, 198\.51\.100\.6\n?$/)
    await assert.rejects(waitForDns({ ...lb, dnsWait: 0 }, captureLog(), async () => ['192.0.2.1'], 0), /does not resolve to 198\.51\.100\.4, 198\.51\.100\.5 or 198\.51\.100\.6 only after 0 s/)
  })
  it('a failing lookup is reported, not fatal', async () => {
    let n = 0
    const log = captureLog()
    await waitForDns(H, log, async () => {
      if (++n === 1) throw new Error('ECONNREFUSED')
      return ['198.51.100.4']
    }, 0)
    assert.match(log.text(), /the lookup failed: ECONNREFUSED/)
  })
})

describe('remote-up with MYMDB_DOMAIN', () => {
  const ENV = { ...ENV_PLAN, MYMDB_SSH_KEY_FILE: testKeyFile() }
  it('waits for the DNS record before connecting, then checks the site over HTTPS by name and the redirect from HTTP', async () => {
    const remote = fakeRemote(swarmHost())
    const calls: string[] = []
    const http: HttpGet = async (url, host) => {
      calls.push(`${url} ${host}`)
      return url.startsWith('https:') ? { status: 200, body: 'ok' } : { status: 308, body: '', location: `https://${host}/` }
    }
    const order: string[] = []
    const d = { ...deps(remote), httpGet: http, resolveName: async () => (order.push('dns'), ['127.0.0.1']) }
    const open = d.openRemote
    d.openRemote = async () => (order.push('ssh'), open())
    const code = await main([], { ...ENV, MYMDB_DOMAIN: 'movies.example.com', MYMDB_HOST_HTTPS_PORT: '8443' }, d)
    assert.equal(code, 0, d.log.text())
    assert.deepEqual(order, ['dns', 'ssh'])
    assert.deepEqual(calls, [
      'https://127.0.0.1:8443/healthz movies.example.com',
      'https://127.0.0.1:8443/ movies.example.com',
      'http://127.0.0.1:8081/ movies.example.com',
    ])
    assert.match(d.log.text(), /MyMDB is running on 127\.0\.0\.1 .*https:\/\/movies\.example\.com\//)
  })
  it('HTTP that does not redirect to HTTPS fails the check', async () => {
    const http: HttpGet = async (url) => (url.startsWith('https:') ? { status: 200, body: 'ok' } : { status: 200, body: 'plain' })
    const d = { ...deps(fakeRemote(swarmHost())), httpGet: http, resolveName: async () => ['127.0.0.1'] }
    assert.equal(await main([], { ...ENV, MYMDB_DOMAIN: 'movies.example.com' }, d), 1)
    assert.match(d.log.text(), /does not redirect to https:\/\/ \(HTTP 200\)/)
  })
})
