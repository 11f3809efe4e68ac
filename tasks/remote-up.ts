// remote-up: starts (or updates) MyMDB on the deploy host over SSH. The host already has Docker
// (its user-data runs scripts/install-docker.sh) and the images are in a registry. Uploads
// docker-compose.yml and a production .env, pulls, `compose up --wait`, checks the migrations,
// loads the sample catalogue into an empty database and checks the site over HTTP.
import http from 'node:http'
import { hostname, userInfo } from 'node:os'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { BackupTarget } from './host.ts'
import { BACKUP_ENV_FILE, BACKUP_SCRIPT_FILE, backupScript, cronLine, hostBackupOptions, installCronCmd, takeBackup } from './lib/backup.ts'
import { checkEnv, loadEnv, type CleanEnv, type RawEnv, type Rule } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { formatDuration, stripControls, type Log } from './lib/log.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { homeRelative, retryUntil, runChecked, showCommand, type Cmd } from './lib/sh.ts'
import { openRemote, type OpenRemote, type Remote } from './lib/ssh.ts'
import { hostStack, REMOTE_DIR, runIn, runInChecked, showStackCommand, stackCommands, stackPs, startStack, type Stack } from './lib/stack.ts'
import { awsVars, backupScheduleVars, dbVars, djangoVars, hostVars, imageVars, productionOnly, registryImage, registryRules, registryVars, serverVars, sshKeyExistsRule, sshKeyPath, uploadVars } from './lib/vars.ts'

