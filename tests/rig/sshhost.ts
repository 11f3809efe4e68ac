// The SSH deploy target of the test rig: a Debian container with sshd (login `admin`, key only)
// and its own Docker engine, installed and started by scripts/install-docker.sh (see
// tests/rig/sshhost/). It stands in for the EC2 host: tasks reach it at 127.0.0.1 on published
// ports (22 -> sshPort, 80 -> httpPort, 443 -> httpsPort). Its engine pulls from the rig registry: a socat
// forwarder inside makes 127.0.0.1:<registry port> there reach the registry container, so an
// image is called 127.0.0.1:<port>/mymdb-web:tag on this machine and on the SSH host alike.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { $ } from 'zx'
import { buildRigImage, ensureRigNetwork, publishedPort, RIG_NETWORK, rigIp } from './docker.ts'
import type { Registry } from './registry.ts'
import { describeLoad, type LoadResult } from './load.ts'
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand } from '@aws-sdk/client-ec2'
import { GetInstanceProfileCommand } from '@aws-sdk/client-iam'
import { AssumeRoleCommand } from '@aws-sdk/client-sts'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'
import { userDataHostKey } from '../../tasks/lib/aws/userdata.ts'
import { keyBlob, keyLine } from '../../tasks/lib/hostkey.ts'
import { FRONT_STORAGE_DIR } from '../../tasks/lib/remote/frontstore.ts'

const REPO = new URL('../..', import.meta.url).pathname
const CONTEXT = join(REPO, 'tests/rig/sshhost')
const INSTALL_SCRIPT = join(REPO, 'scripts/install-docker.sh')

/**
 * What a container needs to run its own dockerd on this kind of machine (--privileged is refused:
 * no CAP_SYS_RESOURCE). See /work/shared/ENVIRONMENT.md, "A second Docker host inside a container".
 */
export const INNER_DOCKER_FLAGS = [
  '--cap-add', 'ALL',
  '--cap-drop', 'SYS_RESOURCE',
  '--security-opt', 'seccomp=unconfined',
  '--security-opt', 'apparmor=unconfined',
  '--security-opt', 'systempaths=unconfined',
  '--device-cgroup-rule', 'a *:* rwm',
  '-v', '/sys/fs/cgroup:/sys/fs/cgroup',
]

export interface SshHost {
  /** Where its ports are published: 127.0.0.1, or its own loopback address (SshHostOptions.address). */
  host: string
  sshPort: number
  httpPort: number
  httpsPort: number
  /** The host's address on the rig network (where the rig's ACME CA checks a name). */
  ip: string
  user: 'admin'
  container: string
  volume: string
  /** Runs a command as root inside the host (for test assertions and diagnostics). */
  dockerExec(...cmd: string[]): Promise<{ exitCode: number | null; stdout: string; stderr: string }>
  /** Its SSH host key, `ssh-ed25519 AAAA...` (what MYMDB_HOST_KEY names for a host the deploy did not launch). */
  hostKey(): Promise<string>
  /**
   * bootOnHostKey: an instance boots with the host key its user-data carries (sshd starts with it,
   * as cloud-init installs it before sshd first starts); shutdown() stops sshd again.
   */
  boot(privateKey: string): Promise<void>
  shutdown(): Promise<void>
  /** Removes the container and its /var/lib/docker volume. */
  stop(): Promise<void>
}

export interface SshHostOptions {
  /** One OpenSSH public key line for `admin`. */
  authorizedKey: string
  /** The rig registry the host's engine pulls from (optional). */
  registry?: Pick<Registry, 'port' | 'container'>
  name?: string
  /** ECR registry names under which this host's engine finds the rig registry's ECR port (HTTPS on 127.0.0.2:443). */
  registryAliases?: string[]
  /** Seconds to wait for sshd and dockerd (default 120). */
  readySeconds?: number
  /** sshd runs only between boot() and shutdown() (the EC2 instances of deploy:aws; see followInstances). */
  bootOnHostKey?: boolean
  /**
   * Its own loopback address (127.0.0.11, ...) with fixed ports, as the instances of a stage of
   * several hosts have an address each and the same ports (one MYMDB_HOST_SSH_PORT for all).
   */
  address?: { ip: string; ssh: number; http: number; https: number }
  /**
   * A Docker volume mounted where the deploy mounts the fronts' shared storage (FRONT_STORAGE_DIR):
   * the hosts given the same one share a directory there, the rig's stand-in for EFS (no NFS here).
   */
  sharedStorage?: string
}

