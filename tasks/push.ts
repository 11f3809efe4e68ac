// npm run push (step 1 of deploy:aws): tags the four images with the git commit (and latest) and
// pushes them to a registry:
// Amazon ECR (login token from the SDK on every run, repositories created if missing), Docker
// Hub, or any registry address.
import { buildSettingsFrom, buildStep, dockerLogin, gitInfo, imageTags, missingImages, pushImages } from './lib/images.ts'
import { applyEcrRepositories, ecrLogin as getEcrLogin, ecrPlanLines, planEcrRepositories, type EcrPlan } from './lib/aws/registry.ts'
import { preflight } from './lib/docker.ts'
import { checkEnv, loadEnv, valuesOf, type CleanEnv, type RawEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { runStep, stepDeps, type Step, type StepSeams } from './lib/step.ts'
import { imageVars, localImages, type ImageName } from './lib/vars.ts'
import { awsVars, parseRegistry, registryImage, registryPrefix, registryRules, registryVars, releaseVars, repositoryName, type Registry } from './lib/awsvars.ts'
import { stageLock } from './lib/lock.ts'

export const HELP = `Usage: npm run push -- [options]

Pushes the four images (web, db, proxy, cache) of the current git commit to MYMDB_REGISTRY,
tagged with the commit and latest (builds them first when they are missing):
  ecr                    Amazon ECR of your account in AWS_REGION: repositories mymdb-web,
                         mymdb-db, mymdb-proxy and mymdb-cache are created if missing, each with a
                         lifecycle policy keeping MYMDB_KEEP_RELEASES images; docker login with a
                         fresh SDK token
  docker.io/<user>       Docker Hub (log in first with docker login, or set
                         MYMDB_REGISTRY_USERNAME/MYMDB_REGISTRY_PASSWORD). New Docker Hub
                         repositories are PUBLIC unless you make them private.
  <host[:port]>[/path]   any other registry (credentials as for Docker Hub, if it needs them)
These logins stay on this machine: the host pulls with its instance role (ecr) or with its own
read-only MYMDB_PULL_USERNAME/MYMDB_PULL_PASSWORD (other registries; none: anonymously).

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

export interface PushResult {
  /** Image name prefix on the registry, e.g. 127.0.0.1:5000 or docker.io/you. */
  prefix: string
  /** The tag that identifies this commit (the deploy runs it). */
  tag: string
  refs: string[]
  /** The registry's digest of each pushed image (sha256:...): the host pins the db, proxy and cache by it. */
  digests?: Partial<Record<ImageName, string>>
}

/** The settings push reads (AWS_REGION and MYMDB_STAGE only matter for ecr). */
export type PushSettings = CleanEnv<typeof registryVars> & CleanEnv<typeof imageVars> & Partial<CleanEnv<typeof awsVars>> & Partial<CleanEnv<typeof releaseVars>>

/** Checks push's settings, all problems at once (EnvError, exit 2). */
export function pushSettings(raw: RawEnv): PushSettings {
  const isEcr = raw.MYMDB_REGISTRY?.trim() === 'ecr'
  return checkEnv({ ...registryVars, ...imageVars, ...(isEcr ? { ...awsVars, ...releaseVars } : {}) }, raw, { rules: registryRules })
}

export interface PushPlan {
  registry: Registry
  /** Image name prefix on the registry, e.g. 127.0.0.1:5000 or docker.io/you. */
  prefix: string
  loginHost: string
  /** The tag of this commit. */
  tag: string
  /** The working tree has uncommitted changes. */
  dirty: boolean
  refs: string[]
  /** ECR: the repositories (and the region they are in). */
  ecr?: EcrPlan & { region: string }
  /** The image settings the images are built with when missing. */
  images: CleanEnv<typeof imageVars>
  /** The login for a registry other than ECR (MYMDB_REGISTRY_USERNAME/PASSWORD; never shown). */
  login?: { username: string; password: string }
}

export const pushStep: Step<PushSettings, PushPlan, PushResult> = {
  name: 'push',

  /** This commit's tag, the registry's image names, and for ECR what exists of the repositories. */
  async plan(values, deps) {
    const registry = parseRegistry(values.MYMDB_REGISTRY)
    const git = await gitInfo(deps)
    if (!git) throw new UserError('not a git checkout: images are tagged with the git commit; run from a clone')
    const [tag] = imageTags(git)
    if (!tag) throw new Error('no commit tag')
    const local = Object.values(localImages(values))
    const ecr =
      registry.kind === 'ecr' && values.AWS_REGION && values.MYMDB_STAGE
        ? { region: values.AWS_REGION, ...(await planEcrRepositories(deps.clients(values.AWS_REGION), local.map(repositoryName), values.MYMDB_STAGE, values.MYMDB_KEEP_RELEASES ?? 3)) }
        : undefined
    const { loginHost, prefix } = registryPrefix(registry, ecr?.host)
    const refs = local.flatMap((l) => [tag, 'latest'].map((t) => `${registryImage(prefix, l)}:${t}`))
    const { MYMDB_REGISTRY_USERNAME: username, MYMDB_REGISTRY_PASSWORD: password } = values
    const login = registry.kind !== 'ecr' && username && password ? { username, password } : undefined
    return { registry, prefix, loginHost, tag, dirty: git.dirty, refs, ...(ecr ? { ecr } : {}), images: valuesOf(imageVars, values), ...(login ? { login } : {}) }
  },

  show(plan, log, dryRun) {
    if (plan.dirty) log.warn(`[push] the working tree has uncommitted changes: pushing ${plan.tag} (commit your changes for a clean tag)`)
    if (plan.ecr) for (const line of ecrPlanLines(plan.ecr, dryRun)) log.info(line)
    if (plan.registry.kind === 'dockerhub')
      log.warn(`[push] Docker Hub: repositories created by a push are PUBLIC unless you make them private (hub.docker.com > repository > settings)`)
    for (const r of plan.refs) log.info(`[push] ${r}`)
    if (dryRun) log.info('[push] dry run: nothing pushed')
  },

  /** The images of this commit (built when missing), logged in, tagged, pushed. */
  async apply(plan, deps) {
    const { run, log, root } = deps
    await preflight({ run, log, root, compose: false, install: false })
    if (plan.ecr) {
      // this machine's login; the host gets its own tokens with its instance role
      const clients = deps.clients(plan.ecr.region)
      await applyEcrRepositories(clients, plan.ecr, log)
      const ecrLogin = await getEcrLogin(clients)
      await dockerLogin(deps, plan.ecr.host, ecrLogin.username, ecrLogin.password)
    }
    const images = localImages(plan.images)
    const missing = await missingImages(run, images, plan.tag)
    if (missing.length > 0) {
      log.info(`[push] ${missing.map((n) => `${images[n]}:${plan.tag}`).join(', ')} not built yet: building`)
      await runStep(buildStep, buildSettingsFrom(plan.images), deps, false)
    }
    if (plan.login) await dockerLogin(deps, plan.loginHost, plan.login.username, plan.login.password)
    const digests = await pushImages(deps, images, plan.prefix, plan.tag)
    log.info(`[push] pushed ${plan.refs.length} tags to ${plan.prefix}`)
    return { ...this.preview(plan), digests }
  },

  preview(plan) {
    return { prefix: plan.prefix, tag: plan.tag, refs: plan.refs }
  },
}

export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const raw = loadEnv(env, deps.envFile)
    const settings = pushSettings(raw)
    const sd = stepDeps(deps, partial, raw)
    const dryRun = flags['dry-run'] ?? false
    await runStep(pushStep, settings, sd, dryRun, stageLock(sd, settings, 'npm run push'))
    return 0
  })
}

runMain(import.meta.url, main)
