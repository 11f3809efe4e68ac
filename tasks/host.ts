// npm run deploy:aws, step "host": the stage's EC2 hosts and what they need (the list: HELP below).
// Each resource is found first (by name or tags) and only created or fixed when missing or wrong, so
// a re-run or a run after an interruption converges on one of each (the resources: tasks/lib/aws/*.ts).
import { applyHost, backupTarget, planHost, reachNode, readHostState, stageCosts, waitForNodes, type HostResult, type HostStepPlan } from './lib/aws/host.ts'
import { resolveAmi } from './lib/aws/instance.ts'
import { showPlanLines } from './lib/aws/plan.ts'
import { costLines } from './lib/aws/costs.ts'
import { defaultVpcId } from './lib/aws/securitygroup.ts'
import { hostUserData, withHostKey } from './lib/aws/userdata.ts'
import { deriveHostKey } from './lib/hostkey.ts'
import { readFileSync } from 'node:fs'
import { runCli, runMain, type Env } from './lib/main.ts'
import { stageName, stageResources } from './lib/names.ts'
import { myPublicCidr } from './lib/net.ts'
import { inspectKeyFile } from './lib/sshkey.ts'
import { runStep, stepDeps, type Step, type StepSeams } from './lib/step.ts'
import { backupBucketName, repositoryName } from './lib/awsvars.ts'
import { localImages } from './lib/vars.ts'
import { hostSettings, type HostSettings } from './lib/hostvars.ts'
import { stageLock } from './lib/lock.ts'

