// Commands running on a host, counted, so that an interrupted run (Ctrl-C) can wait for the one
// running there before it lets go of the stage's lock, and start nothing new meanwhile.
import { UserError } from './errors.ts'

let running = 0
let interrupted: string | null = null
let waiting: (() => void)[] = []

/** Whether a command runs on a host now. */
export function remoteWorkRunning(): boolean {
  return running > 0
}

/** From now on no new command starts on a host (a run that was interrupted). */
export function interruptRemoteWork(why: string): void {
  interrupted = why
}

/** Resolves once no command runs on a host. */
export function whenRemoteWorkEnds(): Promise<void> {
  return running === 0 ? Promise.resolve() : new Promise((resolve) => waiting.push(resolve))
}

/**
 * Runs `work`, a command on a host, counted; refuses to start one once the run was interrupted
 * (exit code 130: run the command again).
 */
export async function remoteWork<T>(what: string, work: () => Promise<T>): Promise<T> {
  if (interrupted) throw new UserError(`${interrupted}: not started on the host: ${what}. Run the same npm command again`, 130)
  running++
  try {
    return await work()
  } finally {
    running--
    if (running === 0) {
      const done = waiting
      waiting = []
      for (const resolve of done) resolve()
    }
  }
}
