// The stack's images: where each is built from, how the base image is obtained (present, pulled,
// or bootstrapped from the Debian mirror), their tags (the git commit and latest), the build
// itself, and the push to a registry. Used by npm run build, up:local (builds what is missing)
// and push.
import { resolve } from 'node:path'
import type { CleanEnv } from './env.ts'
import { UserError } from './errors.ts'
import type { Deps, Env } from './main.ts'
import type { Step } from './step.ts'
import { imageExists, checkEngine } from './docker.ts'
import { runChecked, showCommand, type Runner } from './sh.ts'
import { IMAGE_NAMES, imageVars, localImages, PINNED_IMAGES, type ImageName } from './vars.ts'
import { registryImage } from './awsvars.ts'
import { baseIdentity, contextFiles, INPUTS_LABEL, inputsDigest } from './imageinputs.ts'

export const DEBIAN_BASE = 'debian:trixie-slim'
export const BOOTSTRAP_BASE = 'mymdb-base:trixie'
export const PULL_TIMEOUT_MS = 20_000

/** Where each image is built from (paths relative to the repository root). */
export const IMAGE_SOURCES: Record<ImageName, { dockerfile: string; context: string }> = {
  web: { dockerfile: 'Dockerfile', context: '.' },
  db: { dockerfile: 'docker/psql/Dockerfile', context: 'docker/psql' },
  proxy: { dockerfile: 'docker/proxy/Dockerfile', context: 'docker/proxy' },
  cache: { dockerfile: 'docker/cache/Dockerfile', context: 'docker/cache' },
}

/** How the base image is obtained. */
export type BaseStep =
  | { kind: 'use'; image: string; why: string }
  | { kind: 'pull'; image: string; timeoutMs?: number; why: string; orElse?: BaseStep }
  | { kind: 'bootstrap'; image: string; rebuild: boolean; why: string }

export interface BaseFacts {
  /** debian:trixie-slim is present locally. */
  debianLocal: boolean
  /** mymdb-base:trixie is present locally. */
  bootstrapLocal: boolean
}

/** Decides how to get the base image (pure). `mode` is MYMDB_BASE_IMAGE: auto, pull, bootstrap or an image. */
export function planBase(mode: string, facts: BaseFacts, rebuildBase = false): BaseStep {
  const bootstrap = (why: string): BaseStep =>
    facts.bootstrapLocal && !rebuildBase
      ? { kind: 'use', image: BOOTSTRAP_BASE, why: `${why}; ${BOOTSTRAP_BASE} exists locally` }
      : { kind: 'bootstrap', image: BOOTSTRAP_BASE, rebuild: facts.bootstrapLocal, why }
  switch (mode) {
    case 'pull':
      return { kind: 'pull', image: DEBIAN_BASE, why: 'MYMDB_BASE_IMAGE=pull' }
    case 'bootstrap':
      return bootstrap(rebuildBase ? 'bootstrap, --rebuild-base' : 'MYMDB_BASE_IMAGE=bootstrap')
    case 'auto':
      if (rebuildBase) return bootstrap('auto with --rebuild-base')
      if (facts.debianLocal) return { kind: 'use', image: DEBIAN_BASE, why: `auto: ${DEBIAN_BASE} exists locally` }
      return {
        kind: 'pull',
        image: DEBIAN_BASE,
        timeoutMs: PULL_TIMEOUT_MS,
        why: `auto: ${DEBIAN_BASE} not present locally`,
        orElse: bootstrap('auto: the pull failed'),
      }
    default:
      return { kind: 'use', image: mode, why: `MYMDB_BASE_IMAGE=${mode}` }
  }
}

/** One line saying what planBase decided. */
export function describeBase(step: BaseStep): string {
  switch (step.kind) {
    case 'use':
      return `${step.image} (${step.why})`
    case 'pull': {
      const limit = step.timeoutMs ? ` within ${step.timeoutMs / 1000} s` : ''
      const orElse = step.orElse ? `, else ${describeBase(step.orElse)}` : ''
      return `docker pull ${step.image}${limit} (${step.why})${orElse}`
    }
    case 'bootstrap':
      return `${step.rebuild ? 're-bootstrap' : 'bootstrap'} ${step.image} with scripts/make-base-image.sh (${step.why})`
  }
}

/** The image tags: commit (+ "-dirty"), latest, and MYMDB_TAG; no duplicates. */
export function imageTags(git: { commit: string; dirty: boolean } | null, composeTag = 'latest'): string[] {
  const tags = [git ? `${git.commit}${git.dirty ? '-dirty' : ''}` : null, 'latest', composeTag]
  return [...new Set(tags.filter((t): t is string => t !== null))]
}

export interface ImageBuild {
  name: ImageName
  refs: string[]
  /** The docker build command (run in the repository root). */
  cmd: string[]
}

