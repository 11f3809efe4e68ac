// npm run push: tags the images with the git commit (and latest) and pushes them to a registry:
// Amazon ECR (login token from the SDK on every run, repositories created if missing), Docker
// Hub, or any registry address.
import { buildImages, buildOptionsFrom, gitInfo, imageTags } from './build.ts'
import { ECR, STS, aws, awsClients, awsErrorCode, sameJson, type AwsClients } from './lib/aws/clients.ts'
import { imageExists, preflight } from './lib/docker.ts'
import { checkEnv, loadEnv, type CleanEnv, type RawEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { runChecked } from './lib/sh.ts'
import { awsVars, IMAGE_NAMES, imageVars, localImages, parseRegistry, releaseVars, registryImage, registryRules, registryVars, repositoryName, type ImageName, type Registry } from './lib/vars.ts'
import { stageTags } from './lib/names.ts'

export const HELP = `Usage: npm run push -- [options]

Pushes the web and db images of the current git commit to MYMDB_REGISTRY, tagged with the
commit and latest (builds them first when they are missing):
  ecr                    Amazon ECR of your account in AWS_REGION: repositories mymdb-web and
                         mymdb-db are created if missing; docker login with a fresh SDK token
  docker.io/<user>       Docker Hub (log in first with docker login, or set
                         MYMDB_REGISTRY_USERNAME/MYMDB_REGISTRY_PASSWORD). New Docker Hub
                         repositories are PUBLIC unless you make them private.
  <host[:port]>[/path]   any other registry (credentials as for Docker Hub, if it needs them)

Options:
  --dry-run     print what would be pushed where, push nothing
  -h, --help    this help

Exit codes: 0 pushed, 1 a command or AWS failed, 2 bad option or .env value.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run push',
  help: HELP,
  options: {
    'dry-run': { type: 'boolean' },
  },
} as const

/** The registry host for `docker login` and the prefix of the pushed image names (pure). */
export function registryPrefix(registry: Registry, ecrHost?: string): { loginHost: string; prefix: string } {
  switch (registry.kind) {
    case 'ecr':
      if (!ecrHost) throw new Error('ECR host unknown')
      return { loginHost: ecrHost, prefix: ecrHost }
    case 'dockerhub':
      return { loginHost: 'docker.io', prefix: `docker.io/${registry.namespace}` }
    case 'generic':
      return { loginHost: registry.host, prefix: registry.path ? `${registry.host}/${registry.path}` : registry.host }
  }
}

/** ECR's authorization token is base64 "AWS:<password>" (pure). */
export function decodeEcrToken(token: string): { username: string; password: string } {
  const text = Buffer.from(token, 'base64').toString('utf8')
  const i = text.indexOf(':')
  if (i <= 0) throw new Error('unexpected ECR authorization token')
  return { username: text.slice(0, i), password: text.slice(i + 1) }
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

/**
 * Makes sure the ECR repositories exist, with the lifecycle policy that keeps `keep` releases;
 * returns the registry host `<account>.dkr.ecr.<region>.amazonaws.com`.
 */
export async function ensureEcrRepositories(clients: AwsClients, names: string[], stage: string, dryRun: boolean, say: (line: string) => void, keep = 3): Promise<string> {
  const identity = await aws('read the AWS account id', () => clients.sts.send(new STS.GetCallerIdentityCommand({})))
  for (const name of names) {
    const exists = await clients.ecr.send(new ECR.DescribeRepositoriesCommand({ repositoryNames: [name] })).then(
      () => true,
      (err: unknown) => {
        if (awsErrorCode(err) === 'RepositoryNotFoundException') return false
        throw err
      },
    )
    say(`[push] ECR repository ${name}: ${exists ? 'exists' : dryRun ? 'would be created' : 'create'}`)
    if (!exists && !dryRun)
      await aws(`create the ECR repository ${name}`, () =>
        clients.ecr.send(new ECR.CreateRepositoryCommand({
          repositoryName: name,
          imageScanningConfiguration: { scanOnPush: true },
          imageTagMutability: 'MUTABLE',
          tags: stageTags(stage),
        })),
      )
    // the lifecycle policy: read, and written when it differs or cannot be read (setting it again
    // changes nothing; the emulator answers this read in a form the SDK rejects)
    const wanted = ecrLifecyclePolicy(keep)
    const current = exists
      ? await clients.ecr.send(new ECR.GetLifecyclePolicyCommand({ repositoryName: name })).then(
          (r) => r.lifecyclePolicyText,
          () => undefined,
        )
      : undefined
    const same = current !== undefined && sameJson(JSON.parse(current), wanted)
    say(`[push] ECR repository ${name}: lifecycle policy (keep the newest ${keep} images) ${same ? 'unchanged' : dryRun ? 'would be set' : 'set'}`)
    if (!same && !dryRun)
      await aws(`set the lifecycle policy of ${name}`, () =>
        clients.ecr.send(new ECR.PutLifecyclePolicyCommand({ repositoryName: name, lifecyclePolicyText: JSON.stringify(wanted) })),
      )
  }
  return `${identity.Account}.dkr.ecr.${clients.region}.amazonaws.com`
}

export interface PushResult {
  /** Image name prefix on the registry, e.g. 127.0.0.1:5000 or docker.io/you. */
  prefix: string
  /** The tag that identifies this commit (the deploy runs it). */
  tag: string
  refs: string[]
  /** ECR only: the fresh login, for the host to pull with. */
  login?: { username: string; password: string }
  /** The registry's digest of each pushed image (sha256:...): the host pins the db, proxy and cache by it. */
  digests?: Partial<Record<ImageName, string>>
}

/** The digest in `docker push` output ("<tag>: digest: sha256:<64 hex> size: <n>"), or undefined. */
export function pushedDigest(output: string): string | undefined {
  return /digest: (sha256:[0-9a-f]{64})/.exec(output)?.[1]
}

/** docker push lines left out of the progress (per-layer states); "Pushed" and the digest stay. */
export const LAYER_CHATTER = /^[0-9a-f]{12}: (Preparing|Waiting|Layer already exists)$/

/** The settings push reads (AWS_REGION and MYMDB_STAGE only matter for ecr). */
export type PushSettings = CleanEnv<typeof registryVars> & CleanEnv<typeof imageVars> & Partial<CleanEnv<typeof awsVars>> & Partial<CleanEnv<typeof releaseVars>>

/** Checks push's settings, all problems at once (EnvError, exit 2). */
export function pushSettings(raw: RawEnv): PushSettings {
  const isEcr = raw.MYMDB_REGISTRY?.trim() === 'ecr'
  return checkEnv({ ...registryVars, ...imageVars, ...(isEcr ? { ...awsVars, ...releaseVars } : {}) }, raw, { rules: registryRules })
}

/** Tags and pushes both images for checked settings; used by `npm run push` and by the deploy. */
export async function pushImages(values: PushSettings, raw: RawEnv, deps: Deps, opts: { dryRun?: boolean; clients?: AwsClients } = {}): Promise<PushResult> {
  const { run, log, root } = deps
  const dryRun = opts.dryRun ?? false
  const registry = parseRegistry(values.MYMDB_REGISTRY)
  const region = registry.kind === 'ecr' && values.AWS_REGION && values.MYMDB_STAGE ? { AWS_REGION: values.AWS_REGION, MYMDB_STAGE: values.MYMDB_STAGE } : null
  if (!dryRun) await preflight({ run, log, root, compose: false, install: false })

  // plan
  const git = await gitInfo(deps)
  if (!git) throw new UserError('not a git checkout: images are tagged with the git commit; run from a clone')
  const [tag] = imageTags(git)
  if (!tag) throw new Error('no commit tag')
  if (git.dirty) log.warn(`[push] the working tree has uncommitted changes: pushing ${tag} (commit your changes for a clean tag)`)
  const images = localImages(values)
  const local = Object.values(images)
  let ecrHost: string | undefined
  let ecrLogin: PushResult['login']
  if (registry.kind === 'ecr' && region) {
    const clients = opts.clients ?? awsClients(region.AWS_REGION, raw)
    ecrHost = await ensureEcrRepositories(clients, local.map(repositoryName), region.MYMDB_STAGE, dryRun, log.info, values.MYMDB_KEEP_RELEASES ?? 3)
    if (!dryRun) {
      const auth = await aws('get an ECR login token', () => clients.ecr.send(new ECR.GetAuthorizationTokenCommand({})))
      const token = auth.authorizationData?.[0]?.authorizationToken
      if (!token) throw new UserError('ECR returned no login token: check the credentials and region')
      ecrLogin = decodeEcrToken(token)
      await login(deps, ecrHost, ecrLogin.username, ecrLogin.password)
    }
  }
  const { loginHost, prefix } = registryPrefix(registry, ecrHost)
  if (registry.kind === 'dockerhub')
    log.warn(`[push] Docker Hub: repositories created by a push are PUBLIC unless you make them private (hub.docker.com > repository > settings)`)
  const refs = local.flatMap((l) => [tag, 'latest'].map((t) => `${registryImage(prefix, l)}:${t}`))
  for (const r of refs) log.info(`[push] ${r}`)
  if (dryRun) return { prefix, tag, refs }

  // apply: the images of this commit (built when missing), logged in, tagged, pushed
  const missing = []
  for (const l of local) if (!(await imageExists(run, `${l}:${tag}`))) missing.push(l)
  if (missing.length > 0) {
    log.info(`[push] ${missing.map((m) => `${m}:${tag}`).join(', ')} not built yet: building`)
    await buildImages(buildOptionsFrom(values, raw), deps)
  }
  if (registry.kind !== 'ecr' && values.MYMDB_REGISTRY_USERNAME && values.MYMDB_REGISTRY_PASSWORD)
    await login(deps, loginHost, values.MYMDB_REGISTRY_USERNAME, values.MYMDB_REGISTRY_PASSWORD)
  const digests: Partial<Record<ImageName, string>> = {}
  for (const name of IMAGE_NAMES) {
    const l = images[name]
    for (const t of [tag, 'latest']) {
      const ref = `${registryImage(prefix, l)}:${t}`
      await runChecked(run, ['docker', 'tag', `${l}:${tag}`, ref], { doing: `tag ${ref}` })
      const pushed = await log.step('push', ref, () => runChecked(run, ['docker', 'push', ref], { doing: `push ${ref}`, stream: log.prefixed('push', LAYER_CHATTER) }))
      digests[name] ??= pushedDigest(pushed.stdout)
    }
  }
  return { prefix, tag, refs, login: ecrLogin, digests }
}

/** docker login, the password through stdin (never on a command line). */
async function login(deps: Deps, host: string, username: string, password: string): Promise<void> {
  await deps.log.step('push', `docker login ${host} as ${username}`, () =>
    runChecked(deps.run, ['docker', 'login', '--username', username, '--password-stdin', host], { input: password, doing: `log in to ${host}` }),
  )
}

export async function main(argv: string[], env: Env, partial?: Partial<Deps>): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const raw = loadEnv(env, deps.envFile)
    const result = await pushImages(pushSettings(raw), raw, deps, { dryRun: flags['dry-run'] ?? false })
    deps.log.info(flags['dry-run'] ? '[push] dry run: nothing pushed' : `[push] pushed ${result.refs.length} tags to ${result.prefix}`)
    return 0
  })
}

runMain(import.meta.url, main)
