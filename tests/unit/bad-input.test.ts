// Bad input does nothing: every task, given a bad setting or option, exits with code 2 naming
// what is at fault, before any side effect. Each case runs the real task (node --import tsx
// tasks/<file>.ts) in a copy of the project, with a fake `docker` (and fake installers) first on
// PATH, AWS and SSH pointed at a loopback listener that counts connections, and snapshots of the
// project copy and HOME before and after (see badinput-harness.ts). A case fails with the list of
// expectations it missed and the task's output.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import dotenv from 'dotenv'
import { failedExpectations, isReadOnlyDocker, makeSandbox, privateKeyPem, publicKeyLine, showOutput, type Sandbox } from './badinput-harness.ts'

type Settings = Record<string, string | undefined>

interface Case {
  /** File under tasks/, without .ts. */
  task: string
  args?: string[]
  /** What is wrong (the test is named `<npm command>: <what>`). */
  what: string
  /** Settings changed from GOOD (undefined: left out); {HOME} stands for the task's HOME. */
  set?: Settings
  /** The whole .env text instead of GOOD + set. */
  dotenv?: string
  /** Extra files in the task's HOME (path relative to HOME -> content). */
  homeFiles?: Record<string, string>
  /** What the output must name. */
  names: string[]
}

/** Every task file and its npm command. */
const COMMANDS: Record<string, string> = {
  build: 'build',
  'up-local': 'up:local',
  stop: 'stop',
  push: 'push',
  bucket: 'bucket',
  host: 'host',
  'remote-up': 'remote:up',
  'deploy-aws': 'deploy:aws',
  'destroy-aws': 'destroy:aws',
  status: 'status',
  logs: 'logs',
  manage: 'manage',
  ssh: 'ssh',
  backup: 'backup',
  backups: 'backups',
  restore: 'restore',
  unlock: 'unlock',
  rollback: 'rollback',
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex')

/** A valid full deploy setting set (plus the loopback settings, added per run); each case breaks one thing. */
const GOOD: Settings = {
  AWS_REGION: 'us-west-2',
  DJANGO_UPLOAD_S3_BUCKET: 'mymdb-uploads-test',
  MYMDB_REGISTRY: '127.0.0.1:5000',
  DJANGO_SECRET_KEY: randomBytes(45).toString('base64url'),
  DJANGO_DB_PASSWORD: hex(24),
  POSTGRES_PASSWORD: hex(24),
  DJANGO_ALLOWED_HOSTS: 'mymdb.example.com',
  MYMDB_STAGE: 'test',
}

const CASES: Case[] = [
  { task: 'push', what: 'a registry given as a bare user name', set: { MYMDB_REGISTRY: 'yourname' }, names: ['MYMDB_REGISTRY'] },
  { task: 'push', what: 'a Docker Hub user name without a password', set: { MYMDB_REGISTRY: 'docker.io/yourname', MYMDB_REGISTRY_USERNAME: 'yourname' }, names: ['MYMDB_REGISTRY_PASSWORD'] },
  { task: 'deploy-aws', what: 'a registry user name with ecr', set: { MYMDB_REGISTRY: 'ecr', MYMDB_REGISTRY_USERNAME: 'yourname' }, names: ['MYMDB_REGISTRY_USERNAME'] },
  { task: 'deploy-aws', what: "a host's pull login with ecr (the instance role pulls)", set: { MYMDB_REGISTRY: 'ecr', MYMDB_PULL_USERNAME: 'reader', MYMDB_PULL_PASSWORD: 'ro' }, names: ['MYMDB_PULL_USERNAME'] },
  { task: 'deploy-aws', what: 'a pull password without its user', set: { MYMDB_REGISTRY: 'docker.io/yourname', MYMDB_PULL_PASSWORD: 'ro' }, names: ['MYMDB_PULL_PASSWORD'] },
  { task: 'deploy-aws', what: 'a public key file as the SSH key', set: { MYMDB_SSH_KEY_FILE: '{HOME}/.ssh/mymdb-test.pub' }, homeFiles: { '.ssh/mymdb-test.pub': publicKeyLine('x') }, names: ['MYMDB_SSH_KEY_FILE'] },
  { task: 'deploy-aws', what: 'a database password with a single quote', set: { DJANGO_DB_PASSWORD: `ab'cd${hex(10)}` }, names: ['DJANGO_DB_PASSWORD'] },
  { task: 'deploy-aws', what: 'the old up:local placeholder as the secret key', set: { DJANGO_SECRET_KEY: 'local-only-not-secret-k7Qz2Vw9Lr4Tx8Nb3Hc6Jf1Ym5Pd0Gs_e.u+i=o!a*' }, names: ['DJANGO_SECRET_KEY'] },
  { task: 'deploy-aws', what: 'the up:local database password', set: { DJANGO_DB_PASSWORD: 'local-only-db-password' }, names: ['DJANGO_DB_PASSWORD'] },
  { task: 'deploy-aws', what: 'SSH open to the world', set: { MYMDB_SSH_CIDR: '0.0.0.0/0' }, names: ['MYMDB_SSH_CIDR'] },
  { task: 'host', what: 'an instance type that does not exist', set: { MYMDB_INSTANCE_TYPE: 't3.micr' }, names: ['MYMDB_INSTANCE_TYPE'] },
  { task: 'remote-up', args: ['--address', 'https://203.0.113.7'], what: 'a URL as --address', names: ['--address'] },
  { task: 'build', args: ['--base', 'Debian:Trixie'], what: 'a base image with capitals', names: ['--base'] },
  { task: 'up-local', what: 'a malformed line in .env', dotenv: 'WEB_PORT=8080\nDJANGO_LOG_LEVEL=INFO\nTHIS IS NOT A SETTING\nUWSGI_PROCESSES=2\n', names: ['.env', 'line 3'] },
  { task: 'up-local', what: 'a port above 65535', set: { WEB_PORT: '99999' }, names: ['WEB_PORT'] },
  { task: 'up-local', what: 'a host name with a space', set: { DJANGO_ALLOWED_HOSTS: 'bad host' }, names: ['DJANGO_ALLOWED_HOSTS'] },
  { task: 'deploy-aws', what: 'three problems at once, all reported', set: { AWS_REGION: 'nowhere', DJANGO_UPLOAD_S3_BUCKET: 'Bad_Bucket', MYMDB_WEB_IMAGE: 'Upper/Case' }, names: ['AWS_REGION', 'DJANGO_UPLOAD_S3_BUCKET', 'MYMDB_WEB_IMAGE'] },
  { task: 'stop', args: ['--aws'], what: 'a region that does not exist', set: { AWS_REGION: 'nowhere' }, names: ['AWS_REGION'] },
  { task: 'destroy-aws', args: ['--delete-bucket', 'other-bucket'], what: '--delete-bucket naming another bucket', names: ['--delete-bucket'] },
  { task: 'host', what: 'an AMI id that is not one', set: { MYMDB_AMI_ID: 'ami-xyz' }, names: ['MYMDB_AMI_ID'] },
  { task: 'bucket', what: 'a bucket name with capitals and _', set: { DJANGO_UPLOAD_S3_BUCKET: 'Bad_Name' }, names: ['DJANGO_UPLOAD_S3_BUCKET'] },
  ...Object.keys(COMMANDS).map((task): Case => ({ task, args: ['--frobnicate'], what: 'an unknown option', names: ['--frobnicate'] })),
  { task: 'deploy-aws', what: 'an arm64 instance type (the images are amd64)', set: { MYMDB_INSTANCE_TYPE: 't4g.small' }, names: ['MYMDB_INSTANCE_TYPE'] },
  { task: 'up-local', what: 'a log level that does not exist', set: { DJANGO_LOG_LEVEL: 'LOUD' }, names: ['DJANGO_LOG_LEVEL'] },
  { task: 'status', args: ['--aws'], what: 'a stage name with capitals', set: { MYMDB_STAGE: 'Prod' }, names: ['MYMDB_STAGE'] },
  { task: 'status', what: 'a Compose project name with a space', set: { COMPOSE_PROJECT_NAME: 'my mdb' }, names: ['COMPOSE_PROJECT_NAME'] },
  { task: 'logs', args: ['nginx', '--lines', 'many'], what: 'a service that does not exist and a bad --lines', names: ['nginx', '--lines'] },
  { task: 'logs', args: ['--aws', '--since', 'yesterday'], what: 'an age that is not one', names: ['--since'] },
  { task: 'manage', args: ['--aws', 'check'], what: 'an SSH key file that does not exist', set: { MYMDB_SSH_KEY_FILE: '{HOME}/.ssh/none.pem' }, names: ['MYMDB_SSH_KEY_FILE'] },
  { task: 'manage', what: 'no manage.py arguments', names: ['manage.py'] },
  { task: 'restore', what: 'no backup file named', names: ['backup file'] },
  { task: 'restore', args: ['/nonexistent/none.tar'], what: 'a backup file that does not exist', names: ['none.tar'] },
  { task: 'backup', what: 'a Compose project name with a space', set: { COMPOSE_PROJECT_NAME: 'my mdb' }, names: ['COMPOSE_PROJECT_NAME'] },
  { task: 'backup', args: ['--aws', '--to', 'somewhere'], what: '--to with --aws', names: ['--to'] },
  { task: 'unlock', what: 'a stage name with a space', set: { MYMDB_STAGE: 'my stage' }, names: ['MYMDB_STAGE'] },
  { task: 'rollback', args: ['--to', 'no/tag'], what: 'a --to that is no image tag', names: ['--to'] },
  { task: 'rollback', what: 'a region that does not exist', set: { AWS_REGION: 'nowhere' }, names: ['AWS_REGION'] },
  { task: 'deploy-aws', what: 'an IP address as the domain', set: { MYMDB_DOMAIN: '203.0.113.7' }, names: ['MYMDB_DOMAIN'] },
  { task: 'remote-up', what: 'a CA root file that does not exist', set: { MYMDB_DOMAIN: 'movies.example.com', MYMDB_ACME_CA_ROOT: '/nonexistent/root.pem' }, names: ['MYMDB_ACME_CA_ROOT'] },
  { task: 'backups', args: ['--aws'], what: 'a backup bucket name with capitals', set: { MYMDB_BACKUP_BUCKET: 'Bad_Name' }, names: ['MYMDB_BACKUP_BUCKET'] },
  { task: 'restore', args: ['--aws', 'not-a-backup'], what: 'a name that is no backup (nor a version id) with --aws', names: ['not-a-backup'] },
  { task: 'restore', args: ['--aws', 'mymdb-test-20261127T031700Z.tar'], what: 'a bad region and a backup bucket that is the upload bucket, at once', set: { AWS_REGION: 'nowhere', MYMDB_BACKUP_BUCKET: 'mymdb-uploads-test' }, names: ['AWS_REGION', 'MYMDB_BACKUP_BUCKET'] },
  { task: 'deploy-aws', what: 'a backup schedule with minute 61', set: { MYMDB_BACKUP_SCHEDULE: '61 3 * * *' }, names: ['MYMDB_BACKUP_SCHEDULE'] },
  { task: 'bucket', what: 'backups kept 0 days', set: { MYMDB_BACKUP_KEEP_DAYS: '0' }, names: ['MYMDB_BACKUP_KEEP_DAYS'] },
  { task: 'bucket', what: 'the newest 0 backups kept', set: { MYMDB_BACKUP_KEEP: '0' }, names: ['MYMDB_BACKUP_KEEP='] },
  { task: 'ssh', what: 'a region that does not exist', set: { AWS_REGION: 'nowhere' }, names: ['AWS_REGION'] },
  { task: 'ssh', what: 'the .pub file as the key', set: { MYMDB_SSH_KEY_FILE: '{HOME}/.ssh/mymdb-test.pub' }, homeFiles: { '.ssh/mymdb-test.pub': publicKeyLine('x') }, names: ['MYMDB_SSH_KEY_FILE'] },
]

/** Cases run two at a time (each task is a process of its own), each in a sandbox of its own. */
const CONCURRENCY = 2
const sandboxes: Sandbox[] = []
const free: Sandbox[] = []
const waiting: ((s: Sandbox) => void)[] = []

before(async () => {
  for (let i = 0; i < CONCURRENCY; i++) sandboxes.push(await makeSandbox())
  free.push(...sandboxes)
})

after(async () => {
  for (const s of sandboxes) await s.close()
})

/** `fn` with a sandbox no other case uses meanwhile. */
async function inSandbox<T>(fn: (sandbox: Sandbox) => Promise<T>): Promise<T> {
  const sandbox = free.pop() ?? (await new Promise<Sandbox>((r) => waiting.push(r)))
  try {
    return await fn(sandbox)
  } finally {
    const next = waiting.shift()
    if (next) next(sandbox)
    else free.push(sandbox)
  }
}

/** The loopback settings: AWS, SSH and HTTP all go to the sandbox's listener; no IP lookup. */
function loopback(sandbox: Sandbox): Settings {
  const port = String(sandbox.port)
  return { MYMDB_HOST_ADDRESS: '127.0.0.1', MYMDB_HOST_SSH_PORT: port, MYMDB_HOST_HTTP_PORT: port, MYMDB_SSH_CIDR: '203.0.113.7/32' }
}

/** The process environment besides PATH and HOME. */
function processEnv(sandbox: Sandbox): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: `http://127.0.0.1:${sandbox.port}`,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_EC2_METADATA_DISABLED: 'true',
  }
}

