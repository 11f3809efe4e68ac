// The host's backup schedule (pure): two crontab lines of the login user, both run from ~/mymdb.
//   the schedule   MYMDB_BACKUP_SCHEDULE: sh backup.sh (the same script as backup --aws, holding
//                  the stage's lock; skipped, recorded, while a deploy or restore holds it)
//   the catch-up   hourly: sh catch-up.sh, which takes a backup only when the last good one is
//                  older than the longest gap of the schedule plus an hour: a run missed while
//                  the host was off (cron does not run what it missed) or one that failed
//                  happens within about two hours of the host coming back
import { CronExpressionParser } from 'cron-parser'
import { BACKUP_LOG } from './backup.ts'
import type { Cmd } from './sh.ts'

/** The host's backup script, run by its schedule. */
export const BACKUP_SCRIPT_FILE = 'backup.sh'
/** The catch-up check, run hourly. */
export const CATCH_UP_SCRIPT_FILE = 'catch-up.sh'
/** The output of the last scheduled (or caught-up) run. */
export const LAST_BACKUP_OUTPUT = 'last-backup.log'
/**
 * How long the scheduled backup holds the stage's lock (a fixed lease: the host does not renew it;
 * it releases it when it ends, and a backup that dies lets go after this).
 */
export const BACKUP_LOCK_SECONDS = 3600
/** Marks the schedule's line in the login user's crontab. */
export const CRON_MARK = '# mymdb-backup'
/** Marks the catch-up line (it contains CRON_MARK: installing replaces both). */
export const CATCH_UP_MARK = '# mymdb-backup-catch-up'

/**
 * The longest time between two runs of a cron schedule, in seconds (pure): its runs over a year
 * from a fixed date (at most 3000 of them: a schedule that runs more often has short gaps).
 */
export function longestGapSeconds(schedule: string): number {
  const runs = CronExpressionParser.parse(schedule, { tz: 'UTC', currentDate: new Date('2026-01-01T00:00:00Z') })
  const end = Date.parse('2027-01-15T00:00:00Z')
  let previous = runs.next().getTime()
  let longest = 0
  for (let i = 0; i < 3000 && previous < end; i++) {
    const next = runs.next().getTime()
    longest = Math.max(longest, next - previous)
    previous = next
  }
  return Math.round(longest / 1000)
}

/** The crontab lines of the schedule and its catch-up (pure); none: no schedule. */
export function cronLines(schedule: string): string[] {
  if (schedule === 'off') return []
  // the catch-up half an hour away from the schedule's minute, so that the two rarely meet
  const minute = /^\d+$/.exec(schedule.split(' ')[0] ?? '') ? (Number(schedule.split(' ')[0]) + 30) % 60 : 47
  return [
    `${schedule} cd "$HOME/mymdb" && sh ${BACKUP_SCRIPT_FILE} > ${LAST_BACKUP_OUTPUT} 2>&1 ${CRON_MARK}`,
    `${minute} * * * * cd "$HOME/mymdb" && sh ${CATCH_UP_SCRIPT_FILE} ${CATCH_UP_MARK}`,
  ]
}

/**
 * The catch-up check (pure): runs backup.sh, its output into last-backup.log, when backups.log
 * has no good backup younger than `maxAgeSeconds`; otherwise does nothing.
 */
export function catchUpScript(maxAgeSeconds: number): string {
  return [
    'set -eu',
    `last=$(grep '"ok":true' ${BACKUP_LOG} 2>/dev/null | tail -n 1 | sed -n 's/^{"at":"\\([^"]*\\)".*/\\1/p' || true)`,
    `if [ -n "$last" ] && [ $(( $(date -u +%s) - $(date -u -d "$last" +%s) )) -lt ${maxAgeSeconds} ]; then exit 0; fi`,
    `{ echo "catch-up: the last good backup is from \${last:-never}: taking the one the schedule missed"; sh ${BACKUP_SCRIPT_FILE}; } > ${LAST_BACKUP_OUTPUT} 2>&1`,
  ].join('\n')
}

/** Puts `lines` into the login user's crontab in place of earlier ones of ours (none: removes them); other lines stay. */
export function installCronCmd(lines: string[]): Cmd {
  return ['sh', '-c', '{ crontab -l 2>/dev/null | grep -v -F -e "$0" || true; if [ "$#" -gt 0 ]; then printf "%s\\n" "$@"; fi; } | crontab -', CRON_MARK, ...lines]
}
