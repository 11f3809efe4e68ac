// The one contract of every step: the deploy's (push, bucket, host, front, database, start; the
// front door's removal), and build, rollback and destroy:aws:
//   plan(settings, deps)  reads what is there and decides; changes nothing; plain data
//   show(plan, log)       prints the plan (what a dry run shows is what apply executes)
//   apply(plan, deps)     executes exactly the plan, returns a typed result
//   preview(plan)         the result as far as the plan knows it (what a dry run hands on)
// runStep does the dry run for every step: plan, show, and apply unless it is a dry run; with a
// stage's lock it holds it (a dry run says who holds it). inStage does the same for a task
// that runs several steps under one lock (deploy:aws).
import type { StageLock } from './lock.ts'
import { awsClients as makeAwsClients, type AwsClients } from './aws/clients.ts'
import type { Log } from './log.ts'
import type { Deps, Env } from './main.ts'
import type { OpenRemote } from './ssh.ts'
import type { HttpGet, ResolveName } from './remote/checks.ts'

/** What a step may use from outside; tests replace parts of it (all but Deps are optional seams). */
export interface StepDeps extends Deps {
  /** The environment of child processes and of the AWS clients (the environment merged with .env). */
  env: Env
  /** The AWS clients of a region, made once per run (from the environment merged with .env). */
  clients(region: string): AwsClients
  /** Makes the AWS clients (default: awsClients from lib/aws/clients.ts). */
  awsClients?: (region: string, env: Env) => AwsClients
  /** fetch, for the public IP lookup. */
  fetch?: typeof fetch
  /** Opens the SSH session (default: ssh2). */
  openRemote?: OpenRemote
  /** The HTTP client of the final check. */
  httpGet?: HttpGet
  /** Reads the private key file. */
  readKey?: (path: string) => string
  /** Seconds between polls (Docker on the host, HTTP, DNS); tests use 0. */
  pollSeconds?: number
  /** Seconds the host step waits for SSH on a host of a cluster that ran before (default: DOWN_HOST_WAIT_SECONDS). */
  downHostWaitSeconds?: number
  /** Looks up the domain's addresses (default: DNS). */
  resolveName?: ResolveName
  /** When the whole deploy started (epoch ms; default: when the start step started), for the history. */
  startedAt?: number
  /** Waits before trying the bucket policy again. */
  policyRetryDelaysMs?: number[]
}

/** The test seams of StepDeps, as a task's main() takes them. */
export type StepSeams = Partial<Omit<StepDeps, 'env' | 'clients'>>

/** A task's StepDeps: its Deps, the seams, and `env` (the environment merged with .env). */
export function stepDeps(deps: Deps, seams: StepSeams | undefined, env: Env): StepDeps {
  const make = seams?.awsClients ?? makeAwsClients
  const made = new Map<string, AwsClients>()
  const clients = (region: string) => {
    if (!made.has(region)) made.set(region, make(region, env))
    return made.get(region) as AwsClients
  }
  return { ...seams, ...deps, env, clients }
}

export interface Step<S, P, R> {
  /** The step's tag in the output: push, bucket, host, front (the front door's removal too), database, start, build, rollback, destroy. */
  readonly name: string
  plan(settings: S, deps: StepDeps): Promise<P>
  show(plan: P, log: Log, dryRun: boolean): void
  apply(plan: P, deps: StepDeps): Promise<R>
  preview(plan: P): R
  /**
   * The plan reads what exists only once the stage was deployed (a host, over SSH): with a lock it
   * is made once, holding it, instead of once to check and again holding it.
   */
  readonly planHoldingLock?: boolean
}

/**
 * Runs `fn` holding the stage's lock; a dry run holds nothing and says who holds it, if anyone
 * (a real run would stop there, or wait for a scheduled backup).
 */
export async function inStage<T>(lock: StageLock | undefined, dryRun: boolean, log: Log, tag: string, fn: () => Promise<T>): Promise<T> {
  if (!lock) return fn()
  if (!dryRun) return lock.hold(fn)
  const note = await lock.note()
  if (note) log.warn(`[${tag}] note: ${note}`)
  return fn()
}

/**
 * Plans the step, shows the plan, and applies it unless `dryRun` (then the preview is the result).
 * With `lock` (a task run alone that changes a stage) the first plan only checks, and the plan
 * shown and applied is made again holding the lock: nothing is locked for a bad setting, and
 * nothing another run changed meanwhile is missed; a step whose plan needs the stage to exist
 * (planHoldingLock) plans once, holding it. A dry run notes who holds the lock. `confirm`
 * (destroy asks a person) comes between the plan shown and its apply, and may refuse by throwing.
 */
export async function runStep<S, P, R>(step: Step<S, P, R>, settings: S, deps: StepDeps, dryRun: boolean, lock?: StageLock, confirm?: (plan: P) => Promise<void>): Promise<R> {
  const showAndApply = async (p: P) => {
    step.show(p, deps.log, false)
    await confirm?.(p)
    return step.apply(p, deps)
  }
  if (dryRun)
    return inStage(lock, true, deps.log, step.name, async () => {
      const plan = await step.plan(settings, deps)
      step.show(plan, deps.log, true)
      return step.preview(plan)
    })
  if (!lock) return showAndApply(await step.plan(settings, deps))
  // the first plan only checks, so that nothing is locked for a bad setting
  if (!step.planHoldingLock) await step.plan(settings, deps)
  return lock.hold(async () => showAndApply(await step.plan(settings, deps)))
}