export const HELP = `Usage: npm run remote:up -- [options]

Starts or updates MyMDB on the deploy host over SSH: uploads docker-compose.yml and a
production .env (mode 0600) to ~/mymdb/, logs in to the registry when MYMDB_REGISTRY_USERNAME
and MYMDB_REGISTRY_PASSWORD are set, runs \`docker compose pull\` and
\`docker compose up -d --wait\`, checks that the migrations ran, loads the sample catalogue
into an empty database, records the deploy in ~/mymdb/deploys.log and checks /healthz and /
over HTTP. Safe to run again: the database volume stays, only changed containers are recreated.

Settings (environment and .env; see .env.example):
  MYMDB_HOST_ADDRESS      the host's address (required unless --address is given)
  MYMDB_HOST_SSH_PORT     SSH port (default 22); MYMDB_SSH_USER login user (default admin)
  MYMDB_SSH_KEY_FILE      private key (default ~/.ssh/mymdb-<MYMDB_STAGE>.pem)
  MYMDB_HOST_HTTP_PORT    port the site is checked on (default 80)
  MYMDB_REGISTRY          registry address, e.g. registry.example.com:5000 or 127.0.0.1:5000;
                          images are <MYMDB_REGISTRY>/<last part of MYMDB_WEB_IMAGE>:<MYMDB_TAG>
                          and the same for MYMDB_DB_IMAGE (as npm run push names them)
  MYMDB_TAG               image tag (default latest)
  DJANGO_SECRET_KEY, DJANGO_DB_PASSWORD, POSTGRES_PASSWORD   required, no defaults here
                          (up:local's local-only values are refused)
  DJANGO_ALLOWED_HOSTS    host names of the site (the first one is used for the check)
  DJANGO_UPLOAD_S3_BUCKET, AWS_S3_REGION_NAME, AWS_S3_ENDPOINT_URL   optional

Options:
  --address ADDR  the host's address (instead of MYMDB_HOST_ADDRESS)
  --dry-run       check the settings and show what would be done; connect to nothing
  -h, --help      this help

Exit codes: 0 running, 1 SSH or a remote command failed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run remote:up',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
    address: { type: 'string' },
  },
} as const

/** How long to wait for Docker on a host whose user-data may still be installing it. */
export const DOCKER_WAIT_SECONDS = 300

/** What the start on the host reads; the secrets must be production ones (not up:local's). */
export const remoteSpec = {
  ...productionOnly({ ...djangoVars, ...dbVars, ...uploadVars }),
  UWSGI_PROCESSES: serverVars.UWSGI_PROCESSES,
  UWSGI_THREADS: serverVars.UWSGI_THREADS,
  MYMDB_WEB_IMAGE: imageVars.MYMDB_WEB_IMAGE,
  MYMDB_DB_IMAGE: imageVars.MYMDB_DB_IMAGE,
  MYMDB_TAG: imageVars.MYMDB_TAG,
  ...registryVars,
  MYMDB_STAGE: awsVars.MYMDB_STAGE,
  MYMDB_SSH_USER: hostVars.MYMDB_SSH_USER,
  MYMDB_SSH_KEY_FILE: hostVars.MYMDB_SSH_KEY_FILE,
  MYMDB_HOST_ADDRESS: hostVars.MYMDB_HOST_ADDRESS,
  MYMDB_HOST_SSH_PORT: hostVars.MYMDB_HOST_SSH_PORT,
  MYMDB_HOST_HTTP_PORT: hostVars.MYMDB_HOST_HTTP_PORT,
  ...backupScheduleVars,
}

export type RemoteSettings = CleanEnv<typeof remoteSpec>

// --- the production .env -------------------------------------------------------------------

/**
 * The keys of the production .env, in order. Values left out when unset (optional ones only).
 * WEB_BIND/WEB_PORT: the host publishes the site on all its addresses, port 80.
 */
export const ENV_FILE_KEYS = [
  'COMPOSE_PROJECT_NAME',
  'WEB_BIND',
  'WEB_PORT',
  'MYMDB_WEB_IMAGE',
  'MYMDB_DB_IMAGE',
  'MYMDB_TAG',
  'DJANGO_SECRET_KEY',
  'DJANGO_ALLOWED_HOSTS',
  'DJANGO_LOG_LEVEL',
  'DJANGO_CACHE_TIMEOUT',
  'DJANGO_SECURE_SSL',
  'DJANGO_DB_NAME',
  'DJANGO_DB_USER',
  'DJANGO_DB_PASSWORD',
  'POSTGRES_PASSWORD',
  'UWSGI_PROCESSES',
  'UWSGI_THREADS',
  'DJANGO_UPLOAD_S3_BUCKET',
  'AWS_S3_REGION_NAME',
  'AWS_S3_ENDPOINT_URL',
  'MYMDB_UPLOAD_AWS_ACCESS_KEY_ID',
  'MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY',
] as const

export type EnvFileKey = (typeof ENV_FILE_KEYS)[number]

const REQUIRED_KEYS: readonly EnvFileKey[] = [
  'WEB_BIND',
  'WEB_PORT',
  'MYMDB_WEB_IMAGE',
  'MYMDB_DB_IMAGE',
  'MYMDB_TAG',
  'DJANGO_SECRET_KEY',
  'DJANGO_ALLOWED_HOSTS',
  'DJANGO_DB_PASSWORD',
  'POSTGRES_PASSWORD',
]

/**
 * One value in Compose's .env format: single-quoted, so that nothing in it is interpolated or
 * unescaped (`$`, `#`, `"`, `\` and spaces stay as they are). A value Compose cannot read back
 * exactly that way (a ' or a line break in it, or a trailing \) is refused: ConfigError.
 */
export function envFileValue(key: string, value: string): string {
  if (/['\n\r]/.test(value) || value.endsWith('\\') || value.includes('\0'))
    throw new ConfigError(`${key}: the value contains a single quote, a line break or a trailing backslash, which the host's .env cannot hold exactly; choose another value`)
  return `'${value}'`
}

/** The text of the host's ~/mymdb/.env. Pure. Throws ConfigError for a missing required key. */
export function productionEnvFile(values: Partial<Record<EnvFileKey, string | number | boolean | undefined>>): string {
  const missing = REQUIRED_KEYS.filter((k) => values[k] === undefined || String(values[k]).trim() === '')
  if (missing.length > 0) throw new ConfigError(`production .env: no value for ${missing.join(', ')}`)
  const lines = ['# Written by remote-up (MyMDB Deploy). Replaced on every deploy: change the settings where you deploy from.']
  for (const key of ENV_FILE_KEYS) {
    const v = values[key]
    if (v === undefined || String(v).trim() === '') continue
    lines.push(`${key}=${envFileValue(key, String(v))}`)
  }
  return `${lines.join('\n')}\n`
}

/** The .env values for checked settings and a registry address (the images as push names them). */
export function envFileValues(s: RemoteSettings, registry: string): Record<EnvFileKey, string | undefined> {
  return {
    COMPOSE_PROJECT_NAME: 'mymdb',
    WEB_BIND: '0.0.0.0',
    WEB_PORT: '80',
    MYMDB_WEB_IMAGE: registryImage(registry, s.MYMDB_WEB_IMAGE),
    MYMDB_DB_IMAGE: registryImage(registry, s.MYMDB_DB_IMAGE),
    MYMDB_TAG: s.MYMDB_TAG,
    DJANGO_SECRET_KEY: s.DJANGO_SECRET_KEY,
    DJANGO_ALLOWED_HOSTS: s.DJANGO_ALLOWED_HOSTS.join(','),
    DJANGO_LOG_LEVEL: s.DJANGO_LOG_LEVEL,
    DJANGO_CACHE_TIMEOUT: String(s.DJANGO_CACHE_TIMEOUT),
    DJANGO_SECURE_SSL: String(s.DJANGO_SECURE_SSL),
    DJANGO_DB_NAME: s.DJANGO_DB_NAME,
    DJANGO_DB_USER: s.DJANGO_DB_USER,
    DJANGO_DB_PASSWORD: s.DJANGO_DB_PASSWORD,
    POSTGRES_PASSWORD: s.POSTGRES_PASSWORD,
    UWSGI_PROCESSES: String(s.UWSGI_PROCESSES),
    UWSGI_THREADS: String(s.UWSGI_THREADS),
    DJANGO_UPLOAD_S3_BUCKET: s.DJANGO_UPLOAD_S3_BUCKET,
    AWS_S3_REGION_NAME: s.AWS_S3_REGION_NAME,
    AWS_S3_ENDPOINT_URL: s.AWS_S3_ENDPOINT_URL,
    MYMDB_UPLOAD_AWS_ACCESS_KEY_ID: s.MYMDB_UPLOAD_AWS_ACCESS_KEY_ID,
    MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY: s.MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY,
  }
}

// --- plan ---------------------------------------------------------------------------------

/** The Host header for the checks: the first allowed host (".example.com" -> example.com). */
export function checkHostName(allowed: string[]): string {
  const first = allowed[0] ?? 'localhost'
  if (first.startsWith('*.')) return `www.${first.slice(2)}`
  if (first.startsWith('.')) return first.slice(1)
  return first
}


export interface RemoteUpPlan {
  address: string
  sshPort: number
  user: string
  keyFile: string
  registry: string
  login?: { username: string; password: string }
  images: { web: string; db: string }
  httpPort: number
  hostName: string
  envFile: string
  /** ~/mymdb/backup.env: the backup bucket and role (the deploy passes them; not when run alone). */
  backupEnv?: string
  /** The host's backup script and its crontab line (null: MYMDB_BACKUP_SCHEDULE=off), with backupEnv. */
  schedule?: { script: string; line: string | null; stage: string }
}

/** The host's address is needed (MYMDB_HOST_ADDRESS or --address). */
const addressRule: Rule<RemoteSettings> = {
  names: ['MYMDB_HOST_ADDRESS'],
  check: (v) => (v.MYMDB_HOST_ADDRESS === undefined ? "is needed: the host's address (or pass --address)" : null),
}

/** Alone, this step cannot ask ECR for its address: the deploy passes it. */
const registryAddressRule: Rule<RemoteSettings> = {
  names: ['MYMDB_REGISTRY'],
  check: (v) =>
    v.MYMDB_REGISTRY === 'ecr'
      ? 'ecr: this step needs the registry address (<account>.dkr.ecr.<region>.amazonaws.com); npm run deploy:aws passes it'
      : null,
}

export interface PlanOptions {
  /** The host address (from --address, or the host the deploy found). */
  address?: string
  /** True when `address` came from the --address option (problems then name the option). */
  addressFromOption?: boolean
  /** The registry prefix the images were pushed to (the deploy passes it). */
  registry?: string
  /** More rules to check with the settings (e.g. that the key file exists). */
  rules?: readonly Rule<RemoteSettings>[]
  /** Where and as whom the host writes backups (the host step's result). */
  backup?: BackupTarget
}

/** The host's ~/mymdb/backup.env (pure): read by the backup script, never by a container. */
export function backupEnvFile(b: BackupTarget): string {
  return [
    '# Written by the deploy (MyMDB Deploy): where the host writes its backups, and as whom.',
    '# The external id lets the host role assume the backup role; no container is given this file.',
    `MYMDB_BACKUP_BUCKET=${envFileValue('MYMDB_BACKUP_BUCKET', b.bucket)}`,
    `MYMDB_BACKUP_REGION=${envFileValue('MYMDB_BACKUP_REGION', b.region)}`,
    `MYMDB_BACKUP_ROLE_ARN=${envFileValue('MYMDB_BACKUP_ROLE_ARN', b.roleArn)}`,
    `MYMDB_BACKUP_EXTERNAL_ID=${envFileValue('MYMDB_BACKUP_EXTERNAL_ID', b.externalId)}`,
    '',
  ].join('\n')
}

/** Checks the settings, all problems at once (EnvError, exit 2), and works out what to do. Pure but for `rules`. */
export function planRemoteUp(raw: RawEnv, opts: PlanOptions = {}): RemoteUpPlan {
  const env: RawEnv = {
    ...raw,
    ...(opts.address !== undefined ? { MYMDB_HOST_ADDRESS: opts.address } : {}),
    ...(opts.registry !== undefined ? { MYMDB_REGISTRY: opts.registry } : {}),
  }
  const s = checkEnv(remoteSpec, env, {
    rules: [addressRule, registryAddressRule, ...registryRules, ...(opts.rules ?? [])],
    options: opts.addressFromOption ? { MYMDB_HOST_ADDRESS: '--address' } : {},
  })
  const address = s.MYMDB_HOST_ADDRESS as string
  const registry = s.MYMDB_REGISTRY
  const { MYMDB_REGISTRY_USERNAME: username, MYMDB_REGISTRY_PASSWORD: password } = s
  const values = envFileValues(s, registry)
  return {
    address,
    sshPort: s.MYMDB_HOST_SSH_PORT,
    user: s.MYMDB_SSH_USER,
    // the same file the host step creates or imports, with the same HOME
    keyFile: sshKeyPath(s, env),
    registry,
    login: username !== undefined && password !== undefined ? { username, password } : undefined,
    images: { web: `${values.MYMDB_WEB_IMAGE}:${s.MYMDB_TAG}`, db: `${values.MYMDB_DB_IMAGE}:${s.MYMDB_TAG}` },
    httpPort: s.MYMDB_HOST_HTTP_PORT,
    hostName: checkHostName(s.DJANGO_ALLOWED_HOSTS),
    envFile: productionEnvFile(values),
    ...(opts.backup
      ? {
          backupEnv: backupEnvFile(opts.backup),
          schedule: {
            script: `${backupScript(hostStack({ where: 'the host', run: planOnly }), hostBackupOptions(s.MYMDB_STAGE, 'scheduled'))}\n`,
            line: cronLine(s.MYMDB_BACKUP_SCHEDULE),
            stage: s.MYMDB_STAGE,
          },
        }
      : {}),
  }
}

/** The runner of a plan: a plan runs nothing. */
const planOnly = () => Promise.reject(new Error('a plan runs nothing'))

/** The registry host of an image prefix (docker.io/yourname -> docker.io) for `docker login`. */
export function registryHost(registry: string): string {
  return registry.split('/')[0] ?? registry
}

/** The remote commands of a run, in order (for --dry-run and the tests). */
export function remoteSteps(plan: RemoteUpPlan): string[] {
  const stack = hostStack({ where: 'the host', run: planOnly })
  const steps = ['docker info; docker compose version', `upload ${REMOTE_DIR}/docker-compose.yml (0644), ${REMOTE_DIR}/.env (0600)${plan.backupEnv ? `, ${REMOTE_DIR}/${BACKUP_ENV_FILE} (0600)` : ''}`]
  if (plan.login) steps.push(showCommand(['docker', 'login', '--username', plan.login.username, '--password-stdin', registryHost(plan.registry)]) + ' (password on stdin)')
  steps.push(
    showStackCommand(stack, stack.compose('pull', '--quiet')),
    ...(plan.schedule ? [`${showStackCommand(stack, migrateCheckNew(stack))}; when it fails: a backup into the backup bucket first`] : []),
    ...[stackCommands.up(stack), stackCommands.migrateCheck(stack), stackCommands.sampleData(stack)].map((c) => showStackCommand(stack, c)),
    `append a line to ${DEPLOY_LOG} (when, who, which images)`,
  )
  if (plan.schedule)
    steps.push(
      plan.schedule.line
        ? `upload ${REMOTE_DIR}/${BACKUP_SCRIPT_FILE}; crontab: ${plan.schedule.line}`
        : `remove the backup schedule from the crontab (MYMDB_BACKUP_SCHEDULE=off)`,
    )
  return steps
}

// --- HTTP check ---------------------------------------------------------------------------

export interface HttpReply {
  status: number
  body: string
}
export type HttpGet = (url: string, hostHeader: string) => Promise<HttpReply>

/** GET with an explicit Host header (fetch cannot set one), 10 s timeout. */
export const httpGet: HttpGet = (url, hostHeader) =>
  new Promise((resolvePromise, reject) => {
    const u = new URL(url)
    const req = http.request(
      { host: u.hostname, port: u.port || 80, path: u.pathname + u.search, method: 'GET', headers: { host: hostHeader }, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
    req.on('error', reject)
    req.end()
  })

/** Polls `url` until it answers 200, for up to `seconds`. Throws UserError with the last answer. */
export async function waitFor200(get: HttpGet, url: string, hostHeader: string, seconds: number, pauseMs = 2_000): Promise<HttpReply> {
  return retryUntil(
    Math.max(1, Math.ceil((seconds * 1000) / Math.max(pauseMs, 50))),
    pauseMs,
    async () => {
      const r = await get(url, hostHeader)
      if (r.status === 200) return r
      throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 200).trim()}`)
    },
    (last) =>
      new UserError(
        `the site does not answer ${url} (Host: ${hostHeader}) with 200 within ${seconds} s; last: ${last}. Is the port open to you (security group), and does DJANGO_ALLOWED_HOSTS hold ${hostHeader}?`,
      ),
  )
}

// --- apply --------------------------------------------------------------------------------

export interface RemoteUpDeps extends Partial<Deps> {
  /** Opens the SSH session (default: ssh2). */
  openRemote?: OpenRemote
  /** The HTTP client of the final check. */
  httpGet?: HttpGet
  /** Reads the private key file. */
  readKey?: (path: string) => string
  /** Seconds between polls (Docker on the host, HTTP); tests use 0. */
  pollSeconds?: number
  /** When the whole deploy started (epoch ms; default: when this step started), for the history. */
  startedAt?: number
}

/** Waits until Docker and Compose v2 answer on the host (its user-data may still be installing them). */
async function waitForDocker(remote: Remote, deps: Deps, pollSeconds: number): Promise<void> {
  let told = false
  const times = Math.max(1, Math.ceil(DOCKER_WAIT_SECONDS / Math.max(pollSeconds, 0.05)))
  await retryUntil(
    times,
    pollSeconds * 1000,
    async () => {
      const r = await remote.run(['sh', '-c', 'docker info --format "{{.ServerVersion}}" && docker compose version --short'])
      if (r.ok) return true
      if (!told) deps.log.info('[remote] waiting for Docker on the host (the host may still be installing it)')
      told = true
      throw new Error(stripControls(r.stderr).trim().split('\n').slice(-3).join(' '))
    },
    (last) =>
      new UserError(
        `Docker or Compose v2 is not working on the host after ${DOCKER_WAIT_SECONDS} s (its user-data runs scripts/install-docker.sh; see /var/log/cloud-init-output.log there): ${last}`,
      ),
  )
}

/** Where the host keeps one JSON line per deploy (npm run status shows the last). */
export const DEPLOY_LOG = `${REMOTE_DIR}/deploys.log`

/** One line of the deploy log (pure): when it started, who, which images, how it ended and how long it took. */
export function deployRecord(plan: Pick<RemoteUpPlan, 'images'>, by: string, at: Date, end: { ok: boolean; seconds: number; error?: string }): string {
  const tag = plan.images.web.split(':').pop() ?? ''
  const error = end.error === undefined ? {} : { error: end.error.split('\n')[0]?.slice(0, 300) }
  return `${JSON.stringify({ at: at.toISOString(), by, tag, web: plan.images.web, db: plan.images.db, result: end.ok ? 'ok' : 'failed', seconds: Math.round(end.seconds), ...error })}\n`
}

/** manage.py migrate --check with the web image just pulled (the running web stays as it is). */
export function migrateCheckNew(stack: Stack): Cmd {
  return stack.compose('run', '--rm', '--no-deps', '-T', '--entrypoint', 'python3', 'web', 'manage.py', 'migrate', '--check')
}

/**
 * Before a version whose migrations change the schema starts: a backup into the backup bucket
 * (reason pre-migrate). A database that does not run yet has nothing to lose. When the backup
 * fails, the deploy stops here and the running version keeps serving.
 */
export async function backupBeforeMigrations(stack: Stack, stage: string, log: Log): Promise<void> {
  const ps = await stackPs(stack)
  if (!ps.some((p) => p.Service === 'db' && p.State === 'running')) return
  const check = await runIn(stack, migrateCheckNew(stack))
  if (check.ok) {
    log.info('[backup] the new version has no migrations to apply: no backup needed before it starts')
    return
  }
  log.info('[backup] the new version changes the database (manage.py migrate --check): a backup first')
  const r = await takeBackup(stack, hostBackupOptions(stage, 'pre-migrate'), log).catch((e: unknown) => {
    throw new UserError(`the backup before the migrations failed, so the new version was not started (the old one still runs): ${e instanceof Error ? e.message : String(e)}`)
  })
  log.info(`[backup] before the migrations: ${r.file}`)
}

/** The whole run against an already checked plan: SSH, files, compose, checks. Returns the site URL. */
export async function remoteUp(plan: RemoteUpPlan, deps: Deps, extra: RemoteUpDeps = {}): Promise<string> {
  const { log } = deps
  const poll = extra.pollSeconds ?? 2
  const read = extra.readKey ?? ((p: string) => readFileSync(p, 'utf8'))
  let privateKey: string
  try {
    privateKey = read(plan.keyFile)
  } catch (e) {
    throw new ConfigError(`cannot read the SSH key ${plan.keyFile} (${e instanceof Error ? e.message : String(e)}): set MYMDB_SSH_KEY_FILE`)
  }
  const composeFile = readFileSync(resolve(deps.root, 'docker-compose.yml'))
  const open = extra.openRemote ?? openRemote
  const where = `${plan.user}@${plan.address}:${plan.sshPort}`
  const remote = await log.step('ssh', `connect to ${where}`, () =>
    open({
      host: plan.address,
      port: plan.sshPort,
      username: plan.user,
      privateKey,
      attempts: 15,
      retryDelayMs: poll * 1000,
      onRetry: (n, e) => log.info(`[ssh] not reachable yet (${e.message}); attempt ${n + 1} ...`),
    }),
  )
  try {
    await waitForDocker(remote, deps, poll)

    await log.step('files', `upload ${REMOTE_DIR}/docker-compose.yml and ${REMOTE_DIR}/.env`, async () => {
      await remote.upload(`${REMOTE_DIR}/docker-compose.yml`, composeFile, 0o644)
      await remote.upload(`${REMOTE_DIR}/.env`, plan.envFile, 0o600)
      if (plan.backupEnv) await remote.upload(`${REMOTE_DIR}/${BACKUP_ENV_FILE}`, plan.backupEnv, 0o600)
    })

    if (plan.login) {
      const host = registryHost(plan.registry)
      await log.step('login', `docker login ${host}`, () =>
        runChecked(remote.run, ['docker', 'login', '--username', plan.login!.username, '--password-stdin', host], {
          input: plan.login!.password,
          doing: `log in to the registry ${host}`,
        }),
      )
    }

    const stack = hostStack(remote)
    const by = `${userInfo().username}@${hostname()}`
    const startedAt = new Date(extra.startedAt ?? Date.now())
    const record = (end: { ok: boolean; error?: string }) =>
      runChecked(remote.run, ['sh', '-c', `cat >> ${homeRelative(DEPLOY_LOG)}`], {
        input: deployRecord(plan, by, startedAt, { ...end, seconds: (Date.now() - startedAt.getTime()) / 1000 }),
        doing: `record the deploy in ${DEPLOY_LOG}`,
      })
    try {
      await log.step('pull', `docker compose pull (${plan.images.web}, ${plan.images.db})`, () =>
        runInChecked(stack, stack.compose('pull', '--quiet'), {
          stream: log.prefixed('pull'),
          doing: `pull the images from ${plan.registry}`,
        }),
      )
      if (plan.schedule) await backupBeforeMigrations(stack, plan.schedule.stage, log)
      await startStack(stack, log)
    } catch (e) {
      // the history keeps failed deploys too (best effort: the connection may be what failed)
      await record({ ok: false, error: e instanceof Error ? e.message : String(e) }).catch(() => undefined)
      throw e
    }
    await record({ ok: true })
    if (plan.schedule) {
      const { script, line } = plan.schedule
      await log.step('schedule', line ? `backups on the host: ${line.split(' cd ')[0]} (cron)` : 'no scheduled backups (MYMDB_BACKUP_SCHEDULE=off)', async () => {
        await remote.upload(`${REMOTE_DIR}/${BACKUP_SCRIPT_FILE}`, script, 0o700)
        await runChecked(remote.run, installCronCmd(line), { doing: 'set the backup schedule in the crontab' })
      })
    }
  } finally {
    remote.close()
  }

  const base = `http://${plan.address.includes(':') ? `[${plan.address}]` : plan.address}:${plan.httpPort}`
  const get = extra.httpGet ?? httpGet
  await log.step('check', `GET ${base}/healthz and / (Host: ${plan.hostName})`, async () => {
    await waitFor200(get, `${base}/healthz`, plan.hostName, 60, poll * 1000)
    await waitFor200(get, `${base}/`, plan.hostName, 30, poll * 1000)
  })
  return plan.httpPort === 80 ? `http://${plan.hostName}/` : `http://${plan.hostName}:${plan.httpPort}/`
}

export async function main(argv: string[], env: Env, partial?: RemoteUpDeps): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const { log } = deps
    // check: options and settings (before any connection)
    const plan = planRemoteUp(loadEnv(env, deps.envFile), { address: flags.address, addressFromOption: flags.address !== undefined, rules: [sshKeyExistsRule] })

    // plan
    log.info(`[remote] host ${plan.user}@${plan.address}:${plan.sshPort} (key ${plan.keyFile})`)
    log.info(`[remote] images ${plan.images.web}, ${plan.images.db}${plan.login ? ` (login as ${plan.login.username})` : ''}`)
    log.info(`[remote] site checked at http://${plan.address}:${plan.httpPort}/ with Host: ${plan.hostName}`)
    if (flags['dry-run']) {
      log.info('[remote] dry run: would run on the host, in order:')
      for (const step of remoteSteps(plan)) log.info(`  ${step}`)
      log.info('[remote] nothing was done')
      return 0
    }

    // apply
    const start = Date.now()
    const url = await remoteUp(plan, deps, partial)

    // summary
    log.info('')
    log.info(`MyMDB is running on ${plan.address} (${formatDuration(Date.now() - start)}): ${url}`)
    if (plan.address !== plan.hostName) log.info(`(checked at http://${plan.address}:${plan.httpPort}/ with Host: ${plan.hostName})`)
    return 0
  })
}

runMain(import.meta.url, main)
