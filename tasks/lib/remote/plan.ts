// The plan of a start on the host (pure): where to connect, which images, the host's .env and
// backup files, the HTTPS site and its DNS record, the backup schedule. remoteSteps says, in
// order, what up.ts runs for a plan (the dry run prints it).
import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { ConfigError } from '../errors.ts'
import type { RdsTarget, SiteRole } from './dbrole.ts'
import type { BackupTarget, HostResult, NodeReach } from '../aws/host.ts'
import { backupScript, hostBackupOptions } from '../backup.ts'
import { BACKUP_LOCK_SECONDS, catchUpScript, cronLines, longestGapSeconds } from '../backupschedule.ts'
import { checkEnv, type RawEnv, type Rule } from '../env.ts'
import { hostStack } from '../stack.ts'
import { type ImageName } from '../vars.ts'
import { acmeCaRootRule, hstsRule } from '../hostvars.ts'
import { clusterAddressesDatabaseRule, dbCaFileRule, postgresPasswordRule } from '../dbvars.ts'
import { hostKeySources, type HostKeySources } from '../hostkey.ts'
import { pullAccess, registryHost, registryRules, type PullAccess } from '../awsvars.ts'
import { checkHostName, type HttpsPlan } from './checks.ts'
import { backupEnvFile, envFileValues, hostImages, siteHostNames, productionEnvFile } from './envfile.ts'
import { FRONT_DATA_DIR } from './frontstore.ts'
import { remoteSpec, startSettings, type RemoteSettings, type StartSettings } from './settings.ts'

/** Another host of the cluster, as the start reaches it. */
export interface OtherHost {
  node: number
  address: string
  hostKey: HostKeySources
  /** It did not answer the host step: left out of this deploy. */
  down?: boolean
}

export interface RemoteUpPlan {
  address: string
  /** With several hosts: hosts 2..N, made one Docker Swarm with host 1 before the stack is deployed. */
  others?: OtherHost[]
  /** Hosts beyond MYMDB_HOSTS: drained and taken out of the swarm first (the deploy terminates them after). */
  retire?: OtherHost[]
  sshPort: number
  user: string
  keyFile: string
  /** Where the host key it must present comes from (lib/hostkey.ts). */
  hostKey: HostKeySources
  registry: string
  /** How the host gets into the registry: its instance role (ECR), its pull-only login, or none. */
  pull: PullAccess
  /** Registry credentials that stay here while the host pulls anonymously: said once. */
  pullWarning?: string
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
  schedule?: { script: string; lines: string[]; catchUp?: string; stage: string }
  /** MYMDB_DATABASE=rds: the database, the CA bundle of its certificate (uploaded; caId: its id), and the site's role made there. */
  database?: RdsTarget & { ca: string; caId: string; role: SiteRole }
  /** Several hosts: the fronts' shared storage every host mounts (lib/remote/frontstore.ts), its address. */
  frontStorage?: string
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
  /** Where and as whom the host writes backups (the host step's result). */
  backup?: BackupTarget
  /** The digests push reported (the host pins the db, proxy and cache images by them). */
  digests?: Partial<Record<ImageName, string>>
  /** The host's public IP: MYMDB_DOMAIN must resolve to it (default: the address, when it is an IP). */
  publicIp?: string
  /** The instance's HostKey tag (the host step found or launched it). */
  hostKey?: string
  /** Hosts 2..N of the stage, when it has several. */
  others?: HostAt[]
  /** Hosts beyond MYMDB_HOSTS, to take out of the swarm. */
  retire?: HostAt[]
  /** MYMDB_DATABASE=rds: where the database answers (the database step's result, or looked up). */
  database?: RdsTarget
  /** Several hosts: the address of the fronts' shared storage (the front step's result, or looked up). */
  frontStorage?: string
  /** Several hosts: the load balancer's public addresses, where MYMDB_DOMAIN must point (instead of the host's). */
  frontAddresses?: string[]
}

/** Another host of the stage: its number, address, HostKey tag, and whether it did not answer the host step. */
export interface HostAt {
  node: number
  address: string
  hostKey?: string
  down?: boolean
}

/** The start's input: checked settings, and where the host and the images are. */
export interface StartInput {
  settings: StartSettings
  context: StartContext
}

