// Where the operate tasks (status, logs, manage, ssh) act: the stack on this machine, or with
// --aws the stage's EC2 host over SSH (found by its tags, or reached at MYMDB_HOST_ADDRESS).
// Settings are checked before anything connects; AWS is asked only when it has to be.
import { readFileSync } from 'node:fs'
import { findNodes, reachAddress, type HostInfo } from './aws/instance.ts'
import { nodeName } from './names.ts'
import { LOCAL_DEFAULTS, newLocalSecrets, withLocalDefaults } from './compose.ts'
import { checkEnv, type CleanEnv, type RawEnv } from './env.ts'
import { UserError } from './errors.ts'
import type { Deps } from './main.ts'
import { openRemote, type ConnectOptions, type Remote } from './ssh.ts'
import { openPinned, type TrustDeps } from './trust.ts'
import { hostKeySources } from './hostkey.ts'
import { stepDeps, type StepDeps, type StepSeams } from './step.ts'
import { localStack, openHostStack, type Stack } from './stack.ts'
import { composeVars } from './vars.ts'
import { awsVars } from './awsvars.ts'
import { hostVars, sshKeyExistsRule, sshKeyPath } from './hostvars.ts'


/** The settings that reach the stage's host. */
export const hostAccessSpec = {
  ...awsVars,
  MYMDB_SSH_USER: hostVars.MYMDB_SSH_USER,
  MYMDB_SSH_KEY_FILE: hostVars.MYMDB_SSH_KEY_FILE,
  MYMDB_HOST_ADDRESS: hostVars.MYMDB_HOST_ADDRESS,
  MYMDB_HOST_SSH_PORT: hostVars.MYMDB_HOST_SSH_PORT,
  MYMDB_HOST_KEY: hostVars.MYMDB_HOST_KEY,
}
/** The host access settings, checked, with the private key file they name (under HOME). */
export type HostAccessSettings = CleanEnv<typeof hostAccessSpec> & { sshKeyFile: string }

/** Checks the host access settings (exit 2 listing all problems); the key file must exist. */
export function checkHostAccess(raw: RawEnv): HostAccessSettings {
  const s = checkEnv(hostAccessSpec, raw, { rules: [sshKeyExistsRule] })
  return { ...s, sshKeyFile: sshKeyPath(s, raw) }
}

/** Checks the local stack's settings; the secrets compose needs to read its file get throw-away values when unset. */
export function checkLocal(raw: RawEnv): { project: string; env: RawEnv } {
  const env = withLocalDefaults(raw, { ...LOCAL_DEFAULTS, ...newLocalSecrets() })
  return { project: checkEnv(composeVars, raw).COMPOSE_PROJECT_NAME, env }
}

/** The stack on this machine, as the operate tasks use it. */
export function localTarget(deps: Deps, local: { project: string; env: RawEnv }): Stack {
  return localStack(deps.run, deps.root, local.project, local.env)
}

/** A host of the stage found (or not), and where to reach it. */
export interface Found {
  address: string | undefined
  instance: HostInfo | null | undefined
  /** Which host of the stage (1, 2, ...). */
  node: number
  /** Every host of the stage by number, when AWS was asked. */
  hosts?: Map<number, HostInfo>
}

/**
 * Host `node`'s instance (when `lookUp`, or when MYMDB_HOST_ADDRESS has no address for it) and
 * the address to reach it at: its MYMDB_HOST_ADDRESS entry, or the public IP of a running instance.
 */
export async function findTarget(s: HostAccessSettings, deps: Pick<StepDeps, 'clients'>, lookUp: boolean, node = 1): Promise<Found> {
  let instance: HostInfo | null | undefined
  let hosts: Map<number, HostInfo> | undefined
  if (lookUp || !s.MYMDB_HOST_ADDRESS?.[node - 1]) {
    hosts = await findNodes(deps.clients(s.AWS_REGION), s.MYMDB_STAGE)
    instance = hosts.get(node) ?? null
  }
  return { address: reachAddress(s.MYMDB_HOST_ADDRESS, instance?.state === 'running' ? instance : null, node), instance, node, ...(hosts ? { hosts } : {}) }
}

/** The address to connect to, or a UserError saying why there is none (no host, stopped, no IP). */
export function reachable(s: HostAccessSettings, found: Found): string {
  const { address, instance } = found
  if (address) return address
  if (!instance && found.node > 1) throw new UserError(`no host ${found.node} (${nodeName(s.MYMDB_STAGE, found.node)}) in stage ${s.MYMDB_STAGE} in ${s.AWS_REGION}: the stage's hosts are counted by MYMDB_HOSTS at deploy:aws`)
  if (!instance) throw new UserError(`no EC2 host for stage ${s.MYMDB_STAGE} in ${s.AWS_REGION}: deploy first with npm run deploy:aws`)
  if (instance.state !== 'running') throw new UserError(`the host ${instance.instanceId} is ${instance.state}: start it again with npm run deploy:aws`)
  throw new UserError(`the host ${instance.instanceId} has no public IP address: set MYMDB_HOST_ADDRESS to an address that reaches it`)
}

/**
 * Opens the SSH session to the host, which must present its pinned host key (lib/trust.ts; the
 * instance's HostKey tag when it was looked up). Close it with `remote.close()`.
 */
export async function connectTarget(
  s: HostAccessSettings,
  address: string,
  extra: StepSeams,
  deps: TrustDeps,
  tries: Pick<ConnectOptions, 'attempts' | 'readyTimeout'> = { attempts: 3 },
  instance?: HostInfo | null,
  node = 1,
): Promise<Remote> {
  const username = s.MYMDB_SSH_USER
  return openPinned(
    extra.openRemote ?? openRemote,
    {
      host: address,
      port: s.MYMDB_HOST_SSH_PORT,
      username,
      privateKey: readFileSync(s.sshKeyFile),
      ...tries,
      onRetry: (n, e) => deps.log.info(`[ssh] ${username}@${address}: ${e.message}; attempt ${n + 1} ...`),
    },
    hostKeySources(s, instance?.hostKey, node),
    deps,
  )
}

/** Opens the SSH session to the host and gives its stack (as it runs there: Swarm, or Compose before its first such deploy). */
export async function openTarget(s: HostAccessSettings, address: string, extra: StepSeams, deps: TrustDeps, instance?: HostInfo | null): Promise<{ remote: Remote; stack: Stack }> {
  const remote = await connectTarget(s, address, extra, deps, undefined, instance)
  try {
    return { remote, stack: await openHostStack(remote) }
  } catch (e) {
    remote.close()
    throw e
  }
}

export interface Target {
  stack: Stack
  /** Names backups: the Compose project here, the stage on the host. */
  source: string
  /** The stage's instance, when AWS was asked (--aws). */
  instance?: HostInfo | null
  /** Ends the SSH session (nothing here). */
  close(): void
}

/**
 * The stack to act on: this machine's, or (aws) the host's over SSH. Checks the settings first
 * (exit 2 listing all problems), then finds and connects to the host.
 */
export async function resolveTarget(aws: boolean, raw: RawEnv, deps: Deps, extra: StepSeams = {}): Promise<Target> {
  if (!aws) {
    const local = checkLocal(raw)
    return { stack: localTarget(deps, local), source: local.project, close: () => {} }
  }
  const s = checkHostAccess(raw)
  const found = await findTarget(s, stepDeps(deps, extra, raw), false)
  const { remote, stack } = await openTarget(s, reachable(s, found), extra, deps, found.instance)
  return { stack, source: s.MYMDB_STAGE, instance: found.instance, close: () => remote.close() }
}
