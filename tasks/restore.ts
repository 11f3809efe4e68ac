// npm run restore -- <backup> [--aws] [--yes]: puts a backup back into the running stack, here or
// on the stage's host: the file checked first, a safety backup, web stopped, the database replaced
// in one transaction (a damaged file changes nothing), the uploads replaced, web started (it runs
// the migrations), the site checked. The same steps here and on the host, through the runner.
import type { AwsClients } from './lib/aws/clients.ts'
import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { backupHost, backupLocal } from './backup.ts'
import { backupCommands, fromFile, readManifest, type BackupResult, type Manifest } from './lib/backup.ts'
import { checkEnv, loadEnv, type CleanEnv } from './lib/env.ts'
import { ConfigError, UserError } from './lib/errors.ts'
import type { Log } from './lib/log.ts'
import { runCli, runMain, type Env } from './lib/main.ts'
import { runIn, runInChecked, stackCommands, stackPs, startStack, type Stack } from './lib/stack.ts'
import { hostAccessSpec, resolveTarget } from './lib/target.ts'
import { backupVars } from './lib/vars.ts'
import { backupBucketName, backupBucketRules, backupBucketSpec } from './lib/awsvars.ts'
import { sshKeyExistsRule } from './lib/hostvars.ts'
import { showCommand } from './lib/sh.ts'
import type { StepSeams } from './lib/step.ts'