export interface RemoteCheckOptions {
  /** The host address from --address (problems then name the option). */
  address?: string
  /** More rules to check with the settings (e.g. that the key file exists). */
  rules?: readonly Rule<RemoteSettings>[]
}

/** remote:up alone: its settings checked once, all problems at once (EnvError, exit 2). */
export function checkRemoteSettings(raw: RawEnv, opts: RemoteCheckOptions = {}): StartSettings {
  const env: RawEnv = { ...raw, ...(opts.address !== undefined ? { MYMDB_HOST_ADDRESS: opts.address } : {}) }
  const s = checkEnv(remoteSpec, env, {
    rules: [addressRule, registryAddressRule, acmeCaRootRule, hstsRule, dbCaFileRule, clusterAddressesDatabaseRule, postgresPasswordRule, ...registryRules, ...(opts.rules ?? [])],
    options: opts.address !== undefined ? { MYMDB_HOST_ADDRESS: '--address' } : {},
  })
  return startSettings(s, env)
}

/** The plan for checked settings (pure): what the start does on the host, exactly. */
export function planStart(s: StartSettings, ctx: StartContext): RemoteUpPlan {
  const { address, registry } = ctx
  const database = rdsPlan(s, ctx.database)
  // one certificate for the cluster: each front ordering its own fails behind the load balancer (bench/FRONT-SPIKE.md)
  if ((ctx.others?.length ?? 0) > 0 && s.MYMDB_DOMAIN && !ctx.frontStorage)
    throw new ConfigError("several hosts with MYMDB_DOMAIN need the fronts' shared storage, where the one certificate is kept: its address is not known (npm run front makes it; npm run deploy:aws runs that step)")
  const ip = ctx.publicIp ?? (isIP(address) !== 0 ? address : undefined)
  // where the site's name points: a cluster's load balancer, or the host
  const siteIps = ctx.frontAddresses && ctx.frontAddresses.length > 0 ? ctx.frontAddresses : ip ? [ip] : undefined
  const pull = pullAccess(s, registryHost(registry))
  const other = (o: HostAt): OtherHost => ({ node: o.node, address: o.address, hostKey: hostKeySources(s, o.hostKey, o.node), ...(o.down ? { down: true } : {}) })
  return {
    address,
    ...(ctx.others && ctx.others.length > 0 ? { others: ctx.others.map(other) } : {}),
    ...(ctx.retire && ctx.retire.length > 0 ? { retire: ctx.retire.map(other) } : {}),
    sshPort: s.MYMDB_HOST_SSH_PORT,
    user: s.MYMDB_SSH_USER,
    // the same file the host step creates or imports
    keyFile: s.sshKeyFile,
    hostKey: hostKeySources(s, ctx.hostKey),
    registry,
    pull,
    ...(pull.kind === 'anonymous' && s.MYMDB_REGISTRY_USERNAME !== undefined
      ? { pullWarning: `MYMDB_REGISTRY_USERNAME is for pushing from this machine only; the host pulls without a login: if the repositories are private, set MYMDB_PULL_USERNAME and MYMDB_PULL_PASSWORD (a read-only token)` }
      : {}),
    images: hostImages(s, registry, ctx.digests),
    keepReleases: s.MYMDB_KEEP_RELEASES,
    httpPort: s.MYMDB_HOST_HTTP_PORT,
    hostName: checkHostName(siteHostNames(s)),
    ...(s.MYMDB_DOMAIN
      ? { https: { domain: s.MYMDB_DOMAIN, ca: s.MYMDB_ACME_CA, port: s.MYMDB_HOST_HTTPS_PORT, ...(siteIps ? { ips: siteIps } : {}), dnsWait: s.MYMDB_DNS_WAIT, ...(s.MYMDB_DNS_SERVER ? { dnsServer: s.MYMDB_DNS_SERVER } : {}) } }
      : {}),
    envFile: productionEnvFile(envFileValues(s, registry, ctx.digests, database, ctx.frontStorage ? FRONT_DATA_DIR : undefined)),
    ...(database ? { database } : {}),
    ...(ctx.frontStorage ? { frontStorage: ctx.frontStorage } : {}),
    ...(ctx.backup
      ? {
          backupEnv: backupEnvFile(ctx.backup),
          schedule: {
            script: `${backupScript(hostStack({ where: 'the host', run: planOnly }), { ...hostBackupOptions(s.MYMDB_STAGE, 'scheduled'), lock: { stage: s.MYMDB_STAGE, seconds: BACKUP_LOCK_SECONDS } })}\n`,
            lines: cronLines(s.MYMDB_BACKUP_SCHEDULE),
            ...(s.MYMDB_BACKUP_SCHEDULE === 'off' ? {} : { catchUp: `${catchUpScript(longestGapSeconds(s.MYMDB_BACKUP_SCHEDULE) + 3600)}\n` }),
            stage: s.MYMDB_STAGE,
          },
        }
      : {}),
  }
}

