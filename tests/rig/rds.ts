// The stage's RDS database in the rig: the emulator keeps the instance's settings (and names its
// master password's secret, holding none); a real PostgreSQL stands in at its endpoint, the way the
// rig maps ECR to its own registry. Once the instance exists, followDatabase starts a container
// of the project's db image on the rig network under the endpoint's name (a network alias: the
// rig hosts, and the containers on their Docker's networks, resolve it), TLS only (as
// rds.force_ssl), its certificate for that name from the rig's own CA, and its superuser the master
// user with a password the rig puts into the emulator's Secrets Manager (as RDS would).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { $ } from 'zx'
import { DescribeDBInstancesCommand } from '@aws-sdk/client-rds'
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'
import { databaseResources } from '../../tasks/lib/names.ts'
import { RIG_NETWORK } from './docker.ts'

export interface RigDatabase {
  /** The rig CA's certificate (PEM file): MYMDB_DB_CA_FILE of the deploy. */
  caFile: string
  /** The container, once started ('' before). */
  container(): string
  /** Waits until the stand-in runs (the deploy made the instance). */
  started(timeoutMs?: number): Promise<void>
  /** psql on the stand-in as its superuser over the local socket: the rows, tab-separated. */
  psql(sql: string, dbname?: string): Promise<string>
  stop(): Promise<void>
}

/** The PostgreSQL stand-in: TLS only (no entry for plain TCP in pg_hba), the certificate and key from the environment. */
const STAND_IN = [
  'set -eu',
  'rm -f /docker-entrypoint-initdb.d/*',
  'mkdir -p /tls',
  'printf %s "$TLS_CRT" >/tls/server.crt; printf %s "$TLS_KEY" >/tls/server.key',
  "printf 'local all all peer\\nhostssl all all all scram-sha-256\\n' >/tls/pg_hba.conf",
  'chown -R postgres:postgres /tls; chmod 600 /tls/server.key',
  'exec docker-entrypoint.sh postgres -c ssl=on -c ssl_cert_file=/tls/server.crt -c ssl_key_file=/tls/server.key -c hba_file=/tls/pg_hba.conf',
].join('\n')

export function followDatabase(clients: AwsClients, stage: string, image: string): RigDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'mymdb-rig-rds-'))
  const caFile = join(dir, 'ca.pem')
  const name = `mymdb-rig-rds-${stage}`
  let container = ''
  let running = true
  let failed: Error | undefined
  const ready = (async () => {
    await $({ quiet: true })`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=mymdb-rig-rds-ca -keyout ${join(dir, 'ca.key')} -out ${caFile}`
  })()
  const step = async (): Promise<boolean> => {
    await ready
    const id = databaseResources(stage).instance
    const d = (await clients.rds.send(new DescribeDBInstancesCommand({}))).DBInstances?.find((i) => i.DBInstanceIdentifier === id)
    const endpoint = d?.Endpoint?.Address
    const secretArn = d?.MasterUserSecret?.SecretArn
    if (!endpoint || !secretArn) return false
    // the master password, where RDS would keep it
    const password = randomBytes(18).toString('base64url')
    await clients.secrets.send(new CreateSecretCommand({ Name: secretArn.split(':secret:')[1], SecretString: JSON.stringify({ username: d.MasterUsername ?? 'postgres', password }) }))
    // the server's certificate for the endpoint's name
    const key = join(dir, 'server.key')
    const csr = join(dir, 'server.csr')
    const crt = join(dir, 'server.crt')
    const ext = join(dir, 'server.ext')
    writeFileSync(ext, `subjectAltName=DNS:${endpoint}\n`)
    await $({ quiet: true })`openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj ${`/CN=${endpoint}`} -keyout ${key} -out ${csr}`
    await $({ quiet: true })`openssl x509 -req -in ${csr} -CA ${caFile} -CAkey ${join(dir, 'ca.key')} -CAcreateserial -days 2 -extfile ${ext} -out ${crt}`
    await $({ quiet: true, nothrow: true })`docker rm -f ${name}`
    const env = { ...process.env, TLS_CRT: readFileSync(crt, 'utf8'), TLS_KEY: readFileSync(key, 'utf8'), POSTGRES_PASSWORD: password }
    await $({ quiet: true, env })`docker run -d --name ${name} --network ${RIG_NETWORK} --network-alias ${endpoint} -e TLS_CRT -e TLS_KEY -e POSTGRES_PASSWORD --entrypoint sh ${image} -c ${STAND_IN}`
    for (let i = 0; i < 60; i++) {
      if ((await $({ quiet: true, nothrow: true })`docker exec -u postgres ${name} pg_isready -q`).exitCode === 0) break
      await new Promise((r) => setTimeout(r, 1000))
    }
    container = name
    return true
  }
  const loop = (async () => {
    while (running) {
      try {
        if (await step()) return
      } catch (e) {
        failed = e instanceof Error ? e : new Error(String(e))
        console.log(`# followDatabase: ${failed.message}`)
      }
      await new Promise((r) => setTimeout(r, 1000))
    }
  })()
  return {
    caFile,
    container: () => container,
    async started(timeoutMs = 120_000) {
      const until = Date.now() + timeoutMs
      while (!container && Date.now() < until) await new Promise((r) => setTimeout(r, 500))
      if (!container) throw new Error(`the RDS stand-in of ${stage} did not start${failed ? `: ${failed.message}` : ''}`)
    },
    async psql(sql, dbname = 'postgres') {
      const r = await $({ quiet: true })`docker exec -u postgres ${name} psql --no-psqlrc -tA -F ${'\t'} -d ${dbname} -c ${sql}`
      return r.stdout.trim()
    },
    async stop() {
      running = false
      await loop
      await $({ quiet: true, nothrow: true })`docker rm -f ${name}`
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
