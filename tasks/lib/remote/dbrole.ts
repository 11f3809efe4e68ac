// The site's own role on the RDS database (MYMDB_DATABASE=rds): made (or its password set) by the
// deploy as the master user, whose password AWS keeps in Secrets Manager; the site never gets the
// master password. psql runs on host 1 (the database admits the stage's hosts only) in a
// throw-away container of the db image, over TLS verified against the CA bundle; the passwords go
// through stdin, never onto a command line or a disk.
import type { AwsClients } from '../aws/clients.ts'
import { SecretsManager, aws } from '../aws/clients.ts'
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import type { Cmd } from '../sh.ts'
import type { Remote } from '../ssh.ts'
import { hostStack, runInChecked } from '../stack.ts'
import { DB_CA_FILE } from '../stackfile.ts'

/** What the deploy makes on RDS: the site's role, its password, and its database. */
export interface SiteRole {
  user: string
  password: string
  name: string
}

/** Where the database answers, and the secret of its master password. */
export interface RdsTarget {
  address: string
  port: number
  masterSecretArn: string
  region: string
}

/** A value as a single-quoted psql meta-command argument (a quote and a backslash escaped). */
const psqlArg = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`

/**
 * The psql script (pure): the role with LOGIN and this password (made once, the password set on
 * every deploy: a rotation), the master user made a member (RDS's master is no superuser: it may
 * only give a database to a role it belongs to), the database owned by the role (made once), and
 * nobody else allowed to connect to it.
 */
export function siteRoleScript(r: SiteRole): string {
  return [
    `\\set site_user ${psqlArg(r.user)}`,
    `\\set site_password ${psqlArg(r.password)}`,
    `\\set site_db ${psqlArg(r.name)}`,
    "SELECT format('CREATE ROLE %I LOGIN', :'site_user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'site_user') \\gexec",
    "ALTER ROLE :\"site_user\" WITH LOGIN PASSWORD :'site_password';",
    'GRANT :"site_user" TO CURRENT_USER;',
    "SELECT format('CREATE DATABASE %I OWNER %I', :'site_db', :'site_user') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'site_db') \\gexec",
    'REVOKE ALL ON DATABASE :"site_db" FROM PUBLIC;',
    'GRANT ALL ON DATABASE :"site_db" TO :"site_user";',
    '',
  ].join('\n')
}

/**
 * psql as the master user in a throw-away container of the db image on the host's network (the
 * host reaches RDS; its DNS names the endpoint), TLS verify-full against ~/mymdb/db-ca.pem. Its
 * stdin: the master password (first line), then the script.
 */
export function siteRoleCmd(dbImage: string, db: Pick<RdsTarget, 'address' | 'port'>, masterUser: string): Cmd {
  const script = [
    'IFS= read -r PGPASSWORD; export PGPASSWORD',
    `exec psql "host=$1 port=$2 user=$3 dbname=postgres sslmode=verify-full sslrootcert=/ca.pem connect_timeout=10" --no-psqlrc --quiet -v ON_ERROR_STOP=1`,
  ].join('\n')
  return ['sh', '-c', `docker run --rm --interactive --network host --volume "$PWD/${DB_CA_FILE}:/ca.pem:ro" --entrypoint sh "$0" -c '${script.replace(/'/g, `'\\''`)}' sh "$@"`, dbImage, db.address, String(db.port), masterUser]
}

/** The master user and password, from the secret AWS keeps them in (JSON: username, password). */
export async function masterCredentials(clients: AwsClients, secretArn: string): Promise<{ username: string; password: string }> {
  const r = await aws("read the database's master password (Secrets Manager)", () => clients.secrets.send(new SecretsManager.GetSecretValueCommand({ SecretId: secretArn })))
  let parsed: { username?: unknown; password?: unknown } = {}
  try {
    parsed = JSON.parse(r.SecretString ?? '{}') as typeof parsed
  } catch {
    // (reported below)
  }
  if (typeof parsed.username !== 'string' || typeof parsed.password !== 'string')
    throw new UserError(`the secret ${secretArn} does not hold the master user's username and password (as RDS keeps them): see it in the Secrets Manager console`)
  return { username: parsed.username, password: parsed.password }
}

/** Makes the site's role and database on RDS, or sets the role's password (host 1's session; the db image pulled there). */
export async function ensureSiteRole(remote: Remote, clients: AwsClients, db: RdsTarget, role: SiteRole, dbImage: string, log: Log): Promise<void> {
  await log.step('database', `the site's role ${role.user} and database ${role.name} on ${db.address} (as the master user, over TLS)`, async () => {
    const master = await masterCredentials(clients, db.masterSecretArn)
    await runInChecked(hostStack(remote), siteRoleCmd(dbImage, db, master.username), {
      input: `${master.password}\n${siteRoleScript(role)}`,
      doing: `make the site's role ${role.user} on the RDS database ${db.address}`,
    })
  })
}