export const HELP = `Usage: npm run restore -- <backup> [options]

Restores a backup made by npm run backup into the running MyMDB stack:
  1. checks the backup: a MyMDB backup whose database dump reads whole (nothing is touched before)
  2. asks for confirmation on a terminal (everything entered since the backup is replaced)
  3. takes a safety backup of the current data (here into MYMDB_BACKUP_DIR, default ./backups;
     with --aws into the backup bucket)
  4. replaces the uploads (when the backup holds them), stops the web container
  5. replaces the database in one transaction: if it fails half-way, the database is as it was
  6. starts the web container (it applies the migrations of this code) and waits until healthy
An interrupted restore can simply be run again.

  <backup>   a file here (npm run backups lists them); with --aws the name of a backup in the
             stage's backup bucket (npm run backups -- --aws lists them)

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
const HOST_RESTORE_DIR = 'restore.d'

export interface RestoreSteps {
  stack: Stack
  /** The backup file where the stack runs. */
  file: string
  /** A scratch folder next to it (removed afterwards). */
  work: string
  /** What the backup is called in messages. */
  name: string
  project: string
  log: Log
  /** Asks the user (false: stop, nothing changed). */
  confirm: () => Promise<boolean>
  /** The safety backup (undefined: none). */
  safety?: () => Promise<BackupResult>
}

/** Checks the backup where the stack runs, then restores it (see HELP). Returns its manifest. */
export async function restoreBackup(o: RestoreSteps): Promise<Manifest> {
  const { stack, file, work, name, log } = o
  const manifest = await readManifest(stack, file).catch((e: unknown) => {
    throw new ConfigError(`${name} is not a MyMDB backup: ${e instanceof Error ? e.message : String(e)}`)
  })
  const ps = await stackPs(stack)
  if (!ps.some((p) => p.Service === 'db' && p.State === 'running'))
    throw new UserError(`the stack ${o.project} on ${stack.where} is not running: start it, then restore`)
  log.info(`[restore] ${name}: database ${manifest.database} of ${manifest.source}, taken ${manifest.createdAt}${manifest.revision ? ` (commit ${manifest.revision})` : ''}${manifest.media ? ', with the uploads' : ''}`)

  // check: the dump reads whole before anything changes
  await runInChecked(stack, ['mkdir', '-p', '-m', '700', work], { doing: `create ${work}` })
  try {
    await runInChecked(stack, ['tar', '-C', work, '-xf', file], { doing: `unpack ${name}` })
    const listed = await runIn(stack, fromFile(backupCommands.listDump(stack), `${work}/db.dump`))
    if (!listed.ok) throw new ConfigError(`${name} is damaged: its database dump does not read (${listed.stderr.trim().split('\n').pop() ?? ''}); nothing was changed`)
    if (!(await o.confirm())) throw new UserError('nothing restored (not confirmed)')

    // apply: safety backup, uploads, database, web
    if (o.safety) log.info(`[restore] safety backup of the current data: ${(await o.safety()).file}`)
    if (manifest.media)
      await log.step('restore', 'uploads into the media volume', () =>
        runInChecked(stack, fromFile(backupCommands.restoreMedia(stack), `${work}/media.tar`), { doing: 'restore the uploads' }),
      )
    await log.step('restore', 'stop the web container', () => runInChecked(stack, stackCommands.stopWeb(stack), { doing: 'stop the web container' }))
    const restored = await log.step('restore', `database ${manifest.database} (one transaction)`, () =>
      runIn(stack, fromFile(backupCommands.restore(stack), `${work}/db.dump`)),
    )
    if (!restored.ok) {
      await runIn(stack, stackCommands.startWeb(stack))
      throw new UserError(
        `the database restore failed and was rolled back, the data is as it was (web started again): ${restored.stderr.trim().split('\n').slice(-3).join(' ')}`,
      )
    }
    await startStack(stack, log, 120)
  } finally {
    await runIn(stack, ['rm', '-rf', work])
  }
  return manifest
}

/** A GET of a backup in the bucket, signed for the host (after checking the backup is there). */
async function presignedBackupUrl(v: CleanEnv<typeof backupBucketSpec>, name: string, clients: AwsClients): Promise<{ url: string; bucket: string }> {
  const bucket = backupBucketName(v)
  const [{ S3, explainAwsError }, { getSignedUrl }] = await Promise.all([import('./lib/aws/clients.ts'), import('@aws-sdk/s3-request-presigner')])
  try {
    await clients.s3.send(new S3.HeadObjectCommand({ Bucket: bucket, Key: name }))
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
    if (status === 404) throw new ConfigError(`no backup ${name} in s3://${bucket} (npm run backups -- --aws lists them)`)
    throw explainAwsError(err, `read backup ${name} in s3://${bucket}`)
  }
  // Signed for the endpoint the host reaches S3 at (AWS_S3_ENDPOINT_URL only for emulators).
  const forHost = new S3.S3Client({
    region: v.AWS_REGION,
    credentials: clients.s3.config.credentials,
    forcePathStyle: Boolean(v.AWS_S3_ENDPOINT_URL),
    ...(v.AWS_S3_ENDPOINT_URL ? { endpoint: v.AWS_S3_ENDPOINT_URL } : {}),
  })
  const url = await getSignedUrl(forHost, new S3.GetObjectCommand({ Bucket: bucket, Key: name }), { expiresIn: 900 })
  return { url, bucket }
}

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
    const name = arg.replace(/^s3:\/\/[^/]+\//, '')
    if (!/^[A-Za-z0-9._-]+\.tar$/.test(name)) throw new ConfigError(`${arg} is not the name of a backup (like mymdb-production-20261127T031700Z.tar; npm run backups -- --aws lists them)`)
    const settings = checkEnv({ ...hostAccessSpec, ...backupBucketSpec }, raw, { rules: [sshKeyExistsRule, ...backupBucketRules] })
    const [{ awsClients }, { withLock }] = await Promise.all([import('./lib/aws/clients.ts'), import('./lib/lock.ts')])
    const clients = (partial?.awsClients ?? awsClients)(settings.AWS_REGION, raw)
    const { url, bucket } = await presignedBackupUrl(settings, name, clients)
    // a restore changes the stage like a deploy: one at a time
    return withLock(clients.ssm, settings.MYMDB_STAGE, 'npm run restore -- --aws', () => restoreOnHost(url, bucket))

    async function restoreOnHost(url: string, bucket: string): Promise<number> {
      const target = await resolveTarget(true, raw, deps, partial)
      try {
        const { stack } = target
        const file = `${HOST_RESTORE_DIR}/${name}`
        await runInChecked(stack, ['mkdir', '-p', '-m', '700', HOST_RESTORE_DIR], { doing: `create ~/mymdb/${HOST_RESTORE_DIR}` })
        try {
            await log.step('restore', `download s3://${bucket}/${name} on the host`, () =>
            runInChecked(stack, ['sh', '-c', `${showCommand(backupCommands.download(stack, url))} > "$0"`, file], { doing: `download ${name} on the host` }),
          )
          const manifest = await restoreBackup({
            stack,
            file,
            work: `${file}.d`,
            name,
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
