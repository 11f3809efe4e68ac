// npm run restore -- <backup> [--aws] [--yes]: puts a backup back into the running stack, here or
// on the stage's host: the file checked first, a safety backup, web stopped, the database replaced
// in one transaction (a damaged file changes nothing), the uploads replaced, web started (it runs
// the migrations), the site checked. The same steps here and on the host, through the runner.
import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { bucketBackups, findBackup, presignedBackupUrl } from './lib/aws/backupbucket.ts'
import { backupBucketName, backupBucketRules, backupBucketSpec } from './lib/awsvars.ts'
import { backupCommands, backupHost, backupLocal } from './lib/backup.ts'
import { checkEnv, loadEnv } from './lib/env.ts'
import { CommandError, ConfigError } from './lib/errors.ts'
import { sshKeyExistsRule } from './lib/hostvars.ts'
import { withLock } from './lib/lock.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { HOST_RESTORE_DIR, restoreBackup } from './lib/restore.ts'
import { showCommand } from './lib/sh.ts'
import { runIn, runInChecked } from './lib/stack.ts'
import { stepDeps, type StepSeams } from './lib/step.ts'
import { hostAccessSpec, resolveTarget } from './lib/target.ts'
import { backupVars } from './lib/vars.ts'

export const HELP = `Usage: npm run restore -- <backup> [options]

Restores a backup made by npm run backup into the running MyMDB stack:
  1. checks the backup (nothing is touched before): with --aws its SHA-256 against the one
     recorded when it was stored; a MyMDB backup whose database dump reads whole
  2. asks for confirmation on a terminal (everything entered since the backup is replaced)
  3. takes a safety backup of the current data (here into MYMDB_BACKUP_DIR, default ./backups;
     with --aws into the backup bucket)
  4. stops web and replaces the database in one transaction, as the application's database
     role: if it fails half-way, the database is as it was
  5. empties the cache, starts web (it applies the migrations of this code)
  6. replaces the uploads (when the backup holds them), waits until the stack is healthy
An interrupted restore can simply be run again.

  <backup>   a file here (npm run backups lists them); with --aws the name of a backup in the
             stage's backup bucket, or its version id (npm run backups -- --aws lists them);
             the host checks the download against the SHA-256 stored with it

Options:
  --aws                 restore the deployed site on the stage's EC2 host (over SSH) from the
                        backup bucket; the host downloads it with a link valid for 15 minutes
  --yes                 do not ask
  --no-safety-backup    skip step 3
  -h, --help            this help

Exit codes: 0 restored, 1 a command failed (the message says what state things are in),
2 bad option, setting, or a file that is not a MyMDB backup.`

/** The command line: its options (-h/--help come with runCli); the file is the one argument. */
export const CLI = {
  command: 'npm run restore',
  help: HELP,
  positionals: 'args',
  options: { yes: { type: 'boolean', short: 'y' }, 'no-safety-backup': { type: 'boolean' }, aws: { type: 'boolean' } },
} as const

