// The start on the host, for a plan (plan.ts): over SSH, wait for Docker, upload the files, set up
// the host's own registry access (pull.ts), pull, pin the unchanged images by digest, back up before migrations, deploy the
// Swarm stack and wait until it is healthy, record the deploy, prune old images, set the backup
// schedule; then check the site from here.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { BACKUP_ENV_FILE } from '../backup.ts'
import { BACKUP_SCRIPT_FILE, CATCH_UP_SCRIPT_FILE, installCronCmd } from '../backupschedule.ts'
import { ConfigError, UserError } from '../errors.ts'
import { stripControls } from '../log.ts'
import type { Deps } from '../main.ts'
import { DEPLOY_LOG, pointEnvAt, recordRelease } from '../releases.ts'
import { retryUntil, runChecked } from '../sh.ts'
import { openRemote, type Remote } from '../ssh.ts'
import { openPinned } from '../trust.ts'
import { INPUTS_LABEL } from '../imageinputs.ts'
import { inputsFacts, keepUnchanged, pinToDigests } from './pin.ts'
import { hostRuns, hostStack, REMOTE_DIR, runInChecked, showStackCommand, startStack, startStackSteps, WAIT_TIMEOUT_SECONDS } from '../stack.ts'
import { pruneImages, releaseBeforeStart, releaseCmd, type ReleaseDone } from './release.ts'
import { PINNED_IMAGES, type ImageName } from '../vars.ts'
import type { StepDeps, StepSeams } from '../step.ts'
import { DB_CA_FILE } from '../stackfile.ts'
import { ensureSiteRole } from './dbrole.ts'
import { FRONT_STORAGE_DIR, mountFrontStorage, unmountFrontStorage } from './frontstore.ts'
import { dnsRecord, httpGet, waitFor200, waitForDns, type HttpGet } from './checks.ts'
import { planOnly, type OtherHost, type RemoteUpPlan } from './plan.ts'
import { clusterRoles, formCluster, retireNode } from './cluster.ts'
import type { HostKeySources } from '../hostkey.ts'
import { DOCKER_CONFIG, ECR_HELPER_PACKAGE, INSTALL_HELPER, describePull, dockerConfig, pullHint, pullLoginCmd, pullSays } from './pull.ts'

/** What a start uses: the task's deps, the seams, and AWS's clients (the database on RDS: its master password). */
export type StartDeps = Deps & StepSeams & Partial<Pick<StepDeps, 'clients'>>

/** How long to wait for Docker on a host whose user-data may still be installing it. */
export const DOCKER_WAIT_SECONDS = 300

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

/** What the phases of a start share: the plan, the task's deps, and the SSH session once open. */
interface Session {
  plan: RemoteUpPlan
  deps: StartDeps
  /** Seconds between polls. */
  poll: number
  remote?: Remote
  /** Sessions to hosts 2..N, by node: opened once (the join), used again (the shared storage), closed with host 1's. */
  others?: Map<number, Remote>
  /** The images the host runs (the db, proxy and cache pinned by digest after the pull). */
  images: Record<ImageName, string>
  /** The site's URL, once checked. */
  url?: string
}

/** One part of a start, in order: what a dry run says it does, and what runs. */
interface Phase {
  says: string[]
  run(s: Session): Promise<void>
}

const connected = (s: Session): Remote => {
  if (!s.remote) throw new Error('not connected to the host')
  return s.remote
}

