// The settings of a deploy:aws against the rig (moto for AWS, the rig registry), which every test
// file that deploys starts from: the stage, its buckets, the AMI (moto knows no public SSM AMI
// parameters: one of its own is named), the key file, and the uploads' access from the web
// containers on the rig hosts (the emulator on the rig network, with keys: the rig has no instance
// role to give them credentials). Each file adds where its hosts are and the site's names.
// And what the emulator keeps of the stage's security group on Swarm's ports.
import assert from 'node:assert/strict'
import { DescribeImagesCommand, DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'
import type { BackupTarget } from '../../tasks/lib/aws/host.ts'
import type { Moto } from './moto.ts'

export interface RigDeploy {
  moto: Moto
  clients: AwsClients
  /** HOME of the deploy (the key file and known_hosts live under it). */
  home: string
  stage: string
  bucket: string
  registry: { address: string }
  keyFile: string
}

export async function rigDeployEnv(o: RigDeploy): Promise<Record<string, string | undefined>> {
  const ami = (await o.clients.ec2.send(new DescribeImagesCommand({}))).Images?.find((i) => /debian|ubuntu/i.test(i.Name ?? ''))
  assert.ok(ami?.ImageId, 'the emulator lists a Debian or Ubuntu AMI')
  return {
    PATH: process.env.PATH,
    HOME: o.home,
    ...o.moto.env,
    MYMDB_STAGE: o.stage,
    DJANGO_UPLOAD_S3_BUCKET: o.bucket,
    MYMDB_REGISTRY: o.registry.address,
    MYMDB_AMI_ID: ami.ImageId,
    MYMDB_SSH_KEY_FILE: o.keyFile,
    MYMDB_SSH_CIDR: '203.0.113.7/32',
    DJANGO_SECRET_KEY: 'rig-only-5d1f9a2c7e4b8d0f3a6c9e2b5d8f1a4c7e0b3d6f9a2c5e8b1d4f7a0c3e6b',
    DJANGO_DB_PASSWORD: 'rig-db-password',
    POSTGRES_PASSWORD: 'rig-postgres-password',
    AWS_S3_ENDPOINT_URL: o.moto.internalEndpoint,
    MYMDB_UPLOAD_AWS_ACCESS_KEY_ID: 'rig',
    MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY: 'rig-secret',
  }
}

/**
 * The rules of a security group on Swarm's ports, as the emulator keeps them: `port/protocol
 * <groups it admits> <number of address ranges>`, sorted (a stage of several hosts: each from
 * the group itself, no range).
 */
export async function swarmRules(clients: AwsClients, groupId: string): Promise<string[]> {
  const group = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] }))).SecurityGroups?.[0]
  return (group?.IpPermissions ?? [])
    .filter((p) => [2377, 7946, 4789].includes(p.FromPort ?? 0))
    .map((p) => `${p.FromPort}/${p.IpProtocol} ${(p.UserIdGroupPairs ?? []).map((g) => g.GroupId).join(',')} ${(p.IpRanges ?? []).length + (p.Ipv6Ranges ?? []).length}`)
    .sort()
}

/** The backup target the host step handed the host, read back from its backup.env (the text of the file). */
export function backupTargetOf(backupEnv: string): BackupTarget {
  const v = Object.fromEntries(backupEnv.split('\n').filter((l) => /^MYMDB_BACKUP_/.test(l)).map((l) => [l.split('=')[0], l.slice(l.indexOf('=') + 2, -1)]))
  return { bucket: v.MYMDB_BACKUP_BUCKET!, region: v.MYMDB_BACKUP_REGION!, roleArn: v.MYMDB_BACKUP_ROLE_ARN!, externalId: v.MYMDB_BACKUP_EXTERNAL_ID! }
}
