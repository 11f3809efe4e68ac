// The stage's PostgreSQL on RDS (MYMDB_DATABASE=rds): a parameter group that refuses connections
// without TLS (rds.force_ssl), and the instance: in the private subnets (dbnetwork.ts), not
// publicly accessible, storage encrypted, automated backups kept, deletion protection on, the
// master password made and kept by AWS (Secrets Manager). A re-run changes what drifted back.
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { databaseResources, stageTags } from '../names.ts'
import { RDS, aws, awsErrorCode, type AwsClients } from './clients.ts'
import type { PlanLine } from './plan.ts'
import type { RdsTarget } from '../remote/dbrole.ts'

export const ENGINE = 'postgres'
/** The major version (the images' PostgreSQL too); AWS picks its newest minor. */
export const ENGINE_VERSION = '17'
const FAMILY = `postgres${ENGINE_VERSION}`
/** The master user: only the deploy uses it, to make the site's own role. */
export const MASTER_USER = 'postgres'

export interface DatabaseSettings {
  /** MYMDB_DB_INSTANCE_CLASS */
  instanceClass: string
  /** MYMDB_DB_STORAGE_GB */
  storageGb: number
  /** MYMDB_DB_BACKUP_DAYS: automated backups kept (1-35). */
  backupDays: number
}

export const DATABASE_DEFAULTS: DatabaseSettings = { instanceClass: 'db.t4g.micro', storageGb: 20, backupDays: 7 }

export interface DbInstanceFound {
  status: string
  instanceClass: string
  storageGb: number
  backupDays: number
  public: boolean
  encrypted: boolean
  deletionProtection: boolean
  managedPassword: boolean
  parameterGroup: string
  endpoint: { address: string; port: number } | null
  masterSecretArn: string
}

/** How the start reaches the database (its endpoint, the secret of its master password, the region); undefined while it has no endpoint. */
export function rdsTarget(db: { endpoint: { address: string; port: number } | null; masterSecretArn: string }, region: string): RdsTarget | undefined {
  return db.endpoint ? { ...db.endpoint, masterSecretArn: db.masterSecretArn, region } : undefined
}

export interface DatabaseFound {
  parameterGroup: { forceSsl: boolean } | null
  instance: DbInstanceFound | null
}

/** ModifyDBInstance's changes, by what drifted. */
export interface DbModify {
  DBInstanceClass?: string
  AllocatedStorage?: number
  BackupRetentionPeriod?: number
  PubliclyAccessible?: false
  DeletionProtection?: true
  ManageMasterUserPassword?: true
  DBParameterGroupName?: string
}

export interface DatabasePlan {
  parameterGroup: 'create' | 'update' | 'exists'
  instance: 'create' | 'update' | 'exists'
  modify: DbModify
  lines: PlanLine[]
}

/** What to do (pure). What AWS cannot change in place (unencrypted storage, a smaller disk) is an error naming the fix. */
export function planDatabase(stage: string, wanted: DatabaseSettings, found: DatabaseFound): DatabasePlan {
  const names = databaseResources(stage)
  const parameterGroup = !found.parameterGroup ? 'create' : found.parameterGroup.forceSsl ? 'exists' : 'update'
  const lines: PlanLine[] = [
    { resource: `DB parameter group ${names.parameterGroup}`, action: parameterGroup, detail: parameterGroup === 'exists' ? 'rds.force_ssl=1' : `${FAMILY}, rds.force_ssl=1 (TLS only)` },
  ]
  const i = found.instance
  const what = `${wanted.instanceClass}, ${wanted.storageGb} GB encrypted, backups kept ${wanted.backupDays} days, not public, deletion protection, master password in Secrets Manager`
  if (!i) {
    lines.push({ resource: `RDS instance ${names.instance}`, action: 'create', detail: `PostgreSQL ${ENGINE_VERSION}, ${what}` })
    return { parameterGroup, instance: 'create', modify: {}, lines }
  }
  const problems: string[] = []
  if (!i.encrypted) problems.push(`RDS instance ${names.instance} has unencrypted storage, which AWS cannot change in place: take a snapshot, copy it encrypted (aws rds copy-db-snapshot --kms-key-id alias/aws/rds) and restore the copy as ${names.instance}`)
  if (i.storageGb > wanted.storageGb) problems.push(`RDS instance ${names.instance} has ${i.storageGb} GB and RDS storage cannot shrink: set MYMDB_DB_STORAGE_GB=${i.storageGb} or more`)
  if (problems.length > 0) throw new UserError(problems.join('\n'))
  const modify: DbModify = {
    ...(i.instanceClass !== wanted.instanceClass ? { DBInstanceClass: wanted.instanceClass } : {}),
    ...(i.storageGb < wanted.storageGb ? { AllocatedStorage: wanted.storageGb } : {}),
    ...(i.backupDays !== wanted.backupDays ? { BackupRetentionPeriod: wanted.backupDays } : {}),
    ...(i.public ? { PubliclyAccessible: false as const } : {}),
    ...(!i.deletionProtection ? { DeletionProtection: true as const } : {}),
    ...(!i.managedPassword ? { ManageMasterUserPassword: true as const } : {}),
    ...(i.parameterGroup !== names.parameterGroup ? { DBParameterGroupName: names.parameterGroup } : {}),
  }
  const changes = Object.entries(modify).map(([k, v]) => `${k} ${String(v)}`)
  lines.push({ resource: `RDS instance ${names.instance}`, action: changes.length > 0 ? 'update' : 'exists', detail: changes.length > 0 ? changes.join(', ') : `${i.status}; ${what}` })
  return { parameterGroup, instance: changes.length > 0 ? 'update' : 'exists', modify, lines }
}

