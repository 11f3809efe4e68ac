// The instance's user-data: the script cloud-init runs as root on first boot. It installs Docker
// with the project's own scripts/install-docker.sh (the same script as the local preflight).
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { REPO_ROOT } from '../paths.ts'

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

/** The user-data of a new host: this checkout's scripts/install-docker.sh, for `loginUser`. */
export function hostUserData(loginUser: string): string {
  return renderUserData(readFileSync(join(REPO_ROOT, 'scripts', 'install-docker.sh'), 'utf8'), loginUser)
}