/** Builds the SSH host image unless one of the same inputs exists (context + install script). */
export function buildSshHostImage(): Promise<string> {
  // The Dockerfile copies scripts/install-docker.sh: it is part of the context and of the hash.
  return buildRigImage('mymdb-rig-sshhost', CONTEXT, [{ name: 'install-docker.sh', path: INSTALL_SCRIPT }])
}

/** Starts a fresh SSH host and waits until sshd answers and its Docker engine is up. */
export async function startSshHost(opts: SshHostOptions): Promise<SshHost> {
  const name = opts.name ?? 'mymdb-rig-sshhost'
  const volume = `${name}-docker`
  const image = await buildSshHostImage()
  await ensureRigNetwork()
  await $({ nothrow: true, quiet: true })`docker rm -f -v ${name}`
  await $({ nothrow: true, quiet: true })`docker volume rm ${volume}`
  const stop = async () => {
    await $({ nothrow: true, quiet: true })`docker rm -f -v ${name}`
    await $({ nothrow: true, quiet: true })`docker volume rm ${volume}`
  }
  const env = ['-e', `AUTHORIZED_KEY=${opts.authorizedKey.trim()}`]
  if (opts.bootOnHostKey) env.push('-e', 'BOOT_ON_HOST_KEY=1')
  if (opts.registry) env.push('-e', `REGISTRY_FORWARD=${opts.registry.port}:${opts.registry.container}:5000`)
  const aliases = opts.registry ? (opts.registryAliases ?? []) : []
  // the aliases are ECR's registry: the rig registry's port with ECR's login (registry.ts)
  if (opts.registry && aliases.length > 0) env.push('-e', `REGISTRY_TLS_FORWARD=${opts.registry.container}:5001`)
  for (const alias of aliases) env.push('--add-host', `${alias}:127.0.0.2`)
  const dockerExec = (...cmd: string[]) => $({ nothrow: true, quiet: true })`docker exec ${name} ${cmd}`
  try {
    const a = opts.address
    const publish = a ? ['-p', `${a.ip}:${a.ssh}:22`, '-p', `${a.ip}:${a.http}:80`, '-p', `${a.ip}:${a.https}:443`] : ['-p', '127.0.0.1::22', '-p', '127.0.0.1::80', '-p', '127.0.0.1::443']
    const shared = opts.sharedStorage ? ['-v', `${opts.sharedStorage}:${FRONT_STORAGE_DIR}`] : []
    await $({ quiet: true })`docker run -d --name ${name} --hostname ${name} --network ${RIG_NETWORK} ${INNER_DOCKER_FLAGS} -v ${`${volume}:/var/lib/docker`} ${shared} ${publish} ${env} ${image}`
    const sshPort = await publishedPort(name, 22)
    const httpPort = await publishedPort(name, 80)
    const httpsPort = await publishedPort(name, 443)
    const ip = await rigIp(name)
    const deadline = Date.now() + (opts.readySeconds ?? 120) * 1000
    for (;;) {
      const state = (await $({ nothrow: true, quiet: true })`docker inspect -f {{.State.Running}} ${name}`).stdout.trim()
      if (state === 'true') {
        // `docker version`, not `docker info`: info runs every CLI plugin (buildx, compose) each time
        const engine = 'docker version --format {{.Server.Version}} >/dev/null 2>&1'
        const ready = await dockerExec('sh', '-c', opts.bootOnHostKey ? engine : `pgrep -x sshd >/dev/null && ${engine}`)
        if (ready.exitCode === 0) break
      }
      if (state !== 'true' || Date.now() > deadline) {
        const logs = await $({ nothrow: true, quiet: true })`docker logs --tail 30 ${name}`
        throw new Error(`SSH host ${name} did not come up (${state === 'true' ? 'timeout' : 'exited'}):\n${logs.stdout}${logs.stderr}`)
      }
      await new Promise((r) => setTimeout(r, 1000))
    }
    const hostKey = async () => {
      const r = await dockerExec('cat', '/etc/ssh/ssh_host_ed25519_key.pub')
      if (r.exitCode !== 0) throw new Error(`${name}: no host key: ${r.stderr}`)
      const blob = keyBlob(r.stdout)
      if (!blob) throw new Error(`${name}: not a public key: ${r.stdout}`)
      return keyLine(blob)
    }
    const boot = async (privateKey: string) => {
      const key = '/etc/ssh/ssh_host_ed25519_key'
      const script = `rm -f /run/rig/booted; while pgrep -x sshd >/dev/null; do sleep 0.1; done; umask 077; cat >${key} && ssh-keygen -y -f ${key} >${key}.pub && mkdir -p /run/rig && touch /run/rig/booted`
      const r = await $({ nothrow: true, quiet: true, input: privateKey })`docker exec -i ${name} sh -c ${script}`
      if (r.exitCode !== 0) throw new Error(`${name}: boot with the host key failed: ${r.stderr}`)
    }
    const shutdown = async () => void (await dockerExec('rm', '-f', '/run/rig/booted'))
    return { host: a?.ip ?? '127.0.0.1', sshPort, httpPort, httpsPort, ip, user: 'admin', container: name, volume, dockerExec, hostKey, boot, shutdown, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

/** What IMDS gives an instance, for the rig: the profile's role credentials in ~admin/.aws (see followInstances). */
async function giveRoleCredentials(clients: AwsClients, host: SshHost, profile: string, emulator: string): Promise<void> {
  const role = (await clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: profile }))).InstanceProfile?.Roles?.[0]?.Arn
  if (!role) throw new Error(`instance profile ${profile} holds no role`)
  const c = (await clients.sts.send(new AssumeRoleCommand({ RoleArn: role, RoleSessionName: 'i-rig' }))).Credentials
  const files = [
    `[default]\nregion = ${clients.region}\nendpoint_url = ${emulator}\n`,
    `[default]\naws_access_key_id = ${c?.AccessKeyId}\naws_secret_access_key = ${c?.SecretAccessKey}\naws_session_token = ${c?.SessionToken}\n`,
  ]
  const script = 'umask 077; install -d -o admin -g admin -m 0700 /home/admin/.aws && printf %s "$1" >/home/admin/.aws/config && printf %s "$2" >/home/admin/.aws/credentials && chown admin:admin /home/admin/.aws/*'
  const r = await host.dockerExec('sh', '-c', script, 'sh', ...files)
  if (r.exitCode !== 0) throw new Error(`${host.container}: the role's credentials could not be written: ${r.stderr}`)
}

