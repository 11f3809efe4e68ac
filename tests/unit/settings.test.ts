// The settings model (tasks/lib/vars.ts + env.ts): each rule of a setting, the .env file's
// malformed lines, and every task building its AWS clients from the one merged view.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { main as destroyMain } from '../../tasks/destroy-aws.ts'
import { main as hostMain } from '../../tasks/host.ts'
import { checkEnv, EnvError, loadEnv, malformedLines, type RawEnv } from '../../tasks/lib/env.ts'
import { cidr, hostAddresses, imageRef } from '../../tasks/lib/validators.ts'
import { imageVars, LOCAL_ONLY_PREFIX, productionOnly, stackVars, djangoVars } from '../../tasks/lib/vars.ts'
import { hostVars, sshKeyRule } from '../../tasks/lib/hostvars.ts'
import { registryRules, registryVars, awsVars } from '../../tasks/lib/awsvars.ts'
import { main as stopMain } from '../../tasks/stop.ts'
import { noDocker, sshKeyPair, tempDir, testDeps } from './fakes.ts'

/** The problems of a check, as "NAME: reason" lines (or [] when it passes). */
function problems(fn: () => unknown): string[] {
  try {
    fn()
    return []
  } catch (e) {
    assert.ok(e instanceof EnvError, String(e))
    return [...e.missing.map((p) => `${p.name}: missing`), ...e.invalid.map((p) => `${p.name}: ${p.reason}`)]
  }
}

describe('.env file lines', () => {
  it('a line that is not NAME=value, a comment or blank is reported with its line number', () => {
    const text = 'A=1\n# comment\n\nTHIS IS NOT A SETTING\nB="two\nlines"\nexport C=3\nD: 4\n=oops\n'
    assert.deepEqual(malformedLines(text), [
      { file: '.env', line: 4, text: 'THIS IS NOT A SETTING' },
      { file: '.env', line: 9, text: '=oops' },
    ])
  })
  it('loadEnv carries them to checkEnv, which reports them with every other problem (exit 2)', () => {
    const { envFile } = tempDir('WEB_PORT=8080\nWEB_PORT 9000\n')
    const raw = loadEnv({ DJANGO_SECRET_KEY: 'short' }, envFile)
    const err = (() => {
      try {
        checkEnv({ DJANGO_SECRET_KEY: djangoVars.DJANGO_SECRET_KEY }, raw)
      } catch (e) {
        return e
      }
    })()
    assert.ok(err instanceof EnvError)
    assert.equal(err.exitCode, 2)
    assert.match(err.message, /^2 problems with the settings to fix:/)
    assert.match(err.message, /\.env line 2: "WEB_PORT 9000"/)
    assert.match(err.message, /DJANGO_SECRET_KEY=\(hidden, 5 characters\) - too short/)
  })
  it('a file without problems checks as before', () => {
    const { envFile } = tempDir('WEB_PORT=9000 # the port\n')
    assert.equal(checkEnv({ WEB_PORT: stackVars.WEB_PORT }, loadEnv({}, envFile)).WEB_PORT, 9000)
  })
})

