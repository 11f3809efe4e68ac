// The site's database on RDS (MYMDB_DATABASE=rds, issue 21): npm run deploy:aws against the
// emulated AWS, one rig SSH host as the stage's instance, and a real PostgreSQL standing in at the
// endpoint the emulator gives the RDS instance (tests/rig/rds.ts: TLS only, a certificate for the
// endpoint's name from the rig's CA, the master password in the emulator's Secrets Manager). The
// site connects as its own role, over TLS verified against the CA bundle the deploy hands in.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { $ } from 'zx'
import { DescribeDBInstancesCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds'
import { DescribeSecurityGroupsCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2'
import { HeadObjectCommand } from '@aws-sdk/client-s3'
import { awsClients, type AwsClients } from '../../tasks/lib/aws/clients.ts'
import { httpGet } from '../../tasks/lib/remote/checks.ts'
import { main as deployMain } from '../../tasks/deploy-aws.ts'
import { main as stopMain } from '../../tasks/stop.ts'
import { findDatabase, rdsTarget } from '../../tasks/lib/aws/database.ts'
import { planRemoteUp } from '../../tasks/lib/remote/plan.ts'
import { remoteUp } from '../../tasks/lib/remote/up.ts'
import { startMoto, type Moto } from '../rig/moto.ts'
import { backupTargetOf, rigDeployEnv } from '../rig/deployenv.ts'
import { followDatabase, type RigDatabase } from '../rig/rds.ts'
import { addMigration, pushStackImages, rigRegistry, type Registry } from '../rig/registry.ts'
import { lastLinesFirst } from '../rig/report.ts'
import { followInstances, startSshHost, type SshHost } from '../rig/sshhost.ts'
import { captureLog, sshKeyFile } from '../unit/fakes.ts'

const REPO = new URL('../..', import.meta.url).pathname
const STAGE = 'rds'
const HOST_NAME = 'mymdb.test'
const BUCKET = 'mymdb-rig-rds-uploads'

describe('the database on RDS (deploy:aws with MYMDB_DATABASE=rds; a PostgreSQL stand-in at the endpoint, one rig host)', { timeout: 10 * 60_000 }, () => {
  let host: SshHost | undefined
  let follow: { stop(): Promise<void> } | undefined
  let db: RigDatabase | undefined
  let registry: Registry | undefined
  let moto: Moto | undefined
  let clients: AwsClients
  let dir = ''
  let env: Record<string, string | undefined> = {}

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mymdb-rds-'))
    const keyFile = join(dir, 'mymdb-rds.pem')
    const keys = sshKeyFile(keyFile)
    moto = await startMoto('mymdb-rig-moto-rds')
    clients = awsClients('us-west-2', { ...process.env, ...moto.env })
    registry = await rigRegistry('mymdb-rig-registry-rds', 'rds')
    host = await startSshHost({ authorizedKey: keys.public, registry, name: 'mymdb-rig-sshhost-rds', bootOnHostKey: true })
    follow = followInstances(clients, STAGE, host, moto.internalEndpoint)
    db = followDatabase(clients, STAGE, 'mymdb-db:latest')
    env = {
      ...(await rigDeployEnv({ moto, clients, home: dir, stage: STAGE, bucket: BUCKET, registry, keyFile })),
      MYMDB_HOST_ADDRESS: '127.0.0.1',
      MYMDB_HOST_SSH_PORT: String(host.sshPort),
      MYMDB_HOST_HTTP_PORT: String(host.httpPort),
      DJANGO_ALLOWED_HOSTS: HOST_NAME,
      MYMDB_DATABASE: 'rds',
      MYMDB_DB_CA_FILE: db.caFile,
      // (a backslash and a dollar: the role's password reaches psql and the site as it is)
      DJANGO_DB_PASSWORD: 'rig-db\\pass$word',
      // the db container's superuser password: not needed with the database on RDS
      POSTGRES_PASSWORD: undefined,
    }
  })
  after(async () => {
    await db?.stop()
    await follow?.stop()
    await host?.stop()
    await registry?.stop()
    await moto?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const deploy = async (extra: Record<string, string> = {}) => {
    const log = captureLog()
    const started = Date.now()
    const code = await deployMain([], { ...env, ...extra }, { log, envFile: join(dir, 'no.env'), pollSeconds: 1, interactive: false })
    assert.equal(code, 0, lastLinesFirst(log.text()))
    return { text: log.text(), seconds: ((Date.now() - started) / 1000).toFixed(1) }
  }
  const onHost = async (script: string) => {
    const r = await host!.dockerExec('sh', '-c', script)
    assert.equal(r.exitCode, 0, r.stderr)
    return r.stdout.trim()
  }

  it('deploy:aws from nothing: the RDS instance as asked; the site serves from it as its own role over verified TLS; no db service or volume on the host', async () => {
    const { text, seconds } = await deploy()
    console.log(`timing: deploy:aws with the database on RDS, from nothing: ${seconds} s`)
    assert.match(text, /\[deploy\] 4\/5 database mymdb-rds on RDS/)
    assert.match(text, /\[database\] +RDS instance mymdb-rds +create +PostgreSQL 17, db\.t4g\.micro, 20 GB encrypted/)
    assert.match(text, /\[cost\] about \$\d+\.\d\d a month: 1 x t3\.micro instance .*; 1 x RDS db\.t4g\.micro \$11\.68; 1 x 20 GiB RDS storage \$2\.30/)
    assert.match(text, /the site's role mymdb and database mymdb on mymdb-rds\.[\w.-]+ \(as the master user, over TLS\)/)
    const instance = (await clients.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'mymdb-rds' }))).DBInstances![0]!
    assert.deepEqual([instance.StorageEncrypted, instance.PubliclyAccessible, instance.DeletionProtection, instance.BackupRetentionPeriod], [true, false, true, 7])

    // the site, its catalogue in the stand-in, written as the site's own role (no superuser, the database's owner)
    const page = await httpGet(`http://127.0.0.1:${host!.httpPort}/`, HOST_NAME)
    assert.equal(page.status, 200)
    assert.match(page.body, /Star Wars/)
    assert.ok(Number(await db!.psql('select count(*) from core_movie', 'mymdb')) > 0)
    assert.equal(await db!.psql("select rolsuper::text || ' ' || rolcreatedb::text from pg_roles where rolname = 'mymdb'"), 'false false')
    assert.equal(await db!.psql("select pg_get_userbyid(datdba) from pg_database where datname = 'mymdb'"), 'mymdb')
    // the site's connections: TLS, every one
    assert.equal(await db!.psql("select string_agg(distinct s.ssl::text, ',') from pg_stat_ssl s join pg_stat_activity a using (pid) where a.usename = 'mymdb'"), 'true')

    // the host: no db service, no database volume, the endpoint and the bundle in its .env; no master password anywhere there
    assert.doesNotMatch(await onHost('docker service ls --format "{{.Name}}"'), /mymdb_db/)
    assert.doesNotMatch(await onHost('docker volume ls --format "{{.Name}}"'), /db-data/)
    const dotEnv = await onHost('cat /home/admin/mymdb/.env')
    assert.match(dotEnv, /^DJANGO_DB_HOST='mymdb-rds\.[\w.-]+'$/m)
    assert.match(dotEnv, /^DJANGO_DB_SSLMODE='verify-full'$/m)
    assert.match(dotEnv, /^POSTGRES_PASSWORD='unused-the-database-is-on-rds'$/m)
    const master = await db!.psql("select 1 from pg_roles where rolname = 'postgres' and rolsuper")
    assert.equal(master, '1')
  })

  it("the site's check of the server: a certificate for another name is refused (verify-full against the deploy's bundle)", async () => {
    const ip = (await $({ quiet: true })`docker inspect -f ${'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'} ${db!.container()}`).stdout.trim()
    const web = await onHost("docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' mymdb_web")
    // by the stand-in's address instead of the name on its certificate
    const r = await host!.dockerExec('sh', '-c', `cd /home/admin/mymdb && docker run --rm --network host --volume "$PWD/db-ca.pem:/ca.pem:ro" --entrypoint python3 ${web} -c "import psycopg; psycopg.connect(host='${ip}', dbname='mymdb', user='mymdb', password='x', sslmode='verify-full', sslrootcert='/ca.pem', connect_timeout=5)"`)
    assert.notEqual(r.exitCode, 0)
    assert.match(r.stderr, /does not match host name|certificate verify failed/)
  })

  /** npm run <file> as a user runs it, with the stage's settings. */
  const task = (file: string, args: string[]) =>
    $({ cwd: REPO, env: { ...env, FORCE_COLOR: '0' } as NodeJS.ProcessEnv, nothrow: true, quiet: true })`node --import tsx ${`tasks/${file}.ts`} ${args}`

  it("backup -- --aws and restore -- --aws against RDS: pg_dump as the site's role over TLS into the backup bucket; a changed title comes back", async () => {
    const [id, title] = (await db!.psql('select id, title from core_movie order by id limit 1', 'mymdb')).split('\t')
    const r = await task('backup', ['--aws'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const name = /npm run restore -- (mymdb-rds-\d{8}T\d{6}Z\.tar) --aws/.exec(r.stdout)?.[1]
    assert.ok(name, r.stdout)
    assert.match(r.stdout, /pg_dump of mymdb \(PostgreSQL 17\./)

    await db!.psql(`update core_movie set title = 'Changed by the test' where id = ${id}`, 'mymdb')
    const restored = await task('restore', [name, '--aws', '--yes', '--no-safety-backup'])
    assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr)
    assert.equal(await db!.psql(`select title from core_movie where id = ${id}`, 'mymdb'), title)
    // still the site's own: the restore ran as its role (--no-owner), nothing became postgres's
    assert.equal(await db!.psql("select count(*) from pg_tables where schemaname = 'public' and tableowner <> 'mymdb'", 'mymdb'), '0')
    // and the site shows it (the movie's page: anonymous pages are cached for a minute, this one was never asked for)
    const page = await httpGet(`http://127.0.0.1:${host!.httpPort}/movie/${id}/`, HOST_NAME)
    assert.equal(page.status, 200)
    assert.ok(page.body.includes(title!.replace(/&/g, '&amp;').replace(/'/g, '&#x27;')), `${title} on /movie/${id}/`)
  })

  it("a new version with a schema change: the start backs up the RDS database first (reason pre-migrate), then migrates it once as the site's role", async () => {
    const migration = addMigration('0002_rig_rds', '0001_initial', 'CREATE TABLE rig_rds (id integer)', 'DROP TABLE rig_rds')
    await pushStackImages(registry!, 'rdsmigrate', { web: { dockerfile: `RUN ${migration}` } })
    // the start as deploy:aws calls it: the backup target from the host step (as the host keeps it), the database from RDS
    const backup = backupTargetOf(await onHost('cat /home/admin/mymdb/backup.env'))
    const { instance } = await findDatabase(clients, STAGE)
    const database = instance ? rdsTarget(instance, 'us-west-2') : undefined
    assert.ok(database, 'the database has an endpoint')
    const log = captureLog()
    const plan = planRemoteUp({ ...env, MYMDB_TAG: 'rdsmigrate', AWS_S3_REGION_NAME: 'us-west-2' }, { address: '127.0.0.1', registry: registry!.address, backup, database })
    await remoteUp(plan, { log, root: REPO, run: (() => assert.fail('nothing runs here')) as never, pollSeconds: 1, clients: () => clients } as never)
    const text = log.text()
    const key = /before the migrations: s3:\/\/([^/]+)\/(kept\/pre-migrate\/mymdb-rds-\d{8}T\d{6}Z\.tar)\?versionId=/.exec(text)
    assert.ok(key, lastLinesFirst(text))
    assert.ok(text.indexOf('before the migrations:') < text.indexOf('docker stack deploy'), text)
    assert.equal((await clients.s3.send(new HeadObjectCommand({ Bucket: key[1], Key: key[2] }))).Metadata?.reason, 'pre-migrate')
    // applied once, on RDS, by the site's own role
    assert.equal(await db!.psql("select count(*) from django_migrations where name = '0002_rig_rds'", 'mymdb'), '1')
    assert.equal(await db!.psql("select tableowner from pg_tables where tablename = 'rig_rds'", 'mymdb'), 'mymdb')
    assert.match((await httpGet(`http://127.0.0.1:${host!.httpPort}/`, HOST_NAME)).body, /Star Wars/)
  })

  it('deploy:aws again: the database found as it is, the role kept, the site serves; a db service left from the container (a stage switched to RDS) removed, its volume kept; stop --aws scales the stack (no db service) to 0', async () => {
    // the host as a stage that ran with its db container leaves it: that service with its volume
    await onHost(
      `img=$(docker image ls --digests --format '{{.Repository}}@{{.Digest}}' | grep -m1 '/mymdb-db@sha256:'); timeout 60 docker service create --quiet --name mymdb_db --label com.docker.stack.namespace=mymdb --mount type=volume,source=mymdb_db-data,target=/var/lib/postgresql/data --entrypoint sleep "$img" 86400`,
    )
    const { text, seconds } = await deploy()
    console.log(`timing: deploy:aws with the database on RDS, again: ${seconds} s`)
    assert.match(text, /\[swarm\] Removing service mymdb_db/)
    assert.doesNotMatch(await onHost('docker service ls --format "{{.Name}}"'), /mymdb_db/)
    assert.match(await onHost('docker volume ls --format "{{.Name}}"'), /^mymdb_db-data$/m)
    assert.match(text, /\[database\] +RDS instance mymdb-rds +exists/)
    assert.doesNotMatch(text, /\[database\] .* create /)
    assert.match((await httpGet(`http://127.0.0.1:${host!.httpPort}/`, HOST_NAME)).body, /Star Wars/)
    assert.equal(await db!.psql("select count(*) from pg_roles where rolname = 'mymdb'"), '1')

    const log = captureLog()
    const code = await stopMain(['--aws'], env, { log, envFile: join(dir, 'no.env'), interactive: false })
    assert.equal(code, 0, lastLinesFirst(log.text(), 20))
    assert.match(log.text(), /the stack's services are scaled to 0/)
  })

  it('destroy:aws takes its final backup from RDS and keeps the database (only the hosts leave its group); --delete-database deletes it after a final snapshot, then its network', async () => {
    // the host stopped by the test before: started again (a final backup needs it running)
    await deploy()
    const kept = await task('destroy-aws', ['--yes'])
    assert.equal(kept.exitCode, 0, kept.stdout + kept.stderr)
    // the final backup: pg_dump of the RDS database as the site's role, into the backup bucket, before anything was removed
    const final = /final backup: s3:\/\/([^/]+)\/(kept\/final\/mymdb-rds-\d{8}T\d{6}Z\.tar)\?versionId=/.exec(kept.stdout)
    assert.ok(final, kept.stdout)
    assert.ok(kept.stdout.indexOf('final backup:') < kept.stdout.indexOf('removed:'), kept.stdout)
    const head = await clients.s3.send(new HeadObjectCommand({ Bucket: final[1], Key: final[2] }))
    assert.equal(head.Metadata?.reason, 'final')
    assert.ok((head.ContentLength ?? 0) > 1_000, `the final backup holds the catalogue: ${head.ContentLength} bytes`)
    assert.match(kept.stdout, /the RDS database mymdb-rds is KEPT with its network/)
    const instance = (await clients.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'mymdb-rds' }))).DBInstances![0]!
    assert.equal(instance.DeletionProtection, true)
    const dbGroup = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['mymdb-rds-db'] }] }))).SecurityGroups![0]!
    assert.deepEqual(dbGroup.IpPermissions, [], 'the hosts are gone from the database group')
    assert.equal((await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['mymdb-rds-web'] }] }))).SecurityGroups!.length, 0)

    const removed = await task('destroy-aws', ['--yes', '--delete-database'])
    assert.equal(removed.exitCode, 0, removed.stdout + removed.stderr)
    const snapshot = /final snapshot (mymdb-rds-final-\d{8}t\d{6}z)/.exec(removed.stdout)?.[1]
    assert.ok(snapshot, removed.stdout)
    assert.equal((await clients.rds.send(new DescribeDBInstancesCommand({}))).DBInstances!.filter((d) => d.DBInstanceIdentifier === 'mymdb-rds').length, 0)
    const snapshots = (await clients.rds.send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: 'mymdb-rds' }))).DBSnapshots ?? []
    assert.ok(snapshots.some((x) => x.DBSnapshotIdentifier === snapshot), JSON.stringify(snapshots.map((x) => x.DBSnapshotIdentifier)))
    assert.equal((await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['mymdb-rds-db'] }] }))).SecurityGroups!.length, 0)
    assert.equal((await clients.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }] }))).Subnets!.length, 0)
    const again = await task('destroy-aws', ['--yes', '--delete-database'])
    assert.match(again.stdout, /nothing to remove/)
  })
})
