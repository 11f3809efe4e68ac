// The stage's backup bucket as the deployer reads it: the backups listed with the facts the host
// stored as object metadata, and a link that lets the host download one for a restore (signed
// with the deployer's credentials, valid 15 minutes).
import type { S3Client } from '@aws-sdk/client-s3'
import { backupBucketName, type backupBucketSpec } from '../awsvars.ts'
import type { CleanEnv } from '../env.ts'
import { ConfigError } from '../errors.ts'
import { S3, aws, explainAwsError, type AwsClients } from './clients.ts'

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


/** The backups in the stage's bucket, with the facts the host stored as object metadata. */
export async function bucketBackups(s3: S3Client, bucket: string): Promise<Listed[]> {
  const items: Listed[] = []
  let token: string | undefined
  do {
    const page = await aws(`list the backups in s3://${bucket}`, () => s3.send(new S3.ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token })))
    for (const o of page.Contents ?? []) {
      if (!o.Key?.endsWith('.tar')) continue
      const head = await aws(`read backup ${o.Key}`, () => s3.send(new S3.HeadObjectCommand({ Bucket: bucket, Key: o.Key })))
      const meta = head.Metadata ?? {}
      items.push({
        at: meta['created-at'] ?? o.LastModified?.toISOString() ?? '',
        size: o.Size ?? 0,
        database: meta.database ?? '?',
        media: false,
        revision: meta.revision ?? '',
        reason: meta.reason ?? '',
        where: o.Key,
      })
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return items
}


/** A GET of a backup in the bucket, signed for the host (after checking the backup is there). */
export async function presignedBackupUrl(v: CleanEnv<typeof backupBucketSpec>, name: string, clients: AwsClients): Promise<{ url: string; bucket: string }> {
  const bucket = backupBucketName(v)
  const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner')
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
