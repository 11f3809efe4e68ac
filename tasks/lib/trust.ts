// Which SSH host key to demand of a stage's host before anything is sent to it (the sources and
// their order: lib/hostkey.ts), and its record in the stage's known_hosts file once the host
// presented it. With no key known, a terminal may confirm the one the host presents (its
// fingerprint is shown first: trust on first use); without a terminal that is an error.
import { UserError } from './errors.ts'
import { knownHostsPath, parseHostKey, pinnedHostKey, writeKnownHost, type HostKeySources } from './hostkey.ts'
import type { Log } from './log.ts'
import type { Deps } from './main.ts'
import { presentedHostKey, type OpenRemote, type Remote, type SshTarget } from './ssh.ts'

/** What opening a session may ask on a terminal (a host key to confirm), and where it reports. */
export type TrustDeps = Pick<Deps, 'interactive' | 'confirm'> & { log: Log }

/** Opens the session to host `src.node` with its pinned key (see the top of this file). */
export async function openPinned(open: OpenRemote, target: Omit<Parameters<OpenRemote>[0], 'hostKey'>, src: HostKeySources, deps: TrustDeps): Promise<Remote> {
  const file = knownHostsPath(src.sshKeyFile, src.stage)
  const node = src.node ?? 1
  let pinned = pinnedHostKey(src)
  if (!pinned) pinned = await confirmOnTerminal(target, src, file, deps)
  const remote = await open({ ...target, hostKey: pinned.key })
  if (pinned.record) writeKnownHost(file, src.stage, node, pinned.record)
  return remote
}

async function confirmOnTerminal(
  target: Omit<SshTarget, 'hostKey' | 'privateKey'>,
  src: HostKeySources,
  file: string,
  deps: TrustDeps,
): Promise<{ key: NonNullable<ReturnType<typeof parseHostKey>>; record: string }> {
  const where = `${target.username}@${target.host}:${target.port}`
  const howTo =
    'set MYMDB_HOST_KEY to its public key or fingerprint (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), ' +
    'or run this once on a terminal to confirm the key it presents'
  if (!deps.interactive) throw new UserError(`SSH to ${where}: no host key is known for it (not in MYMDB_HOST_KEY, an instance tag or ${file}), so nothing is sent to it: ${howTo}`)
  const seen = await presentedHostKey(target)
  deps.log.warn(`[ssh] ${where} is not known yet: it presents the host key ${seen.fingerprint}`)
  deps.log.warn('[ssh] compare it with the host\'s own (on its console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) before you go on')
  if (!(await deps.confirm(`Trust ${seen.fingerprint} for ${src.stage}?`))) throw new UserError(`SSH to ${where}: its host key was not confirmed; nothing was sent to it`)
  const key = parseHostKey(seen.line, `${file} (confirmed on the terminal)`)
  if (!key) throw new UserError(`SSH to ${where}: the host presented a key of a kind that cannot be recorded`)
  return { key, record: seen.line }
}
