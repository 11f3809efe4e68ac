// Deleting an AWS resource during destroy: done when AWS says it is deleted or already gone;
// asked again while AWS answers that a part of it is still held by something being deleted
// (a security group's network interfaces, a balancer's addresses, a file system's mount targets).
import { retryUntil } from '../sh.ts'
import { awsErrorCode, explainAwsError } from './clients.ts'

export interface RemoveCodes {
  /** AWS's answers meaning "still in use": asked again after `delayMs`. */
  busy?: readonly string[]
  /** AWS's answers meaning "not there": done. */
  gone?: readonly string[]
}

/**
 * Runs the delete `call` until it succeeds or AWS answers one of `codes.gone`; again every
 * `delayMs` (at most `attempts` times, `onBusy` told each time) while it answers one of
 * `codes.busy`. Any other error ends it, explained as failing to `what`.
 */
export async function removeWhileBusy(what: string, codes: RemoveCodes, call: () => Promise<unknown>, opts: { delayMs: number; attempts?: number; onBusy?: (attempt: number, attempts: number) => void }): Promise<void> {
  const attempts = opts.attempts ?? 40
  const busy = (err: unknown) => (codes.busy ?? []).includes(awsErrorCode(err))
  await retryUntil(
    attempts,
    opts.delayMs,
    async (attempt) => {
      try {
        await call()
      } catch (err) {
        if ((codes.gone ?? []).includes(awsErrorCode(err))) return true
        if (!busy(err)) throw explainAwsError(err, what)
        if (attempt < attempts) opts.onBusy?.(attempt, attempts)
        throw err
      }
      return true
    },
    (_last, err) => explainAwsError(err, what),
    (err) => !busy(err),
  )
}
