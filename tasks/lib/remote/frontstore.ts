// The fronts' shared storage on every host of a cluster: the EFS file system the front step made
// (lib/aws/sharedfs.ts), mounted at FRONT_STORAGE_DIR on each host over NFS 4.1, with the options
// AWS recommends, by /etc/fstab (so it is there again after a reboot, and Docker waits for it:
// a front started on an empty directory would order a certificate of its own). The front's /data
// is FRONT_STORAGE_DIR/caddy on every node (the stack file's bind, MYMDB_FRONT_STORAGE), so one
// front orders the certificate and every node serves it (bench/FRONT-SPIKE.md).
// A directory that is a mount point already is left as it is (a host where an operator mounted
// it; the rig, whose hosts share a directory at that place instead of NFS).
// A start without the shared storage (one host, its front door removed) undoes what mountScript
// did: the mount, its /etc/fstab line and Docker's wait for it (else, once the file system is
// deleted, Docker would not start at the next boot).
import type { Log } from '../log.ts'
import { runChecked, type Runner } from '../sh.ts'

/** Where every host mounts the shared storage. */
export const FRONT_STORAGE_DIR = '/mnt/mymdb-front'
/** The front's /data on it (the host's .env: MYMDB_FRONT_STORAGE). */
export const FRONT_DATA_DIR = `${FRONT_STORAGE_DIR}/caddy`
/** NFS options AWS recommends for EFS (hard mounts, long timeouts, a new source port on reconnect), and wait for the network at boot. */
export const NFS_OPTIONS = 'nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,_netdev'

/** Docker waits for the storage at boot (systemd drop-in). */
const DOCKER_DROP_IN = '/etc/systemd/system/docker.service.d/mymdb-front.conf'

/** An EFS address (fs-<hex>.efs.<region>.amazonaws.com, or an emulator's like it): letters, digits, dots and hyphens only. */
const ADDRESS = /^[a-z0-9][a-z0-9.-]{1,250}$/

/**
 * Shell, on a host (its user has sudo without a password, as the AMI's admin does): mounts the
 * shared storage at `address` unless FRONT_STORAGE_DIR is a mount point, and makes the front's
 * directory on it. Prints one line saying what it found or did.
 */
export function mountScript(address: string): string {
  if (!ADDRESS.test(address)) throw new Error(`not a file system address: ${JSON.stringify(address)}`)
  const dir = FRONT_STORAGE_DIR
  const line = `${address}:/ ${dir} nfs4 ${NFS_OPTIONS} 0 0`
  return [
    'set -eu',
    `if mountpoint -q ${dir}; then`,
    `  echo "${dir}: $(findmnt -n -o SOURCE ${dir} 2>/dev/null || echo a file system) is mounted there"`,
    'else',
    "  command -v mount.nfs4 >/dev/null || sudo -n env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends nfs-common' >/dev/null",
    `  sudo -n install -d -m 0755 ${dir}`,
    // one line for the directory in /etc/fstab: this one
    `  if ! grep -qxF '${line}' /etc/fstab; then`,
    `    sudo -n sed -i '\\# ${dir} nfs4 #d' /etc/fstab`,
    `    echo '${line}' | sudo -n tee -a /etc/fstab >/dev/null`,
    '  fi',
    // Docker (and so the front) starts after the storage is mounted, at every boot
    '  if [ -d /run/systemd/system ]; then',
    '    sudo -n install -d -m 0755 /etc/systemd/system/docker.service.d',
    `    printf '[Unit]\\nRequiresMountsFor=%s\\n' ${dir} | sudo -n tee ${DOCKER_DROP_IN} >/dev/null`,
    '    sudo -n systemctl daemon-reload',
    '  fi',
    `  sudo -n mount ${dir}`,
    `  echo "${dir}: ${address} mounted (NFS 4.1, in /etc/fstab)"`,
    'fi',
    `sudo -n install -d -m 0700 ${FRONT_DATA_DIR}`,
  ].join('\n')
}

/** Mounts the shared storage on one host (`label`: how the log names it); says what it found or did. */
export async function mountFrontStorage(label: string, run: Runner, address: string, log: Log): Promise<void> {
  const r = await runChecked(run, ['sh', '-c', mountScript(address)], { doing: `mount the fronts' shared storage ${address} on ${label} (NFS: can nfs-common be installed, and does the hosts' group reach the mount target on 2049?)` })
  log.info(`[front] ${label}: ${r.stdout.trim().split('\n').at(-1) ?? ''}`)
}

/**
 * Shell, on a host: when /etc/fstab mounts the shared storage (mountScript's line), unmounts it and
 * removes that line and Docker's wait for it. Anything else at FRONT_STORAGE_DIR (an operator's
 * mount without that line, the rig's shared directory) is left. Prints a line only when it did something.
 */
export function unmountScript(): string {
  const dir = FRONT_STORAGE_DIR
  return [
    'set -eu',
    `if grep -q '^[^#][^ ]* ${dir} nfs4 ' /etc/fstab; then`,
    `  if mountpoint -q ${dir}; then sudo -n umount ${dir}; fi`,
    `  sudo -n sed -i '\\# ${dir} nfs4 #d' /etc/fstab`,
    `  echo "${dir}: unmounted, its line taken out of /etc/fstab"`,
    'fi',
    `if [ -e ${DOCKER_DROP_IN} ]; then`,
    `  sudo -n rm -f ${DOCKER_DROP_IN}`,
    '  if [ -d /run/systemd/system ]; then sudo -n systemctl daemon-reload; fi',
    `  echo "Docker no longer waits for ${dir} at boot"`,
    'fi',
  ].join('\n')
}

/** Undoes mountFrontStorage on one host (`label`: how the log names it) when it was done there; says so. */
export async function unmountFrontStorage(label: string, run: Runner, log: Log): Promise<void> {
  const r = await runChecked(run, ['sh', '-c', unmountScript()], { doing: `unmount the fronts' shared storage on ${label} (does a container still use ${FRONT_STORAGE_DIR}? fuser -vm ${FRONT_STORAGE_DIR})` })
  for (const line of r.stdout.trim().split('\n').filter(Boolean)) log.info(`[front] ${label}: ${line}`)
}
