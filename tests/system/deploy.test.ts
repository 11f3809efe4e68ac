// npm run deploy:aws end to end against the rig: moto for AWS, Debian's docker-registry, and an
// SSH host with its own Docker engine (set up by scripts/install-docker.sh, like the EC2 host's
// user-data). The deploy reaches the "instance" only through MYMDB_HOST_ADDRESS=127.0.0.1 and
// the rig's published ports; every connection it opens is recorded and must go to loopback.
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { spawn } from 'node:child_process'
import { DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2'
import { GetRoleCommand } from '@aws-sdk/client-iam'
import { DescribeRepositoriesCommand } from '@aws-sdk/client-ecr'
import { GetBucketPolicyCommand, GetObjectCommand, GetPublicAccessBlockCommand, HeadObjectCommand, ListBucketsCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts'
import { PutItemCommand } from '@aws-sdk/client-dynamodb'
import { acquireLock, readLock } from '../../tasks/lib/lock.ts'
import { launchChromium, uploadPoster } from '../rig/browser.ts'
import { main as bucketMain } from '../../tasks/bucket.ts'
import { main as deployMain } from '../../tasks/deploy-aws.ts'
import { main as destroyMain } from '../../tasks/destroy-aws.ts'
import { main as hostMain } from '../../tasks/host.ts'
import { findHost } from '../../tasks/lib/aws/instance.ts'
import { httpGet } from '../../tasks/lib/remote/checks.ts'
import { retryUnstarted, showCommand } from '../../tasks/lib/sh.ts'
import { hostStack, oneOffCmd } from '../../tasks/lib/stack.ts'
import { planRemoteUp } from '../../tasks/lib/remote/plan.ts'
import { remoteUp } from '../../tasks/lib/remote/up.ts'
import { awsClients, type AwsClients } from '../../tasks/lib/aws/clients.ts'
import { main as pushMain } from '../../tasks/push.ts'
import { main as rollbackMain } from '../../tasks/rollback.ts'
import { SECRET_LABEL, SECRET_VARS, secretName } from '../../tasks/lib/swarmsecrets.ts'
import { main as stopMain } from '../../tasks/stop.ts'
import { removeLocalTags } from '../rig/docker.ts'
import { ecrMappingUnavailable, mapEcrHost } from '../rig/ecr.ts'
import { rotationChanges } from '../../tasks/lib/rotation.ts'
import { startMoto, type Moto } from '../rig/moto.ts'
import { backupTargetOf, rigDeployEnv } from '../rig/deployenv.ts'
import { addMigration, pushStackImages, startRegistry, type Registry } from '../rig/registry.ts'
import { followInstances, inService, REMOVE_STACK, startSshHost, type SshHost } from '../rig/sshhost.ts'
import { startImpostor } from '../rig/impostor.ts'
import { describeLoad, underLoad, type LoadResult } from '../rig/load.ts'
import { lastLinesFirst } from '../rig/report.ts'
import { captureLog, sshKeyFile } from '../unit/fakes.ts'
import { stripControls } from '../../tasks/lib/log.ts'
import { $ } from 'zx'

const REPO = new URL('../..', import.meta.url).pathname

const BUCKET = 'mymdb-rig-uploads'
const BACKUP_BUCKET = `${BUCKET}-backups`
const STAGE = 'rig'
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC', 'base64')

// Every outgoing TCP connection of this process (the deploy runs in it): host and port.
const dialled: string[] = []
const realConnect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  // net.connect() passes its normalized arguments as one array.
  const first = (Array.isArray(args[0]) ? args[0][0] : args[0]) as { host?: string; port?: number; path?: string } | number
  if (typeof first === 'object' && first !== null && !first.path) dialled.push(`${first.host ?? 'localhost'}:${first.port}`)
  if (typeof first === 'number') dialled.push(`${typeof args[1] === 'string' ? args[1] : 'localhost'}:${first}`)
  return (realConnect as (...a: unknown[]) => net.Socket).apply(this, args)
} as typeof net.Socket.prototype.connect



/** GET of the SSH host's published port with a Host header (the task's own HTTP check). */
const get = (port: number, path: string, host: string) => httpGet(`http://127.0.0.1:${port}${path}`, host)

describe('npm run deploy:aws against the rig', { timeout: 30 * 60_000 }, () => {
  let moto: Moto
  let registry: Registry
  let host: SshHost
  let clients: AwsClients
  let dir: string
  let env: Record<string, string | undefined>
  let keyFile: string
  let adminPath = ''
  let posterKey = ''
  let backupName = ''
  let backupVersion = ''
  let ecrHost = ''
  let follow: { stop(): Promise<void> } | undefined
  const timings: string[] = []

  const run = async (main: typeof deployMain, argv: string[] = [], extra: Record<string, string> = {}) => {
    const log = captureLog()
    const start = Date.now()
    const code = await main(argv, { ...env, ...extra }, { log, envFile: join(dir, 'no.env'), pollSeconds: 1, interactive: false } as never)
    return { code, text: log.text(), seconds: (Date.now() - start) / 1000 }
  }
  const instances = async () =>
    (await clients.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] })))
      .Reservations?.flatMap((r) => r.Instances ?? []) ?? []
  /** An npm command as a user types it, in a child process (stdin given where it reads it). */
  const task = (file: string, args: string[], input = '') =>
    $({ cwd: REPO, env: { ...env, FORCE_COLOR: '0' } as NodeJS.ProcessEnv, nothrow: true, quiet: true, input })`node --import tsx ${`tasks/${file}.ts`} ${args}`
  const onHost = (script: string) => retryUnstarted(() => host.dockerExec('sh', '-c', `cd /home/admin/mymdb && ${script}`))
  /** A page of the site in `browser`, logged in as the user the poster test registered. */
  const logInAsPoster = async (browser: Awaited<ReturnType<typeof launchChromium>>) => {
    const page = await browser.newPage({ baseURL: `http://127.0.0.1:${host.httpPort}` })
    await page.goto('/user/login')
    await page.fill('#id_username', 'rig-poster')
    await page.fill('#id_password', 'correct-horse-battery-staple-42')
    await page.click('#login-button')
    assert.equal(await page.locator('#logged-in-as').innerText(), 'Logged in as rig-poster')
    return page
  }
  /** A task started in its own process group (for Ctrl-C), once its output shows `ready`. */
  const startedTask = async (file: string, args: string[], ready: RegExp) => {
    const child = spawn('node', ['--import', 'tsx', file, ...args], { cwd: REPO, env: { ...env, FORCE_COLOR: '0' } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let out = ''
    const exited = new Promise<number | null>((res) => child.on('exit', (code, signal) => res(code ?? (signal ? 128 : null))))
    const started = new Promise<void>((res) => {
      const watch = (d: Buffer) => {
        out += d.toString()
        if (ready.test(out)) res()
      }
      child.stdout.on('data', watch)
      child.stderr.on('data', watch)
    })
    await Promise.race([started, exited.then(() => assert.fail(`${file} ended before ${ready}:\n${out}`))])
    return { child, exited, out: () => out }
  }

  /** Runs the real command in a child process and Ctrl-Cs it (SIGINT to its whole process group,
   * as a terminal does) when its output matches `when`; returns the output. */
  /** A deploy interrupted (Ctrl-C to its process group) when its output shows `when`; its output once it has ended. */
  const interruptDeployAt = async (when: RegExp): Promise<string> => {
    const { child, exited, out } = await startedTask('tasks/deploy-aws.ts', [], when)
    process.kill(-child.pid!, 'SIGINT')
    const code = await exited
    assert.notEqual(code, 0, out())
    return out()
  }

  before(async () => {
    const start = Date.now()
    dir = mkdtempSync(join(tmpdir(), 'mymdb-deploy-'))
    keyFile = join(dir, 'mymdb-rig.pem')
    const keys = sshKeyFile(keyFile)
    moto = await startMoto('mymdb-rig-moto-deploy')
    registry = await startRegistry('mymdb-rig-registry-deploy')
    clients = awsClients('us-west-2', { ...process.env, ...moto.env })
    // The account's ECR registry name; the SSH host's engine finds the rig registry under it.
    ecrHost = `${(await clients.sts.send(new GetCallerIdentityCommand({}))).Account}.dkr.ecr.us-west-2.amazonaws.com`
    // The SSH host is the stage's instance: sshd runs while the emulator has one running, with the
    // SSH host key of its user-data (what cloud-init installs); the deploy demands that key.
    host = await startSshHost({ authorizedKey: keys.public, registry, name: 'mymdb-rig-sshhost-deploy', registryAliases: [ecrHost], bootOnHostKey: true })
    follow = followInstances(clients, STAGE, host, moto.internalEndpoint)
    env = {
      ...(await rigDeployEnv({ moto, clients, home: dir, stage: STAGE, bucket: BUCKET, registry, keyFile })),
      MYMDB_HOST_ADDRESS: '127.0.0.1',
      MYMDB_HOST_SSH_PORT: String(host.sshPort),
      MYMDB_HOST_HTTP_PORT: String(host.httpPort),
      // the browser of the tests reaches the site at 127.0.0.1:<port>
      DJANGO_ALLOWED_HOSTS: '127.0.0.1',
      DJANGO_CACHE_TIMEOUT: '1',
    }
    timings.push(`rig up: ${((Date.now() - start) / 1000).toFixed(1)} s`)
  })

  after(async () => {
    for (const t of timings) console.log(`timing: ${t}`)
    await follow?.stop()
    await host?.stop()
    await registry?.stop()
    await moto?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('bad settings: every problem reported at once, exit 2, nothing created', async () => {
    const r = await run(deployMain, [], { DJANGO_SECRET_KEY: '', DJANGO_UPLOAD_S3_BUCKET: 'Not_A_Bucket', AWS_REGION: 'mars-1' })
    assert.equal(r.code, 2, lastLinesFirst(r.text))
    for (const name of ['DJANGO_SECRET_KEY', 'DJANGO_UPLOAD_S3_BUCKET', 'AWS_REGION']) assert.match(r.text, new RegExp(name))
    assert.equal((await clients.s3.send(new ListBucketsCommand({}))).Buckets?.length ?? 0, 0)
    assert.equal((await instances()).length, 0)
  })

  it('no AWS credentials: one line saying how to give them, exit 1, before anything is pushed or created', async () => {
    // The SDK's default chain reads this process's environment and files; point it at nothing,
    // and keep it from asking the instance metadata address (it is not loopback).
    const saved = { ...process.env }
    Object.assign(process.env, { AWS_EC2_METADATA_DISABLED: 'true', AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), AWS_CONFIG_FILE: join(dir, 'none') })
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) delete process.env[k]
    try {
      const r = await run(deployMain, [], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' })
      assert.equal(r.code, 1, lastLinesFirst(r.text))
      assert.match(r.text, /could not check the AWS credentials \(sts get-caller-identity\): no AWS credentials found: run `aws configure`/)
      assert.doesNotMatch(r.text, /\[deploy\] 1\/4/)
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
      Object.assign(process.env, saved)
    }
    const catalog = await fetch(`http://${registry.address}/v2/_catalog`).then((res) => res.json() as Promise<{ repositories: string[] }>)
    assert.deepEqual(catalog.repositories, [])
    assert.equal((await clients.s3.send(new ListBucketsCommand({}))).Buckets?.length ?? 0, 0)
    assert.equal((await instances()).length, 0)
  })

  it('--dry-run shows the plan and changes nothing', async () => {
    const r = await run(deployMain, ['--dry-run'])
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    assert.match(r.text, /\[bucket\] bucket: create/)
    assert.equal((await clients.s3.send(new ListBucketsCommand({}))).Buckets?.length ?? 0, 0)
    assert.equal((await instances()).length, 0)
    const catalog = await fetch(`http://${registry.address}/v2/_catalog`).then((res) => res.json() as Promise<{ repositories: string[] }>)
    assert.deepEqual(catalog.repositories, [])
  })

  it('Ctrl-C while the host step creates resources: nothing half-made blocks the next run', async () => {
    const out = await interruptDeployAt(/\[host\] +(key pair|security group)/)
    assert.match(out, /\[deploy\] 3\/4/)
    assert.doesNotMatch(out, /\[deploy\] 4\/4/, 'stopped in the host step')
    assert.ok((await instances()).length <= 1)
  })

  it('interrupted after push, after bucket, after host and during the pull: the next deploy completes with no twins', async () => {
    assert.equal((await run(pushMain)).code, 0)
    assert.equal((await run(bucketMain)).code, 0)
    assert.equal((await run(hostMain)).code, 0)
    // and one Ctrl-C in the middle of the last step, while the host pulls the images
    const out = await interruptDeployAt(/\[pull\] docker compose pull/)
    assert.match(out, /\[deploy\] 4\/4/)
    const r = await run(deployMain)
    timings.push(`first complete deploy (after the interrupted steps): ${r.seconds.toFixed(1)} s`)
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    adminPath = /\[deploy\] its admin site: http:\/\/[^/]+(\/admin-[0-9a-f]{12}\/) \(DJANGO_ADMIN_URL\)/.exec(r.text)?.[1] ?? ''
    assert.ok(adminPath, r.text)
    assert.equal((await instances()).length, 1)
    const groups = await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }] }))
    assert.equal(groups.SecurityGroups?.length, 1)
    const keyPairs = await clients.ec2.send(new DescribeKeyPairsCommand({}))
    assert.equal(keyPairs.KeyPairs?.filter((k) => k.KeyName === `mymdb-${STAGE}`).length, 1)
    assert.deepEqual((await clients.s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name).sort(), [BUCKET, BACKUP_BUCKET])
  })

  it('MyMDB serves its pages through the host, under the instance public name', async () => {
    const info = await findHost(clients, STAGE)
    assert.ok(info?.publicDns)
    const home = await get(host.httpPort, '/', info.publicDns)
    assert.equal(home.status, 200)
    assert.match(home.body, /<a href="\/movie\/\d+\/">Star Wars<\/a>/)
    assert.equal((await get(host.httpPort, '/healthz', '10.1.2.3')).status, 200)
    // the admin at the address the deploy printed, not at /admin/
    assert.equal((await get(host.httpPort, '/admin/', info.publicDns)).status, 404)
    const admin = await get(host.httpPort, adminPath, info.publicDns)
    assert.equal(admin.status, 302)
    assert.equal(admin.location, `${adminPath}login/?next=${adminPath}`)
    const migrations = await onHost(`docker exec ${inService('web')} python3 manage.py migrate --check`)
    assert.equal(migrations.exitCode, 0, migrations.stderr)
  })

  it("the host's SSH key is pinned: the one its user-data gave it, tagged on the instance and recorded; another key at its address gets nothing, the deploy and status refuse", async () => {
    const tagged = (await instances())[0]?.Tags?.find((t) => t.Key === 'HostKey')?.Value
    assert.match(tagged ?? '', /^ssh-ed25519 AAAA[A-Za-z0-9+/]+={0,2}$/)
    assert.equal(await host.hostKey(), tagged, 'the host presents the tagged key')
    assert.equal(readFileSync(join(dir, 'mymdb-rig.known_hosts'), 'utf8'), `mymdb-rig ${tagged}\n`)
    const impostor = await startImpostor()
    try {
      const d = await run(deployMain, [], { MYMDB_HOST_SSH_PORT: String(impostor.port) })
      assert.equal(d.code, 1, lastLinesFirst(d.text))
      assert.match(d.text, /SSH to admin@127\.0\.0\.1:\d+: the host presented the key SHA256:\S+, not SHA256:\S+ \(the HostKey tag of the instance mymdb-rig\); nothing was sent to it/)
      const status = await $({ cwd: REPO, env: { ...env, FORCE_COLOR: '0', MYMDB_HOST_SSH_PORT: String(impostor.port) } as NodeJS.ProcessEnv, nothrow: true, quiet: true })`node --import tsx tasks/status.ts --aws`
      assert.equal(status.exitCode, 1, status.stdout + status.stderr)
      assert.match(status.stderr, /presented the key SHA256:\S+, not SHA256:\S+ \(the HostKey tag of the instance mymdb-rig\); nothing was sent/)
    } finally {
      await impostor.stop()
    }
    assert.ok(impostor.seen.length >= 1, 'it was dialled')
    assert.deepEqual([...new Set(impostor.seen)], ['connection'], 'no login, no command, no file')
  })

  it('in a browser on the deployed site: register, upload a poster; it lands in the bucket under uploads/ and anyone can read it', async () => {
    const browser = await launchChromium()
    try {
      const page = await browser.newPage({ baseURL: `http://127.0.0.1:${host.httpPort}` })
      await page.goto('/user/register')
      await page.fill('#id_username', 'rig-poster')
      await page.fill('#id_password1', 'correct-horse-battery-staple-42')
      await page.fill('#id_password2', 'correct-horse-battery-staple-42')
      await page.click('#register-button')
      assert.equal(await page.locator('#logged-in-as').innerText(), 'Logged in as rig-poster')
      await page.goto('/')
      await page.locator('ul.movie-list li a').first().click()
      const src = await uploadPoster(page, { name: 'poster.png', mimeType: 'image/png', buffer: PNG })
      // The page links the bucket (the rig's emulator, path style): /<bucket>/uploads/<name>.
      const path = new URL(src).pathname
      assert.match(path, new RegExp(`^/${BUCKET}/uploads/.+\\.png$`))
      posterKey = path.slice(`/${BUCKET}/`.length)
    } finally {
      await browser.close()
    }
    const anonymous = await fetch(`${moto.endpoint}/${BUCKET}/${posterKey}`)
    assert.equal(anonymous.status, 200)
    assert.deepEqual(Buffer.from(await anonymous.arrayBuffer()), PNG)
  })

  it('a second deploy changes nothing: same instance, same database container', async () => {
    const before = { instance: (await instances())[0]?.InstanceId, db: (await onHost(`echo ${inService('db')}`)).stdout.trim() }
    const r = await run(deployMain)
    timings.push(`no-op re-deploy: ${r.seconds.toFixed(1)} s`)
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    assert.doesNotMatch(r.text, /: create\b/)
    assert.deepEqual({ instance: (await instances())[0]?.InstanceId, db: (await onHost(`echo ${inService('db')}`)).stdout.trim() }, before)
    assert.equal((await instances()).length, 1)
    assert.equal(await readLock(clients.dynamodb, STAGE), null, 'the lock is released at the end of a deploy')
  })

  it("npm run rotate's new secrets, deployed: the site serves, the data stays, a logged-in visitor stays logged in (the old key a fallback), the old database passwords open nothing", async () => {
    const browser = await launchChromium()
    try {
      const page = await logInAsPoster(browser)
      const old = { key: env.DJANGO_SECRET_KEY, db: env.DJANGO_DB_PASSWORD, pg: env.POSTGRES_PASSWORD }
      // the new values npm run rotate writes into .env (here the settings are the environment's),
      // from now on, for the rest of this file
      const { changes } = rotationChanges(['secret-key', 'db-password', 'postgres-password'], { DJANGO_SECRET_KEY: old.key ?? '', DJANGO_DB_PASSWORD: old.db ?? '', POSTGRES_PASSWORD: old.pg ?? '' }, {})
      assert.equal(changes.DJANGO_SECRET_KEY_FALLBACKS, old.key)
      Object.assign(env, changes)
      const r = await run(deployMain)
      assert.equal(r.code, 0, lastLinesFirst(r.text))
      await page.goto('/')
      assert.equal(await page.locator('#logged-in-as').innerText(), 'Logged in as rig-poster')
      assert.ok((await page.locator('ul.movie-list li').count()) > 0, 'the catalogue is still there')
      const psql = (user: string, password: string | undefined, db: string) =>
        onHost(`docker exec -e PGPASSWORD=${password} ${inService('db')} psql -h 127.0.0.1 -U ${user} -d ${db} -tAc 'select 1'`)
      assert.equal((await psql('mymdb', env.DJANGO_DB_PASSWORD, 'mymdb')).stdout.trim(), '1')
      assert.equal((await psql('postgres', env.POSTGRES_PASSWORD, 'postgres')).stdout.trim(), '1')
      for (const [user, password, db] of [['mymdb', old.db, 'mymdb'], ['postgres', old.pg, 'postgres']] as const)
        assert.match((await psql(user, password, db)).stderr, /password authentication failed/)
      // the secrets are Swarm secrets: no service spec and no container of the stack holds them
      const specs = await onHost(`docker service inspect ${['web', 'db', 'proxy', 'cache'].map((n) => `mymdb_${n}`).join(' ')} && docker inspect $(docker ps --quiet --filter label=com.docker.stack.namespace=mymdb)`)
      assert.equal(specs.exitCode, 0, specs.stderr)
      const values: Record<string, string | undefined> = { ...env, AWS_SECRET_ACCESS_KEY: env.MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY }
      for (const name of SECRET_VARS) {
        const value = values[name]
        assert.ok(value && value.length >= 8, name)
        assert.ok(!specs.stdout.includes(value), `${name} is in a service spec or a container's configuration`)
        assert.match(specs.stdout, new RegExp(`"${name}_FILE=/run/secrets/${name.toLowerCase()}"`))
      }
      // the secrets of the values before the rotation are gone from the Swarm; the current ones stay
      const kept = await onHost(`docker secret ls --filter label=${SECRET_LABEL}=1 --format '{{.Name}}'`)
      assert.deepEqual(kept.stdout.trim().split('\n').sort(), SECRET_VARS.map((name) => secretName(name, values[name]!)).sort())
      assert.match(r.text, /\[secrets\] removed [1-9]\d* secret\(s\) of earlier values/)
    } finally {
      await browser.close()
    }
  })

  it('one deploy at a time: a second one fails naming the first (who, since when); Ctrl-C releases the lock; a stale lock is released by npm run unlock', async () => {
    const { child, exited } = await startedTask('tasks/deploy-aws.ts', [], /\[deploy\] 1\/4/)
    const second = await run(deployMain)
    assert.equal(second.code, 1, lastLinesFirst(second.text))
    assert.match(second.text, new RegExp(`stage rig is locked by \\S+@\\S+ \\(npm run deploy:aws, pid ${child.pid}\\) since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC, \\d+ s ago; it expires in`))
    assert.doesNotMatch(second.text, /\[deploy\] 1\/4/, 'the second deploy did nothing')
    process.kill(-child.pid!, 'SIGINT')
    assert.notEqual(await exited, 0)
    assert.equal(await readLock(clients.dynamodb, STAGE), null, 'Ctrl-C released the lock')

    // a run killed outright leaves its lock until its lease expires: reported, or released on purpose
    const expires = Date.now() + 100_000
    await clients.dynamodb.send(
      new PutItemCommand({
        TableName: 'mymdb-locks',
        Item: { stage: { S: STAGE }, token: { S: 'gone' }, by: { S: 'gone@laptop' }, command: { S: 'npm run deploy:aws' }, pid: { N: '4242' }, since: { S: '2026-11-27T03:00:00Z' }, expires: { N: String(expires) } },
      }),
    )
    const stale = await run(deployMain)
    assert.equal(stale.code, 1)
    assert.match(stale.text, /locked by gone@laptop \(npm run deploy:aws, pid 4242\) since 2026-11-27 03:00:00 UTC.*it expires in 1 min unless its run renews it.*npm run unlock releases it at once/)
    const unlock = await task('unlock', ['--yes'])
    assert.equal(unlock.exitCode, 0, unlock.stderr)
    assert.match(unlock.stdout, /locked by gone@laptop[\s\S]*released/)
    assert.equal(await readLock(clients.dynamodb, STAGE), null, 'unlock freed the stage (later tests deploy again)')
  })

  it('operate the deployed site from here: status, logs, manage and ssh (the real commands, over SSH)', async () => {
    const status = await task('status', ['--aws'])
    assert.equal(status.exitCode, 0, status.stderr)
    assert.match(status.stdout, /stage rig in us-west-2: instance i-\w+ running/)
    assert.match(status.stdout, /^ {2}web +running \(healthy\), up .+, image 127\.0\.0\.1:\d+\/mymdb-web:\S+, commit [0-9a-f]{7,}/m)
    assert.match(status.stdout, /^ {2}db +running \(healthy\)/m)
    assert.match(status.stdout, /^ {2}database {2}\d+ (kB|MB)$/m)
    assert.match(status.stdout, /^ {2}disk {6}[\d.]+ GB free of [\d.]+ GB/m)
    assert.match(status.stdout, /^ {2}deployed {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by \S+@\S+, tag \S+, ok in \d+ (s|min)$/m)

    const logs = await task('logs', ['--aws', 'web', '--lines', '5'])
    assert.equal(logs.exitCode, 0, logs.stderr)
    // Swarm's logs of the service: the time, then the task
    const lines = stripControls(logs.stdout).trim().split('\n')
    assert.ok(lines.length >= 1 && lines.length <= 5, logs.stdout)
    assert.match(lines[0] ?? '', /^\d{4}-\d\d-\d\dT\S+ mymdb_web\.1\.\w+@\S+ +\| /)

    const made = await task('manage', ['--aws', 'createsuperuser', '--noinput', '--username', 'rig-admin', '--email', 'admin@example.com'])
    assert.equal(made.exitCode, 0, made.stderr)
    const shell = await task('manage', ['--aws', 'shell'], 'from django.contrib.auth.models import User\nprint("superuser:", User.objects.get(username="rig-admin").is_superuser)\n')
    assert.equal(shell.exitCode, 0, shell.stderr)
    assert.match(shell.stdout, /superuser: True/)
    const unknown = await task('manage', ['--aws', 'no_such_command'])
    assert.equal(unknown.exitCode, 1, unknown.stdout)
    assert.match(unknown.stderr, /Unknown command: 'no_such_command'/)

    // the host's container logs are capped as here (the same compose file)
    const logConfig = await onHost('docker inspect --format "{{json .HostConfig.LogConfig}}" $(docker ps -q --filter label=com.docker.stack.namespace=mymdb)')
    for (const c of logConfig.stdout.trim().split('\n')) assert.deepEqual(JSON.parse(c), { Type: 'json-file', Config: { 'max-file': '3', 'max-size': '10m' } })
    const ps = await task('ssh', ['docker service ls --format "{{.Name}} {{.Replicas}}"'])
    assert.equal(ps.exitCode, 0, ps.stderr)
    assert.deepEqual(ps.stdout.trim().split('\n').sort(), ['mymdb_cache 1/1', 'mymdb_db 1/1', 'mymdb_proxy 1/1', 'mymdb_web 1/1'])
    const login = await task('ssh', [], 'echo "hello from $(whoami) in $PWD"\nexit 7\n')
    assert.equal(login.exitCode, 7, login.stderr)
    assert.match(login.stdout, /hello from admin in \/home\/admin/)
  })

  it('backup -- --aws: taken on the host, uploaded by the backup role into the private bucket (encrypted), listed; nobody reads it anonymously', async () => {
    // the deploy wrote the host's backup settings, for the host's eyes only, and gave them to no container
    const perms = await host.dockerExec('stat', '-c', '%a %U', '/home/admin/mymdb/backup.env')
    assert.equal(perms.stdout.trim(), '600 admin', perms.stderr)
    const inWeb = await onHost(`docker exec ${inService('web')} env`)
    assert.doesNotMatch(inWeb.stdout, /MYMDB_BACKUP_EXTERNAL_ID|MYMDB_BACKUP_ROLE_ARN/)

    const r = await task('backup', ['--aws'])
    timings.push(`backup --aws (sample catalogue + 2 users): ${r.stdout.match(/, ([\d.]+ s)\)/)?.[1] ?? '?'}`)
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    // a manual backup is the newest version of rolling/manual.tar (the newest N of each kind are kept)
    const version = /s3:\/\/[^/]+\/rolling\/manual\.tar\?versionId=(\S+)/.exec(r.stdout)?.[1]
    const name = /npm run restore -- (mymdb-rig-\d{8}T\d{6}Z\.tar) --aws/.exec(r.stdout)?.[1]
    assert.ok(version && name, r.stdout)
    backupName = name
    backupVersion = version
    const object = await clients.s3.send(new HeadObjectCommand({ Bucket: BACKUP_BUCKET, Key: 'rolling/manual.tar', VersionId: version }))
    assert.equal(object.ServerSideEncryption, 'AES256')
    assert.deepEqual([object.Metadata?.name, object.Metadata?.database, object.Metadata?.reason], [name, 'mymdb', 'manual'])
    assert.ok((object.ContentLength ?? 0) > 1000)
    // the SHA-256 recorded with it is the stored bytes' own
    const bytes = await (await clients.s3.send(new GetObjectCommand({ Bucket: BACKUP_BUCKET, Key: 'rolling/manual.tar', VersionId: version }))).Body!.transformToByteArray()
    assert.equal(object.Metadata?.sha256, createHash('sha256').update(bytes).digest('hex'))
    assert.equal((await onHost('ls backups')).stdout.trim(), '', 'no copy is left on the host')

    const list = await task('backups', ['--aws'])
    assert.equal(list.exitCode, 0, list.stderr)
    assert.match(list.stdout, new RegExp(`\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC +[\\d.]+ MB {2}mymdb {2}commit [0-9a-f]{7,} {2}manual {2}${name}`))

    // private: no anonymous read (the emulator enforces that; it answers anonymous listings of any
    // bucket, so the listing is checked by the settings that keep AWS from answering one)
    assert.equal((await fetch(`${moto.endpoint}/${BACKUP_BUCKET}/rolling/manual.tar`)).status, 403)
    const block = await clients.s3.send(new GetPublicAccessBlockCommand({ Bucket: BACKUP_BUCKET }))
    assert.deepEqual(block.PublicAccessBlockConfiguration, { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true })
    await assert.rejects(clients.s3.send(new GetBucketPolicyCommand({ Bucket: BACKUP_BUCKET })), /NoSuchBucketPolicy|does not exist/)
  })

  it('stop --aws: containers stopped over SSH, then the instance; the database volume stays, and deploy:aws brings back the same data', async () => {
    const user = (code: string) => onHost(`docker exec ${inService('web')} python3 manage.py shell -c '${code}'`)
    const made = await user('from django.contrib.auth.models import User; User.objects.create_user("kept-by-stop", password="Kept-by-stop-1")')
    assert.equal(made.exitCode, 0, made.stderr)

    const s = await run(stopMain, ['--aws'])
    assert.equal(s.code, 0, lastLinesFirst(s.text))
    assert.match(s.text, /\[stop\] stop the containers on the host \(the database shuts down cleanly\) done/)
    assert.equal((await instances())[0]?.State?.Name, 'stopped')
    assert.equal((await onHost('docker ps --quiet --filter label=com.docker.stack.namespace=mymdb')).stdout.trim(), '', 'no container of MyMDB runs on the host')
    const scaled = await onHost('docker service ls --format "{{.Name}} {{.Replicas}}"')
    assert.deepEqual(scaled.stdout.trim().split('\n').sort(), ['mymdb_cache 0/0', 'mymdb_db 0/0', 'mymdb_proxy 0/0', 'mymdb_web 0/0'])
    assert.match((await host.dockerExec('docker', 'volume', 'ls', '--quiet')).stdout, /^mymdb_db-data$/m)

    const r = await run(deployMain)
    timings.push(`deploy after stop --aws (instance started, containers up): ${r.seconds.toFixed(1)} s`)
    assert.equal(r.code, 0, lastLinesFirst(r.text))
    assert.match(r.text, /instance mymdb-rig: started i-\w+ again/)
    assert.equal((await instances())[0]?.State?.Name, 'running')
    const kept = await user('from django.contrib.auth.models import User; print(User.objects.filter(username="kept-by-stop").count())')
    assert.equal(kept.stdout.trim().split('\n').pop(), '1', kept.stderr)
    assert.equal((await get(host.httpPort, '/healthz', 'x')).status, 200)
  })

  it('destroy:aws removes instance, security group, key pair and roles; the buckets, the uploads, the backups and the local key file stay', async () => {
    const d = await run(destroyMain, ['--yes'])
    assert.equal(d.code, 0, lastLinesFirst(d.text))
    // first a final backup of the running host, into the backup bucket
    // under a key of its own that no lifecycle rule expires
    const final = /final backup: s3:\/\/[^/]+\/(kept\/final\/mymdb-rig-\d{8}T\d{6}Z\.tar)\?versionId=/.exec(d.text)?.[1]
    assert.ok(final, d.text)
    assert.equal((await clients.s3.send(new HeadObjectCommand({ Bucket: BACKUP_BUCKET, Key: final }))).Metadata?.reason, 'final')
    assert.ok(d.text.indexOf('final backup:') < d.text.indexOf('removed:'))
    assert.equal((await instances()).length, 0)
    const groups = await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }] }))
    assert.equal(groups.SecurityGroups?.length ?? 0, 0)
    const keyPairs = await clients.ec2.send(new DescribeKeyPairsCommand({}))
    assert.equal(keyPairs.KeyPairs?.filter((k) => k.KeyName === `mymdb-${STAGE}`).length, 0)
    await assert.rejects(clients.iam.send(new GetRoleCommand({ RoleName: `mymdb-${STAGE}-host` })), /NoSuchEntity|cannot be found/)
    await assert.rejects(clients.iam.send(new GetRoleCommand({ RoleName: `mymdb-${STAGE}-backup` })), /NoSuchEntity|cannot be found/)
    assert.deepEqual((await clients.s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name).sort(), [BUCKET, BACKUP_BUCKET])
    assert.ok((await clients.s3.send(new HeadObjectCommand({ Bucket: BACKUP_BUCKET, Key: 'rolling/manual.tar', VersionId: backupVersion }))).ContentLength, 'the backups stay')
    assert.ok(posterKey)
    assert.equal((await fetch(`${moto.endpoint}/${BUCKET}/${posterKey}`)).status, 200, 'the uploaded poster is still public')
    assert.ok(existsSync(keyFile))
  })

  it('disaster recovery: the host and its disk are gone; deploy:aws makes a new one, restore -- --aws brings back the data; the user logs in', async () => {
    // destroy:aws terminated the instance and its disk: on the rig host, that is its data
    const wipe = await host.dockerExec('sh', '-c', [
      REMOVE_STACK,
      'docker swarm leave --force',
      'for v in db-data media proxy-data; do until docker volume rm "mymdb_$v"; do sleep 1; done; done',
      'rm -rf /home/admin/mymdb',
    ].join(' && '))
    assert.equal(wipe.exitCode, 0, wipe.stderr)
    const d = await run(deployMain)
    assert.equal(d.code, 0, lastLinesFirst(d.text))
    assert.match(d.text, /instance mymdb-rig +create/)
    const count = await onHost(`docker exec ${inService('web')} python3 manage.py shell -c 'from django.contrib.auth.models import User; print(User.objects.filter(username="rig-poster").count())'`)
    assert.equal(count.stdout.trim().split('\n').pop(), '0', 'a new, empty site')

    const missing = await task('restore', ['mymdb-rig-20000101T000000Z.tar', '--aws', '--yes'])
    assert.equal(missing.exitCode, 2, missing.stdout)
    assert.match(missing.stderr, /no backup mymdb-rig-20000101T000000Z\.tar in s3:\/\/mymdb-rig-uploads-backups/)

    // planted: a newer "backup" whose bytes are not the ones its recorded SHA-256 names; and one
    // that claims the name of the real backup without any digest
    const plant = (name: string, body: string, sha256?: string) =>
      clients.s3.send(new PutObjectCommand({ Bucket: BACKUP_BUCKET, Key: 'rolling/manual.tar', Body: body, Metadata: { name, reason: 'manual', database: 'mymdb', ...(sha256 ? { sha256 } : {}) } }))
    await plant('mymdb-rig-20991231T000000Z.tar', 'forged', createHash('sha256').update('something else').digest('hex'))
    const forged = await task('restore', ['mymdb-rig-20991231T000000Z.tar', '--aws', '--yes'])
    assert.equal(forged.exitCode, 2, forged.stdout + forged.stderr)
    assert.match(forged.stderr, /mymdb-rig-20991231T000000Z\.tar does not match the SHA-256 recorded with it .*nothing was changed/)
    assert.doesNotMatch(forged.stdout, /safety backup/)
    const claimed = (await plant(backupName, 'forged too')).VersionId
    const listed = await task('backups', ['--aws'])
    assert.match(listed.stdout, new RegExp(`manual {2}${backupName} \\(no SHA-256: not made by MyMDB, restore refuses it\\)`))
    const twice = await task('restore', [backupName, '--aws', '--yes'])
    assert.equal(twice.exitCode, 2, twice.stdout + twice.stderr)
    assert.match(twice.stderr, new RegExp(`2 backups in s3://${BACKUP_BUCKET} are named ${backupName}[\\s\\S]*${backupVersion}`))
    const unsigned = await task('restore', [claimed ?? '?', '--aws', '--yes'])
    assert.match(unsigned.stderr, /has no SHA-256 recorded with it: MyMDB's backups always have one/)

    // Ctrl-C while the host restores the database: the lock is held until that command has ended
    // (the database is made to wait: a session holds a lock on a table the restore drops)
    const psql = (sql: string) => onHost(`docker exec --user postgres ${inService('db')} psql -v ON_ERROR_STOP=1 -c "${sql}" mymdb`)
    const holding = psql('BEGIN; LOCK TABLE auth_user IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(300); COMMIT;')
    const { child, exited, out: output } = await startedTask('tasks/restore.ts', [backupVersion, '--aws', '--yes', '--no-safety-backup'], /\[restore\] database mymdb \(one transaction\) \.\.\./)
    await new Promise((r) => setTimeout(r, 1000))
    process.kill(-child.pid!, 'SIGINT')
    await new Promise((r) => setTimeout(r, 3000))
    assert.equal(child.exitCode, null, `it waits for the host:\n${output()}`)
    assert.match((await readLock(clients.dynamodb, STAGE))?.command ?? '', /npm run restore -- --aws/, 'the lock is held while the host restores')
    await psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()")
    await holding
    assert.equal(await exited, 130, output())
    assert.match(output(), /interrupted: waiting for the command running on the host to end/)
    assert.match(output(), /\[restore\] database mymdb \(one transaction\) done/, 'the command on the host ended')
    assert.equal(await readLock(clients.dynamodb, STAGE), null, 'released once it ended')

    // the real one, by the version id the list shows
    const start = Date.now()
    const r = await task('restore', [backupVersion, '--aws', '--yes'])
    timings.push(`restore --aws (with a safety backup): ${((Date.now() - start) / 1000).toFixed(1)} s`)
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /SHA-256 as recorded when it was stored/)
    assert.match(r.stdout, /safety backup of the current data: s3:\/\/mymdb-rig-uploads-backups\/rolling\/safety\.tar\?versionId=/)
    assert.equal((await onHost('ls')).stdout.includes('restore.d'), false, 'the download is cleaned up')

    const browser = await launchChromium()
    try {
      await logInAsPoster(browser)
    } finally {
      await browser.close()
    }
    const poster = await onHost(`docker exec ${inService('web')} python3 manage.py shell -c 'from core.models import MovieImage; print(MovieImage.objects.filter(user__username="rig-poster").count())'`)
    assert.equal(poster.stdout.trim().split('\n').pop(), '1', 'the poster record is back (its file never left the upload bucket)')
  })

  it('a new version with a schema change: the start step backs up before it starts it (reason pre-migrate); without one, no backup', async () => {
    // the web image plus one migration that changes the schema, and the same db image, under a new tag
    const migration = addMigration('0002_rig_premigrate', '0001_initial', 'CREATE TABLE rig_premigrate (id integer)', 'DROP TABLE rig_premigrate')
    // (and a mark in its pages: the new version's pages show it)
    const refs = await pushStackImages(registry, 'premigrate', {
      web: { dockerfile: `RUN ${migration} && sed -i 's|</body>|<!-- the premigrate release --></body>|' /mymdb/django/templates/base.html` },
    })
    try {
      const backup = backupTargetOf((await onHost('cat backup.env')).stdout)
      assert.equal(backup.region, 'us-west-2')
      const start = async (tag: string) => {
        const log = captureLog()
        await remoteUp(planRemoteUp({ ...env, MYMDB_TAG: tag, AWS_S3_REGION_NAME: 'us-west-2' }, { address: '127.0.0.1', registry: registry.address, backup }), { log, root: REPO, run: (() => assert.fail('nothing runs here')) as never, pollSeconds: 1 } as never)
        return log.text()
      }
      // the anonymous movie list as this version made and cached it (in the shared cache and nginx's)
      // (by the host's address: a name of the site for every start in this test, unlike the instance's public name)
      const list = () => get(host.httpPort, '/', '127.0.0.1')
      for (let i = 0; i < 2; i++) assert.doesNotMatch((await list()).body, /the premigrate release/)
      const text = await start('premigrate')
      // right after the switch the list is the new version's: nothing the old one cached is served
      const after = await list()
      assert.equal(after.status, 200)
      assert.match(after.body, /<!-- the premigrate release -->/, 'cached pages belong to their release')
      const key = /before the migrations: s3:\/\/[^/]+\/(kept\/pre-migrate\/(mymdb-rig-\d{8}T\d{6}Z\.tar))\?versionId=/.exec(text)
      assert.ok(key?.[1] && key[2], text)
      assert.ok(text.indexOf('before the migrations:') < text.indexOf('docker stack deploy'), text)
      assert.equal((await clients.s3.send(new HeadObjectCommand({ Bucket: BACKUP_BUCKET, Key: key[1] }))).Metadata?.reason, 'pre-migrate')
      // written once: the host's own upload to the same key is refused, and the backup stays as it was
      const put = oneOffCmd(hostStack({ where: 'rig', run: (() => assert.fail('not run')) as never }), ['/mymdb/scripts/s3_backup.py', 'put'], {
        pass: ['MYMDB_BACKUP_BUCKET', 'MYMDB_BACKUP_REGION', 'MYMDB_BACKUP_ROLE_ARN', 'MYMDB_BACKUP_EXTERNAL_ID'],
      })
      const again = await onHost(`set -a; . ./backup.env; set +a; echo forged | ${showCommand(put)} ${key[1]} ${key[2]} mymdb x 2026-01-01T00:00:00Z pre-migrate`)
      assert.equal(again.exitCode, 1, again.stdout + again.stderr)
      assert.match(again.stderr, /exists already: a backup is written once, never replaced/)
      assert.equal((await clients.s3.send(new HeadObjectCommand({ Bucket: BACKUP_BUCKET, Key: key[1] }))).Metadata?.reason, 'pre-migrate')
      const applied = await onHost(`docker exec --user postgres ${inService('db')} psql -tAc "select count(*) from django_migrations where name = '0002_rig_premigrate'" mymdb`)
      assert.equal(applied.stdout.trim(), '1', applied.stderr)
      // migrated once, by the deploy's release step, before the new version took traffic; its web tasks do not migrate
      assert.ok(text.indexOf('[release] the new version') > text.indexOf('before the migrations:') && text.indexOf('[release] the new version') < text.indexOf('docker stack deploy'), text)
      const webEnv = await onHost(`docker service inspect --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}' mymdb_web`)
      assert.match(webEnv.stdout, /"MYMDB_MIGRATE_ON_START=0"/)
      // the same version again: nothing to migrate, no backup
      assert.match(await start('premigrate'), /no migrations to apply: no backup needed/)

      // a migration that fails: the deploy ends there, the old version keeps serving, the backup to go back to is named
      refs.push(
        ...(await pushStackImages(registry, 'badmigrate', {
          web: { dockerfile: `RUN ${migration} && ${addMigration('0003_rig_fails', '0002_rig_premigrate', 'SELECT 1/0')}` },
        })),
      )
      const webImage = async () => (await onHost(`docker inspect --format '{{.Config.Image}}' ${inService('web')}`)).stdout.trim()
      await assert.rejects(
        start('badmigrate'),
        /the new version's migrations failed, so it was not started: the old version still serves\. .*to put it back as it was before the deploy: npm run restore -- mymdb-rig-\d{8}T\d{6}Z\.tar --aws\. manage\.py release said: .*division by zero/s,
      )
      assert.match(await webImage(), /mymdb-web:premigrate@/)
      assert.equal((await list()).status, 200)

    } finally {
      await $({ quiet: true, nothrow: true })`docker rmi ${refs}`
    }
  })

  it('rollback: back across a schema change only when told (the pre-migrate backup named), back and forth from the images the host kept, recorded in the history', async () => {
    const webTag = async () => (await onHost(`docker inspect --format '{{.Config.Image}}' ${inService('web')}`)).stdout.trim().replace(/@sha256:[0-9a-f]+$/, '').split(':').pop()
    assert.equal(await webTag(), 'premigrate')
    const refused = await run(rollbackMain as never)
    assert.equal(refused.code, 1, lastLinesFirst(refused.text))
    assert.match(refused.text, /the database has migrations \S+ does not know: core\.0002_rig_premigrate[\s\S]*nothing changed/)
    assert.match(refused.text, /npm run restore -- --aws mymdb-rig-\d{8}T\d{6}Z\.tar/)
    assert.equal(await webTag(), 'premigrate')

    const back = await run(rollbackMain as never, ['--allow-schema-change'])
    assert.equal(back.code, 0, lastLinesFirst(back.text))
    const previous = await webTag()
    assert.ok(previous && previous !== 'premigrate', back.text)
    assert.equal((await get(host.httpPort, '/healthz', 'x')).status, 200)
    // the older release's code runs: it has no file of the newer migration
    assert.equal((await onHost(`docker exec ${inService('web')} test -e core/migrations/0002_rig_premigrate.py`)).exitCode, 1)

    // forward and back again under a steady load through the front: Swarm replaces web without a gap
    const throughFront = <T>(fn: () => Promise<T>) => underLoad(host.httpPort, '127.0.0.1', { perSecond: 25, paths: ['/healthz', '/', '/movies/top'] }, fn)
    const noneLost = (load: LoadResult) => {
      assert.equal(load.failed, 0, describeLoad(load))
      assert.deepEqual(load.other, {}, describeLoad(load))
    }
    const { value: forth, load: forthLoad } = await throughFront(() => run(rollbackMain as never))
    assert.equal(forth.code, 0, lastLinesFirst(forth.text))
    timings.push(`rollback (forward to premigrate) under load: ${forth.seconds.toFixed(1)} s; ${describeLoad(forthLoad)}`)
    noneLost(forthLoad)
    assert.match(forth.text, /has no migration premigrate does not know/)
    assert.equal(await webTag(), 'premigrate')

    const { value: again, load: againLoad } = await throughFront(() => run(rollbackMain as never, ['--to', previous, '--allow-schema-change']))
    assert.equal(again.code, 0, lastLinesFirst(again.text))
    timings.push(`rollback (back to ${previous}) under load: ${again.seconds.toFixed(1)} s; ${describeLoad(againLoad)}`)
    noneLost(againLoad)
    assert.equal(await webTag(), previous)
    const history = (await onHost('tail -n 3 deploys.log')).stdout.trim().split('\n').map((l) => JSON.parse(l) as { tag: string; rollback_from?: string; result: string })
    assert.deepEqual(history.map((h) => [h.tag, h.rollback_from, h.result]), [
      [previous, 'premigrate', 'ok'],
      ['premigrate', previous, 'ok'],
      [previous, 'premigrate', 'ok'],
    ])
    // the .env was edited in place: no copy of its secrets beside it
    assert.deepEqual((await onHost('ls -a')).stdout.split('\n').filter((f) => f.startsWith('.env')), ['.env'])
  })

  it('scheduled backups: cron on the host runs the backup script nightly; triggered, its backup lands in the bucket; status shows it, and a failed one', async () => {
    const cron = await host.dockerExec('crontab', '-l', '-u', 'admin')
    assert.equal(cron.exitCode, 0, cron.stderr)
    const line = cron.stdout.split('\n').find((l) => l.endsWith('# mymdb-backup'))
    assert.ok(line, cron.stdout)
    assert.match(line, /^17 3 \* \* \* cd "\$HOME\/mymdb" && sh backup\.sh > last-backup\.log 2>&1 # mymdb-backup$/)
    assert.equal((await host.dockerExec('sh', '-c', 'kill -0 "$(cat /var/run/crond.pid)"')).exitCode, 0, 'cron runs on the host')
    // what cron runs, as cron runs it: the login user, sh, its home, a minimal PATH
    const command = line.split(' ').slice(5).join(' ')
    const trigger = () => host.dockerExec('su', 'admin', '-s', '/bin/sh', '-c', `cd && env -i HOME=/home/admin PATH=/usr/bin:/bin sh -c '${command.replace(/'/g, "'\\''")}'`)
    const ran = await trigger()
    assert.equal(ran.exitCode, 0, `${ran.stdout}${ran.stderr}${(await onHost('cat last-backup.log')).stdout}`)
    // a scheduled run takes the stage's lock, as the host's backup role, and lets go after
    assert.equal(await readLock(clients.dynamodb, STAGE), null)
    const record = JSON.parse((await onHost('tail -n 1 backups.log')).stdout) as { ok: boolean; reason: string; name: string; file: string }
    assert.deepEqual([record.ok, record.reason], [true, 'scheduled'])
    const [key, version] = record.file.replace(`s3://${BACKUP_BUCKET}/`, '').split('?versionId=')
    assert.equal(key, 'rolling/scheduled.tar')
    const head = await clients.s3.send(new HeadObjectCommand({ Bucket: BACKUP_BUCKET, Key: key, VersionId: version }))
    assert.deepEqual([head.Metadata?.reason, head.Metadata?.name], ['scheduled', record.name])
    const status = await task('status', ['--aws'])
    assert.equal(status.exitCode, 0, status.stderr)
    assert.match(status.stdout, new RegExp(`^ {2}backup {4}\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC \\(.+ ago\\), [\\d.]+ MB, scheduled: ${record.name}$`, 'm'))
    assert.match(status.stdout, /^ {2}schedule {2}17 3 \* \* \* \(cron on the host/m)
    assert.doesNotMatch(status.stdout, /^ {2}backup {4}FAILED/m)
    const fine = await task('status', ['--aws', '--check'])
    assert.equal(fine.exitCode, 0, fine.stderr)

    // a run the schedule missed (the host was off: cron does not run what it missed) is taken by
    // the hourly catch-up, and only then
    const asAdmin = (script: string) => host.dockerExec('su', 'admin', '-s', '/bin/sh', '-c', `cd && env -i HOME=/home/admin PATH=/usr/bin:/bin sh -c 'cd "$HOME/mymdb" && ${script}'`)
    const catchUp = cron.stdout.split('\n').find((l) => l.endsWith('# mymdb-backup-catch-up'))
    assert.equal(catchUp, '47 * * * * cd "$HOME/mymdb" && sh catch-up.sh # mymdb-backup-catch-up')
    const records = async () => (await asAdmin('cat backups.log')).stdout.trim().split('\n')
    const before = (await records()).length
    assert.equal((await asAdmin('sh catch-up.sh')).exitCode, 0)
    assert.equal((await records()).length, before, 'a good backup minutes old: nothing to catch up')
    assert.equal((await asAdmin(`sed -i "s/\\"at\\":\\"[^\\"]*\\"/\\"at\\":\\"2026-01-01T03:17:00Z\\"/" backups.log`)).exitCode, 0)
    const caught = await asAdmin('sh catch-up.sh')
    assert.equal(caught.exitCode, 0, caught.stdout + caught.stderr)
    const after = await records()
    assert.equal(after.length, before + 1, after.join('\n'))
    assert.deepEqual(((r) => [r.ok, r.reason])(JSON.parse(after.at(-1) ?? '{}') as { ok: boolean; reason: string }), [true, 'scheduled'])
    assert.match((await asAdmin('cat last-backup.log')).stdout, /^catch-up: the last good backup is from 2026-01-01T03:17:00Z: taking the one the schedule missed/)

    // while a deploy holds the stage's lock, the scheduled run skips, recorded, and says who holds it;
    // it is no failure for a monitor (the catch-up takes it once the lock is free)
    const held = await acquireLock(clients.dynamodb, STAGE, 'npm run deploy:aws')
    try {
      const skipped = await trigger()
      assert.equal(skipped.exitCode, 0, (await asAdmin('cat last-backup.log')).stdout)
      const last = JSON.parse((await asAdmin('tail -n 1 backups.log')).stdout) as { ok: boolean; note: string }
      assert.deepEqual([last.ok, last.note], [false, "skipped: another run held the stage's lock"])
      assert.match((await asAdmin('cat last-backup.log')).stdout, /stage rig is locked by \S+ \(npm run deploy:aws\)/)
      const shown = await task('status', ['--aws', '--check'])
      assert.equal(shown.exitCode, 0, shown.stdout + shown.stderr)
      assert.match(shown.stdout, /^ {2}backup {4}SKIPPED at .* \(scheduled\): another run held the stage's lock$/m)
    } finally {
      await held.release()
    }
    // a scheduled run that fails (here: its settings are gone) is visible in status
    assert.equal((await onHost('mv backup.env backup.env.away')).exitCode, 0)
    try {
      assert.notEqual((await trigger()).exitCode, 0)
      const failed = await task('status', ['--aws'])
      assert.match(failed.stdout, /^ {2}backup {4}FAILED at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(scheduled\); ~\/mymdb\/last-backup\.log ends: .*backup\.env/m)
      // a monitor running status --check sees it
      const check = await task('status', ['--aws', '--check'])
      assert.equal(check.exitCode, 3, check.stdout + check.stderr)
      assert.match(check.stderr, /check failed: the last backup failed \(scheduled, at /)
      // the file it made for the upload does not stay on the host's disk
      assert.equal((await onHost('ls backups | grep -c "\\.tar$" || true')).stdout.trim(), '0')
    } finally {
      await onHost('mv backup.env.away backup.env')
    }
  })

  it("MYMDB_REGISTRY=ecr: repositories made in ECR, images pushed under the account registry with the SDK token; the host pulls them with its own role's tokens, never the deployer's", { skip: ecrMappingUnavailable() || undefined }, async () => {
    const ecr = await mapEcrHost(ecrHost, registry.ecrPort)
    // what an older deploy left on the host: the deployer's ECR login in the Docker configuration
    const asAdmin = (script: string) => host.dockerExec('su', '-', 'admin', '-c', script)
    const planted = await asAdmin(`mkdir -p .docker && printf '%s' '{"auths":{"${ecrHost}":{"auth":"QVdTOmRlcGxveWVyLXRva2Vu"}}}' > .docker/config.json`)
    assert.equal(planted.exitCode, 0, planted.stderr)
    try {
      const r = await run(deployMain, [], { MYMDB_REGISTRY: 'ecr' })
      assert.equal(r.code, 0, lastLinesFirst(r.text))
      assert.match(r.text, new RegExp(`\\[push\\] docker login ${ecrHost.replace(/\./g, '\\.')} as AWS`))
      assert.match(r.text, new RegExp(`\\[registry\\] the host pulls from ${ecrHost.replace(/\./g, '\\.')} with its instance role \\(amazon-ecr-credential-helper\\) done`))
      assert.doesNotMatch(r.text, /\[login\]/)
      const repos = await clients.ecr.send(new DescribeRepositoriesCommand({}))
      assert.deepEqual(repos.repositories?.map((x) => x.repositoryName).sort(), ['mymdb-cache', 'mymdb-db', 'mymdb-proxy', 'mymdb-web'])
      const images = await onHost(`docker service ls --format '{{.Name}} {{.Image}}'`)
      // web by the commit's tag; db, proxy and cache pinned by the digests the push reported (Swarm adds the digest it resolved to a tag)
      const lines = images.stdout.trim().split('\n').sort()
      assert.deepEqual(lines.map((l) => l.replace(/^mymdb_/, '').replace(/@sha256:[0-9a-f]{64}$/, '').replace(/:[^:/]+$/, '')), [`cache ${ecrHost}/mymdb-cache`, `db ${ecrHost}/mymdb-db`, `proxy ${ecrHost}/mymdb-proxy`, `web ${ecrHost}/mymdb-web`])
      for (const pinned of ['cache', 'db', 'proxy'])
        assert.ok(lines.some((l) => new RegExp(`^mymdb_${pinned} ${ecrHost.replace(/\./g, '\\.')}/mymdb-${pinned}@sha256:[0-9a-f]{64}$`).test(l)), `${pinned} pinned by digest: ${lines.join(' | ')}`)
      // the host's Docker configuration names the helper and holds no login (the planted one is gone)
      const config = await asAdmin('cat .docker/config.json')
      assert.deepEqual(JSON.parse(config.stdout), { credHelpers: { [ecrHost]: 'ecr-login' } })
      assert.equal((await get(host.httpPort, '/healthz', 'x')).status, 200)
      // the registry admits only a token from the emulator: the host got its own, with its role's
      // credentials (what IMDS gives the instance); without them its pull is refused
      const web = lines.find((l) => l.startsWith('mymdb_web '))?.split(' ')[1]?.replace(/@sha256:.*$/, '')
      assert.ok(web)
      const pulled = await asAdmin(`docker pull --quiet ${web}`)
      assert.equal(pulled.exitCode, 0, pulled.stderr)
      await asAdmin('mv .aws .aws.away')
      try {
        const refused = await asAdmin(`docker pull --quiet ${web}`)
        assert.notEqual(refused.exitCode, 0)
        assert.match(refused.stderr, /no basic auth credentials|unauthorized|credentials/i)
      } finally {
        await asAdmin('mv .aws.away .aws')
      }
      assert.equal((await instances()).length, 1)
    } finally {
      await ecr.close()
      await removeLocalTags(ecrHost)
    }
  })

  it('the deploy never dialled anything but loopback', () => {
    assert.ok(dialled.length > 0)
    const outside = dialled.filter((d) => !/^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\]):\d+$/.test(d))
    assert.deepEqual(outside, [])
  })
})
