// npm run bench -- deploy: the AWS path against a fresh test rig (moto, Debian's docker-registry,
// an SSH host with its own Docker engine; see tests/rig/), through the real commands, as a user
// runs them: first deploy:aws (push, bucket, host, start over SSH), a no-op re-deploy, a new web
// version and a rollback under a steady load loop (requests served and lost), stop --aws,
// deploy:aws after the stop, backup and restore --aws, destroy:aws. The rig is removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DescribeImagesCommand } from '@aws-sdk/client-ec2'
import { $ } from 'zx'
import { awsClients } from '../tasks/lib/aws/clients.ts'
import { startMoto } from '../tests/rig/moto.ts'
import { pushStackImages, startRegistry } from '../tests/rig/registry.ts'
import { followInstances, startSshHost } from '../tests/rig/sshhost.ts'
import { sshKeyFile } from '../tests/unit/fakes.ts'
import { describeLoad, underLoad } from '../tests/rig/load.ts'
import { timer } from './measure.ts'

const REPO = new URL('..', import.meta.url).pathname

export async function benchDeploy(record: (what: string, value: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mymdb-bench-deploy-'))
  const keyFile = join(dir, 'mymdb-bench.pem')
  const keys = sshKeyFile(keyFile)
  const start = performance.now()
  const moto = await startMoto('mymdb-bench-moto')
  const registry = await startRegistry('mymdb-bench-registry')
  // the SSH host stands in for the stage's instance: sshd with the host key of its user-data
  const host = await startSshHost({ authorizedKey: keys.public, registry, name: 'mymdb-bench-sshhost', bootOnHostKey: true })
  const follow = followInstances(awsClients('us-west-2', { ...process.env, ...moto.env }), 'bench', host)
  record('deploy rig up (moto, registry, SSH host with its dockerd)', `${((performance.now() - start) / 1000).toFixed(1)} s`)
  try {
    const clients = awsClients('us-west-2', { ...process.env, ...moto.env })
    const ami = (await clients.ec2.send(new DescribeImagesCommand({}))).Images?.find((i) => /debian|ubuntu/i.test(i.Name ?? ''))
    const env = {
      PATH: process.env.PATH,
      HOME: dir,
      FORCE_COLOR: '0',
      ...moto.env,
      AWS_MAX_ATTEMPTS: '3',
      MYMDB_STAGE: 'bench',
      DJANGO_UPLOAD_S3_BUCKET: 'mymdb-bench-uploads',
      MYMDB_REGISTRY: registry.address,
      MYMDB_AMI_ID: ami?.ImageId ?? '',
      MYMDB_SSH_KEY_FILE: keyFile,
      MYMDB_SSH_CIDR: '203.0.113.7/32',
      MYMDB_HOST_ADDRESS: '127.0.0.1',
      MYMDB_HOST_SSH_PORT: String(host.sshPort),
      MYMDB_HOST_HTTP_PORT: String(host.httpPort),
      DJANGO_SECRET_KEY: 'bench-only-5d1f9a2c7e4b8d0f3a6c9e2b5d8f1a4c7e0b3d6f9a2c5e8b1d4f7a0c3e6b',
      DJANGO_DB_PASSWORD: 'bench-db-password',
      POSTGRES_PASSWORD: 'bench-postgres-password',
      AWS_S3_ENDPOINT_URL: moto.internalEndpoint,
      MYMDB_UPLOAD_AWS_ACCESS_KEY_ID: 'bench',
      MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY: 'bench-secret',
    }
    const sh = $({ cwd: REPO, env, quiet: true })
    const timed = timer(record)
    await timed('first deploy:aws on the rig (push ~570 MB, bucket, host, pull and start over SSH)', () => sh`node --import tsx tasks/deploy-aws.ts`)
    await timed('no-op re-deploy:aws', () => sh`node --import tsx tasks/deploy-aws.ts`)
    // a second release: a new web image (db and proxy unchanged), started by the start step alone
    await pushStackImages(registry, 'bench2', { web: { dockerfile: 'LABEL bench.release=2' } })
    // the names the deploy gave the site: other ones would change the front's settings too, and
    // a changed front is replaced stop-first (a short gap), which is not what this measures
    const hostEnv = (await host.dockerExec('cat', '/home/admin/mymdb/.env')).stdout
    const allowedHosts = /^DJANGO_ALLOWED_HOSTS='([^']*)'$/m.exec(hostEnv)?.[1] ?? '127.0.0.1'
    for (const [what, cmd] of [
      ['a new web version (remote:up; Swarm starts the new web, then stops the old one)', () => $({ cwd: REPO, quiet: true, env: { ...env, MYMDB_TAG: 'bench2', DJANGO_ALLOWED_HOSTS: allowedHosts } })`node --import tsx tasks/remote-up.ts`],
      ['rollback to the previous release (the same zero-downtime update)', () => sh`node --import tsx tasks/rollback.ts`],
    ] as const) {
      const { load } = await underLoad(host.httpPort, '127.0.0.1', { perSecond: 25 }, () => timed(what, cmd))
      record(`${what}: requests at 25/s to /healthz during it`, describeLoad(load))
    }
    await timed('stop --aws (containers over SSH, then the instance)', () => sh`node --import tsx tasks/stop.ts --aws`)
    await timed('deploy:aws after stop --aws', () => sh`node --import tsx tasks/deploy-aws.ts`)
    let name = ''
    await timed('backup --aws (sample catalogue; dump on the host, upload into the backup bucket)', async () => {
      name = /s3:\/\/[^/]+\/(\S+\.tar)/.exec((await sh`node --import tsx tasks/backup.ts --aws`).stdout)?.[1] ?? ''
    })
    await timed('restore --aws (download on the host, safety backup, restore, web restarted and healthy)', () => sh`node --import tsx tasks/restore.ts ${name} --aws --yes`)
    await timed('destroy:aws (with its final backup)', () => sh`node --import tsx tasks/destroy-aws.ts --yes`)
  } finally {
    await follow.stop()
    await host.stop()
    await registry.stop()
    await moto.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
