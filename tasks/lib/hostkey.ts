// The SSH host key a stage's host must present: nothing is sent to a host whose key is not this
// one (lib/ssh.ts checks it during the key exchange, before the login).
//
// Where it comes from, first match wins (pinnedHostKey):
//   1. MYMDB_HOST_KEY: the host's public key (`ssh-ed25519 AAAA...`) or its fingerprint
//      (`SHA256:...`), for a host the deploy did not launch (read it on the host's console:
//      `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`);
//   2. the instance's HostKey tag: a host the deploy launched was given an ed25519 host key by
//      its user-data (cloud-init's ssh_keys, installed before sshd first starts), and its public
//      half was tagged on the instance (the AWS API is the trusted channel);
//   3. the stage's known_hosts file (~/.ssh/mymdb-<stage>.known_hosts, next to the SSH key),
//      written whenever 1 or 2 gave a key, or when you confirmed a key on a terminal (trust on
//      first use: the fingerprint is shown before anything is sent).
// The launched host's key is derived from the deployer's SSH private key, the stage, the host's
// number and its security group (new after destroy:aws): a retried launch gets the same
// user-data, so EC2's ClientToken still finds the first instance instead of making a twin.
import { createHash, createHmac, createPrivateKey, createPublicKey } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { UserError } from './errors.ts'
import { nodeName } from './names.ts'

/** The tag on an instance that holds its SSH host's public key. */
export const HOST_KEY_TAG = 'HostKey'

/** An ed25519 host key: the private half in OpenSSH's format (what sshd and ssh-keygen read), the public as an OpenSSH line. */
export interface HostKeyPair {
  /** -----BEGIN OPENSSH PRIVATE KEY----- ... */
  privatePem: string
  publicLine: string
}

/** An SSH wire string: its length, then its bytes. */
function str(b: Buffer | string): Buffer {
  const bytes = Buffer.from(b)
  return Buffer.concat([u32(bytes.length), bytes])
}

/** The SSH key blob of a raw 32-byte ed25519 public key. */
function ed25519Blob(raw: Buffer): Buffer {
  return Buffer.concat([str('ssh-ed25519'), str(raw)])
}

/**
 * An unencrypted ed25519 private key in OpenSSH's own format (PROTOCOL.key in OpenSSH's sources):
 * the public blob, then a private section of two equal check numbers (from the seed: the same key
 * gives the same text), the key and an empty comment, padded to 8 bytes.
 */
function opensshPrivateKey(seed: Buffer, pub: Buffer): string {
  const check = seed.subarray(0, 4)
  let section = Buffer.concat([check, check, str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str('')])
  const pad = (8 - (section.length % 8)) % 8
  section = Buffer.concat([section, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))])
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), str('none'), str('none'), str(''), u32(1), str(ed25519Blob(pub)), str(section)])
  const lines = body.toString('base64').match(/.{1,70}/g) ?? []
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

/** The host key of host `node` of a stage (pure: the same inputs give the same key). */
export function deriveHostKey(deployerKey: string | Buffer, stage: string, node: number, securityGroupId: string): HostKeyPair {
  const seed = createHmac('sha256', deployerKey).update(`mymdb ssh host key\0${stage}\0${node}\0${securityGroupId}`).digest()
  // PKCS#8 of an ed25519 private key: a fixed prefix, then the 32-byte seed
  const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' })
  const raw = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x ?? '', 'base64url')
  return { privatePem: opensshPrivateKey(seed, raw), publicLine: `ssh-ed25519 ${ed25519Blob(raw).toString('base64')}` }
}

/** The key type a key blob names (its first SSH string: ssh-ed25519, ...). */
function blobType(blob: Buffer): string {
  return blob.length > 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString() : ''
}

/** The key blob of an OpenSSH public key line (`type base64 [comment]`), or null when it is not one. */
export function keyBlob(line: string): Buffer | null {
  const m = /^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) ([A-Za-z0-9+/]+={0,2})(?: .*)?$/.exec(line.trim())
  if (!m?.[2]) return null
  const blob = Buffer.from(m[2], 'base64')
  return blobType(blob) === m[1] ? blob : null
}

/** The public key line of a key blob, `type base64` (no comment), as known_hosts and the HostKey tag hold it. */
export function keyLine(blob: Buffer): string {
  return `${blobType(blob)} ${blob.toString('base64')}`
}

/** A public key line without its comment or surrounding space; null when `text` is not one. */
function normalLine(text: string): string | null {
  const blob = keyBlob(text)
  return blob ? keyLine(blob) : null
}

/** OpenSSH's fingerprint of a key blob: SHA256:<base64 without padding>. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
}

/** What the host must present: a public key line, or only its fingerprint. */
export interface HostKey {
  /** SHA256:... */
  fingerprint: string
  /** The key type (ssh-ed25519, ...), when the whole public key is known: the only one offered to the host. */
  type?: string
  /** Where it came from, for messages. */
  source: string
}