export interface BuildPlanInput {
  only?: ImageName
  /** The local image names (localImages). */
  images: Record<ImageName, string>
  tags: string[]
  baseImage: string
  revision?: string
  noCache?: boolean
  /** The digest of each image's build inputs (db, proxy, cache: the label org.mymdb.inputs). */
  inputs?: Partial<Record<ImageName, string>>
}

/**
 * The docker build commands (pure). Paths are relative to the repository root. Only the web image
 * carries the commit as a label; the db, proxy and cache images carry the digest of what they are
 * built from (imageinputs.ts), which the deploy compares to keep their containers running.
 */
export function planImages(input: BuildPlanInput): ImageBuild[] {
  const names: readonly ImageName[] = input.only ? [input.only] : IMAGE_NAMES
  return names.map((name) => {
    const { dockerfile, context } = IMAGE_SOURCES[name]
    const refs = input.tags.map((t) => `${input.images[name]}:${t}`)
    const cmd = [
      'docker', 'build', '--progress=plain',
      '--file', dockerfile,
      '--build-arg', `BASE_IMAGE=${input.baseImage}`,
      ...(input.noCache ? ['--no-cache'] : []),
      ...(input.revision && name === 'web' ? ['--label', `org.opencontainers.image.revision=${input.revision}`] : []),
      ...(input.inputs?.[name] ? ['--label', `${INPUTS_LABEL}=${input.inputs[name]}`] : []),
      ...refs.flatMap((r) => ['--tag', r]),
      context,
    ]
    return { name, refs, cmd }
  })
}

/** The git commit of the checkout, or null outside git. */
export async function gitInfo(deps: Pick<Deps, 'run' | 'root'>): Promise<{ commit: string; dirty: boolean } | null> {
  const head = await deps.run(['git', 'rev-parse', '--short', 'HEAD'], { cwd: deps.root })
  const commit = head.stdout.trim()
  if (!head.ok || !/^[0-9a-f]{4,40}$/.test(commit)) return null
  const status = await deps.run(['git', 'status', '--porcelain', '--untracked-files=no'], { cwd: deps.root })
  return { commit, dirty: status.ok && status.stdout.trim() !== '' }
}

/** The images of `tag` that are not here (`images`: their local names, localImages). */
export async function missingImages(run: Runner, images: Record<ImageName, string>, tag: string): Promise<ImageName[]> {
  const missing: ImageName[] = []
  for (const name of IMAGE_NAMES) if (!(await imageExists(run, `${images[name]}:${tag}`))) missing.push(name)
  return missing
}

/** What a build is asked for (the settings of the build step). */
export interface BuildSettings {
  only?: ImageName
  /** MYMDB_BASE_IMAGE: auto, pull, bootstrap or an image. */
  base: string
  rebuildBase: boolean
  noCache: boolean
  images: Record<ImageName, string>
  composeTag: string
}

export function buildSettingsFrom(values: CleanEnv<typeof imageVars>, flags: Partial<BuildSettings> = {}): BuildSettings {
  return {
    only: flags.only,
    base: flags.base ?? values.MYMDB_BASE_IMAGE,
    rebuildBase: flags.rebuildBase ?? false,
    noCache: flags.noCache ?? false,
    images: localImages(values),
    composeTag: values.MYMDB_TAG,
  }
}

/** Gets the base image as planned; returns the image to build from. */
async function obtainBase(step: BaseStep, deps: Deps, env: Env): Promise<string> {
  const { run, log, root } = deps
  switch (step.kind) {
    case 'use':
      return step.image
    case 'pull': {
      const r = await log.step('base', `docker pull ${step.image}`, () =>
        run(['docker', 'pull', step.image], { env, timeoutMs: step.timeoutMs, stream: log.prefixed('pull') }),
      )
      if (r.ok) return step.image
      const why = r.exitCode === null ? `no answer within ${(step.timeoutMs ?? 0) / 1000} s` : `exit code ${r.exitCode}`
      if (!step.orElse) {
        throw new UserError(
          `could not pull ${step.image} (${why}): check the registry connection, or set MYMDB_BASE_IMAGE=bootstrap in .env`,
        )
      }
      log.warn(`[base] could not pull ${step.image} (${why}); falling back: ${describeBase(step.orElse)}`)
      return obtainBase(step.orElse, deps, env)
    }
    case 'bootstrap': {
      if ((process.getuid?.() ?? 0) !== 0)
        throw new UserError(
          `bootstrapping ${step.image} needs root: run sudo bash scripts/make-base-image.sh ${step.image}, then npm run build again`,
        )
      await log.step('base', `bootstrap ${step.image} (debootstrap, about a minute)`, () =>
        runChecked(run, ['bash', 'scripts/make-base-image.sh', step.image], {
          cwd: root,
          env,
          stream: log.prefixed('base'),
          doing: `bootstrap the base image ${step.image}`,
        }),
        20,
      )
      return step.image
    }
  }
}

