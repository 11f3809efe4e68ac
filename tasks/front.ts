// npm run front (a step of npm run deploy:aws with MYMDB_HOSTS > 1): the front door of a stage
// of several hosts, in the default VPC beside them. Each part is found first (by name and stage
// tags) and made or put back only when missing or changed (the resources: tasks/lib/aws/
// balancer.ts, sharedfs.ts):
//   Elastic IPs     mymdb-<stage>-front-<zone>  one per zone the hosts run in
//   load balancer   mymdb-<stage>               network, internet-facing, TCP 80 and 443
//   target groups   mymdb-<stage>-http, -https  every host, its front checked every 10 s
//   security group  mymdb-<stage>-front-nfs     NFS from the hosts' group only
//   EFS             mymdb-<stage>-front         encrypted, a mount target per zone: the
//                                               fronts' certificate, shared by every host
import { applyBalancer, findBalancer, planBalancer, type BalancerPlan, type BalancerResult } from './lib/aws/balancer.ts'
import { findNodes } from './lib/aws/instance.ts'
import { showPlanLines } from './lib/aws/plan.ts'
import { defaultVpcId, findSecurityGroup } from './lib/aws/securitygroup.ts'
import { applySharedFs, findSharedFs, planSharedFs, sharedFsAddress, type SharedFsPlan } from './lib/aws/sharedfs.ts'
import { readZoneSubnets, spreadOverZones, type ZoneSubnet } from './lib/aws/zones.ts'
import { awsVars } from './lib/awsvars.ts'
import { checkEnv, loadEnv, type CleanEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import { hostVars } from './lib/hostvars.ts'
import { stageLock } from './lib/lock.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { frontResources, stageResources } from './lib/names.ts'
import { runStep, stepDeps, type Step, type StepSeams } from './lib/step.ts'

export const HELP = `Usage: npm run front -- [options]   (a step of npm run deploy:aws with MYMDB_HOSTS > 1)

Creates or corrects the front door of a stage of several hosts in AWS_REGION, beside its hosts
(they must exist: npm run host first):
  Elastic IPs     mymdb-<stage>-front-<zone>  the balancer's fixed addresses, one per zone
                                              the hosts run in (for the site's DNS record)
  load balancer   mymdb-<stage>               Network Load Balancer, internet-facing, passing
                                              TCP 80 and 443 to the fronts of every host
                                              (HTTPS ends on the hosts), cross-zone
  target groups   mymdb-<stage>-http, -https  every host of the stage; a host's front checked
                                              every 10 s; a host taken away drained for 30 s
  security group  mymdb-<stage>-front-nfs     NFS (2049) from the hosts' group only
  EFS file system mymdb-<stage>-front         encrypted, a mount target in each zone: where the
                                              fronts keep the certificate, so that it is
                                              obtained once and every host serves it
What drifted (a rule added, a host deregistered, a health check changed) is put back.

Options:
  --dry-run    only show the plan (what exists, what would be created or changed)
  -h, --help   this help

Exit codes: 0 front door ready, 1 AWS failed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run front',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
  },
} as const

// --- the step ------------------------------------------------------------------------------------

/** The settings the front step reads. */
export const frontSpec = { ...awsVars, MYMDB_HOSTS: hostVars.MYMDB_HOSTS }
export type FrontInput = Pick<CleanEnv<typeof frontSpec>, 'AWS_REGION' | 'MYMDB_STAGE' | 'MYMDB_HOSTS'> & {
  /** The hosts (instance and zone; none yet: a dry run of a new stage), as the host step left them; without: looked up. */
  hosts?: { instanceId: string | undefined; zone: string | undefined }[]
}

export interface FrontStepPlan {
  region: string
  stage: string
  /** The hosts' security group (null: not made yet; a dry run of a new stage). */
  hostsGroupId: string | null
  sharedFs: SharedFsPlan
  balancer: BalancerPlan
  /** What the plan knows of the result (a dry run's). */
  known: FrontResult
}

export interface FrontResult {
  /** The balancer's DNS name ('' before it exists). */
  dnsName: string
  /** Its public addresses (the site's DNS record points at them). */
  addresses: string[]
  /** What every host mounts for the fronts' storage ('' before the file system exists). */
  sharedFs: string
}

/** The zones (and default subnets) the hosts run in, or will (a new one: spread as the host step does). */
function hostZones(hosts: readonly { zone: string | undefined }[], subnets: readonly ZoneSubnet[]): ZoneSubnet[] {
  const placed = spreadOverZones(hosts.map((h) => h.zone), subnets)
  const zones = hosts.map((h, i) => (h.zone ? subnets.find((s) => s.zone === h.zone) : placed[i])).filter((z): z is ZoneSubnet => z !== undefined)
  return [...new Map(zones.map((z) => [z.zone, z])).values()].sort((a, b) => a.zone.localeCompare(b.zone))
}

export const frontStep: Step<FrontInput, FrontStepPlan, FrontResult> = {
  name: 'front',

  async plan(s, deps) {
    const clients = deps.clients(s.AWS_REGION)
    const stage = s.MYMDB_STAGE
    const vpcId = await defaultVpcId(clients)
    const [hostsGroup, subnets, nodes] = await Promise.all([findSecurityGroup(clients, stage, vpcId), readZoneSubnets(clients, vpcId), s.hosts ? undefined : findNodes(clients, stage)])
    const hosts = s.hosts ?? Array.from({ length: s.MYMDB_HOSTS }, (_, i) => ({ instanceId: nodes?.get(i + 1)?.instanceId, zone: nodes?.get(i + 1)?.zone }))
    const zones = hostZones(hosts, subnets)
    const hostsGroupId = hostsGroup?.id ?? null
    const found = await findBalancer(clients, stage)
    const sharedFs = planSharedFs(stage, vpcId, await findSharedFs(clients, stage, vpcId, hostsGroupId), zones)
    const balancer = planBalancer(stage, vpcId, found, zones, hosts.flatMap((h) => (h.instanceId ? [h.instanceId] : [])))
    const known = { dnsName: found.balancer?.dnsName ?? '', addresses: found.addresses.filter((a) => zones.some((z) => z.zone === a.zone)).map((a) => a.publicIp), sharedFs: sharedFs.fileSystem ? sharedFsAddress(sharedFs.fileSystem, s.AWS_REGION) : '' }
    return { region: s.AWS_REGION, stage, hostsGroupId, sharedFs, balancer, known }
  },

  show(plan, log, dryRun) {
    log.info(`[front] stage ${plan.stage} in ${plan.region}: the load balancer and the fronts' shared storage${dryRun ? ' - dry run, nothing changes' : ''}`)
    showPlanLines('front', [...plan.balancer.lines, ...plan.sharedFs.lines], log)
    if (!plan.hostsGroupId) log.info(`[front] NFS admitted from the hosts' security group ${stageResources(plan.stage).securityGroup} (made by the host step)`)
    if (dryRun) log.info('[front] dry run: nothing was changed')
  },

  async apply(plan, deps) {
    if (!plan.hostsGroupId)
      throw new UserError(`[front] the hosts' security group ${stageResources(plan.stage).securityGroup} does not exist yet: run npm run host first (npm run deploy:aws makes it before the front door)`)
    const clients = deps.clients(plan.region)
    const fsId = await applySharedFs(clients, plan.stage, plan.sharedFs, plan.hostsGroupId, deps.log, deps.pollSeconds ?? 5)
    const lb: BalancerResult = await applyBalancer(clients, plan.stage, plan.balancer, deps.log)
    deps.log.info(`[front] ${frontResources(plan.stage).balancer}: ${lb.dnsName} at ${lb.addresses.join(', ')} (TCP 80 and 443 to every host's front); the fronts' storage ${fsId}`)
    return { dnsName: lb.dnsName, addresses: lb.addresses, sharedFs: sharedFsAddress(fsId, plan.region) }
  },

  preview(plan) {
    return plan.known
  },
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    // check: settings (before any AWS call)
    const raw = loadEnv(env, deps.envFile)
    const values = checkEnv(frontSpec, raw)
    if (values.MYMDB_HOSTS < 2) throw new ConfigError(`MYMDB_HOSTS is ${values.MYMDB_HOSTS}: one host is reached at its own Elastic IP; the front door is for several hosts (MYMDB_HOSTS=2 or more); one left from more hosts is kept in use by npm run deploy:aws, and removed by npm run deploy:aws -- --remove-front-door`)

    // plan, show, apply
    const sd = stepDeps(deps, partial, raw)
    await runStep(frontStep, values, sd, flags['dry-run'] ?? false, stageLock(sd, values, 'npm run front'))
    return 0
  })
}

runMain(import.meta.url, main)
