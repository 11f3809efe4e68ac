// The plan of a start on the host (pure): where to connect, which images, the host's .env and
// backup files, the HTTPS site and its DNS record, the backup schedule. remoteSteps says, in
// order, what up.ts runs for a plan (the dry run prints it).
import { isIP } from 'node:net'
import type { BackupTarget } from '../aws/host.ts'
import { BACKUP_ENV_FILE, BACKUP_SCRIPT_FILE, backupScript, cronLine, hostBackupOptions } from '../backup.ts'
import { checkEnv, type RawEnv, type Rule } from '../env.ts'
import { DEPLOY_LOG } from '../releases.ts'
import { showCommand } from '../sh.ts'
import { hostStack, REMOTE_DIR, showStackCommand, STACK_DEPLOY, stackCommands } from '../stack.ts'
import { type ImageName } from '../vars.ts'
import { acmeCaRootRule } from '../hostvars.ts'
import { registryRules } from '../awsvars.ts'
import { checkHostName, dnsRecord, type HttpsPlan } from './checks.ts'
import { backupEnvFile, envFileValues, hostImages, siteHostNames, productionEnvFile } from './envfile.ts'
import { remoteSpec, startSettings, type RemoteSettings, type StartSettings } from './settings.ts'

export interface RemoteUpPlan {
  address: string
  sshPort: number
  user: string
  keyFile: string
  registry: string
  login?: { username: string; password: string }
  images: Record<ImageName, string>
  httpPort: number
  hostName: string
  /** With MYMDB_DOMAIN: the site over HTTPS, and the DNS record it waits for first. */
  https?: HttpsPlan
  /** Releases whose images the host keeps for rollbacks (MYMDB_KEEP_RELEASES). */
  keepReleases: number
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


/** What the start is told besides the settings: where the host is, where the images are. */
export interface StartContext {
  /** The host's address. */
  address: string
  /** The registry prefix the images are under (push's prefix, or MYMDB_REGISTRY). */
  registry: string
  /** The login the host pulls with (the deploy's ECR login; else the registry settings'). */
  login?: { username: string; password: string }
  /** Where and as whom the host writes backups (the host step's result). */
  backup?: BackupTarget
  /** The digests push reported (the host pins the db, proxy and cache images by them). */
  digests?: Partial<Record<ImageName, string>>
  /** The host's public IP: MYMDB_DOMAIN must resolve to it (default: the address, when it is an IP). */
  publicIp?: string
}

export interface CheckOptions {
  /** The host address from --address (problems then name the option). */
  address?: string
  /** More rules to check with the settings (e.g. that the key file exists). */
  rules?: readonly Rule<RemoteSettings>[]
}

/** remote:up alone: its settings checked once, all problems at once (EnvError, exit 2). */
export function checkRemoteSettings(raw: RawEnv, opts: CheckOptions = {}): StartSettings {
  const env: RawEnv = { ...raw, ...(opts.address !== undefined ? { MYMDB_HOST_ADDRESS: opts.address } : {}) }
  const s = checkEnv(remoteSpec, env, {
    rules: [addressRule, registryAddressRule, acmeCaRootRule, ...registryRules, ...(opts.rules ?? [])],
    options: opts.address !== undefined ? { MYMDB_HOST_ADDRESS: '--address' } : {},
  })
  return startSettings(s, env)
}

/** The plan for checked settings (pure): what the start does on the host, exactly. */
export function planStart(s: StartSettings, ctx: StartContext): RemoteUpPlan {
  const { address, registry } = ctx
  const { MYMDB_REGISTRY_USERNAME: username, MYMDB_REGISTRY_PASSWORD: password } = s
  const ip = ctx.publicIp ?? (isIP(address) !== 0 ? address : undefined)
  return {
    address,
    sshPort: s.MYMDB_HOST_SSH_PORT,
    user: s.MYMDB_SSH_USER,
    // the same file the host step creates or imports
    keyFile: s.sshKeyFile,
    registry,
    login: ctx.login ?? (username !== undefined && password !== undefined ? { username, password } : undefined),
    images: hostImages(s, registry, ctx.digests),
    keepReleases: s.MYMDB_KEEP_RELEASES,
    httpPort: s.MYMDB_HOST_HTTP_PORT,
    hostName: checkHostName(siteHostNames(s)),
    ...(s.MYMDB_DOMAIN
      ? { https: { domain: s.MYMDB_DOMAIN, ca: s.MYMDB_ACME_CA, port: s.MYMDB_HOST_HTTPS_PORT, ...(ip ? { ip } : {}), dnsWait: s.MYMDB_DNS_WAIT, ...(s.MYMDB_DNS_SERVER ? { dnsServer: s.MYMDB_DNS_SERVER } : {}) } }
      : {}),
    envFile: productionEnvFile(envFileValues(s, registry, ctx.digests)),
    ...(ctx.backup
      ? {
          backupEnv: backupEnvFile(ctx.backup),
          schedule: {
            script: `${backupScript(hostStack({ where: 'the host', run: planOnly }), hostBackupOptions(s.MYMDB_STAGE, 'scheduled'))}\n`,
            line: cronLine(s.MYMDB_BACKUP_SCHEDULE),
            stage: s.MYMDB_STAGE,
          },
        }
      : {}),
  }
}

/** remote:up alone: the settings checked, then planned with the host and registry they name. */
export function planRemoteUp(raw: RawEnv, opts: CheckOptions & Partial<StartContext> = {}): RemoteUpPlan {
  const s = checkRemoteSettings(raw, opts)
  return planStart(s, { ...opts, address: opts.address ?? (s.MYMDB_HOST_ADDRESS as string), registry: opts.registry ?? s.MYMDB_REGISTRY })
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
  const steps = [
    ...(plan.https ? [`wait until ${plan.https.domain} resolves to ${plan.https.ip ?? 'an address'} (DNS record: ${dnsRecord(plan.https)})`] : []),
    'docker info; docker compose version',
    `upload ${REMOTE_DIR}/docker-compose.yml (0644), ${REMOTE_DIR}/.env (0600)${plan.backupEnv ? `, ${REMOTE_DIR}/${BACKUP_ENV_FILE} (0600)` : ''}`]
  if (plan.login) steps.push(showCommand(['docker', 'login', '--username', plan.login.username, '--password-stdin', registryHost(plan.registry)]) + ' (password on stdin)')
  steps.push(
    showStackCommand(stack, stack.compose('pull', '--quiet')),
    ...(plan.schedule ? [`manage.py migrate --check in a throw-away container of ${plan.images.web}; when it fails: a backup into the backup bucket first`] : []),
    'docker swarm init, unless the host is a Swarm node already; a host still on Compose: docker compose down first (the volumes stay)',
    `${showStackCommand(stack, stack.compose('config', '--format', 'json'))} | (the stack file) | ${showCommand(STACK_DEPLOY)}`,
    'wait until every service runs its new image, healthy (a web version that is not is rolled back by Swarm: exit 1)',
    ...[stackCommands.migrateCheck(stack), stackCommands.sampleData(stack)].map((c) => showStackCommand(stack, c)),
    `append a line to ${DEPLOY_LOG} (when, who, which images)`,
    `remove the stack's images that none of the last ${plan.keepReleases} releases in ${DEPLOY_LOG} uses`,
  )
  if (plan.schedule)
    steps.push(
      plan.schedule.line
        ? `upload ${REMOTE_DIR}/${BACKUP_SCRIPT_FILE}; crontab: ${plan.schedule.line}`
        : `remove the backup schedule from the crontab (MYMDB_BACKUP_SCHEDULE=off)`,
    )
  return steps
}
