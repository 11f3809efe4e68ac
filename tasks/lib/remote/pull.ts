// How the host gets into the registry (pure commands and files; up.ts runs them). The deployer's
// own registry login never leaves this machine:
//   ECR         the host asks for its own tokens with its instance role, whose policy allows
//               pulling the stage's repositories only (aws/roles.ts): Debian's
//               amazon-ecr-credential-helper, named for the ECR host in ~/.docker/config.json
//   other       MYMDB_PULL_USERNAME/MYMDB_PULL_PASSWORD (a read-only token) with docker login
//   none        anonymous pulls (public repositories)
// ~/.docker/config.json of the login user is the deploy's: written on every deploy, so a login an
// older deploy left there (the deployer's ECR token) is gone.
import type { PullAccess } from '../awsvars.ts'
import { showCommand, type Cmd } from '../sh.ts'

/** The login user's Docker client configuration on the host. */
export const DOCKER_CONFIG = '~/.docker/config.json'
/** Debian's package of the ECR credential helper, and the helper's name in a Docker configuration. */
export const ECR_HELPER_PACKAGE = 'amazon-ecr-credential-helper'
export const ECR_HELPER = 'ecr-login'

/** The host's ~/.docker/config.json (pure): the ECR helper for the ECR host, else nothing (docker login adds to it). */
export function dockerConfig(pull: PullAccess): string {
  return `${JSON.stringify(pull.kind === 'role' ? { credHelpers: { [pull.host]: ECR_HELPER } } : {}, null, 2)}\n`
}

/** Installs the helper when a host set up before it was part of the install script lacks it. */
export const INSTALL_HELPER: Cmd = [
  'sh',
  '-c',
  `command -v docker-credential-${ECR_HELPER} >/dev/null 2>&1 && exit 0
sudo -n env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends ${ECR_HELPER_PACKAGE}' >/dev/null`,
]

/** docker login with the pull-only credential (the password on stdin). */
export function pullLoginCmd(pull: Extract<PullAccess, { kind: 'login' }>): Cmd {
  return ['docker', 'login', '--username', pull.username, '--password-stdin', pull.host]
}

/** One line on how the host pulls (pure; the show of the start). */
export function describePull(pull: PullAccess): string {
  switch (pull.kind) {
    case 'role':
      return `the host pulls from ${pull.host} with its instance role (${ECR_HELPER_PACKAGE})`
    case 'login':
      return `the host pulls from ${pull.host} as ${pull.username} (MYMDB_PULL_USERNAME)`
    case 'anonymous':
      return `the host pulls from ${pull.host} without a login`
  }
}

/** What the pull phase does, for the dry run (pure). */
export function pullSays(pull: PullAccess): string[] {
  const config = `write ${DOCKER_CONFIG} (0600)`
  switch (pull.kind) {
    case 'role':
      return [`${ECR_HELPER_PACKAGE} installed when missing; ${config}: credHelpers ${pull.host} -> ${ECR_HELPER} (tokens from the instance role)`]
    case 'login':
      return [`${config}; ${showCommand(pullLoginCmd(pull))} (MYMDB_PULL_PASSWORD on stdin)`]
    case 'anonymous':
      return [`${config} without logins (anonymous pulls)`]
  }
}

/** What to check when the pull fails (pure). */
export function pullHint(pull: PullAccess): string {
  switch (pull.kind) {
    case 'role':
      return `the host pulls with its instance role (${ECR_HELPER_PACKAGE}; its log: ~/.ecr/log on the host); run npm run host to set the role's policy again`
    case 'login':
      return 'the host logged in as MYMDB_PULL_USERNAME: check that its token may read these repositories'
    case 'anonymous':
      return 'the host pulls without a login; for private repositories set MYMDB_PULL_USERNAME and MYMDB_PULL_PASSWORD, a read-only token'
  }
}
