// npm run deploy:aws, step "host": the stage's EC2 host and what it needs. Each resource is
// found first (by name or tags) and only created or fixed when missing or wrong, so a re-run or a
// run after an interruption converges on one of each (the resources: tasks/lib/aws/*.ts):
//   key pair        mymdb-<stage>       (private key kept in MYMDB_SSH_KEY_FILE, mode 0600)
//   security group  mymdb-<stage>-web   (default VPC; 80/443 from anywhere, 22 from you only)
//   IAM roles       mymdb-<stage>-host  (+ instance profile; read/write the upload bucket only)
//                   mymdb-<stage>-backup (writes backups only)
//   instance        Name=mymdb-<stage>  (Docker installed by user-data: scripts/install-docker.sh)
//   elastic IP      mymdb-<stage>       (the site's fixed address)
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { awsClients, type AwsClients, type AwsDeps } from './lib/aws/clients.ts'
import { applyHost, backupTarget, planHost, readHostState, type HostResult } from './lib/aws/host.ts'
import { resolveAmi } from './lib/aws/instance.ts'
import { showPlanLines } from './lib/aws/plan.ts'
import { defaultVpcId } from './lib/aws/securitygroup.ts'
import { renderUserData } from './lib/aws/userdata.ts'
import { checkEnv, loadEnv, type CleanEnv, type RawEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import type { Log } from './lib/log.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { stageName, stageResources } from './lib/names.ts'
import { myPublicCidr, waitForTcp } from './lib/net.ts'
import { REPO_ROOT } from './lib/paths.ts'
import { inspectKeyFile } from './lib/sshkey.ts'
import { awsVars, backupBucketName, backupBucketRules, backupBucketVars, bucketVars, hostVars, sshKeyPath, sshKeyRule } from './lib/vars.ts'

export const HELP = `Usage: npm run host -- [options]   (a step of npm run deploy:aws)

Creates or reuses the EC2 host of the stage (MYMDB_STAGE, default production) in AWS_REGION:
  key pair        mymdb-<stage>        private key in MYMDB_SSH_KEY_FILE (default
                                       ~/.ssh/mymdb-<stage>.pem): created, or imported from that file
  security group  mymdb-<stage>-web    default VPC; HTTP/HTTPS from anywhere, SSH only from
                                       MYMDB_SSH_CIDR (default: your public IP /32)
  IAM role        mymdb-<stage>-host   + instance profile: read/write DJANGO_UPLOAD_S3_BUCKET only
  instance        mymdb-<stage>        MYMDB_INSTANCE_TYPE, AMI from MYMDB_AMI_ID or the SSM
                                       parameter MYMDB_AMI_SSM_PARAMETER; user-data installs Docker
                                       (scripts/install-docker.sh); IMDSv2 only
Existing resources are reused (a stopped instance is started); nothing is created twice.
Then it waits until the instance runs and its SSH port answers.

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

/** Every variable the host step reads. */
export const hostSpec = { ...awsVars, ...hostVars, ...bucketVars, MYMDB_BACKUP_BUCKET: backupBucketVars.MYMDB_BACKUP_BUCKET }
export type HostSettings = CleanEnv<typeof hostSpec>

/** Seconds to wait for the SSH port. */
export const SSH_TIMEOUT_SECONDS = 300

// --- the task ----------------------------------------------------------------------------------

/** The settings, checked (EnvError, exit 2), with the key file's rule: before any AWS call. */
export function hostSettings(env: Env, envFile: string): { raw: RawEnv; values: HostSettings } {
  const raw = loadEnv(env, envFile)
  return { raw, values: checkEnv(hostSpec, raw, { rules: [sshKeyRule, ...backupBucketRules] }) }
}

export interface HostStepOptions {
  dryRun?: boolean
  /** Wait until the SSH port answers (default true). */
  waitSsh?: boolean
  /** fetch, for the public IP lookup when MYMDB_SSH_CIDR is not set. */
  fetch?: typeof fetch
}

/**
 * The host step for checked settings: reads what exists (once), shows the plan, and unless a dry
 * run applies exactly that plan, then waits for the instance and its SSH port. Returns the host.
 */
export async function hostStep(s: HostSettings, raw: RawEnv, clients: AwsClients, log: Log, opts: HostStepOptions = {}): Promise<HostResult> {
  const stage = s.MYMDB_STAGE
  const keyFile = inspectKeyFile(sshKeyPath(s, raw), stageName(stage))
  const userData = renderUserData(readFileSync(join(REPO_ROOT, 'scripts', 'install-docker.sh'), 'utf8'), s.MYMDB_SSH_USER)
  const sshCidr = s.MYMDB_SSH_CIDR ?? (await myPublicCidr(opts.fetch ?? fetch))

  // plan: what exists (read once), and what to do about each resource
  const vpcId = await defaultVpcId(clients)
  const state = await readHostState(clients, stage, keyFile, vpcId)
  const plan = planHost(state, { stage, sshCidr, bucket: s.DJANGO_UPLOAD_S3_BUCKET, backupBucket: backupBucketName(s), vpcId })
  log.info(`[host] stage ${stage} in ${s.AWS_REGION} (default VPC ${vpcId})${opts.dryRun ? ' - dry run, nothing changes' : ''}`)
  showPlanLines('host', plan.items, log)
  // The AMI is looked up before anything is created (a missing parameter must not leave half a host).
  const amiId = plan.instance.action === 'create' ? await resolveAmi(clients, s) : undefined
  if (amiId) log.info(`[host] AMI ${amiId}${s.MYMDB_AMI_ID ? ' (MYMDB_AMI_ID)' : ` (from ${s.MYMDB_AMI_SSM_PARAMETER})`}`)
  if (opts.dryRun) {
    log.info('[host] dry run: nothing was changed')
    const host = plan.instance.existing
    return { host, address: s.MYMDB_HOST_ADDRESS ?? host?.publicIp, keyFile: keyFile.path, launched: false, backup: backupTarget(plan, s.AWS_REGION) }
  }

  // apply: exactly the plan
  const n = stageResources(stage)
  const host = await applyHost(
    clients,
    plan,
    async (securityGroupId) => ({
      stage,
      amiId: amiId ?? (await resolveAmi(clients, s)),
      instanceType: s.MYMDB_INSTANCE_TYPE,
      keyName: n.keyPair,
      securityGroupId,
      instanceProfile: n.instanceProfile,
      userData,
    }),
    log,
  )
  const instanceId = host.instanceId
  const address = s.MYMDB_HOST_ADDRESS ?? host.publicIp
  if (opts.waitSsh === false) {
    log.info('[host] not waiting for SSH')
  } else if (!address) {
    throw new UserError(`instance ${instanceId} has no public IP address: set MYMDB_HOST_ADDRESS to an address that reaches it`)
  } else {
    const port = s.MYMDB_HOST_SSH_PORT
    const up = await log.step('host', `waiting for SSH on ${address}:${port}`, () => waitForTcp(address, port, SSH_TIMEOUT_SECONDS * 1000), 15)
    if (!up)
      throw new UserError(
        `the SSH port ${address}:${port} did not answer within ${SSH_TIMEOUT_SECONDS} s: check that MYMDB_SSH_CIDR (${sshCidr}) is your address, and the instance's system log in the EC2 console`,
      )
  }
  const launched = plan.instance.action === 'create'
  log.info(`[host] ready: ${instanceId} at ${host.publicIp ?? '(no public IP)'}${host.publicDns ? ` (${host.publicDns})` : ''}`)
  if (launched) log.info('[host] Docker is being installed by the user-data on first boot (log: /var/log/mymdb-install-docker.log)')
  return { host, address, keyFile: keyFile.path, launched, backup: backupTarget(plan, s.AWS_REGION) }
}

export async function main(argv: string[], env: Env, partial?: Partial<Deps> & AwsDeps): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: options and settings (nothing touches AWS before these pass)
    const { raw, values: s } = hostSettings(env, deps.envFile)

    // plan + apply
    const clients = (partial?.awsClients ?? awsClients)(s.AWS_REGION, raw)
    const r = await hostStep(s, raw, clients, deps.log, { dryRun: flags['dry-run'] ?? false, waitSsh: !flags['no-wait-ssh'], fetch: partial?.fetch })

    // summary
    if (r.host && !flags['dry-run'])
      deps.log.info(`[host] ssh -i ${r.keyFile} ${s.MYMDB_SSH_USER}@${r.address ?? '<address>'}${s.MYMDB_HOST_SSH_PORT !== 22 ? ` -p ${s.MYMDB_HOST_SSH_PORT}` : ''}   (or: npm run ssh)`)
    return 0
  })
}

runMain(import.meta.url, main)