describe('rules of single settings', () => {
  it('MYMDB_REGISTRY: a registry, not a bare user name', () => {
    assert.deepEqual(problems(() => checkEnv(registryVars, { MYMDB_REGISTRY: 'ecr' })), [])
    assert.deepEqual(problems(() => checkEnv(registryVars, { MYMDB_REGISTRY: 'docker.io/ada/' })), [])
    const [p] = problems(() => checkEnv(registryVars, { MYMDB_REGISTRY: 'ada' }))
    assert.match(p ?? '', /MYMDB_REGISTRY: names no registry \(a user name alone\? for Docker Hub: docker\.io\/ada\)/)
  })
  it('MYMDB_SSH_CIDR: never the whole internet, nothing wider than a /8', () => {
    const v = { X: cidr({ desc: 'x', minPrefix: 8 }) }
    assert.deepEqual(problems(() => checkEnv(v, { X: '203.0.113.7/32' })), [])
    assert.deepEqual(problems(() => checkEnv(v, { X: '0.0.0.0/0' })), ['X: opens it to the whole internet'])
    assert.match(problems(() => checkEnv(v, { X: '10.0.0.0/7' }))[0] ?? '', /at most a \/8/)
    assert.match(problems(() => checkEnv(v, { X: '300.1.1.1/32' }))[0] ?? '', /expected an IPv4 CIDR/)
    assert.match(problems(() => checkEnv(hostVars, { MYMDB_SSH_CIDR: '0.0.0.0/0' })).join(), /MYMDB_SSH_CIDR: opens it to the whole internet/)
  })
  it('MYMDB_INSTANCE_TYPE: a family and size that exist, amd64 only', () => {
    for (const ok of ['t3.micro', 't3a.small', 'm7i-flex.large', 'c6in.2xlarge', 'm5.metal'])
      assert.deepEqual(problems(() => checkEnv(hostVars, { MYMDB_INSTANCE_TYPE: ok })), [], ok)
    for (const bad of ['t3.micr', 't3.mini', 'micro', 't3'])
      assert.match(problems(() => checkEnv(hostVars, { MYMDB_INSTANCE_TYPE: bad })).join(), /expected an EC2 instance type/, bad)
    for (const arm of ['t4g.small', 'm7gd.large', 'c6gn.xlarge', 'a1.medium'])
      assert.match(problems(() => checkEnv(hostVars, { MYMDB_INSTANCE_TYPE: arm })).join(), /arm64 \(Graviton\)/, arm)
  })
  it('MYMDB_HOST_ADDRESS / --address: host names or IPs, one per host, comma-separated; not a URL, no port, none twice', () => {
    const v = { A: hostAddresses({ desc: 'a' }) }
    for (const ok of ['203.0.113.7', 'host.example.com', '::1', 'localhost']) assert.deepEqual(checkEnv(v, { A: ok }).A, [ok])
    assert.deepEqual(checkEnv(v, { A: ' 127.0.0.11, 127.0.0.12 ,::1' }).A, ['127.0.0.11', '127.0.0.12', '::1'])
    for (const bad of ['https://203.0.113.7', '203.0.113.7:22', 'a b', '10.0.0.1,,10.0.0.2']) assert.equal(problems(() => checkEnv(v, { A: bad })).length, 1, bad)
    assert.match(problems(() => checkEnv(v, { A: '10.0.0.1,10.0.0.1' })).join(), /names an address twice/)
    assert.match(problems(() => checkEnv(v, { A: '10.0.0.1,http://x' })).join(), /not addresses: "http:\/\/x"/)
  })
  it('MYMDB_BASE_IMAGE / --base: a keyword or a lowercase image reference', () => {
    const v = { B: imageRef({ desc: 'b' }, ['auto', 'pull', 'bootstrap']) }
    for (const ok of ['auto', 'debian:trixie-slim', 'registry.example.com:5000/team/x:1', 'mymdb-base:trixie', 'localhost/x'])
      assert.deepEqual(problems(() => checkEnv(v, { B: ok })), [], ok)
    for (const bad of ['Debian:Trixie', 'debian:', 'AUTO', 'a b']) assert.equal(problems(() => checkEnv(v, { B: bad })).length, 1, bad)
  })
  it('DJANGO_LOG_LEVEL: the five Python levels in any case, passed on in upper case (as the Django settings read it)', () => {
    assert.equal(checkEnv(stackVars, { DJANGO_SECRET_KEY: 'k'.repeat(50), DJANGO_ALLOWED_HOSTS: 'a', DJANGO_DB_PASSWORD: 'p', POSTGRES_PASSWORD: 'p', DJANGO_LOG_LEVEL: 'critical' }).DJANGO_LOG_LEVEL, 'CRITICAL')
    for (const bad of ['LOUD', 'warn', 'ınfo'])
      assert.match(problems(() => checkEnv({ L: stackVars.DJANGO_LOG_LEVEL }, { L: bad })).join(), /expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL/, bad)
  })
  it('every stack setting must fit a .env file: no single quote, line break or trailing backslash', () => {
    for (const bad of ["pa'ss", 'a\nb', 'ends\\'])
      assert.match(problems(() => checkEnv({ P: stackVars.DJANGO_DB_PASSWORD }, { P: bad })).join(), /cannot hold exactly/, JSON.stringify(bad))
    assert.deepEqual(problems(() => checkEnv({ P: stackVars.DJANGO_DB_PASSWORD }, { P: 'a"b$c#d\\e f' })), [])
  })
  it('production refuses the local-only secrets of up:local, and only the secrets', () => {
    const prod = productionOnly({ DJANGO_SECRET_KEY: djangoVars.DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS: djangoVars.DJANGO_ALLOWED_HOSTS })
    const key = `${LOCAL_ONLY_PREFIX}${'x'.repeat(60)}`
    assert.match(problems(() => checkEnv(prod, { DJANGO_SECRET_KEY: key, DJANGO_ALLOWED_HOSTS: 'a' })).join(), /DJANGO_SECRET_KEY: is a local-only value of npm run up:local/)
    assert.deepEqual(problems(() => checkEnv(djangoVars, { DJANGO_SECRET_KEY: key, DJANGO_ALLOWED_HOSTS: 'a' })), [])
  })
})

