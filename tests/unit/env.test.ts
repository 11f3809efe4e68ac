import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkEnv, EnvError, formatEnv, loadEnv, type Validator } from '../../tasks/lib/env.ts'
import { awsRegion, bool, bucketName, hostList, imageName, imageTag, int, ipAddress, oneOf, port, str, url } from '../../tasks/lib/validators.ts'
import { stackVars } from '../../tasks/lib/vars.ts'
import { tempDir } from './fakes.ts'

function problemsOf(fn: () => unknown): EnvError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof EnvError, `expected an EnvError, got ${String(err)}`)
    return err
  }
  assert.fail('expected an EnvError')
}

const spec = {
  SECRET: str({ desc: 'the secret key', example: 'abc123', secret: true }),
  PORT: port({ desc: 'port to listen on', example: '8080', default: 8080 }),
  HOSTS: hostList({ desc: 'allowed hosts', example: 'localhost' }),
  DEBUG: bool({ desc: 'debug mode', example: 'false', default: false }),
  BUCKET: bucketName({ desc: 'upload bucket', example: 'my-bucket', optional: true }),
}

describe('checkEnv', () => {
  it('returns typed values, with defaults and optional values', () => {
    const v = checkEnv(spec, { SECRET: 's', HOSTS: 'a.example.com, b' })
    assert.deepEqual(v, { SECRET: 's', PORT: 8080, HOSTS: ['a.example.com', 'b'], DEBUG: false, BUCKET: undefined })
    // types: PORT is a number, BUCKET may be undefined
    const p: number = v.PORT
    const b: string | undefined = v.BUCKET
    assert.equal(p + (b ?? '').length, 8080)
  })

  it('reports missing and invalid variables together, grouped, in one error (exit code 2)', () => {
    const e = problemsOf(() => checkEnv(spec, { PORT: 'abc', DEBUG: 'maybe' }))
    assert.equal(e.exitCode, 2)
    assert.deepEqual(e.missing.map((p) => p.name), ['SECRET', 'HOSTS'])
    assert.deepEqual(e.invalid.map((p) => p.name), ['PORT', 'DEBUG'])
    const msg = e.message
    assert.match(msg, /^4 environment variables to fix:/)
    const missingAt = msg.indexOf('Missing:')
    const invalidAt = msg.indexOf('Invalid:')
    assert.ok(missingAt > 0 && invalidAt > missingAt, msg)
    assert.ok(msg.indexOf('SECRET') > missingAt && msg.indexOf('SECRET') < invalidAt)
    assert.ok(msg.indexOf('PORT="abc"') > invalidAt)
  })

  it('gives each problem its description, an example and the fix', () => {
    const e = problemsOf(() => checkEnv(spec, { HOSTS: 'ok', PORT: '70000' }))
    assert.match(e.message, /SECRET - the secret key\n\s+fix: set e\.g\. SECRET=abc123 in \.env \(see \.env\.example\)/)
    assert.match(e.message, /PORT="70000" - expected a TCP port number \(1-65535\); port to listen on\n\s+fix: set e\.g\. PORT=8080 in \.env/)
  })

  it('counts an empty or blank value as missing', () => {
    const e = problemsOf(() => checkEnv(spec, { SECRET: '', HOSTS: '   ' }))
    assert.deepEqual(e.missing.map((p) => p.name), ['SECRET', 'HOSTS'])
    assert.equal(e.invalid.length, 0)
    // and an empty value with a default takes the default
    assert.equal(checkEnv(spec, { SECRET: 'x', HOSTS: 'h', PORT: '' }).PORT, 8080)
  })

  it('never shows the value of a secret variable', () => {
    const s = { KEY: str({ desc: 'key', minLength: 50, secret: true }) }
    const e = problemsOf(() => checkEnv(s, { KEY: 'hunter2' }))
    assert.doesNotMatch(e.message, /hunter2/)
    assert.match(e.message, /KEY=\(hidden, 7 characters\) - too short/)
  })

  it('is pure: does not read process.env', () => {
    process.env.MYMDB_UNIT_ONLY_IN_PROCESS = 'x'
    try {
      const e = problemsOf(() => checkEnv({ MYMDB_UNIT_ONLY_IN_PROCESS: str({ desc: 'd' }) }, {}))
      assert.equal(e.missing.length, 1)
    } finally {
      delete process.env.MYMDB_UNIT_ONLY_IN_PROCESS
    }
  })

  it('formatEnv turns values back into strings for a child process', () => {
    const v = checkEnv(spec, { SECRET: 's', HOSTS: 'a,b', DEBUG: 'yes' })
    assert.deepEqual(formatEnv(spec, v), { SECRET: 's', PORT: '8080', HOSTS: 'a,b', DEBUG: 'true' })
  })

  it('the project spec accepts .env.example plus the secrets', async () => {
    const { readFileSync } = await import('node:fs')
    const { default: dotenv } = await import('dotenv')
    const example = dotenv.parse(readFileSync(new URL('../../.env.example', import.meta.url)))
    const e = problemsOf(() => checkEnv(stackVars, example))
    assert.deepEqual(e.missing.map((p) => p.name).sort(), ['DJANGO_DB_PASSWORD', 'DJANGO_SECRET_KEY', 'POSTGRES_PASSWORD'])
    assert.equal(e.invalid.length, 0)
    const v = checkEnv(stackVars, { ...example, DJANGO_SECRET_KEY: 'k'.repeat(25) + 'K'.repeat(25), DJANGO_DB_PASSWORD: 'p', POSTGRES_PASSWORD: 'q' })
    assert.equal(v.WEB_PORT, 8080)
    assert.equal(v.MYMDB_BASE_IMAGE, 'auto')
    assert.equal(v.COMPOSE_PROJECT_NAME, 'mymdb')
  })
})

