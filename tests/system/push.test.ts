// The push step against the emulator (ECR repositories, login token) and a real registry
// (Debian's docker-registry): images of this commit, tagged and pushed, readable back.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { DescribeRepositoriesCommand } from '@aws-sdk/client-ecr'
import { awsClients } from '../../tasks/lib/aws/clients.ts'
import { main } from '../../tasks/push.ts'
import { applyEcrRepositories, ecrPlanLines, planEcrRepositories } from '../../tasks/lib/aws/registry.ts'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'

/** The repositories planned, the plan said, and applied unless a dry run; returns the registry host. */
async function ensureEcrRepositories(clients: AwsClients, names: string[], stage: string, dryRun: boolean, say: (line: string) => void, keep = 3): Promise<string> {
  const plan = await planEcrRepositories(clients, names, stage, keep)
  for (const line of ecrPlanLines(plan, dryRun)) say(line)
  if (!dryRun) await applyEcrRepositories(clients, plan)
  return plan.host
}
import { startMoto, type Moto } from '../rig/moto.ts'
import { captureLog } from '../unit/fakes.ts'

describe('push to Amazon ECR (emulated)', () => {
  let moto: Moto
  before(async () => { moto = await startMoto('mymdb-rig-moto-push') })
  after(async () => { await moto?.stop() })

  test('repositories are created once, tagged with the stage; a dry run creates none', async () => {
    const clients = awsClients('us-west-2', { ...process.env, ...moto.env })
    const log = captureLog()
    const dry = await ensureEcrRepositories(clients, ['mymdb-web', 'mymdb-db'], 'test', true, log.info)
    assert.match(dry, /^\d{12}\.dkr\.ecr\.us-west-2\.amazonaws\.com$/)
    assert.match(log.text(), /mymdb-web: would be created/)
    await assert.rejects(clients.ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ['mymdb-web'] })), /RepositoryNotFound/)

    await ensureEcrRepositories(clients, ['mymdb-web', 'mymdb-db'], 'test', false, log.info, 5)
    // each repository keeps the newest 5 images (MYMDB_KEEP_RELEASES), read back from the emulator
    // (read with a plain request: moto's answer has a timestamp the SDK refuses to parse)
    const readPolicy = async (repositoryName: string) => {
      const res = await fetch(`${moto.endpoint}/`, {
        method: 'POST',
        headers: {
          'x-amz-target': 'AmazonEC2ContainerRegistry_V20150921.GetLifecyclePolicy',
          'content-type': 'application/x-amz-json-1.1',
          authorization: 'AWS4-HMAC-SHA256 Credential=test/20261127/us-west-2/ecr/aws4_request, SignedHeaders=host, Signature=0',
        },
        body: JSON.stringify({ repositoryName }),
      })
      return JSON.parse(((await res.json()) as { lifecyclePolicyText: string }).lifecyclePolicyText)
    }
    for (const repositoryName of ['mymdb-web', 'mymdb-db']) {
      const policy = await readPolicy(repositoryName)
      assert.deepEqual(policy.rules.map((r: { selection: unknown; action: unknown }) => [r.selection, r.action]), [
        [{ tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 5 }, { type: 'expire' }],
      ])
    }
    const again = captureLog()
    await ensureEcrRepositories(clients, ['mymdb-web', 'mymdb-db'], 'test', false, again.info, 5)
    assert.match(again.text(), /mymdb-web: exists[\s\S]*mymdb-db: exists/)
    await ensureEcrRepositories(clients, ['mymdb-web'], 'test', false, captureLog().info, 2)
    assert.equal((await readPolicy('mymdb-web')).rules[0].selection.countNumber, 2)
    const repos = await clients.ecr.send(new DescribeRepositoriesCommand({}))
    assert.deepEqual(repos.repositories?.map((r) => r.repositoryName).sort(), ['mymdb-db', 'mymdb-web'])
  })

  test('npm run push -- --dry-run with ecr names the account registry and changes nothing', async () => {
    await moto.reset()
    const deps = { log: captureLog() }
    const code = await main(['--dry-run'], { ...process.env, ...moto.env, MYMDB_REGISTRY: 'ecr', MYMDB_STAGE: 'test' }, deps)
    assert.equal(code, 0, deps.log.text())
    assert.match(deps.log.text(), /\d{12}\.dkr\.ecr\.us-west-2\.amazonaws\.com\/mymdb-web:/)
    const repos = await awsClients('us-west-2', { ...process.env, ...moto.env }).ecr.send(new DescribeRepositoriesCommand({}))
    assert.equal(repos.repositories?.length ?? 0, 0)
  })
})
