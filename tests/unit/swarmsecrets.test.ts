import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { readFileSync } from 'node:fs'
import { SECRET_ENV_KEYS, SECRET_VARS, secretName, withSwarmSecrets } from '../../tasks/lib/swarmsecrets.ts'

describe('Swarm secrets of the stack file', () => {
  const stack = {
    services: {
      web: { image: 'w', environment: { DJANGO_SECRET_KEY: 'k'.repeat(50), DJANGO_DB_PASSWORD: 'pw', DJANGO_SECRET_KEY_FALLBACKS: '', DJANGO_LOG_LEVEL: 'INFO', AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'upload-secret' } },
      db: { image: 'd', environment: { POSTGRES_PASSWORD: 'pg', DJANGO_DB_PASSWORD: 'pw' } },
      cache: { image: 'c' },
    },
    networks: { back: {} },
  }
  const { stack: out, secrets } = withSwarmSecrets(stack)
  const text = JSON.stringify(out)

  it('no secret value is left in the stack file; each is a file the service is told of', () => {
    for (const v of ['k'.repeat(50), '"pw"', '"pg"', 'upload-secret']) assert.ok(!text.includes(v), v)
    const web = (out.services as Record<string, { environment: Record<string, string>; secrets: unknown[] }>).web!
    assert.deepEqual(web.environment, {
      DJANGO_SECRET_KEY_FALLBACKS: '',
      DJANGO_LOG_LEVEL: 'INFO',
      AWS_ACCESS_KEY_ID: 'id',
      DJANGO_SECRET_KEY_FILE: '/run/secrets/django_secret_key',
      DJANGO_DB_PASSWORD_FILE: '/run/secrets/django_db_password',
      AWS_SECRET_ACCESS_KEY_FILE: '/run/secrets/aws_secret_access_key',
    })
    assert.deepEqual(web.secrets, [
      { source: secretName('DJANGO_SECRET_KEY', 'k'.repeat(50)), target: 'django_secret_key' },
      { source: secretName('DJANGO_DB_PASSWORD', 'pw'), target: 'django_db_password' },
      { source: secretName('AWS_SECRET_ACCESS_KEY', 'upload-secret'), target: 'aws_secret_access_key' },
    ])
    assert.deepEqual((out.services as Record<string, unknown>).cache, { image: 'c' })
  })

  it('one secret per value, shared by the services that use it, declared external; a new value is a new name', () => {
    assert.deepEqual(Object.values(secrets).sort(), ['k'.repeat(50), 'pg', 'pw', 'upload-secret'])
    assert.deepEqual(Object.keys(out.secrets as object), Object.keys(secrets).sort())
    assert.ok(Object.values(out.secrets as Record<string, unknown>).every((s) => JSON.stringify(s) === '{"external":true}'))
    assert.match(secretName('DJANGO_DB_PASSWORD', 'pw'), /^mymdb_django_db_password_[0-9a-f]{12}$/)
    assert.notEqual(secretName('DJANGO_DB_PASSWORD', 'pw'), secretName('DJANGO_DB_PASSWORD', 'pw2'))
  })

  it("a $ that docker compose config wrote as $$ is one $ in the secret (stack deploy would have read it so)", () => {
    const { secrets: got } = withSwarmSecrets({ services: { web: { environment: { DJANGO_SECRET_KEY: 'a$$HOME b$${X}' } } } })
    assert.deepEqual(Object.values(got), ['a$HOME b${X}'])
  })

  it("each secret variable's .env key (the one-off's fallback when web is stopped) is the one docker-compose.yml passes", () => {
    const compose = readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8')
    for (const name of SECRET_VARS) {
      const from = SECRET_ENV_KEYS[name] ?? name
      assert.match(compose, new RegExp(`^\\s+${name}: \\$\\{${from}[:?}]`, 'm'), name)
    }
  })
})

describe("the database's CA bundles of earlier deploys", () => {
  it('each config with the prefix is removed except the kept ones; one in use stays, said on stderr; other configs are not touched', async () => {
    const { mkdtempSync, writeFileSync, chmodSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const { $ } = await import('zx')
    const { pruneConfigsCmd } = await import('../../tasks/lib/swarmsecrets.ts')
    // a docker that lists four configs, logs each rm and refuses the one in use
    const bin = mkdtempSync(join(tmpdir(), 'mymdb-fake-docker-'))
    const log = join(bin, 'rm.log')
    writeFileSync(
      join(bin, 'docker'),
      `#!/bin/sh\ncase "$1 $2" in\n"config ls") printf '%s\\n' mymdb_db_ca_aaaaaaaaaaaa mymdb_db_ca_bbbbbbbbbbbb mymdb_db_ca_cccccccccccc other_mymdb_db_ca_x ;;\n"config rm") echo "$3" >> ${log}; [ "$3" != mymdb_db_ca_cccccccccccc ] ;;\nesac\n`,
    )
    chmodSync(join(bin, 'docker'), 0o755)
    const [cmd, ...args] = pruneConfigsCmd('mymdb_db_ca_', ['mymdb_db_ca_bbbbbbbbbbbb'])
    const r = await $({ nothrow: true, quiet: true, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } })`${cmd} ${args}`
    assert.equal(r.stdout, 'mymdb_db_ca_aaaaaaaaaaaa\n')
    assert.match(r.stderr, /kept mymdb_db_ca_cccccccccccc: still in use/)
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['mymdb_db_ca_aaaaaaaaaaaa', 'mymdb_db_ca_cccccccccccc'])
  })
})
