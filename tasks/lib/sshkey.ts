// The SSH private key file of a stage: where it is, whether it is a usable private key (and its
// public key, for importing the key pair), and writing a new one safely.
import { accessSync, chmodSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { lazy } from './lazy.ts'
import { expandHome } from './paths.ts'
import { stageName } from './names.ts'
import { ConfigError } from './errors.ts'

const SSH2 = lazy<typeof import('ssh2')>('ssh2')

/** The private key file: MYMDB_SSH_KEY_FILE (~ expanded) or ~/.ssh/mymdb-<stage>.pem. */
export function keyFilePath(value: string | undefined, stage: string, home: string): string {
  if (!value) return join(home, '.ssh', `${stageName(stage)}.pem`)
  return expandHome(value, home)
}

export type KeyFile = { path: string; exists: false } | { path: string; exists: true; publicKey: string }

/**
 * Reads the private key file (if it exists) and derives its OpenSSH public key line. A file that
 * exists but cannot be read or is not an unencrypted private key is a ConfigError (exit 2).
 */
export function inspectKeyFile(path: string, comment = 'mymdb'): KeyFile {
  if (!existsSync(path)) return { path, exists: false }
  let text: Buffer
  try {
    if (!statSync(path).isFile()) throw new Error('not a file')
    accessSync(path, fsConstants.R_OK)
    text = readFileSync(path)
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err)
    throw new ConfigError(
      `cannot read the SSH key file ${path} (${why}): fix its permissions (chmod 600, owned by you), or set MYMDB_SSH_KEY_FILE to another file`,
    )
  }
  const parsed = SSH2.utils.parseKey(text)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (key && !(key instanceof Error) && key.isPrivateKey()) {
    const publicKey = `${key.type} ${key.getPublicSSH().toString('base64')}`
    return { path, exists: true, publicKey: `${publicKey} ${comment}` }
  }
  // The SSH client (ssh2) reads OpenSSH and PEM (PKCS#1) keys; a PKCS#8 "BEGIN PRIVATE KEY" would
  // pass the host step and then fail to connect, so it is refused here, with the conversion.
  const pkcs8 = /-----BEGIN PRIVATE KEY-----/.test(text.toString())
  const publicFile = /^(ssh-|ecdsa-)/.test(text.toString().trim())
  throw new ConfigError(
    publicFile
      ? `${path} is a public key: MYMDB_SSH_KEY_FILE must name the private key (the file without .pub)`
      : pkcs8
        ? `${path} is a PKCS#8 private key, which the SSH client cannot use: convert it to OpenSSH format with ssh-keygen -p -N '' -f ${path}`
        : `${path} is not a usable private key${key instanceof Error ? ` (${key.message})` : ''}: MYMDB_SSH_KEY_FILE must name an unencrypted OpenSSH or PEM private key (RSA or ed25519), or a file that does not exist yet (it is then created)`,
  )
}


/** Writes a private key with mode 0600 (its directory 0700 when created); never overwrites. */
export function saveKeyFile(path: string, material: string): void {
  const dir = dirname(path)
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 })
  writeFileSync(path, material.endsWith('\n') ? material : `${material}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(path, 0o600)
}

