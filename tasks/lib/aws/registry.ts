// The stage's ECR repositories (one per image, tagged with the stage) with a lifecycle policy
// that keeps the newest MYMDB_KEEP_RELEASES images, and ECR's login token. Planned (reads only),
// then applied: a repository is created only when missing, a policy set only when it differs.
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { stageTags } from '../names.ts'
import { repositoryName } from '../awsvars.ts'
import { ECR, STS, aws, awsErrorCode, sameJson, type AwsClients } from './clients.ts'

/** ARNs of the ECR repositories of these local images in an account and region (pure): what the host role may pull. */
export function ecrRepositoryArns(region: string, account: string, localImages: readonly string[]): string[] {
  return localImages.map((l) => `arn:aws:ecr:${region}:${account}:repository/${repositoryName(l)}`)
}

/** The ECR lifecycle policy (pure): the newest `keep` images of a repository stay, older ones expire. */
export function ecrLifecyclePolicy(keep: number): { rules: Record<string, unknown>[] } {
  return {
    rules: [
      {
        rulePriority: 1,
        description: `keep the newest ${keep} images for rollbacks (MYMDB_KEEP_RELEASES)`,
        selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: keep },
        action: { type: 'expire' },
      },
    ],
  }
}

/** ECR's authorization token is base64 "AWS:<password>" (pure). */
export function decodeEcrToken(token: string): { username: string; password: string } {
  const text = Buffer.from(token, 'base64').toString('utf8')
  const i = text.indexOf(':')
  if (i <= 0) throw new Error('unexpected ECR authorization token')
  return { username: text.slice(0, i), password: text.slice(i + 1) }
}

export interface EcrPlan {
  /** The account's registry: <account>.dkr.ecr.<region>.amazonaws.com. */
  host: string
  stage: string
  keep: number
  repositories: { name: string; exists: boolean; policySame: boolean }[]
}

/** What exists of the repositories and their lifecycle policies (reads only). */
export async function planEcrRepositories(clients: AwsClients, names: string[], stage: string, keep = 3): Promise<EcrPlan> {
  const identity = await aws('read the AWS account id', () => clients.sts.send(new STS.GetCallerIdentityCommand({})))
  const wanted = ecrLifecyclePolicy(keep)
  const repositories = []
  for (const name of names) {
    const exists = await clients.ecr.send(new ECR.DescribeRepositoriesCommand({ repositoryNames: [name] })).then(
      () => true,
      (err: unknown) => {
        if (awsErrorCode(err) === 'RepositoryNotFoundException') return false
        throw err
      },
    )
    // a policy that cannot be read is set again (that changes nothing; the emulator answers this
    // read in a form the SDK rejects)
    const current = exists
      ? await clients.ecr.send(new ECR.GetLifecyclePolicyCommand({ repositoryName: name })).then(
          (r) => r.lifecyclePolicyText,
          () => undefined,
        )
      : undefined
    repositories.push({ name, exists, policySame: current !== undefined && sameJson(JSON.parse(current), wanted) })
  }
  return { host: `${identity.Account}.dkr.ecr.${clients.region}.amazonaws.com`, stage, keep, repositories }
}

/** The plan's lines: `[push] ECR repository mymdb-web: exists`, and its lifecycle policy. */
export function ecrPlanLines(plan: EcrPlan, dryRun: boolean): string[] {
  return plan.repositories.flatMap((r) => [
    `[push] ECR repository ${r.name}: ${r.exists ? 'exists' : dryRun ? 'would be created' : 'create'}`,
    `[push] ECR repository ${r.name}: lifecycle policy (keep the newest ${plan.keep} images) ${r.policySame ? 'unchanged' : dryRun ? 'would be set' : 'set'}`,
  ])
}

/** Creates the missing repositories and sets the policies that differ, as planned. */
export async function applyEcrRepositories(clients: AwsClients, plan: EcrPlan, log?: Log): Promise<void> {
  for (const r of plan.repositories) {
    if (!r.exists)
      await aws(`create the ECR repository ${r.name}`, () =>
        clients.ecr.send(
          new ECR.CreateRepositoryCommand({ repositoryName: r.name, imageScanningConfiguration: { scanOnPush: true }, imageTagMutability: 'MUTABLE', tags: stageTags(plan.stage) }),
        ),
      )
    if (!r.policySame)
      await aws(`set the lifecycle policy of ${r.name}`, () =>
        clients.ecr.send(new ECR.PutLifecyclePolicyCommand({ repositoryName: r.name, lifecyclePolicyText: JSON.stringify(ecrLifecyclePolicy(plan.keep)) })),
      )
  }
  const made = plan.repositories.filter((r) => !r.exists).map((r) => r.name)
  if (made.length > 0) log?.info(`[push] ECR: created ${made.join(', ')}`)
}

/** A fresh ECR login (valid 12 hours). */
export async function ecrLogin(clients: AwsClients): Promise<{ username: string; password: string }> {
  const auth = await aws('get an ECR login token', () => clients.ecr.send(new ECR.GetAuthorizationTokenCommand({})))
  const token = auth.authorizationData?.[0]?.authorizationToken
  if (!token) throw new UserError('ECR returned no login token: check the credentials and region')
  return decodeEcrToken(token)
}