export const HELP = `Usage: npm run host -- [options]   (a step of npm run deploy:aws)

Creates or reuses the EC2 host of the stage (MYMDB_STAGE, default production) in AWS_REGION:
  key pair        mymdb-<stage>        private key in MYMDB_SSH_KEY_FILE (default
                                       ~/.ssh/mymdb-<stage>.pem): created, or imported from that file
  security group  mymdb-<stage>-web    default VPC; HTTP/HTTPS from anywhere, SSH only from
                                       MYMDB_SSH_CIDR (default: your public IP /32)
  IAM role        mymdb-<stage>-host   + instance profile: read/write uploads/ of
                                       DJANGO_UPLOAD_S3_BUCKET, never delete; with
                                       MYMDB_REGISTRY=ecr, pull the stage's repositories
  IAM role        mymdb-<stage>-backup writes backups into MYMDB_BACKUP_BUCKET only (assumed by
                                       the host role with an external id)
  instance        mymdb-<stage>        MYMDB_INSTANCE_TYPE, AMI from MYMDB_AMI_ID or the SSM
                                       parameter MYMDB_AMI_SSM_PARAMETER; user-data installs Docker
                                       (scripts/install-docker.sh) and its SSH host key, whose
                                       public half is its HostKey tag; IMDSv2 only; its disk
                                       MYMDB_DISK_GB GiB, encrypted
  elastic IP      mymdb-<stage>        the site's fixed address, associated with the instance
With MYMDB_HOSTS=N (default 1), N instances and addresses (mymdb-<stage>, -2, ... -N), spread
over the region's availability zones, and Docker Swarm's ports open between them only.
Existing resources are reused (a stopped instance is started); nothing is created twice.
Then it waits until the instances run and their SSH ports answer.

Options:
  --dry-run       only show the plan (what exists, what would be created or changed)
  --no-wait-ssh   do not wait for the SSH port
  -h, --help      this help

Remove everything again with: npm run destroy:aws

Exit codes: 0 host ready, 1 AWS or the host failed, 2 bad option or .env value.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run host',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
    'no-wait-ssh': { type: 'boolean' },
  },
} as const

/** The step's options: wait until the SSH port answers (default true). */
export type HostInput = HostSettings & { waitSsh?: boolean }

// --- the step ------------------------------------------------------------------------------------

export const hostStep: Step<HostInput, HostStepPlan, HostResult> = {
  name: 'host',

  /** Reads what exists (once) and plans each resource. */
  async plan(s, deps) {
    const stage = s.MYMDB_STAGE
    const clients = deps.clients(s.AWS_REGION)
    const n = stageResources(stage)
    const keyFile = inspectKeyFile(s.sshKeyFile, stageName(stage))
    const script = hostUserData(s.MYMDB_SSH_USER)
    const sshCidr = s.MYMDB_SSH_CIDR ?? (await myPublicCidr(deps.fetch ?? fetch))
    const vpcId = await defaultVpcId(clients)
    const state = await readHostState(clients, stage, keyFile, vpcId, s.MYMDB_HOSTS)
    const ecrPull = s.MYMDB_REGISTRY === 'ecr' ? { region: s.AWS_REGION, repositories: Object.values(localImages(s)).map(repositoryName) } : undefined
    const resources = planHost(state, { stage, sshCidr, bucket: s.DJANGO_UPLOAD_S3_BUCKET, backupBucket: backupBucketName(s), vpcId, ...(ecrPull ? { ecrPull } : {}) })
    return {
      region: s.AWS_REGION,
      resources,
      ...(resources.nodes.some((h) => h.instance.action === 'create') ? await resolveAmi(clients, s).then((a) => ({ amiId: a.id, rootDevice: a.rootDevice })) : {}),
      amiSource: s.MYMDB_AMI_ID ? 'MYMDB_AMI_ID' : `from ${s.MYMDB_AMI_SSM_PARAMETER}`,
      launch: { stage, instanceType: s.MYMDB_INSTANCE_TYPE, keyName: n.keyPair, instanceProfile: n.instanceProfile, script, diskGb: s.MYMDB_DISK_GB },
      ...(s.MYMDB_HOST_ADDRESS ? { addressOverride: s.MYMDB_HOST_ADDRESS } : {}),
      sshPort: s.MYMDB_HOST_SSH_PORT,
      waitSsh: s.waitSsh ?? true,
      ...(s.MYMDB_DATABASE === 'rds' ? { database: { instanceClass: s.MYMDB_DB_INSTANCE_CLASS, storageGb: s.MYMDB_DB_STORAGE_GB } } : {}),
    }
  },

  show(plan, log, dryRun) {
    const { stage, vpcId, items } = plan.resources
    log.info(`[host] stage ${stage} in ${plan.region} (default VPC ${vpcId})${dryRun ? ' - dry run, nothing changes' : ''}`)
    showPlanLines('host', items, log)
    if (plan.amiId) log.info(`[host] AMI ${plan.amiId} (${plan.amiSource}); its root volume ${plan.rootDevice}: ${plan.launch.diskGb} GiB, encrypted`)
    for (const line of costLines(stageCosts(plan))) log.info(`[cost] ${line}`)
    if (dryRun) log.info('[host] dry run: nothing was changed')
  },

  /** Applies exactly the plan, then waits for the instance and its SSH port. */
  async apply(plan, deps) {
    const { log } = deps
    const { resources } = plan
    const { amiId, rootDevice } = plan
    const hosts = await applyHost(
      deps.clients(plan.region),
      resources,
      async (node, securityGroupId) => {
        if (!amiId || !rootDevice) throw new Error('a new instance was not planned')
        // its SSH host key, the same for a retried launch (lib/hostkey.ts)
        const { script, ...launch } = plan.launch
        const hostKey = deriveHostKey(readFileSync(resources.keyPair.keyFile.path), launch.stage, node, securityGroupId)
        return { ...launch, node, amiId, rootDevice, securityGroupId, userData: withHostKey(script, hostKey), hostKey: hostKey.publicLine }
      },
      log,
    )
    const nodes = hosts.map((host, i) => reachNode(plan, i + 1, host))
    const [first] = nodes
    if (!first?.host) throw new Error('the plan has no host')
    if (plan.waitSsh) await waitForNodes(plan, nodes, log, deps.downHostWaitSeconds)
    else log.info('[host] not waiting for SSH')
    for (const { node, host } of nodes)
      log.info(`[host] ready${nodes.length > 1 ? ` (host ${node})` : ''}: ${host.instanceId} at ${host.publicIp ?? '(no public IP)'}${host.publicDns ? ` (${host.publicDns})` : ''}${host.zone && nodes.length > 1 ? ` in ${host.zone}` : ''}`)
    const launched = resources.nodes.some((n) => n.instance.action === 'create')
    if (launched) log.info('[host] Docker is being installed by the user-data on first boot (log: /var/log/mymdb-install-docker.log)')
    const retire = resources.retire.map(({ node, instance }) => reachNode(plan, node, instance))
    return { host: first.host, address: first.address, nodes, retire, keyFile: resources.keyPair.keyFile.path, launched, backup: backupTarget(resources, plan.region) }
  },

  preview(plan) {
    const nodes = plan.resources.nodes.map(({ node, instance }) => reachNode(plan, node, instance.existing))
    const retire = plan.resources.retire.map(({ node, instance }) => reachNode(plan, node, instance))
    return { host: nodes[0]?.host ?? null, address: nodes[0]?.address, nodes, retire, keyFile: plan.resources.keyPair.keyFile.path, launched: false, backup: backupTarget(plan.resources, plan.region) }
  },
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: options and settings (nothing touches AWS before these pass)
    const { raw, values: s } = hostSettings(env, deps.envFile)

    // plan, show, apply
    const sd = stepDeps(deps, partial, raw)
    const dryRun = flags['dry-run'] ?? false
    const r = await runStep(hostStep, { ...s, waitSsh: !flags['no-wait-ssh'] }, sd, dryRun, stageLock(sd, s, 'npm run host'))

    // summary
    if (r.host && !flags['dry-run'])
      deps.log.info(`[host] ssh -i ${r.keyFile} ${s.MYMDB_SSH_USER}@${r.address ?? '<address>'}${s.MYMDB_HOST_SSH_PORT !== 22 ? ` -p ${s.MYMDB_HOST_SSH_PORT}` : ''}   (or: npm run ssh)`)
    return 0
  })
}

runMain(import.meta.url, main)
