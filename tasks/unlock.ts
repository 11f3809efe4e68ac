// npm run unlock [-- --yes]: releases the lock of a stage that a killed run left behind (before it expires).
import { awsClients, type AwsClients } from './lib/aws/clients.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { UserError } from './lib/errors.ts'
import { breakLock, holderText, lockName, readLock } from './lib/lock.ts'
import { runCli, runMain, type Deps, type Env } from './lib/main.ts'
import { aws } from './lib/aws/clients.ts'
import { awsVars } from './lib/awsvars.ts'

export const HELP = `Usage: npm run unlock -- [--yes]

deploy:aws, stop --aws, destroy:aws, restore --aws and rollback hold a lock while they run, so that
only one of them changes a stage (MYMDB_STAGE in AWS_REGION) at a time: a lease in the DynamoDB
table mymdb-locks, renewed while the run lives. They release it when they end, also on Ctrl-C
(after the command running on the host has ended). A run that was killed outright (kill -9, a
machine that went off) stops renewing it, and it expires by itself within 2 minutes; the next
run meanwhile says who held it, since when and when it expires. This command shows the lock and
releases it at once. Release it only when that run is really gone.

Options:
  --yes       do not ask (on a terminal it asks first)
  -h, --help  this help

Exit codes: 0 released (or there was none), 1 AWS failed or not confirmed, 2 bad option or setting.`

/** The command line: its options (-h/--help come with runCli). */
export const CLI = {
  command: 'npm run unlock',
  help: HELP,
  options: { yes: { type: 'boolean', short: 'y' } },
} as const

export async function main(argv: string[], env: Env, partial?: Partial<Deps> & { awsClients?: (region: string, env: Env) => AwsClients }): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags) => {
    const raw = loadEnv(env, deps.envFile)
    const s = checkEnv(awsVars, raw)
    const { dynamodb } = (partial?.awsClients ?? awsClients)(s.AWS_REGION, raw)
    const holder = await aws(`read the lock ${lockName(s.MYMDB_STAGE)}`, () => readLock(dynamodb, s.MYMDB_STAGE))
    if (!holder) {
      deps.log.info(`[unlock] stage ${s.MYMDB_STAGE} in ${s.AWS_REGION} is not locked`)
      return 0
    }
    deps.log.info(`[unlock] stage ${s.MYMDB_STAGE} is locked by ${holderText(holder)}`)
    if (deps.interactive && !flags.yes && !(await deps.confirm('Is that run gone (killed, or its machine off)? Release the lock?')))
      throw new UserError('the lock stays (not confirmed)')
    await aws(`release the lock ${lockName(s.MYMDB_STAGE)}`, () => breakLock(dynamodb, s.MYMDB_STAGE))
    deps.log.info('[unlock] released')
    return 0
  })
}

runMain(import.meta.url, main)