export interface BuildPlan {
  /** How the base image is obtained. */
  base: BaseStep
  /** The engine answered (when it does not, a dry run counts the local images as absent). */
  engineUp: boolean
  /** The build commands' input but the base image and the digests of the build inputs (known once the base is there). */
  input: Omit<BuildPlanInput, 'baseImage' | 'inputs'>
  /** The builds with the planned base image (the digests shown as placeholders). */
  builds: ImageBuild[]
}

/**
 * The images built with BuildKit in the repository root: plan (the base image's way, the tags,
 * the commands), show, apply (base obtained, the inputs' digests taken, each image built). Run
 * by runStep for npm run build, and for up:local and push when images are missing. The
 * environment of the docker commands is deps.env (DOCKER_BUILDKIT=1 added).
 */
export const buildStep: Step<BuildSettings, BuildPlan, string[]> = {
  name: 'build',

  async plan(s, deps) {
    const { run } = deps
    const engineUp = (await checkEngine(run)) === null
    const facts: BaseFacts = engineUp
      ? { debianLocal: await imageExists(run, DEBIAN_BASE), bootstrapLocal: await imageExists(run, BOOTSTRAP_BASE) }
      : { debianLocal: false, bootstrapLocal: false }
    const base = planBase(s.base, facts, s.rebuildBase)
    const git = await gitInfo(deps)
    const input = { only: s.only, images: s.images, tags: imageTags(git, s.composeTag), revision: git?.commit, noCache: s.noCache }
    const placeholders = Object.fromEntries(PINNED_IMAGES.map((n) => [n, '<sha256 of its build inputs>']))
    return { base, engineUp, input, builds: planImages({ ...input, baseImage: base.image, inputs: placeholders }) }
  },

  show(plan, log, dryRun) {
    if (!plan.input.revision) log.warn('[build] not a git checkout: tagging without a commit')
    if (dryRun) log.info(`[build] dry run${plan.engineUp ? '' : ' (Docker engine not reachable: local images counted as absent)'}`)
    log.info(`[build] base image: ${describeBase(plan.base)}`)
    if (!dryRun) return
    if (plan.base.kind === 'pull' && plan.base.orElse)
      log.info(`[build] (the commands below show ${plan.base.image}; with ${plan.base.orElse.image} if the pull fails)`)
    for (const b of plan.builds) {
      log.info(`[build] ${b.name}: ${b.refs.join(', ')}`)
      log.info(`  $ DOCKER_BUILDKIT=1 ${showCommand(b.cmd)}`)
    }
  },

  async apply(plan, deps) {
    const { run, log, root } = deps
    const env: Env = { ...deps.env, DOCKER_BUILDKIT: '1' }
    const baseImage = await obtainBase(plan.base, deps, env)
    const base = await baseIdentity(run, baseImage)
    const inputs = Object.fromEntries(PINNED_IMAGES.map((n) => [n, inputsDigest(base, IMAGE_SOURCES[n].dockerfile, contextFiles(resolve(root, IMAGE_SOURCES[n].context)))]))
    const builds = planImages({ ...plan.input, baseImage, inputs })
    for (const b of builds) {
      await log.step('build', `${b.name} image ${b.refs[0]} (from ${baseImage})`, () =>
        runChecked(run, b.cmd, { cwd: root, env, stream: log.prefixed(`build ${b.name}`), doing: `build the ${b.name} image` }),
      )
    }
    return builds.flatMap((b) => b.refs)
  },

  preview(plan) {
    return plan.builds.flatMap((b) => b.refs)
  },
}

// --- push --------------------------------------------------------------------------------------

/** docker push lines left out of the progress (per-layer states); "Pushed" and the digest stay. */
export const LAYER_CHATTER = /^[0-9a-f]{12}: (Preparing|Waiting|Layer already exists)$/

/** The digest in `docker push` output ("<tag>: digest: sha256:<64 hex> size: <n>"), or undefined. */
export function pushedDigest(output: string): string | undefined {
  return /digest: (sha256:[0-9a-f]{64})/.exec(output)?.[1]
}

/** docker login, the password through stdin (never on a command line). */
export async function dockerLogin(deps: Pick<Deps, 'run' | 'log'>, host: string, username: string, password: string): Promise<void> {
  await deps.log.step('push', `docker login ${host} as ${username}`, () =>
    runChecked(deps.run, ['docker', 'login', '--username', username, '--password-stdin', host], { input: password, doing: `log in to ${host}` }),
  )
}

/**
 * Tags the local images of `tag` (`images`: their local names) as `<prefix>/<repository>` with
 * `tag` and latest, and pushes them (logged in already). Returns the registry's digest of each.
 */
export async function pushImages(deps: Pick<Deps, 'run' | 'log'>, images: Record<ImageName, string>, prefix: string, tag: string): Promise<Partial<Record<ImageName, string>>> {
  const { run, log } = deps
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
  return digests
}
