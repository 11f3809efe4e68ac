// The account-wide S3 Block Public Access (S3 Control): when it blocks public policies, the
// upload bucket's public-read policy cannot work, and the bucket step says how to allow it.
import type { PublicAccessBlockConfiguration } from '@aws-sdk/client-s3'
import type { S3ControlClient } from '@aws-sdk/client-s3-control'
import type { STSClient } from '@aws-sdk/client-sts'
import type { Log } from '../log.ts'
import { UPLOAD_PREFIX } from './bucketpolicy.ts'
import { S3Control, STS, aws, awsErrorCode } from './clients.ts'

export type AccountBlock =
  | { known: true; account: string; config?: PublicAccessBlockConfiguration }
  | { known: false; reason: string }

/** The account's Block Public Access setting (S3 Control), or why it cannot be told. Reads only. */
export async function getAccountPublicAccessBlock(sts: STSClient, s3control: S3ControlClient): Promise<AccountBlock> {
  const id = await aws('find the AWS account id (STS GetCallerIdentity)', () => sts.send(new STS.GetCallerIdentityCommand({})))
  const account = id.Account ?? ''
  try {
    const out = await s3control.send(new S3Control.GetPublicAccessBlockCommand({ AccountId: account }))
    return { known: true, account, config: out.PublicAccessBlockConfiguration }
  } catch (err) {
    if (awsErrorCode(err) === 'NoSuchPublicAccessBlockConfiguration') return { known: true, account }
    const code = awsErrorCode(err)
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err)
    return { known: false, reason: `${code && code !== 'Error' ? `${code}: ` : ''}${msg}` }
  }
}

/** The account-level flags that keep a public bucket policy from working (pure). */
export function accountBlockingFlags(config: PublicAccessBlockConfiguration | undefined): string[] {
  if (!config) return []
  return (['BlockPublicPolicy', 'RestrictPublicBuckets'] as const).filter((k) => config[k])
}

export function accountBlockFix(account: string): string {
  return (
    `aws s3control put-public-access-block --account-id ${account} --public-access-block-configuration ` +
    'BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=false,RestrictPublicBuckets=false ' +
    '(or S3 console > "Block Public Access settings for this account"), then run this step again'
  )
}

/**
 * Says whether the account's Block Public Access would still block the upload bucket's policy:
 * a warning with the fix when it does, a note when it cannot be read.
 */
export function showAccountBlock(account: AccountBlock, log: Log): void {
  if (!account.known) {
    log.info(
      `[bucket] note: could not read the account-level Block Public Access (${account.reason}); ` +
        'if uploads are not publicly readable, check "Block Public Access settings for this account" in the S3 console',
    )
  } else {
    const flagsOn = accountBlockingFlags(account.config)
    if (flagsOn.length > 0)
      log.warn(
        `[bucket] warning: account ${account.account} has Block Public Access ${flagsOn.join(' and ')} on: ` +
          `the bucket policy cannot make ${UPLOAD_PREFIX} public. Fix: ${accountBlockFix(account.account)}`,
      )
  }
}