/** The database part of the plan (pure): none for the stack's own db; on RDS, its target, the CA bundle and its id, the site's role. */
function rdsPlan(s: StartSettings, target: RdsTarget | undefined): RemoteUpPlan['database'] {
  if (s.MYMDB_DATABASE !== 'rds') return undefined
  if (!target || !s.dbCa) throw new ConfigError("MYMDB_DATABASE=rds: the database's endpoint is not known (npm run database makes it; npm run deploy:aws runs that step)")
  return { ...target, ca: s.dbCa, caId: createHash('sha256').update(s.dbCa).digest('hex').slice(0, 12), role: { user: s.DJANGO_DB_USER, password: s.DJANGO_DB_PASSWORD, name: s.DJANGO_DB_NAME } }
}

/**
 * The start step's input from the earlier steps' results (pure): this commit's tag, the site's
 * names (the instance's public name and address added), the registry the images are in (push's
 * login stays on this machine), the host and its backup target.
 */
export function startInput(
  s: StartSettings,
  push: { tag: string; prefix: string } & Pick<StartContext, 'digests'>,
  host: HostResult & { address: string },
  database?: RdsTarget,
  /** Several hosts: the front door (the front step's result): the shared storage, the load balancer's addresses. */
  front?: { sharedFs: string; addresses: string[] },
): StartInput {
  const names = [...s.DJANGO_ALLOWED_HOSTS, host.host?.publicDns, host.host?.publicIp].filter((n, i, all): n is string => !!n && all.indexOf(n) === i)
  const at = (n: NodeReach): HostAt => ({ node: n.node, address: n.address ?? '', ...(n.host?.hostKey ? { hostKey: n.host.hostKey } : {}), ...(n.down ? { down: true } : {}) })
  return {
    settings: { ...s, MYMDB_TAG: push.tag, DJANGO_ALLOWED_HOSTS: names },
    context: {
      address: host.address,
      registry: push.prefix,
      backup: host.backup,
      ...(push.digests ? { digests: push.digests } : {}),
      ...(host.host?.publicIp ? { publicIp: host.host.publicIp } : {}),
      ...(host.host?.hostKey ? { hostKey: host.host.hostKey } : {}),
      ...(host.nodes.length > 1 ? { others: host.nodes.slice(1).map(at) } : {}),
      ...(host.retire.length > 0 ? { retire: host.retire.map(at) } : {}),
      ...(database ? { database } : {}),
      ...(front?.sharedFs ? { frontStorage: front.sharedFs } : {}),
      ...(front && front.addresses.length > 0 ? { frontAddresses: front.addresses } : {}),
    },
  }
}

/** remote:up alone: host 1 and the others from MYMDB_HOST_ADDRESS (or --address), one address per host. */
export function hostsOf(s: Pick<StartSettings, 'MYMDB_HOST_ADDRESS'>): Pick<StartContext, 'address' | 'others'> {
  const [address = '', ...rest] = s.MYMDB_HOST_ADDRESS ?? []
  return { address, ...(rest.length > 0 ? { others: rest.map((a, i) => ({ node: i + 2, address: a })) } : {}) }
}

/** remote:up alone: the settings checked, then planned with the host and registry they name. */
export function planRemoteUp(raw: RawEnv, opts: RemoteCheckOptions & Partial<StartContext> = {}): RemoteUpPlan {
  const s = checkRemoteSettings(raw, opts)
  return planStart(s, { ...opts, ...hostsOf(s), registry: opts.registry ?? s.MYMDB_REGISTRY })
}

/** The runner of a plan's commands: a plan runs nothing (its commands are only shown). */
export const planOnly = () => Promise.reject(new Error('a plan runs nothing'))