/** .env text for settings, checked to read back (with dotenv) as exactly these settings. */
function dotenvText(settings: Settings): string {
  const defined = Object.fromEntries(Object.entries(settings).filter((e): e is [string, string] => e[1] !== undefined))
  const text = Object.entries(defined)
    .map(([k, v]) => `${k}=${/[\s#]|^["'`]/.test(v) ? `"${v}"` : v}`)
    .join('\n')
  assert.deepEqual(dotenv.parse(text), defined, 'the harness wrote a .env that does not say what the case means')
  return `${text}\n`
}

/** Runs a task with GOOD + loopback + `set` (or the given .env text) and a key in ~/.ssh. */
function runCase(c: Pick<Case, 'task' | 'args' | 'set' | 'dotenv' | 'homeFiles'>) {
  return inSandbox((sandbox) =>
    sandbox.run({
      task: c.task,
      args: c.args,
      dotenv: c.dotenv ?? dotenvText({ ...GOOD, ...loopback(sandbox), ...c.set }),
      homeFiles: { '.ssh/mymdb-test.pem': privateKeyPem(), ...c.homeFiles },
      env: processEnv(sandbox),
    }),
  )
}

describe('bad input does nothing', { concurrency: CONCURRENCY }, () => {
  for (const c of CASES) {
    const title = `${COMMANDS[c.task] ?? c.task}${c.args?.[0] === '--aws' ? ' --aws' : ''}: ${c.what}`
    test(title, { timeout: 90_000 }, async () => {
      const outcome = await runCase(c)
      const failed = failedExpectations(outcome, c.names)
      if (failed.length > 0)
        assert.fail([`${title}: ${failed.length} expectation(s) not met:`, ...failed.map((f) => `  - ${f}`), '  task output:', showOutput(outcome.output)].join('\n'))
    })
  }
})

test('harness: which docker calls count as read-only', () => {
  const calls = (lines: string[]) => lines.map((l) => l.split(' '))
  for (const args of calls(['info --format {{.ServerVersion}}', 'compose version --short', 'image inspect --format {{.Id}} mymdb-web:latest', 'volume inspect mymdb_media', 'compose --project-name mymdb ps --format json', 'compose -p x config', 'ps -a', 'images']))
    assert.ok(isReadOnlyDocker(args), args.join(' '))
  for (const args of calls(['build --tag mymdb-web .', 'pull debian:trixie-slim', 'push 127.0.0.1:5000/mymdb-web:latest', 'tag a b', 'login --username u docker.io', 'compose --project-name ps up --wait', 'compose up', 'compose --project-name mymdb down', 'volume rm mymdb_media', 'image rm x']))
    assert.ok(!isReadOnlyDocker(args), args.join(' '))
})

test('harness: the stand-ins are where the tasks go (a valid deploy:aws --dry-run reaches the listener, build --dry-run the fake docker)', { timeout: 90_000 }, async () => {
  const deploy = await runCase({ task: 'deploy-aws', args: ['--dry-run'] })
  assert.ok(deploy.connections > 0, `no connection to the loopback listener:\n${showOutput(deploy.output)}`)
  assert.deepEqual(deploy.changedFiles, [])
  const build = await runCase({ task: 'build', args: ['--dry-run'] })
  assert.ok(build.dockerCalls.some((a) => a[0] === 'info'), `the fake docker was not asked (docker info):\n${showOutput(build.output)}`)
})