/** The database's parameter group and instance as they are. */
export async function findDatabase(clients: AwsClients, stage: string): Promise<DatabaseFound> {
  const names = databaseResources(stage)
  let parameterGroup: DatabaseFound['parameterGroup'] = null
  try {
    const r = await clients.rds.send(new RDS.DescribeDBParametersCommand({ DBParameterGroupName: names.parameterGroup, Source: 'user' }))
    parameterGroup = { forceSsl: (r.Parameters ?? []).some((p) => p.ParameterName === 'rds.force_ssl' && p.ParameterValue === '1') }
  } catch (err) {
    if (awsErrorCode(err) !== 'DBParameterGroupNotFound' && awsErrorCode(err) !== 'DBParameterGroupNotFoundFault') throw err
  }
  return { parameterGroup, instance: await findDbInstance(clients, names.instance) }
}

async function findDbInstance(clients: AwsClients, id: string): Promise<DbInstanceFound | null> {
  try {
    const d = (await clients.rds.send(new RDS.DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0]
    if (!d) return null
    return {
      status: d.DBInstanceStatus ?? '',
      instanceClass: d.DBInstanceClass ?? '',
      storageGb: d.AllocatedStorage ?? 0,
      backupDays: d.BackupRetentionPeriod ?? 0,
      public: d.PubliclyAccessible === true,
      encrypted: d.StorageEncrypted === true,
      deletionProtection: d.DeletionProtection === true,
      managedPassword: Boolean(d.MasterUserSecret?.SecretArn),
      parameterGroup: d.DBParameterGroups?.[0]?.DBParameterGroupName ?? '',
      endpoint: d.Endpoint?.Address ? { address: d.Endpoint.Address, port: d.Endpoint.Port ?? 5432 } : null,
      masterSecretArn: d.MasterUserSecret?.SecretArn ?? '',
    }
  } catch (err) {
    if (awsErrorCode(err) === 'DBInstanceNotFound' || awsErrorCode(err) === 'DBInstanceNotFoundFault') return null
    throw err
  }
}

export interface DatabaseResult {
  endpoint: { address: string; port: number }
  /** The Secrets Manager secret AWS keeps the master password in. */
  masterSecretArn: string
}

/** Makes or corrects the database as planned and waits until it is available (progress every `pollSeconds`). */
export async function applyDatabase(
  clients: AwsClients,
  stage: string,
  wanted: DatabaseSettings,
  plan: DatabasePlan,
  network: { subnetGroup: string; securityGroup: string },
  log: Log,
  pollSeconds = 15,
): Promise<DatabaseResult> {
  const names = databaseResources(stage)
  if (plan.parameterGroup === 'create')
    await aws('create the DB parameter group', () =>
      clients.rds.send(new RDS.CreateDBParameterGroupCommand({ DBParameterGroupName: names.parameterGroup, DBParameterGroupFamily: FAMILY, Description: `MyMDB ${stage}: TLS only`, Tags: stageTags(stage) })),
    )
  if (plan.parameterGroup !== 'exists') {
    await aws('require TLS (rds.force_ssl)', () =>
      clients.rds.send(new RDS.ModifyDBParameterGroupCommand({ DBParameterGroupName: names.parameterGroup, Parameters: [{ ParameterName: 'rds.force_ssl', ParameterValue: '1', ApplyMethod: 'immediate' }] })),
    )
    log.info(`[database] parameter group ${names.parameterGroup}: rds.force_ssl=1`)
  }
  if (plan.instance === 'create') {
    await aws('create the RDS instance', () =>
      clients.rds.send(
        new RDS.CreateDBInstanceCommand({
          DBInstanceIdentifier: names.instance,
          Engine: ENGINE,
          EngineVersion: ENGINE_VERSION,
          DBInstanceClass: wanted.instanceClass,
          AllocatedStorage: wanted.storageGb,
          StorageType: 'gp3',
          StorageEncrypted: true,
          MasterUsername: MASTER_USER,
          ManageMasterUserPassword: true,
          DBSubnetGroupName: network.subnetGroup,
          VpcSecurityGroupIds: [network.securityGroup],
          DBParameterGroupName: names.parameterGroup,
          PubliclyAccessible: false,
          BackupRetentionPeriod: wanted.backupDays,
          DeletionProtection: true,
          CopyTagsToSnapshot: true,
          AutoMinorVersionUpgrade: true,
          Tags: [{ Key: 'Name', Value: names.instance }, ...stageTags(stage)],
        }),
      ),
    )
    log.info(`[database] RDS instance ${names.instance}: creating (AWS takes 5-15 minutes)`)
  } else if (plan.instance === 'update') {
    await aws('correct the RDS instance', () => clients.rds.send(new RDS.ModifyDBInstanceCommand({ DBInstanceIdentifier: names.instance, ApplyImmediately: true, ...plan.modify })))
    log.info(`[database] RDS instance ${names.instance}: ${Object.keys(plan.modify).join(', ')} changed`)
  }
  const started = Date.now()
  for (;;) {
    const i = await aws('look up the RDS instance', () => findDbInstance(clients, names.instance))
    if (!i) throw new Error(`RDS instance ${names.instance} is gone while the deploy waits for it`)
    if (i.status === 'available' && i.endpoint) return { endpoint: i.endpoint, masterSecretArn: i.masterSecretArn }
    if (['failed', 'incompatible-parameters', 'incompatible-network', 'storage-full', 'deleting'].includes(i.status))
      throw new UserError(`RDS instance ${names.instance} is ${i.status}: see its events in the RDS console (aws rds describe-events --source-identifier ${names.instance})`)
    log.info(`[database] RDS instance ${names.instance}: ${i.status} (${Math.round((Date.now() - started) / 1000)} s)`)
    await new Promise((r) => setTimeout(r, pollSeconds * 1000))
  }
}
