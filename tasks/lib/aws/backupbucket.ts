// The stage's backup bucket as the deployer reads it: the backups listed with the facts the host
// stored as object metadata, and a link that lets the host download one for a restore (signed
// with the deployer's credentials, valid 15 minutes).
import type { S3Client } from '@aws-sdk/client-s3'
import { backupBucketName, type backupBucketSpec } from '../awsvars.ts'
import type { CleanEnv } from '../env.ts'
import { ConfigError } from '../errors.ts'
import { BACKUP_NAME, keyKind } from '../backupkeys.ts'
import { S3, aws, type AwsClients } from './clients.ts'

/** A backup as the lists show it (a file here, or an object in the bucket). */
export interface Listed {
  /** ISO time it was taken ('' when unknown). */
  at: string
  size: number
  database: string
  media: boolean
  revision: string
  reason: string
  /** The file, or the object's name in the bucket. */
  where: string
}


/** A backup in the bucket: one version of one key, and what the host stored with it. */
export interface BucketBackup extends Listed {
  /** mymdb-<stage>-<time>.tar: what npm run restore takes. */
  name: string
  key: string
  versionId: string
  /** The SHA-256 (hex) the host recorded with it ('' when none: made before digests, or not by MyMDB). */
  sha256: string
  /** Made before the rolling/ and kept/ layout (no digest recorded). */
  legacy: boolean
}

const HEX64 = /^[0-9a-f]{64}$/

/**
 * The backups in the stage's bucket, every kept version of every backup key, newest first. The
 * time shown is S3's own (when it was stored), never a time the uploader claims; the name and
 * the SHA-256 are the metadata the host stored with that version, which no one can change
 * afterwards (a version's metadata is fixed; a new upload makes a new version).
 */
export async function bucketBackups(s3: S3Client, bucket: string): Promise<BucketBackup[]> {
  const items: BucketBackup[] = []
  let keyMarker: string | undefined
  let versionMarker: string | undefined
  do {
    const page = await aws(`list the backups in s3://${bucket}`, () =>
      s3.send(new S3.ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker })),
    )
    for (const o of page.Versions ?? []) {
      const kind = o.Key ? keyKind(o.Key) : undefined
      if (!kind || !o.Key) continue
      const head = await aws(`read backup ${o.Key}`, () => s3.send(new S3.HeadObjectCommand({ Bucket: bucket, Key: o.Key, VersionId: o.VersionId })))
      const meta = head.Metadata ?? {}
      const keyName = o.Key.split('/').pop() ?? o.Key
      const name = kind.layout === 'rolling' ? (BACKUP_NAME.test(meta.name ?? '') ? (meta.name ?? '') : '') : keyName
      const sha256 = HEX64.test(meta.sha256 ?? '') ? (meta.sha256 ?? '') : ''
      items.push({
        at: o.LastModified?.toISOString() ?? '',
        size: o.Size ?? 0,
        database: meta.database ?? '?',
        media: false,
        revision: meta.revision ?? '',
        reason: kind.reason || (meta.reason ?? ''),
        where:
          (name || `${o.Key} version ${o.VersionId ?? '?'}`) +
          (sha256 ? '' : kind.layout === 'legacy' ? ' (made before digests were recorded)' : ' (no SHA-256: not made by MyMDB, restore refuses it)'),
        name,
        key: o.Key,
        versionId: o.VersionId ?? '',
        sha256,
        legacy: kind.layout === 'legacy',
      })
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined
    versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined
  } while (keyMarker)
  return items.sort((a, b) => b.at.localeCompare(a.at))
}

/**
 * The one backup a restore argument names (pure): its name, or the version id the list shows.
 * Two versions with one name (a second upload claiming an existing name) are never guessed between.
 */
export function findBackup(items: BucketBackup[], arg: string, bucket: string): BucketBackup {
  const byVersion = items.filter((b) => b.versionId === arg)
  const named = byVersion.length === 1 ? byVersion : items.filter((b) => b.name === arg)
  if (named.length === 0) throw new ConfigError(`no backup ${arg} in s3://${bucket} (npm run backups -- --aws lists them)`)
  if (named.length > 1)
    throw new ConfigError(
      `${named.length} backups in s3://${bucket} are named ${arg}; one was not made by this stage's backups as it claims. ` +
        `Name the one to restore by its version id (stored by S3 at):\n${named.map((b) => `  ${b.versionId}  ${b.at}  ${b.key}`).join('\n')}`,
    )
  const found = named[0] as BucketBackup
  if (!found.sha256 && !found.legacy)
    throw new ConfigError(`${arg} in s3://${bucket} has no SHA-256 recorded with it: MyMDB's backups always have one, so it was not made by them; it is not restored`)
  return found
}

/** A GET of one version of a backup, signed for the host (valid 15 minutes). */
export async function presignedBackupUrl(v: CleanEnv<typeof backupBucketSpec>, backup: BucketBackup, clients: AwsClients): Promise<string> {
  const bucket = backupBucketName(v)
  const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner')
  // Signed for the endpoint the host reaches S3 at (AWS_S3_ENDPOINT_URL only for emulators).
  const forHost = new S3.S3Client({
    region: v.AWS_REGION,
    credentials: clients.s3.config.credentials,
    forcePathStyle: Boolean(v.AWS_S3_ENDPOINT_URL),
    ...(v.AWS_S3_ENDPOINT_URL ? { endpoint: v.AWS_S3_ENDPOINT_URL } : {}),
  })
  return getSignedUrl(forHost, new S3.GetObjectCommand({ Bucket: bucket, Key: backup.key, VersionId: backup.versionId || undefined }), { expiresIn: 900 })
}