/**
 * Shell on the deploy host: the id of the healthy running container of a service of MyMDB's
 * Swarm stack (`docker exec $(inService('web')) ...`; during an update the new one counts once healthy).
 */
export function inService(service: 'web' | 'db' | 'proxy'): string {
  return `$(docker ps --quiet --filter status=running --filter health=healthy --filter label=com.docker.swarm.service.name=mymdb_${service} | head -n 1)`
}

/**
 * Asserts that web's tasks of image tag `tag` (a broken version Swarm stopped for being unhealthy)
 * ended failed with exit 143 (runit/boot's graceful stop on SIGTERM), and none complete.
 */
export async function assertBrokenTasksFailed(host: SshHost, tag: string): Promise<void> {
  const all = await host.dockerExec('docker', 'service', 'ps', '--no-trunc', '--format', '{{.Image}}|{{.CurrentState}}|{{.Error}}', 'mymdb_web')
  assert.equal(all.exitCode, 0, all.stderr)
  const broken = all.stdout.split('\n').filter((l) => l.includes(`/mymdb-web:${tag}`))
  assert.ok(broken.some((l) => /\|Failed .*\|.*non-zero exit \(143\)/.test(l)), all.stdout)
  assert.ok(!broken.some((l) => /\|Complete /.test(l)), all.stdout)
}

/**
 * Fails the test when a load loop's request went without a 2xx answer: the loops' counts, then,
 * from `host` (a manager of the stack), each web task (state, image, its addresses on the
 * networks: the front sends to the front network's) and the front's answers of 500 and above of
 * the last 15 min (docker/proxy/nginx.conf logs them with the web tasks tried).
 */
