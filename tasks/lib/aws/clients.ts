// AWS plumbing shared by the deploy steps: clients built from the task's env (region, the
// standard AWS_ENDPOINT_URL for emulators, credentials from the SDK's default chain), the tags
// that mark what a stage owns, and AWS errors a user can fix turned into one-line UserErrors.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { EC2Client } from '@aws-sdk/client-ec2'
import type { ECRClient } from '@aws-sdk/client-ecr'
import type { EFSClient } from '@aws-sdk/client-efs'
import type { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2'
import type { IAMClient } from '@aws-sdk/client-iam'
import type { RDSClient } from '@aws-sdk/client-rds'
import type { S3Client } from '@aws-sdk/client-s3'
import type { S3ControlClient } from '@aws-sdk/client-s3-control'
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import type { SSMClient } from '@aws-sdk/client-ssm'
import type { STSClient } from '@aws-sdk/client-sts'
import { UserError } from '../errors.ts'
import { lazy } from '../lazy.ts'
import type { Env } from '../main.ts'

// The SDK packages, each loaded when first used (see lazy.ts): `new EC2.DescribeInstancesCommand(...)`.
export const DynamoDB = lazy<typeof import('@aws-sdk/client-dynamodb')>('@aws-sdk/client-dynamodb')
export const EC2 = lazy<typeof import('@aws-sdk/client-ec2')>('@aws-sdk/client-ec2')
export const ECR = lazy<typeof import('@aws-sdk/client-ecr')>('@aws-sdk/client-ecr')
export const EFS = lazy<typeof import('@aws-sdk/client-efs')>('@aws-sdk/client-efs')
export const ELB = lazy<typeof import('@aws-sdk/client-elastic-load-balancing-v2')>('@aws-sdk/client-elastic-load-balancing-v2')
export const IAM = lazy<typeof import('@aws-sdk/client-iam')>('@aws-sdk/client-iam')
export const RDS = lazy<typeof import('@aws-sdk/client-rds')>('@aws-sdk/client-rds')
export const S3 = lazy<typeof import('@aws-sdk/client-s3')>('@aws-sdk/client-s3')
export const S3Control = lazy<typeof import('@aws-sdk/client-s3-control')>('@aws-sdk/client-s3-control')
export const SecretsManager = lazy<typeof import('@aws-sdk/client-secrets-manager')>('@aws-sdk/client-secrets-manager')
export const SSM = lazy<typeof import('@aws-sdk/client-ssm')>('@aws-sdk/client-ssm')
export const STS = lazy<typeof import('@aws-sdk/client-sts')>('@aws-sdk/client-sts')

export interface AwsClients {
  region: string
  s3: S3Client
  ec2: EC2Client
  iam: IAMClient
  ssm: SSMClient
  /** The stages' locks (lock.ts). */
  dynamodb: DynamoDBClient
  ecr: ECRClient
  sts: STSClient
  /** S3 Control (the account-wide Block Public Access). */
  s3control: S3ControlClient
  /** RDS and Secrets Manager (the database of MYMDB_DATABASE=rds): made on first use only. */
  readonly rds: RDSClient
  readonly secrets: SecretsManagerClient
  /** EFS and the load balancer (the front door of several hosts): made on first use only. */
  readonly efs: EFSClient
  readonly elb: ElasticLoadBalancingV2Client
}

/**
 * Clients for one region. Credentials come from the SDK's default chain (env keys, profile, SSO,
 * instance role); AWS_ENDPOINT_URL (e.g. an emulator) and AWS_MAX_ATTEMPTS are taken from `env`
 * so that a task called with an explicit env behaves like one started with that environment.
 */
export function awsClients(region: string, env: Env = process.env): AwsClients {
  const endpoint = env.AWS_ENDPOINT_URL?.trim() || undefined
  const maxAttempts = env.AWS_MAX_ATTEMPTS ? Number(env.AWS_MAX_ATTEMPTS) : undefined
  // The default chain reads process.env; a task's env may differ (tests, the orchestrator), so
  // its first links, environment keys and AWS_PROFILE, are taken from `env` here.
  const keys = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
    ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined } }
    : env.AWS_PROFILE ? { profile: env.AWS_PROFILE } : {}
  // A call that gets no answer fails (and is retried) instead of hanging the deploy forever.
  const requestHandler = { connectionTimeout: 10_000, requestTimeout: 60_000, throwOnRequestTimeout: true }
  const common = { region, ...keys, requestHandler, ...(endpoint ? { endpoint } : {}), ...(maxAttempts ? { maxAttempts } : {}) }
  let rds: RDSClient | undefined
  let secrets: SecretsManagerClient | undefined
  let efs: EFSClient | undefined
  let elb: ElasticLoadBalancingV2Client | undefined
  return {
    region,
    // Path-style addressing only for custom endpoints (emulators have no per-bucket DNS names).
    s3: new S3.S3Client({ ...common, forcePathStyle: Boolean(endpoint) }),
    ec2: new EC2.EC2Client(common),
    iam: new IAM.IAMClient(common),
    ssm: new SSM.SSMClient(common),
    dynamodb: new DynamoDB.DynamoDBClient(common),
    ecr: new ECR.ECRClient(common),
    sts: new STS.STSClient(common),
    // With an endpoint (an emulator) it is used as is: the SDK's rules would put the account id
    // in front of the host (123456789012.127.0.0.1: not a valid URL).
    s3control: new S3Control.S3ControlClient({ ...common, ...(endpoint ? { endpointProvider: () => ({ url: new URL(endpoint) }) } : {}) }),
    get rds() {
      return (rds ??= new RDS.RDSClient(common))
    },
    get secrets() {
      return (secrets ??= new SecretsManager.SecretsManagerClient(common))
    },
    get efs() {
      return (efs ??= new EFS.EFSClient(common))
    },
    get elb() {
      return (elb ??= new ELB.ElasticLoadBalancingV2Client(common))
    },
  }
}