/** Where the host unpacks a backup it restores (relative to ~/mymdb). */
export async function main(argv: string[], env: Env, partial?: StepSeams): Promise<number> {
  return runCli(argv, env, partial, CLI, async (deps, flags, args) => {
    const { log } = deps
    const aws = flags.aws ?? false

    // check: options, settings, the file (read only)
    if (args.length !== 1)
      throw new ConfigError(
        aws
          ? 'name one backup, e.g. npm run restore -- mymdb-production-20261127T031700Z.tar --aws (npm run backups -- --aws lists them)'
          : 'name one backup file, e.g. npm run restore -- backups/mymdb-mymdb-20261127T163000Z.tar (npm run backups lists them)',
      )
    const raw = loadEnv(env, deps.envFile)
    const arg = args[0] ?? ''
    const confirm = (where: string) => async () =>
      !deps.interactive || flags.yes === true || deps.confirm(`Replace the data of ${where} with this backup? Everything entered since it was taken is lost.`)
    const safetyWanted = !flags['no-safety-backup']

    if (!aws) {
      const file = resolve(arg)
      if (!existsSync(file) || !statSync(file).isFile()) throw new ConfigError(`${file} is not a file (npm run backups lists the backups)`)
      const { MYMDB_BACKUP_DIR } = checkEnv(backupVars, raw)
      const target = await resolveTarget(false, raw, deps, partial)
      const manifest = await restoreBackup({
        stack: target.stack,
        file,
        work: `${file}.restore.d`,
        name: file,
        project: target.source,
        log,
        confirm: confirm(`${target.source} on this machine`),
        safety: safetyWanted ? () => backupLocal(target.stack, resolve(deps.root, MYMDB_BACKUP_DIR), target.source, log, 'safety') : undefined,
      })
      log.info(`[restore] done: ${target.source} runs with the data of ${manifest.createdAt}`)
      return 0
    }

    // --aws: the settings of both the host and the bucket are checked before anything connects
    // a name, a version id, or the s3://bucket/key?versionId=... a backup printed
    const name = /\?versionId=([^&]+)$/.exec(arg)?.[1] ?? arg.replace(/^s3:\/\/[^/]+\//, '')
    if (!/^[A-Za-z0-9._-]+\.tar$/.test(name) && !/^[A-Za-z0-9._+/=-]{20,1024}$/.test(name))
      throw new ConfigError(`${arg} is not the name of a backup (like mymdb-production-20261127T031700Z.tar) or the version id of one; npm run backups -- --aws lists them`)
    const settings = checkEnv({ ...hostAccessSpec, ...backupBucketSpec }, raw, { rules: [sshKeyExistsRule, ...backupBucketRules] })
    const clients = stepDeps(deps, partial, raw).clients(settings.AWS_REGION)
    const bucket = backupBucketName(settings)
    const backup = findBackup(await bucketBackups(clients.s3, bucket), name, bucket)
    if (backup.legacy) log.warn(`[restore] ${backup.name} was made before MyMDB recorded digests: its SHA-256 cannot be checked`)
    const url = await presignedBackupUrl(settings, backup, clients)
    // a restore changes the stage like a deploy: one at a time
    return withLock(clients.dynamodb, settings.MYMDB_STAGE, 'npm run restore -- --aws', () => restoreOnHost(url), { log })

    async function restoreOnHost(url: string): Promise<number> {
      const target = await resolveTarget(true, raw, deps, partial)
      try {
        const { stack } = target
        const file = `${HOST_RESTORE_DIR}/backup.tar`
        await runInChecked(stack, ['mkdir', '-p', '-m', '700', HOST_RESTORE_DIR], { doing: `create ~/mymdb/${HOST_RESTORE_DIR}` })
        try {
          // a failure is reported without the signed link (it opens the backup for 15 minutes)
          await log.step('restore', `download ${backup.where} (stored ${backup.at}) on the host`, () =>
            runInChecked(stack, ['sh', '-c', `${showCommand(backupCommands.download(stack, url))} > "$0"`, file], { doing: `download ${backup.key} on the host` }).catch((err: unknown) => {
              throw err instanceof CommandError ? err.hiding(url, '<link signed for 15 minutes>') : err
            }),
          )
          const manifest = await restoreBackup({
            stack,
            file,
            work: `${file}.d`,
            name: backup.name || name,
            sha256: backup.sha256 || undefined,
            project: `stage ${target.source}`,
            log,
            confirm: confirm(`stage ${target.source} on ${stack.where}`),
            safety: safetyWanted ? () => backupHost(stack, target.source, log, 'safety') : undefined,
          })
          log.info(`[restore] done: stage ${target.source} on ${stack.where} runs with the data of ${manifest.createdAt}`)
        } finally {
          await runIn(stack, ['rm', '-rf', HOST_RESTORE_DIR])
        }
        return 0
      } finally {
        target.close()
      }
    }
  })
}

runMain(import.meta.url, main)
