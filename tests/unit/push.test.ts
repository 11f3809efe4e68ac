import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { main } from '../../tasks/push.ts'
import { decodeEcrToken } from '../../tasks/lib/aws/registry.ts'
import { parseRegistry, registryImage, registryPrefix } from '../../tasks/lib/awsvars.ts'
import { fakeRunner, noDocker, testDeps } from './fakes.ts'

describe('parseRegistry', () => {
  it('knows ecr, Docker Hub and registry addresses', () => {
    assert.deepEqual(parseRegistry('ecr'), { kind: 'ecr' })
    assert.deepEqual(parseRegistry('docker.io/ada'), { kind: 'dockerhub', namespace: 'ada' })
    assert.deepEqual(parseRegistry('127.0.0.1:5000'), { kind: 'generic', host: '127.0.0.1:5000', path: '' })
    assert.deepEqual(parseRegistry('ghcr.io/ada/movies/'), { kind: 'generic', host: 'ghcr.io', path: 'ada/movies' })
    assert.deepEqual(parseRegistry('localhost:5000'), { kind: 'generic', host: 'localhost:5000', path: '' })
  })
  it('refuses values that name no registry, saying what is accepted', () => {
    for (const bad of ['ada', 'docker.io/', 'http://registry:5000', 'reg istry.io', 'docker.io/Ada']) {
      assert.throws(() => parseRegistry(bad), /names no registry|Docker Hub needs your user/, bad)
    }
  })
})

describe('image names', () => {
  it('prefixes per registry kind', () => {
    assert.deepEqual(registryPrefix({ kind: 'dockerhub', namespace: 'ada' }), { loginHost: 'docker.io', prefix: 'docker.io/ada' })
    assert.deepEqual(registryPrefix({ kind: 'generic', host: 'r.example:5000', path: 'team' }), { loginHost: 'r.example:5000', prefix: 'r.example:5000/team' })
    const ecr = '123456789012.dkr.ecr.us-west-2.amazonaws.com'
    assert.deepEqual(registryPrefix({ kind: 'ecr' }, ecr), { loginHost: ecr, prefix: ecr })
    assert.equal(registryImage('127.0.0.1:5000', 'mymdb-web'), '127.0.0.1:5000/mymdb-web')
    assert.equal(registryImage('docker.io/ada', 'local/mymdb-db'), 'docker.io/ada/mymdb-db')
  })
  it('decodes the ECR login token', () => {
    const token = Buffer.from('AWS:secret:with:colons').toString('base64')
    assert.deepEqual(decodeEcrToken(token), { username: 'AWS', password: 'secret:with:colons' })
    assert.throws(() => decodeEcrToken(Buffer.from('nocolon').toString('base64')))
  })
})

describe('push main()', () => {
  it('without MYMDB_REGISTRY: exit 2 naming it, nothing run', async () => {
    const deps = testDeps(noDocker())
    assert.equal(await main([], {}, deps), 2)
    assert.match(deps.log.text(), /Missing:[\s\S]*MYMDB_REGISTRY/)
  })
  it('ecr without AWS_REGION, and a bad image name: both reported at once, exit 2', async () => {
    const deps = testDeps(noDocker())
    assert.equal(await main([], { MYMDB_REGISTRY: 'ecr', MYMDB_WEB_IMAGE: 'Bad Name' }, deps), 2)
    assert.match(deps.log.text(), /AWS_REGION/)
    assert.match(deps.log.text(), /MYMDB_WEB_IMAGE/)
  })
  it('--dry-run lists the refs of this commit and pushes nothing', async () => {
    const run = fakeRunner((cmd) => (cmd.startsWith('git rev-parse') ? { stdout: 'abc1234\n' } : undefined))
    const deps = testDeps(run)
    assert.equal(await main(['--dry-run'], { MYMDB_REGISTRY: '127.0.0.1:5000' }, deps), 0, deps.log.text())
    const text = deps.log.text()
    for (const ref of ['127.0.0.1:5000/mymdb-web:abc1234', '127.0.0.1:5000/mymdb-web:latest', '127.0.0.1:5000/mymdb-db:abc1234'])
      assert.ok(text.includes(ref), ref)
    assert.ok(run.commands().every((c) => c.startsWith('git ')), run.commands().join('\n'))
  })
  it('Docker Hub: warns that new repositories are public', async () => {
    const run = fakeRunner((cmd) => (cmd.startsWith('git rev-parse') ? { stdout: 'abc1234\n' } : undefined))
    const deps = testDeps(run)
    assert.equal(await main(['--dry-run'], { MYMDB_REGISTRY: 'docker.io/ada' }, deps), 0)
    assert.match(deps.log.text(), /PUBLIC/)
  })
})