/** The error's AWS code (`name` in SDK v3), or ''. */
export function awsErrorCode(err: unknown): string {
  if (err && typeof err === 'object' && 'name' in err && typeof err.name === 'string') return err.name
  return ''
}

const FIXES: Record<string, string> = {
  CredentialsProviderError:
    'no AWS credentials found: run `aws configure` (or `aws sso login`), or set AWS_PROFILE; see docs/deploying.md',
  InvalidClientTokenId: 'the AWS access key is not valid: check AWS_PROFILE / `aws configure list`',
  UnrecognizedClientException: 'the AWS access key is not valid: check AWS_PROFILE / `aws configure list`',
  SignatureDoesNotMatch: 'the AWS secret key does not match the access key: check `aws configure list`',
  ExpiredToken: 'the AWS session has expired: log in again (`aws sso login`)',
  ExpiredTokenException: 'the AWS session has expired: log in again (`aws sso login`)',
  AuthFailure: 'AWS refused the credentials: check AWS_PROFILE / `aws configure list`',
  UnauthorizedOperation: 'these AWS credentials may not do this: use a user or role with EC2, S3 and IAM rights',
  AccessDenied: 'these AWS credentials may not do this: use a user or role with EC2, S3 and IAM rights',
  OptInRequired: 'this AWS account is not subscribed to the service or region: enable it in the console',
  InvalidRegion: 'AWS_REGION is not a region of this account: pick one from `aws ec2 describe-regions`',
  UnknownEndpoint: 'AWS_REGION does not look like an AWS region: e.g. AWS_REGION=us-west-2',
  InstanceLimitExceeded: 'the EC2 instance quota of this region is used up: terminate an instance or ask AWS for more',
  VcpuLimitExceeded: 'the EC2 vCPU quota of this region is used up: terminate an instance or ask AWS for more',
  TooManyBuckets: 'this account has as many S3 buckets as it may: delete one or ask AWS for more',
}

/** A call cut off half-way: reset, timed out, closed (the request may or may not have been done). */
const NETWORK_BROKE = /ECONNRESET|EPIPE|ETIMEDOUT|ECONNABORTED|socket hang up|TimeoutError|RequestTimeout/

/**
 * Turns an AWS error a user can fix into a UserError (message: what happened, what to do);
 * anything else is returned unchanged (it is a bug or an outage, shown in full).
 */
export function explainAwsError(err: unknown, doing: string): unknown {
  const code = awsErrorCode(err)
  const fix = FIXES[code]
  if (fix) return new UserError(`could not ${doing}: ${fix} (${code})`)
  if (err instanceof Error && /getaddrinfo|ENOTFOUND|ECONNREFUSED/.test(err.message))
    return new UserError(`could not ${doing}: AWS is not reachable (${err.message}); check the network, AWS_REGION and AWS_ENDPOINT_URL`)
  const sysCode = (err as { code?: unknown } | null)?.code
  if (err instanceof Error && (NETWORK_BROKE.test(err.message) || NETWORK_BROKE.test(code) || (typeof sysCode === 'string' && NETWORK_BROKE.test(sysCode))))
    return new UserError(
      `could not ${doing}: the connection to AWS broke (${err.message}). What was done before stays and is found again: run the same npm command again`,
    )
  return err
}

/** Runs an AWS call, translating fixable errors (see explainAwsError). */
export async function aws<T>(doing: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    throw explainAwsError(err, doing)
  }
}

/** Deep equality of two JSON values (key order ignored). */
export function sameJson(a: unknown, b: unknown): boolean {
  const norm = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(norm)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => x.localeCompare(y)).map(([k, x]) => [k, norm(x)]))
        : v
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b))
}

