// The instance's user-data: the script cloud-init runs as root on first boot. It installs Docker
// with the project's own scripts/install-docker.sh (the same script as the local preflight).
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { REPO_ROOT } from '../paths.ts'
import type { HostKeyPair } from '../hostkey.ts'

const INSTALL_PATH = '/opt/mymdb/install-docker.sh'
const HEREDOC = 'MYMDB_INSTALL_DOCKER_EOF'
/** EC2 limit for user-data (before base64). */
export const USER_DATA_LIMIT = 16 * 1024

/**
 * The instance's user-data: a bash script that writes install-docker.sh (verbatim) to the host
 * and runs it for the login user (added to the docker group). Safe to run again.
 */
export function renderUserData(installScript: string, loginUser: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(loginUser)) throw new Error(`not a Unix user name: ${loginUser}`)
  if (installScript.split('\n').includes(HEREDOC)) throw new Error(`the install script contains the line ${HEREDOC}`)
  const body = installScript.endsWith('\n') ? installScript : `${installScript}\n`
  const text = `#!/bin/bash
# MyMDB host setup (EC2 user-data, run by cloud-init as root on first boot): installs Docker,
# Compose v2 and buildx with the project's scripts/install-docker.sh and lets ${loginUser} use Docker.
# Safe to run again: the script only does what is missing.
set -o errexit -o nounset -o pipefail
install -d -m 0755 ${dirname(INSTALL_PATH)}
cat >${INSTALL_PATH} <<'${HEREDOC}'
${body}${HEREDOC}
chmod 0755 ${INSTALL_PATH}
${INSTALL_PATH} ${loginUser} 2>&1 | tee -a /var/log/mymdb-install-docker.log
`
  if (Buffer.byteLength(text) > USER_DATA_LIMIT) throw new Error(`user-data is larger than ${USER_DATA_LIMIT} bytes`)
  return text
}

const BOUNDARY = 'MYMDB-USER-DATA-PART'

/**
 * The user-data with the host's SSH host key (pure): a MIME multipart of a cloud-config, whose
 * ssh_keys cloud-init installs before sshd first starts (and no other host key is made), and the
 * script. The key's public half is the instance's HostKey tag, which the deploy checks.
 */
export function withHostKey(script: string, hostKey: HostKeyPair): string {
  const indented = hostKey.privatePem.trim().split('\n').map((l) => `    ${l}`).join('\n')
  const text = [
    `Content-Type: multipart/mixed; boundary="${BOUNDARY}"`,
    'MIME-Version: 1.0',
    '',
    `--${BOUNDARY}`,
    'Content-Type: text/cloud-config; charset="us-ascii"',
    '',
    '#cloud-config',
    '# The SSH host key the deploy pinned (its public half is the instance\'s HostKey tag).',
    'ssh_deletekeys: true',
    'ssh_genkeytypes: []',
    'ssh_keys:',
    '  ed25519_private: |',
    indented,
    `  ed25519_public: ${hostKey.publicLine}`,
    `--${BOUNDARY}`,
    'Content-Type: text/x-shellscript; charset="us-ascii"',
    '',
    script.trimEnd(),
    `--${BOUNDARY}--`,
    '',
  ].join('\n')
  if (Buffer.byteLength(text) > USER_DATA_LIMIT) throw new Error(`user-data is larger than ${USER_DATA_LIMIT} bytes`)
  return text
}

/** The host key in a user-data made by withHostKey (the rig's stand-in for cloud-init reads it), or null. */
export function userDataHostKey(userData: string): string | null {
  const m = /^ {2}ed25519_private: \|\n((?: {4}.*\n)+)/m.exec(userData)
  return m?.[1] ? `${m[1].split('\n').map((l) => l.slice(4)).join('\n').trim()}\n` : null
}

/** The user-data of a new host: this checkout's scripts/install-docker.sh, for `loginUser`. */
export function hostUserData(loginUser: string): string {
  return renderUserData(readFileSync(join(REPO_ROOT, 'scripts', 'install-docker.sh'), 'utf8'), loginUser)
}
