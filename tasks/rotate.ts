// npm run rotate -- <secret>...: new values for the site's secrets in .env; the next deploy applies them.
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { MAX_FALLBACKS, rotateEnvFile } from './lib/rotation.ts'

export const HELP = `Usage: npm run rotate -- <secret>... [options]

Writes new values for the site's secrets into the .env file, where they live:
  secret-key          DJANGO_SECRET_KEY; the old key goes first into DJANGO_SECRET_KEY_FALLBACKS
                      (at most ${MAX_FALLBACKS} kept), so sessions and password-reset links it signed stay valid
  db-password         DJANGO_DB_PASSWORD, the site's database role
  postgres-password   POSTGRES_PASSWORD, the database superuser
Then apply them: npm run deploy:aws. The host's database container sets both roles' passwords
from its environment when it starts, and a changed password restarts it: the site pauses for
those seconds, no data is lost. Until the deploy, the site runs with the old ones. (A local
database keeps the passwords it was made with: up:local refuses other ones, see README.)
To log everyone out (a leaked key), set a new DJANGO_SECRET_KEY by hand and empty the fallbacks.

Options:
  -h, --help   this help

Exit codes: 0 written, 2 an unknown secret, one the environment sets, or one not in .env
(nothing is written then).`

/** The command line: the secrets to rotate (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run rotate',
  help: HELP,
  options: {},
  positionals: 'args',
} as const

export async function main(argv: string[], env: Env, partial?: Partial<Deps>): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, _flags, names) => {
    const said = rotateEnvFile(deps.envFile, names, env)
    for (const line of said) deps.log.info(`[rotate] ${line}`)
    deps.log.info(`[rotate] written to ${deps.envFile}; apply: npm run deploy:aws`)
    return 0
  })
}

runMain(import.meta.url, main)