/** A HostKey from a public key line or a fingerprint; null when the text is neither. */
export function parseHostKey(text: string, source: string): HostKey | null {
  const t = text.trim()
  if (/^SHA256:[A-Za-z0-9+/]{43}$/.test(t)) return { fingerprint: t, source }
  const blob = keyBlob(t)
  return blob ? { fingerprint: fingerprint(blob), type: blobType(blob), source } : null
}

/** The stage's known_hosts file: next to the SSH private key. */
export function knownHostsPath(sshKeyFile: string, stage: string): string {
  return join(dirname(sshKeyFile), `mymdb-${stage}.known_hosts`)
}

/** The lines of a known_hosts file (none when it does not exist), each with the host names it is for. */
function knownHostLines(file: string): { line: string; names: string[]; key: string }[] {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      const [hosts = '', ...key] = line.trim().split(/\s+/)
      return { line, names: hosts.split(','), key: key.join(' ') }
    })
}

/** The public key line recorded for host `node` of a stage, or undefined. */
export function readKnownHost(file: string, stage: string, node = 1): string | undefined {
  const name = nodeName(stage, node)
  for (const l of knownHostLines(file)) {
    const key = l.names.includes(name) ? normalLine(l.key) : null
    if (key) return key
  }
  return undefined
}

/** Records host `node`'s public key (replacing the one recorded before), in OpenSSH's known_hosts format. */
export function writeKnownHost(file: string, stage: string, node: number, publicLine: string): void {
  const name = nodeName(stage, node)
  const kept = knownHostLines(file).filter((l) => !l.names.includes(name)).map((l) => l.line)
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${[...kept, `${name} ${normalLine(publicLine) ?? publicLine.trim()}`].join('\n')}\n`, { mode: 0o644 })
  renameSync(tmp, file)
}

/** Where pinnedHostKey looks. */
export interface HostKeySources {
  stage: string
  node?: number
  sshKeyFile: string
  /** MYMDB_HOST_KEY */
  setting?: string
  /** The instance's HostKey tag, when the instance was looked up. */
  tagged?: string
}

/** A pinned key, and the public key line to record in the known_hosts file once the host presented it. */
export interface Pinned {
  key: HostKey
  /** A whole public key line from the setting or the tag that the file does not hold yet. */
  record?: string
}

/**
 * The key host `node` must present (see the top of this file). Reads only. Null when nothing names
 * one (the caller may ask on a terminal); UserError when MYMDB_HOST_KEY and the instance's tag disagree.
 */
export function pinnedHostKey(src: HostKeySources): Pinned | null {
  const file = knownHostsPath(src.sshKeyFile, src.stage)
  const node = src.node ?? 1
  const setting = src.setting ? parseHostKey(src.setting, 'MYMDB_HOST_KEY') : null
  const tagged = src.tagged ? parseHostKey(src.tagged, `the ${HOST_KEY_TAG} tag of the instance ${nodeName(src.stage, node)}`) : null
  if (setting && tagged && setting.fingerprint !== tagged.fingerprint)
    throw new UserError(`MYMDB_HOST_KEY (${setting.fingerprint}) is not the key the deploy gave the instance ${nodeName(src.stage, node)} (${tagged.fingerprint}, its ${HOST_KEY_TAG} tag): remove MYMDB_HOST_KEY, or correct it`)
  const known = readKnownHost(file, src.stage, node)
  const chosen = setting ?? tagged
  if (!chosen) return known ? { key: parseHostKey(known, file) as HostKey } : null
  const line = normalLine((setting ? src.setting : src.tagged) ?? '')
  return line && line !== known ? { key: chosen, record: line } : { key: chosen }
}

/** Where the key of a stage's first host comes from: the settings (MYMDB_HOST_KEY), and the instance's tag when it was looked up. */
export function hostKeySources(s: { MYMDB_STAGE: string; sshKeyFile: string; MYMDB_HOST_KEY?: string }, tagged?: string, node = 1): HostKeySources {
  // MYMDB_HOST_KEY is host 1's; the others have their tags or the known_hosts file
  return { stage: s.MYMDB_STAGE, sshKeyFile: s.sshKeyFile, ...(node === 1 ? { setting: s.MYMDB_HOST_KEY } : { node }), tagged }
}

/** The UserError for a host that presented another key than the pinned one. */
export function hostKeyMismatch(where: string, expected: HostKey, presented: string | undefined): UserError {
  return new UserError(
    `SSH to ${where}: the host presented the key ${presented ?? '(none)'}, not ${expected.fingerprint} (${expected.source}); nothing was sent to it. ` +
      'Either something else answers at that address (a replaced host, a released address now someone else\'s, a machine in the middle): check the address and MYMDB_HOST_ADDRESS; ' +
      'or the host is yours and its key changed: check the fingerprint on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then set MYMDB_HOST_KEY to it',
  )
}