export async function assertNoneLost(host: SshHost, loads: Record<string, LoadResult>): Promise<void> {
  if (Object.values(loads).every((l) => l.ok === l.sent)) return
  const script = [
    'echo "web tasks:"',
    'for t in $(docker service ps --quiet mymdb_web); do docker inspect --format \'  {{.Status.Timestamp}} {{.Status.State}} (desired {{.DesiredState}}) {{.Spec.ContainerSpec.Image}} {{range .NetworksAttachments}}{{.Network.Spec.Name}}={{.Addresses}} {{end}}\' "$t"; done',
    'echo "the front\'s server errors (last 20):"',
    'docker service logs --raw --since 15m mymdb_proxy 2>&1 | grep -E "front answered|upstream|resolved" | tail -n 20',
    // in order, to the millisecond: which web task started, turned healthy, was killed, and when
    // Swarm updated or rolled web back (dockerd keeps its last 256 events: health checks' execs fill it in ~100 s)
    'echo "web\'s events (the daemon\'s last ones, health check execs left out):"',
    'docker events --since 5m --until "$(date +%s)" --filter type=container --filter type=service --format \'{{.TimeNano}} {{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "com.docker.swarm.task.name"}}\' | grep -v " exec_" | grep "mymdb_web" | while read -r t rest; do echo "  $(date -u -d "@${t%?????????}" +%T).$(echo "$t" | cut -c11-13) $rest"; done',
  ].join('; ')
  const r = await host.dockerExec('sh', '-c', script)
  assert.fail(`${Object.entries(loads).map(([name, l]) => `${name}: ${describeLoad(l)}`).join('\n')}\n${r.stdout}${r.stderr}`)
}

/** Shell on the deploy host: removes MyMDB's Swarm stack and waits until its containers and networks are gone (the volumes stay). */
export const REMOVE_STACK = [
  'docker stack rm mymdb',
  'while [ -n "$(docker ps --all --quiet --filter label=com.docker.stack.namespace=mymdb)" ]; do sleep 1; done',
  'while docker network inspect mymdb_back >/dev/null 2>&1 || docker network inspect mymdb_front >/dev/null 2>&1; do sleep 1; done',
].join(' && ')

/**
 * The SSH host (started with bootOnHostKey) as the stage's EC2 instance (host `node` of it, when
 * given) in the emulator: while an
 * instance of the stage is pending or running, sshd runs with the host key of that instance's
 * user-data (read back with DescribeInstanceAttribute); when none is (stopped, terminated), sshd
 * is stopped. Checks once a second until stop() (each check is a DescribeInstances call to the
 * emulator; EC2 takes longer than that to boot an instance).
 *
 * With `emulator` (the emulator's address on the rig network), it also stands in for the
 * instance metadata service: the credentials of the instance profile's role (AssumeRole, as EC2
 * does) go into the login user's ~/.aws, with the emulator as endpoint, where the SDKs on the host
 * (the ECR credential helper) find them before they would ask IMDS.
 */
export function followInstances(clients: AwsClients, stage: string, host: SshHost, emulator?: string, node?: number): { stop(): Promise<void> } {
  let booted: string | undefined
  let running = true
  const step = async () => {
    const ofNode = node === undefined ? [] : [{ Name: 'tag:Node', Values: [String(node)] }]
    const r = await clients.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:Stage', Values: [stage] }, ...ofNode, { Name: 'instance-state-name', Values: ['pending', 'running'] }] }))
    const instance = r.Reservations?.flatMap((x) => x.Instances ?? [])[0]
    const id = instance?.InstanceId
    if (id === booted) return
    if (!id) {
      await host.shutdown()
      booted = undefined
      return
    }
    const ud = await clients.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'userData' }))
    const key = userDataHostKey(Buffer.from(ud.UserData?.Value ?? '', 'base64').toString())
    if (!key) throw new Error(`instance ${id}: its user-data carries no host key`)
    await host.boot(key)
    const profile = instance?.IamInstanceProfile?.Arn?.split('/').pop()
    if (emulator && profile) await giveRoleCredentials(clients, host, profile, emulator)
    booted = id
  }
  const loop = (async () => {
    while (running) {
      await step().catch((e: unknown) => console.log(`# followInstances: ${e instanceof Error ? e.message : String(e)}`))
      await new Promise((r) => setTimeout(r, 1000))
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
    },
  }
}