function accepts<T>(v: Validator<T>, raw: string, expected?: T) {
  const got = v.parse(raw)
  if (expected !== undefined) assert.deepEqual(got, expected, `${raw} -> ${String(got)}`)
}
function rejects(v: Validator<unknown>, ...raws: string[]) {
  for (const raw of raws) assert.throws(() => v.parse(raw), Error, `should reject ${JSON.stringify(raw)}`)
}

describe('validators', () => {
  const d = { desc: 'd' }
  it('str: length and pattern', () => {
    const v = str({ ...d, minLength: 3, maxLength: 5, pattern: /^[a-z]+$/ })
    accepts(v, 'abcd', 'abcd')
    rejects(v, 'ab', 'abcdef', 'ABC', 'ab1')
  })
  it('bool: true/false and friends, any case', () => {
    const v = bool(d)
    for (const t of ['true', 'TRUE', '1', 'yes', 'on']) accepts(v, t, true)
    for (const f of ['false', 'False', '0', 'no', 'off']) accepts(v, f, false)
    rejects(v, 'maybe', '2', 'tru')
  })
  it('int: whole numbers within min/max', () => {
    const v = int({ ...d, min: 0, max: 10 })
    accepts(v, '0', 0)
    accepts(v, '10', 10)
    accepts(v, ' 7 ', 7)
    rejects(v, '-1', '11', '1.5', 'abc', '1e2', '0x10')
    assert.equal(int(d).parse('-5'), -5)
  })
  it('port: 1-65535', () => {
    const v = port(d)
    accepts(v, '1', 1)
    accepts(v, '65535', 65535)
    rejects(v, '0', '65536', 'abc', '80.5', '')
  })
  it('hostList: comma-separated host names, IPs, .domain and *.domain', () => {
    const v = hostList(d)
    accepts(v, 'localhost,127.0.0.1', ['localhost', '127.0.0.1'])
    accepts(v, 'example.com, .example.org,*.example.net,::1', ['example.com', '.example.org', '*.example.net', '::1'])
    rejects(v, 'exa mple.com', 'a,,b', 'http://example.com', '-bad.com', 'under_score.com', 'a'.repeat(64) + '.com')
  })
  it('oneOf: exact choices', () => {
    const v = oneOf(['DEBUG', 'INFO'] as const, d)
    accepts(v, 'INFO', 'INFO')
    rejects(v, 'info', 'TRACE')
    assert.throws(() => v.parse('x'), /expected one of DEBUG, INFO/)
  })
  it('url: http(s) only', () => {
    const v = url(d)
    accepts(v, 'http://minio:9000', 'http://minio:9000')
    accepts(v, 'https://s3.example.com/path')
    rejects(v, 'minio:9000x', 'ftp://x', 'not a url', '/relative')
  })
  it('ipAddress', () => {
    const v = ipAddress(d)
    accepts(v, '127.0.0.1')
    accepts(v, '0.0.0.0')
    accepts(v, '::1')
    rejects(v, 'localhost', '256.0.0.1', '1.2.3')
  })
  it('bucketName: S3 naming rules', () => {
    const v = bucketName(d)
    for (const ok of ['abc', 'my-bucket.2024', 'a'.repeat(63), 'mymdb-uploads']) accepts(v, ok, ok)
    rejects(v, 'ab', 'a'.repeat(64), 'My-Bucket', 'my_bucket', '-bucket', 'bucket-', 'my..bucket', '192.168.1.1', 'xn--bucket', 'bucket-s3alias', 'sthree-x')
  })
  it('awsRegion: like us-west-2', () => {
    const v = awsRegion(d)
    for (const ok of ['us-west-2', 'eu-central-1', 'ap-southeast-4', 'us-gov-west-1', 'me-south-1']) accepts(v, ok, ok)
    rejects(v, 'us-west', 'US-WEST-2', 'uswest2', 'us-west-2a', 'west-2')
  })
  it('imageName and imageTag', () => {
    for (const ok of ['mymdb-web', 'team/mymdb_web', 'registry.example.com:5000/a/b', '123456789012.dkr.ecr.us-west-2.amazonaws.com/mymdb-web'])
      accepts(imageName(d), ok, ok)
    rejects(imageName(d), 'MyMDB', 'a b', 'web:latest', '-web', 'web-')
    for (const ok of ['latest', '1a2b3c4', '1a2b3c4-dirty', 'v1.2_3']) accepts(imageTag(d), ok, ok)
    rejects(imageTag(d), '.x', '-x', 'a b', 'a:b', 'x'.repeat(129))
  })
})

describe('loadEnv', () => {
  it('merges the .env file under the environment (the environment wins)', () => {
    const { envFile } = tempDir('A=from-file\nB=from-file\n# comment\nC="quoted value"\n')
    const env = loadEnv({ A: 'from-env', D: 'only-env', U: undefined }, envFile)
    assert.deepEqual(env, { A: 'from-env', B: 'from-file', C: 'quoted value', D: 'only-env' })
  })
  it('an empty variable in the environment still wins (as with Docker Compose)', () => {
    const { envFile } = tempDir('A=from-file\n')
    assert.equal(loadEnv({ A: '' }, envFile).A, '')
  })
  it('a missing .env file is fine', () => {
    const { dir } = tempDir()
    assert.deepEqual(loadEnv({ A: '1' }, `${dir}/no-such.env`), { A: '1' })
  })
  it('does not change process.env', () => {
    const { envFile } = tempDir('MYMDB_UNIT_FROM_FILE=1\n')
    loadEnv({}, envFile)
    assert.equal(process.env.MYMDB_UNIT_FROM_FILE, undefined)
  })
})