describe('rules across settings', () => {
  const check = (env: RawEnv) => problems(() => checkEnv(registryVars, env, { rules: registryRules }))
  it('a registry login is a user name and a password, together', () => {
    assert.deepEqual(check({ MYMDB_REGISTRY: 'docker.io/ada', MYMDB_REGISTRY_USERNAME: 'ada', MYMDB_REGISTRY_PASSWORD: 't' }), [])
    assert.deepEqual(check({ MYMDB_REGISTRY: 'docker.io/ada' }), [])
    assert.match(check({ MYMDB_REGISTRY: 'docker.io/ada', MYMDB_REGISTRY_USERNAME: 'ada' }).join(), /MYMDB_REGISTRY_PASSWORD: is needed with MYMDB_REGISTRY_USERNAME/)
    assert.match(check({ MYMDB_REGISTRY: 'docker.io/ada', MYMDB_REGISTRY_PASSWORD: 't' }).join(), /MYMDB_REGISTRY_USERNAME: is needed with MYMDB_REGISTRY_PASSWORD/)
  })
  it('no registry login with ecr (it comes from the AWS credentials)', () => {
    assert.match(check({ MYMDB_REGISTRY: 'ecr', MYMDB_REGISTRY_USERNAME: 'AWS', MYMDB_REGISTRY_PASSWORD: 'x' }).join(), /MYMDB_REGISTRY_USERNAME: is not used with MYMDB_REGISTRY=ecr/)
  })
  it('a rule does not run when one of its settings is already wrong (one problem per setting)', () => {
    assert.deepEqual(check({ MYMDB_REGISTRY: 'nope nope', MYMDB_REGISTRY_USERNAME: 'ada', MYMDB_REGISTRY_PASSWORD: 'x' }).length, 1)
  })
  it('the SSH key file, when it exists, is a private key the SSH client can use', () => {
    const { dir } = tempDir()
    const spec = { ...awsVars, MYMDB_SSH_KEY_FILE: hostVars.MYMDB_SSH_KEY_FILE }
    const run = (file: string) => problems(() => checkEnv(spec, { AWS_REGION: 'us-west-2', MYMDB_SSH_KEY_FILE: file, HOME: dir }, { rules: [sshKeyRule] }))
    const keys = sshKeyPair()
    writeFileSync(join(dir, 'id'), keys.private, { mode: 0o600 })
    writeFileSync(join(dir, 'id.pub'), keys.public)
    assert.deepEqual(run(join(dir, 'id')), [])
    assert.deepEqual(run(join(dir, 'absent.pem')), [])
    assert.match(run(join(dir, 'id.pub')).join(), /MYMDB_SSH_KEY_FILE: .*id\.pub is a public key/)
    assert.match(run('~/id.pub').join(), /is a public key/)
  })
})

describe('AWS clients come from the one merged view (environment + .env)', () => {
  // AWS_PROFILE and AWS_ENDPOINT_URL in .env must reach every task's clients, or destroy:aws
  // would look in another account than deploy:aws deployed to.
  const FILE = 'AWS_REGION=us-west-2\nAWS_PROFILE=from-dotenv\nAWS_ENDPOINT_URL=http://127.0.0.1:1\nDJANGO_UPLOAD_S3_BUCKET=mymdb-uploads-qa\nMYMDB_SSH_CIDR=203.0.113.7/32\n'
  const spy = () => {
    const seen: RawEnv[] = []
    const awsClients = (_region: string, env: RawEnv) => {
      seen.push(env)
      throw new Error('stop here')
    }
    return { seen, awsClients }
  }
  for (const [name, run] of [
    ['host', (d: object) => hostMain([], { HOME: tempDir().dir }, d)],
    ['stop --aws', (d: object) => stopMain(['--aws'], { HOME: tempDir().dir }, d)],
    ['destroy:aws', (d: object) => destroyMain([], { HOME: tempDir().dir }, d)],
  ] as const) {
    it(name, async () => {
      const s = spy()
      const d = { ...testDeps(noDocker(), { envFile: tempDir(FILE).envFile }), awsClients: s.awsClients }
      assert.equal(await run(d), 1, d.log.text())
      assert.equal(s.seen.length, 1, d.log.text())
      assert.equal(s.seen[0]?.AWS_PROFILE, 'from-dotenv')
      assert.equal(s.seen[0]?.AWS_ENDPOINT_URL, 'http://127.0.0.1:1')
    })
  }
})

it('imageVars: image names have one rule, here and on the registry', () => {
  assert.deepEqual(problems(() => checkEnv(imageVars, { MYMDB_WEB_IMAGE: 'team/movies-web' })), [])
  assert.match(problems(() => checkEnv(imageVars, { MYMDB_WEB_IMAGE: 'Upper/Case' })).join(), /MYMDB_WEB_IMAGE/)
})