/** The phases of a start for a plan: the one description of what remoteUp runs (pure). */
export function startPhases(plan: RemoteUpPlan): Phase[] {
  const described = hostStack({ where: 'the host', run: planOnly })
  const phases: Phase[] = []
  if (plan.https) {
    const h = plan.https
    phases.push({
      says: [`wait until ${h.domain} resolves to ${h.ips?.join(', ') ?? 'an address'} (DNS record: ${dnsRecord(h)})`],
      run: ({ deps, poll }) => deps.log.step('dns', `${h.domain} resolves to ${h.ips?.join(', ') ?? 'an address'}`, () => waitForDns(h, deps.log, deps.resolveName, poll * 1000 || 50)),
    })
  }
  phases.push({
    says: ['docker info; docker compose version'],
    async run(s) {
      s.remote = await connect(s, plan.address, plan.hostKey)
      await waitForDocker(s.remote, s.deps, s.poll)
    },
  })
  const retire = plan.retire ?? []
  if (retire.length > 0)
    phases.push({
      says: [
        `hosts ${retire.map((o) => `${o.node} (${o.address})`).join(', ')}, beyond MYMDB_HOSTS: drained (Swarm moves their tasks to the other hosts), demoted, docker swarm leave, docker node rm on host 1 (the deploy terminates their instances afterwards)`,
      ],
      run: (s) => retireOthers(s, retire),
    })
  const others = plan.others ?? []
  if (others.length > 0) {
    const roles = clusterRoles(others.length + 1)
    const managers = roles.filter((r) => r === 'manager').length
    phases.push({
      says: [
        `hosts ${others.map((o) => `${o.node} (${o.address})`).join(', ')}: docker info; then one Docker Swarm with host 1, ${managers > 1 ? `${managers} managers (hosts 1-${managers})` : '1 manager (host 1)'}, the rest workers; join tokens read on host 1 and piped to the joining host, rotated afterwards`,
      ],
      run: (s) => joinOthers(s, others),
    })
  }
  const front = plan.frontStorage
  if (front)
    phases.push({
      says: [`the fronts' shared storage ${front} (the certificate, for every node): mounted at ${FRONT_STORAGE_DIR} on each host over NFS 4.1 (in /etc/fstab; Docker waits for it at boot), unless something is mounted there`],
      run: (s) => s.deps.log.step('front', `the fronts' shared storage on every host`, () => onEveryHost(s, (label, run) => mountFrontStorage(label, run, front, s.deps.log))),
    })
  const db = plan.database
  phases.push({
    says: [
      `upload ${REMOTE_DIR}/docker-compose.yml (0644), ${REMOTE_DIR}/.env (0600)${plan.backupEnv ? `, ${REMOTE_DIR}/${BACKUP_ENV_FILE} (0600)` : ''}` +
        `${db ? `, ${REMOTE_DIR}/${DB_CA_FILE} (0644: the CA bundle of the database's certificate, id ${db.caId})` : ''}`,
    ],
    run: (s) =>
      s.deps.log.step('files', `upload ${REMOTE_DIR}/docker-compose.yml and ${REMOTE_DIR}/.env`, async () => {
        const remote = connected(s)
        await remote.upload(`${REMOTE_DIR}/docker-compose.yml`, readFileSync(resolve(s.deps.root, 'docker-compose.yml')), 0o644)
        await remote.upload(`${REMOTE_DIR}/.env`, plan.envFile, 0o600)
        if (plan.backupEnv) await remote.upload(`${REMOTE_DIR}/${BACKUP_ENV_FILE}`, plan.backupEnv, 0o600)
        if (db) await remote.upload(`${REMOTE_DIR}/${DB_CA_FILE}`, db.ca, 0o644)
      }),
  })
  const pull = plan.pull
  phases.push({
    says: pullSays(pull),
    run: (s) =>
      s.deps.log.step('registry', describePull(pull), async () => {
        const remote = connected(s)
        if (pull.kind === 'role') await runChecked(remote.run, INSTALL_HELPER, { doing: `install ${ECR_HELPER_PACKAGE} on the host (sudo apt-get)` })
        await remote.upload(DOCKER_CONFIG, dockerConfig(pull), 0o600)
        if (pull.kind === 'login') await runChecked(remote.run, pullLoginCmd(pull), { input: pull.password, doing: `log in to the registry ${pull.host} as ${pull.username} (MYMDB_PULL_USERNAME)` })
      }),
  })
  phases.push({
    says: [
      showStackCommand(described, described.compose('pull', '--quiet')),
      ...(db
        ? [`the site's role ${db.role.user} and database ${db.role.name} on RDS ${db.address}:${db.port}: psql in a throw-away container of ${plan.images.db} as the master user (its password from Secrets Manager, through stdin), TLS verified against ${DB_CA_FILE}; the role's password set to DJANGO_DB_PASSWORD`]
        : []),
      `manage.py migrate --check in a throw-away container of ${plan.images.web}; when it fails: ${plan.schedule ? 'a backup into the backup bucket, then ' : ''}manage.py release (the migrations) in one, before the new version starts (a first deploy: once the database runs)`,
      ...startStackSteps(described),
      `append a line to ${DEPLOY_LOG} (when, who, which images)`,
    ],
    run: (s) => release(s),
  })
  if (!front)
    phases.push({
      says: [`on each host, the fronts' shared storage of a front door removed since (its line in /etc/fstab for ${FRONT_STORAGE_DIR}, if any): unmounted, the line and Docker's wait for it taken out`],
      run: (s) => onEveryHost(s, (label, run) => unmountFrontStorage(label, run, s.deps.log)),
    })
  phases.push({
    says: [`remove the stack's images that none of the last ${plan.keepReleases} releases in ${DEPLOY_LOG} uses`],
    run: (s) => s.deps.log.step('prune', `the stack's images that none of the last ${plan.keepReleases} releases uses`, () => pruneImages(hostStack(connected(s)), { ...plan, images: s.images }, s.deps.log)),
  })
  const schedule = plan.schedule
  if (schedule)
    phases.push({
      says: [
        schedule.lines.length > 0
          ? `upload ${REMOTE_DIR}/${BACKUP_SCRIPT_FILE} and ${CATCH_UP_SCRIPT_FILE}; crontab: ${schedule.lines.join('; ')}`
          : `remove the backup schedule from the crontab (MYMDB_BACKUP_SCHEDULE=off)`,
      ],
      run: (s) =>
        s.deps.log.step('schedule', schedule.lines[0] ? `backups on the host: ${schedule.lines[0].split(' cd ')[0]} (cron), and hourly a catch-up of a missed one` : 'no scheduled backups (MYMDB_BACKUP_SCHEDULE=off)', async () => {
          const remote = connected(s)
          await remote.upload(`${REMOTE_DIR}/${BACKUP_SCRIPT_FILE}`, schedule.script, 0o700)
          if (schedule.catchUp) await remote.upload(`${REMOTE_DIR}/${CATCH_UP_SCRIPT_FILE}`, schedule.catchUp, 0o700)
          await runChecked(remote.run, installCronCmd(schedule.lines), { doing: 'set the backup schedule in the crontab' })
        }),
    })
  phases.push(checkSite(plan))
  return phases
}

/** What a start runs on the host, in order (what --dry-run prints). */
export function remoteSteps(plan: RemoteUpPlan): string[] {
  return startPhases(plan).flatMap((p) => p.says)
}

/**
 * Hosts 2..N made one swarm with host 1 (lib/remote/cluster.ts): each reached over SSH with its
 * own pinned key, Docker waited for (a new host may still be installing it), then formCluster.
 * Their sessions stay open for the shared storage; the stack is deployed from host 1.
 */
async function joinOthers(s: Session, others: readonly OtherHost[]): Promise<void> {
  const first = connected(s)
  const down = others.filter((o) => o.down)
  if (down.length > 0) {
    // the roles are decided over every host: with one missing, the swarm is left as it is
    s.deps.log.warn(`[cluster] host ${down.map((o) => `${o.node} (${o.address})`).join(', ')} did not answer: the swarm is left as it is (its tasks run on the other hosts); deploy again once it is back`)
    return
  }
  const opened: Remote[] = []
  for (const o of others) {
    const remote = await otherRemote(s, o)
    opened.push(remote)
    await waitForDocker(remote, s.deps, s.poll)
  }
  const actions = await formCluster([first, ...opened], s.deps.log)
  if (actions.length === 0) s.deps.log.info(`[cluster] the ${opened.length + 1} hosts are one Docker Swarm already, each in its role`)
}

/** The session to another host: the one this start opened already, or a new one (kept in the session). */
async function otherRemote(s: Session, o: OtherHost): Promise<Remote> {
  const open = s.others?.get(o.node)
  if (open) return open
  const remote = await connect(s, o.address, o.hostKey)
  ;(s.others ??= new Map()).set(o.node, remote)
  return remote
}

/** `fn` on host 1, then on each other host that answered (its session opened once), in order. */
async function onEveryHost(s: Session, fn: (label: string, run: Remote['run']) => Promise<void>): Promise<void> {
  await fn('host 1', connected(s).run)
  for (const o of (s.plan.others ?? []).filter((x) => !x.down)) await fn(`host ${o.node}`, (await otherRemote(s, o)).run)
}

/**
 * Hosts beyond MYMDB_HOSTS taken out of the swarm, one at a time (lib/remote/cluster.ts
 * retireNode). One that cannot be reached is said and left: its instance goes anyway.
 */
async function retireOthers(s: Session, retire: readonly OtherHost[]): Promise<void> {
  const first = connected(s)
  for (const o of retire) {
    let leaving: Remote
    try {
      leaving = await connect({ ...s, poll: 1 }, o.address, o.hostKey, 2)
    } catch (e) {
      s.deps.log.warn(`[cluster] host ${o.node} (${o.address}) cannot be reached (${e instanceof Error ? e.message : String(e)}): if \`docker node ls\` on host 1 still lists it, remove it there with docker node rm --force`)
      continue
    }
    try {
      await retireNode(first, leaving, s.deps.log)
    } finally {
      leaving.close()
    }
  }
}

/** The SSH session to one of the plan's hosts (retried while it is still booting). */
async function connect({ plan, deps, poll }: Session, address: string, hostKey: HostKeySources, attempts = 15): Promise<Remote> {
  let privateKey: string
  try {
    privateKey = (deps.readKey ?? ((p: string) => readFileSync(p, 'utf8')))(plan.keyFile)
  } catch (e) {
    throw new ConfigError(`cannot read the SSH key ${plan.keyFile} (${e instanceof Error ? e.message : String(e)}): set MYMDB_SSH_KEY_FILE`)
  }
  const open = deps.openRemote ?? openRemote
  return deps.log.step('ssh', `connect to ${plan.user}@${address}:${plan.sshPort}`, () =>
    openPinned(
      open,
      {
        host: address,
        port: plan.sshPort,
        username: plan.user,
        privateKey,
        attempts,
        retryDelayMs: poll * 1000,
        onRetry: (n, e) => deps.log.info(`[ssh] not reachable yet (${e.message}); attempt ${n + 1} ...`),
      },
      hostKey,
      deps,
    ),
  )
}

/** The release, recorded in the host's history: pull, pin by digest, back up before migrations, start the stack. */
async function release(s: Session): Promise<void> {
  const { plan, deps, poll } = s
  const { log } = deps
  const remote = connected(s)
  const stack = hostStack(remote)
  const before = await hostRuns(remote)
  await recordRelease(stack, () => s.images, { startedAt: new Date(deps.startedAt ?? Date.now()) }, async () => {
    await log.step('pull', `docker compose pull (${Object.values(plan.images).join(', ')})`, () =>
      runInChecked(stack, stack.compose('pull', '--quiet'), { stream: log.prefixed('pull'), doing: `pull the images from ${plan.registry} (${pullHint(plan.pull)})` }),
    )
    const pinned = await pinToDigests(stack, plan.images)
    const { images, kept } = before === 'swarm' ? keepUnchanged(pinned, await inputsFacts(stack, pinned)) : { images: pinned, kept: [] }
    s.images = images
    if (kept.length > 0)
      log.info(`[pull] ${kept.join(', ')}: built from the same sources and base image as the running ${kept.length > 1 ? 'ones' : 'one'} (label ${INPUTS_LABEL}): ${kept.length > 1 ? 'they keep' : 'it keeps'} running (${kept.map((n) => images[n]).join(', ')})`)
    if (PINNED_IMAGES.some((n) => images[n] !== plan.images[n])) {
      await runInChecked(stack, pointEnvAt(images), { doing: `pin the ${PINNED_IMAGES.join(', ')} images by digest in the .env` })
      log.info(`[pull] ${PINNED_IMAGES.join(', ')} pinned by digest in the .env (${PINNED_IMAGES.map((n) => images[n]).join(', ')}): a new tag of the same image does not restart them`)
    }
    if (plan.database) {
      if (!deps.clients) throw new Error('the start needs AWS clients for the database on RDS')
      await ensureSiteRole(remote, deps.clients(plan.database.region), plan.database, plan.database.role, images.db, log)
    }
    const done: ReleaseDone = before === 'none' ? { later: true } : await releaseBeforeStart(hostStack(remote, before), plan.images.web, plan.schedule?.stage, log, { rds: !!plan.database })
    const later = async () => {
      await log.step('release', 'the migrations, once, now that the database runs (manage.py release)', () =>
        runInChecked(stack, releaseCmd(stack), { stream: log.prefixed('release'), doing: 'apply the migrations (manage.py release)' }),
      )
    }
    await startStack(stack, log, WAIT_TIMEOUT_SECONDS, poll * 1000 || 50, done.later ? later : undefined).catch((e: unknown) => {
      // the truth about the schema: the old version was put back onto the migrated database
      if (!done.migrated || !(e instanceof UserError)) throw e
      const back = done.migrated.backup ? `npm run rollback -- --allow-schema-change, then npm run restore -- ${done.migrated.backup} --aws` : 'npm run rollback -- --allow-schema-change'
      throw new UserError(
        `${e.message}. Its migrations were applied before it started: the previous version now runs on the newer database schema, and pages that use what changed may fail. ` +
          `Go forward: fix the new version and deploy again; or back: ${back}`,
      )
    })
  })
}

/** The last phase: the SSH session closed, the site checked from here over HTTP, or HTTPS with its certificate. */
function checkSite(plan: RemoteUpPlan): Phase {
  const host = plan.address.includes(':') ? `[${plan.address}]` : plan.address
  // (a host that did not answer the host step is not checked)
  const others = (plan.others ?? []).filter((o) => !o.down)
  const base = `http://${host}:${plan.httpPort}`
  const https = plan.https
  const check: { what: string; url: string; run(get: HttpGet, pollMs: number): Promise<void> } = https
    ? {
        what: `GET https://${host}:${https.port}/healthz and / (${https.domain}, its certificate checked); http:// redirects to https://${others.length > 0 ? `; /healthz over HTTPS on hosts ${others.map((o) => o.node).join(', ')} too (each host's front has the certificate)` : ''}`,
        url: `https://${https.domain}/`,
        async run(get, pollMs) {
          const { domain } = https
          const secure = `https://${host}:${https.port}`
          const hint = `Did the certificate come (npm run logs -- --aws proxy)? Are ports 80 and 443 open, and does ${domain} resolve to the host?`
          await waitFor200(get, `${secure}/healthz`, domain, CERTIFICATE_WAIT_SECONDS, pollMs, hint)
          await waitFor200(get, `${secure}/`, domain, 30, pollMs, hint)
          // a front that started while another obtained the certificate (or whose own try failed)
          // loads it from the shared storage at its next try: wait for every node's
          for (const o of others) await waitFor200(get, `https://${o.address.includes(':') ? `[${o.address}]` : o.address}:${https.port}/healthz`, domain, CERTIFICATE_WAIT_SECONDS, pollMs, hint)
          const plain = await get(`${base}/`, domain)
          if (![301, 302, 307, 308].includes(plain.status) || !plain.location?.startsWith(`https://${domain}`))
            throw new UserError(`http://${domain}/ does not redirect to https:// (HTTP ${plain.status}${plain.location ? `, to ${plain.location}` : ''})`)
        },
      }
    : {
        what: `GET ${base}/healthz and / (Host: ${plan.hostName})${others.length > 0 ? `; /healthz on hosts ${others.map((o) => o.node).join(', ')} too (each host's front answers)` : ''}`,
        url: plan.httpPort === 80 ? `http://${plan.hostName}/` : `http://${plan.hostName}:${plan.httpPort}/`,
        async run(get, pollMs) {
          await waitFor200(get, `${base}/healthz`, plan.hostName, 60, pollMs)
          await waitFor200(get, `${base}/`, plan.hostName, 30, pollMs)
          for (const o of others) await waitFor200(get, `http://${o.address.includes(':') ? `[${o.address}]` : o.address}:${plan.httpPort}/healthz`, plan.hostName, 60, pollMs)
        },
      }
  return {
    says: [check.what],
    async run(s) {
      closeSession(s)
      await s.deps.log.step('check', check.what, () => check.run(s.deps.httpGet ?? httpGet, s.poll * 1000))
      s.url = check.url
    },
  }
}

function closeSession(s: Session): void {
  s.remote?.close()
  s.remote = undefined
  for (const r of s.others?.values() ?? []) r.close()
  s.others = undefined
}

/** The start for a checked plan: its phases, in order (startPhases). Returns the site's URL. */
export async function remoteUp(plan: RemoteUpPlan, deps: StartDeps): Promise<string> {
  const session: Session = { plan, deps, poll: deps.pollSeconds ?? 2, images: plan.images }
  try {
    for (const phase of startPhases(plan)) await phase.run(session)
  } finally {
    closeSession(session)
  }
  if (!session.url) throw new Error('the start ended without checking the site')
  return session.url
}

/** How long the final check waits for the site over HTTPS (the first certificate included). */
export const CERTIFICATE_WAIT_SECONDS = 300
