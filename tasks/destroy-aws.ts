// npm run destroy:aws: removes what the host step created for a stage: the instance (and its
// disk), the security group, the key pair, the instance profile and the IAM role. The upload
// bucket is left alone. Safe to run again: what is gone is skipped.
import { existsSync, rmSync } from 'node:fs'
import { homedir } from 'node:os'
import {
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  TerminateInstancesCommand,
  waitUntilInstanceTerminated,
} from '@aws-sdk/client-ec2'
import {
  DeleteInstanceProfileCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  RemoveRoleFromInstanceProfileCommand,
} from '@aws-sdk/client-iam'
import { aws, awsClients, awsErrorCode, type AwsClients } from './lib/aws.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import type { Log } from './lib/log.ts'
import { parseFlags, runMain, runTask, type Deps, type Env } from './lib/main.ts'
import { awsVars, hostVars } from './lib/vars.ts'
import {
  findHosts,
  findSecurityGroup,
  hostNames,
  keyFilePath,
  keyPairExists,
  readInstanceProfile,
  readRole,
  RUNNING_TIMEOUT_SECONDS,
  type AwsDeps,
} from './host.ts'

export const HELP = `Usage: npm run destroy:aws -- [options]

Removes the EC2 host of the stage (MYMDB_STAGE, default production) in AWS_REGION and what
belongs to it:
  instance        mymdb-<stage>        terminated, with its disk: the database on it is lost
  security group  mymdb-<stage>-web
  key pair        mymdb-<stage>        the local private key file stays unless --delete-key-file
  instance profile and IAM role  mymdb-<stage>-host (with its inline policy)
The upload bucket (DJANGO_UPLOAD_S3_BUCKET) and its files are not touched.
Running it again is safe: it says "nothing to remove".

Options:
  --dry-run          only list what would be removed
  --delete-key-file  also delete the local private key file (MYMDB_SSH_KEY_FILE)
  --yes              do not ask (on a terminal it asks before removing anything)
  -h, --help         this help

Exit codes: 0 removed (or nothing to remove), 1 AWS failed or not confirmed, 2 bad option or
.env value.`

/** Only these settings matter for removing (the bucket is not needed). */
export const destroySpec = {
  ...awsVars,
  MYMDB_SSH_KEY_FILE: hostVars.MYMDB_SSH_KEY_FILE,
}

const GONE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down']

export interface Inventory {
  instances: string[]
  securityGroup: string | null
  keyPair: boolean
  instanceProfile: { roles: string[] } | null
  role: boolean
}

export async function inventory(clients: AwsClients, stage: string): Promise<Inventory> {
  const n = hostNames(stage)
  const profile = await readInstanceProfile(clients, stage)
  return {
    instances: await findHosts(clients, stage, GONE_STATES),
    securityGroup: (await findSecurityGroup(clients, stage))?.id ?? null,
    keyPair: await keyPairExists(clients, n.keyPair),
    instanceProfile: profile ? { roles: profile.roles } : null,
    role: (await readRole(clients, stage)).exists,
  }
}

