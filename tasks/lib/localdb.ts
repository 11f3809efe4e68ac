// The database of the stack on this machine, before up:local starts the stack: its volume keeps
// the passwords it was made with, so a volume made by another checkout (or with a .env deleted
// since) refuses this checkout's. That is found within seconds, and said with the ways on.
import type { LocalSecret } from './compose.ts'
import { ConfigError } from './errors.ts'
import type { Log } from './log.ts'
import { check } from './sh.ts'
import { LOGIN_REFUSED, runIn, showDiagnostics, stackCommands, type Stack } from './stack.ts'

/**
 * What up:local says when the database in `volume` refuses this checkout's password (pure): the
 * cause, that nothing was changed, and the three ways on. `generated`: the database passwords
 * .env did not have (the fixed ones of earlier versions were tried).
 */
export function databaseRefused(o: { volume: string; envFile: string; project: string; answer: string; generated: readonly LocalSecret[] }): string {
  const withProject = o.project === 'mymdb' ? '' : ` (with COMPOSE_PROJECT_NAME=${o.project})`
  const tried =
    o.generated.length > 0
      ? `the fixed local password of earlier versions, tried because ${o.envFile} has no ${o.generated.join(' or ')}`
      : `DJANGO_DB_PASSWORD from ${o.envFile}`
  return [
    `the database in the volume ${o.volume} was made with other passwords: it refuses ${tried} (${o.answer}).`,
    'That volume was made by another checkout of MyMDB on this machine, or with a .env that has since been deleted.',
    `Nothing was changed: the volume and its data are as they were, and ${o.envFile} was not written. To go on, one of:`,
    `  - use that database: copy DJANGO_DB_PASSWORD and POSTGRES_PASSWORD from the other checkout's .env into ${o.envFile}, then run npm run up:local again`,
    `  - keep it, and give this checkout its own data: set COMPOSE_PROJECT_NAME=${o.project}-2 in ${o.envFile} (and another WEB_PORT if both are to run), then npm run up:local`,
    `  - delete it and start afresh (its database, uploads and certificates are lost for good): npm run stop -- --delete-data${withProject}, then npm run up:local`,
  ].join('\n')
}

/**
 * Logs in to the database as web will, with this checkout's passwords, before the stack starts
 * (its volume exists, so its passwords were set when it was made): a running db as it is, else
 * the db alone, started for it (waiting up to `waitSeconds` for it to be healthy). A database
 * made with other passwords refuses: a ConfigError with the cause and the fixes
 * (databaseRefused), within seconds instead of a web container waiting for minutes. Nothing is
 * changed: the volume is never touched, and a db this started is stopped again.
 */
export async function checkDatabaseLogin(
  s: Stack,
  log: Log,
  o: { volume: string; envFile: string; project: string; dbRunning: boolean; generated: readonly LocalSecret[]; waitSeconds: number },
): Promise<void> {
  await log.step('up', `the database in ${o.volume}: log in as web will`, async () => {
    if (!o.dbRunning) {
      const up = await runIn(s, stackCommands.upDb(s, o.waitSeconds), { stream: log.prefixed('compose') })
      if (!up.ok) {
        await showDiagnostics(s, log, ['db'])
        check(up, `start the database on ${s.where} (status and logs above)`, true)
      }
    }
    const login = await runIn(s, stackCommands.dbLogin(s))
    if (login.ok) return
    if (!o.dbRunning) await runIn(s, s.compose('stop', 'db'))
    const refused = LOGIN_REFUSED.exec(login.stderr)
    if (refused) throw new ConfigError(databaseRefused({ ...o, answer: refused[0] }))
    check(login, 'log in to the database as web will')
  })
}