/** What would be removed, one line each (pure); empty when there is nothing. */
export function removalLines(inv: Inventory, stage: string): string[] {
  const n = hostNames(stage)
  const lines: string[] = []
  for (const id of inv.instances) lines.push(`instance ${n.instance} ${id} (and its disk)`)
  if (inv.securityGroup) lines.push(`security group ${n.securityGroup} ${inv.securityGroup}`)
  if (inv.keyPair) lines.push(`key pair ${n.keyPair}`)
  if (inv.instanceProfile) lines.push(`instance profile ${n.instanceProfile}`)
  if (inv.role) lines.push(`IAM role ${n.role} (and its policies)`)
  return lines
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Removes everything in `inv`, in dependency order. Returns the lines of what was removed. */
export async function removeAll(clients: AwsClients, stage: string, inv: Inventory, log: Log): Promise<string[]> {
  const n = hostNames(stage)
  const removed: string[] = []
  if (inv.instances.length > 0) {
    await aws('terminate the instance', () => clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: inv.instances })))
    await log.step('destroy', `terminating ${inv.instances.join(', ')}`, () =>
      waitUntilInstanceTerminated({ client: clients.ec2, maxWaitTime: RUNNING_TIMEOUT_SECONDS, minDelay: 2, maxDelay: 10 }, { InstanceIds: inv.instances }),
    15)
    for (const id of inv.instances) removed.push(`instance ${id}`)
  }
  if (inv.securityGroup) {
    const id = inv.securityGroup
    // The network interface of a just-terminated instance can hold the group for a little while.
    for (let attempt = 1; ; attempt++) {
      try {
        await clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId: id }))
        break
      } catch (err) {
        const code = awsErrorCode(err)
        if (code === 'InvalidGroup.NotFound') break
        if (code === 'DependencyViolation' && attempt < 20) {
          log.info(`[destroy] security group ${id} is still in use; retrying in 5 s (${attempt}/20)`)
          await sleep(5000)
          continue
        }
        throw err
      }
    }
    removed.push(`security group ${n.securityGroup}`)
  }
  if (inv.keyPair) {
    await aws('delete the key pair', () => clients.ec2.send(new DeleteKeyPairCommand({ KeyName: n.keyPair })))
    removed.push(`key pair ${n.keyPair}`)
  }
  if (inv.instanceProfile) {
    for (const role of inv.instanceProfile.roles)
      await aws('remove the role from the instance profile', () =>
        clients.iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: n.instanceProfile, RoleName: role })),
      )
    await aws('delete the instance profile', () => clients.iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: n.instanceProfile })))
    removed.push(`instance profile ${n.instanceProfile}`)
  }
  if (inv.role) {
    const inline = await aws('list the role policies', () => clients.iam.send(new ListRolePoliciesCommand({ RoleName: n.role })))
    for (const name of inline.PolicyNames ?? [])
      await aws('delete a role policy', () => clients.iam.send(new DeleteRolePolicyCommand({ RoleName: n.role, PolicyName: name })))
    const attached = await aws('list the attached policies', () => clients.iam.send(new ListAttachedRolePoliciesCommand({ RoleName: n.role })))
    for (const p of attached.AttachedPolicies ?? [])
      if (p.PolicyArn)
        await aws('detach a role policy', () => clients.iam.send(new DetachRolePolicyCommand({ RoleName: n.role, PolicyArn: p.PolicyArn })))
    await aws('delete the IAM role', () => clients.iam.send(new DeleteRoleCommand({ RoleName: n.role })))
    removed.push(`IAM role ${n.role}`)
  }
  return removed
}

export async function main(argv: string[], env: Env, partial?: Partial<Deps> & AwsDeps): Promise<number> {
  return runTask(env, partial, async (deps) => {
    const { log } = deps

    // check
    const flags = parseFlags(
      argv,
      {
        help: { type: 'boolean', short: 'h' },
        'dry-run': { type: 'boolean' },
        'delete-key-file': { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
      },
      'npm run destroy:aws -- --help',
    )
    if (flags.help) {
      log.info(HELP)
      return 0
    }
    const raw = loadEnv(env, deps.envFile)
    const s = checkEnv(destroySpec, raw)
    const stage = s.MYMDB_STAGE
    const keyFile = keyFilePath(s.MYMDB_SSH_KEY_FILE, stage, raw.HOME || homedir())
    const clients = (partial?.awsClients ?? awsClients)(s.AWS_REGION, env)

    // plan
    const inv = await inventory(clients, stage)
    const lines = removalLines(inv, stage)
    const keyFileThere = existsSync(keyFile)
    if (lines.length === 0) {
      log.info(`[destroy] stage ${stage} in ${s.AWS_REGION}: nothing to remove`)
      if (flags['delete-key-file'] && keyFileThere && !flags['dry-run']) {
        rmSync(keyFile)
        log.info(`[destroy] deleted the local key file ${keyFile}`)
      }
      return 0
    }
    log.warn(`[destroy] stage ${stage} in ${s.AWS_REGION}: ${flags['dry-run'] ? 'would remove' : 'removing'}:`)
    for (const l of lines) log.warn(`  ${l}`)
    log.info('[destroy] the upload bucket is kept')
    if (flags['dry-run']) {
      log.info('[destroy] dry run: nothing was removed')
      return 0
    }
    if (deps.interactive && !flags.yes && !(await deps.confirm('Remove them?')))
      throw new UserError('nothing removed (not confirmed)')

    // apply
    const removed = await removeAll(clients, stage, inv, log)

    // summary
    log.info(`[destroy] removed: ${removed.join(', ')}`)
    if (keyFileThere) {
      if (flags['delete-key-file']) {
        rmSync(keyFile)
        log.info(`[destroy] deleted the local key file ${keyFile}`)
      } else if (inv.keyPair) {
        log.info(`[destroy] the local private key ${keyFile} is kept (it matches no key pair now; next deploy imports it again). Delete it with --delete-key-file`)
      }
    }
    return 0
  })
}

runMain(import.meta.url, main)
