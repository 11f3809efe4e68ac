// What we ship, checked with the field's own tools against the images `tests/prepare.ts` built:
// shellcheck, nginx -t, docker compose config, manage.py check --deploy, the Django test suite.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { $ } from 'zx'
import { REPO, waitFor } from './stack.ts'

const WEB = 'mymdb-web:latest'
const DB = 'mymdb-db:latest'
const PROXY = 'mymdb-proxy:latest'
const sh = $({ cwd: REPO, nothrow: true, quiet: true })

// Production-like settings for one-off containers of the web image (values are test-only).
const PRODUCTION_ENV = {
  DJANGO_SECRET_KEY: 'test-only-4f9c2b7e1d8a6c3f5e0b9d2a7c4e1f8b3d6a9c2e5f7b0d3a6c9e2f5b8d1a4c7',
  DJANGO_ALLOWED_HOSTS: 'mymdb.example.com,localhost',
  DJANGO_DB_NAME: 'mymdb', DJANGO_DB_USER: 'mymdb', DJANGO_DB_PASSWORD: 'test-only-db', DJANGO_DB_HOST: 'db',
}
const envFlags = (env: Record<string, string>) => Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`])

describe('shell scripts', () => {
  test('shellcheck finds nothing in any tracked shell script', async () => {
    const files = (await sh`git ls-files`).stdout.split('\n').filter((f) => {
      if (!f) return false
      if (f.endsWith('.sh')) return true
      const first = readFileSync(`${REPO}/${f}`, 'utf8').split('\n', 1)[0] ?? ''
      return /^#!.*\b(ba)?sh\b/.test(first)
    })
    assert.ok(files.includes('runit/boot') && files.includes('scripts/install-docker.sh'), `found: ${files}`)
    const r = await sh`shellcheck --external-sources ${files}`
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
  })
})

describe('web image', () => {
  test('nginx -t accepts the rendered site configuration', async () => {
    // With an EC2 public DNS name, as the deploy adds: longer than nginx's default hash bucket.
    const hosts = 'mymdb.example.com,localhost,ec2-203-0-113-254.ap-southeast-2.compute.amazonaws.com'
    const r = await sh`docker run --rm -e DJANGO_ALLOWED_HOSTS=${hosts} ${WEB} sh -c ${
      '/mymdb/scripts/render_nginx_conf.sh /etc/nginx/mymdb.conf.template /etc/nginx/conf.d/mymdb.conf && nginx -e stderr -t'}`
    assert.equal(r.exitCode, 0, r.stderr)
    assert.match(r.stderr, /test is successful/)
  })

  test("the front's nginx -t (and Caddy's validate, with a domain) accept the configuration its start script writes; a bad host name is refused", async () => {
    const hosts = '.example.com,localhost,[::1],ec2-203-0-113-254.ap-southeast-2.compute.amazonaws.com'
    for (const env of [{ DJANGO_ALLOWED_HOSTS: hosts }, { DJANGO_ALLOWED_HOSTS: '*' }, { MYMDB_DOMAIN: 'mymdb.example.com', MYMDB_HSTS_SECONDS: '31536000' }] as Record<string, string>[]) {
      const r = await sh`docker run --rm ${envFlags(env)} ${PROXY} /usr/local/sbin/mymdb-proxy check`
      assert.equal(r.exitCode, 0, `${JSON.stringify(env)}: ${r.stdout}${r.stderr}`)
      assert.match(r.stdout, /the configuration is valid/)
    }
    // "*" is any name: one server for every name, not the names of the files in / (the shell's glob)
    const any = await sh`docker run --rm -e DJANGO_ALLOWED_HOSTS=* --entrypoint sh ${PROXY} -c ${'/usr/local/sbin/mymdb-proxy check >/dev/null && cat /etc/nginx/conf.d/front.conf'}`
    assert.equal(any.exitCode, 0, any.stdout + any.stderr)
    assert.deepEqual(any.stdout.match(/server_name .*;/g), ['server_name _;'], any.stdout)
    const bad = await sh`docker run --rm -e ${'DJANGO_ALLOWED_HOSTS=example.com,a$b'} ${PROXY} /usr/local/sbin/mymdb-proxy check`
    assert.equal(bad.exitCode, 2, bad.stdout + bad.stderr)
    assert.match(bad.stderr, /DJANGO_ALLOWED_HOSTS entry 'a\$b' is not a host name/)
  })

  test("the front logs each answer of 500 and above with the web tasks it tried, or '-' when the name web has no address", async () => {
    const net = `mymdb-checks-front-${process.pid}`
    const [front, web] = [`${net}-front`, `${net}-web`]
    try {
      assert.equal((await sh`docker network create ${net}`).exitCode, 0)
      // a "web" that answers nothing on port 80 (connection refused), then none at all
      assert.equal((await sh`docker run -d --name ${web} --network ${net} --network-alias web --entrypoint sleep ${PROXY} 300`).exitCode, 0)
      assert.equal((await sh`docker run -d --name ${front} --network ${net} -e DJANGO_ALLOWED_HOSTS=* ${PROXY}`).exitCode, 0)
      const get = (path: string) => sh`docker exec ${front} curl -s -o /dev/null -w %{http_code} -H ${'Host: mymdb.example.com'} ${`http://127.0.0.1${path}`}`
      await waitFor('the front to answer', 30, async () => (await get('/first')).stdout === '502')
      await sh`docker rm -f ${web}`
      await waitFor('the front to find no web', 30, async () => (await get('/gone')).stdout === '502' && /\/gone \(web tried: -/.test((await sh`docker logs ${front}`).stderr))
      const logs = (await sh`docker logs ${front}`).stderr
      assert.match(logs, /front answered 502 to GET mymdb\.example\.com\/first \(web tried: \d+\.\d+\.\d+\.\d+:80; status: 502; seconds: [\d.]+\)/, logs)
      assert.match(logs, /front answered 502 to GET mymdb\.example\.com\/gone \(web tried: -; status: -; seconds: -\)/, logs)
      assert.doesNotMatch(logs, /Permission denied/, logs)
    } finally {
      await sh`docker rm -f ${front} ${web}`
      await sh`docker network rm ${net}`
    }
  })

  test('manage.py check --deploy passes under production settings, plain HTTP and HTTPS (as the deploy sets them with MYMDB_DOMAIN)', async () => {
    for (const ssl of ['false', 'true']) {
      const r = await sh`docker run --rm ${envFlags({ ...PRODUCTION_ENV, DJANGO_SECURE_SSL: ssl })} ${WEB} python3 manage.py check --deploy --fail-level WARNING`
      assert.equal(r.exitCode, 0, r.stdout + r.stderr)
      assert.match(r.stdout, /no issues/)
    }
  })

  test('production settings refuse to start without their variables, naming all of them', async () => {
    const r = await sh`docker run --rm ${WEB} python3 manage.py check`
    assert.notEqual(r.exitCode, 0)
    for (const name of ['DJANGO_SECRET_KEY', 'DJANGO_ALLOWED_HOSTS', 'DJANGO_DB_PASSWORD', 'DJANGO_DB_HOST']) {
      assert.match(r.stderr, new RegExp(name))
    }
  })

  test('carries only the scripts it runs, none of the host-side ones', async () => {
    const r = await sh`docker run --rm --entrypoint ls ${WEB} /mymdb/scripts`
    assert.equal(r.exitCode, 0, r.stderr)
    const scripts = r.stdout.split('\n').filter(Boolean).sort()
    assert.ok(!scripts.includes('install-docker.sh') && !scripts.includes('make-base-image.sh'), scripts.join(' '))
    assert.deepEqual(scripts, ['collect_static.sh', 'install_packages.sh', 'render_nginx_conf.sh', 's3_backup.py', 'wait_for_db.sh'])
  })

  test('no secret in the image: no secret-looking variable in its config or history', async () => {
    const inspect = JSON.parse((await sh`docker image inspect ${WEB}`).stdout)[0]
    const env: string[] = inspect.Config.Env
    assert.ok(env.every((e) => !/SECRET|PASSWORD/.test(e.split('=')[0] ?? '')), env.join('\n'))
    const history = (await sh`docker history --no-trunc --format '{{.CreatedBy}}' ${WEB}`).stdout
    assert.doesNotMatch(history, /DJANGO_SECRET_KEY=|PASSWORD=/)
  })
})

describe('db image', () => {
  test('takes POSTGRES_PASSWORD and DJANGO_DB_PASSWORD from read-only *_FILE secrets', async () => {
    // The entrypoint reads the files as root, then runs itself again as postgres: that second
    // pass must not see VAR and VAR_FILE both set. The files end in a newline, as `echo` writes.
    const name = `mymdb-dbfile-test-${process.pid}`
    const dir = mkdtempSync(join(tmpdir(), 'mymdb-secrets-'))
    writeFileSync(join(dir, 'postgres_password'), 'test-only-pg-file\n', { mode: 0o400 })
    writeFileSync(join(dir, 'db_password'), 'test-only-db-file\n', { mode: 0o400 })
    const psql = (user: string, password: string, db: string) =>
      sh`docker exec -e PGPASSWORD=${password} ${name} psql --host=127.0.0.1 --username=${user} --dbname=${db} --no-psqlrc --tuples-only --no-align --command=${'select 1'}`
    try {
      const env = envFlags({
        POSTGRES_PASSWORD_FILE: '/run/secrets/postgres_password', DJANGO_DB_PASSWORD_FILE: '/run/secrets/db_password',
        DJANGO_DB_NAME: 'filedb', DJANGO_DB_USER: 'fileuser',
      })
      const run = await sh`docker run --detach --name ${name} --volume ${`${dir}:/run/secrets:ro`} ${env} ${DB}`
      assert.equal(run.exitCode, 0, run.stderr)
      let status = ''
      // TCP, as the compose health check: during initialisation the server listens on its socket only.
      await waitFor('pg_isready in the db container', 90, async () => {
        status = (await sh`docker inspect --format ${'{{.State.Status}}'} ${name}`).stdout.trim()
        if (status !== 'running') return true
        return (await sh`docker exec ${name} pg_isready --host=127.0.0.1 --username=postgres --dbname=postgres`).exitCode === 0
      })
      assert.equal(status, 'running', `the db container stopped:\n${(await sh`docker logs ${name}`).stderr}`)

      const app = await psql('fileuser', 'test-only-db-file', 'filedb')
      assert.equal(app.exitCode, 0, app.stderr)
      assert.equal(app.stdout.trim(), '1')
      const superuser = await psql('postgres', 'test-only-pg-file', 'postgres')
      assert.equal(superuser.exitCode, 0, superuser.stderr)
      const wrong = await psql('fileuser', 'not-the-password', 'filedb')
      assert.notEqual(wrong.exitCode, 0, 'a wrong password is refused (the check above means something)')
      assert.match(wrong.stderr, /password authentication failed/)
    } finally {
      await sh`docker rm --force --volumes ${name}`
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('compose file', () => {
  const localEnv = { ...process.env, DJANGO_SECRET_KEY: 'x'.repeat(50), DJANGO_DB_PASSWORD: 'p', POSTGRES_PASSWORD: 'p' }

  test('docker compose config accepts it; only the front is published (on 127.0.0.1 by default), never web, the database or the cache', async () => {
    const r = await $({ cwd: REPO, env: localEnv, nothrow: true, quiet: true })`docker compose config --format json`
    assert.equal(r.exitCode, 0, r.stderr)
    const config = JSON.parse(r.stdout)
    assert.equal(config.services.db.ports, undefined)
    assert.equal(config.services.web.ports, undefined)
    assert.equal(config.services.cache.ports, undefined)
    assert.deepEqual(Object.keys(config.services.cache.networks), ['back'], 'the cache is on the internal network only')
    assert.equal(config.networks.back.internal, true)
    assert.ok(config.volumes['db-data'], 'the database has a named volume')
    assert.ok(config.volumes['proxy-data'], 'certificates have a named volume')
    assert.deepEqual(config.services.proxy.ports.map((p: { host_ip: string; target: number }) => [p.host_ip, p.target]), [['127.0.0.1', 80], ['127.0.0.1', 443]])
    assert.ok(config.services.proxy.healthcheck && config.services.web.healthcheck && config.services.db.healthcheck && config.services.cache.healthcheck)
  })

  test('docker compose config names a missing secret', async () => {
    const env = { ...localEnv, DJANGO_SECRET_KEY: '' }
    const r = await $({ cwd: REPO, env, nothrow: true, quiet: true })`docker compose config -q`
    assert.notEqual(r.exitCode, 0)
    assert.match(r.stderr, /DJANGO_SECRET_KEY/)
  })
})

describe('Django test suite', () => {
  const env = { ...process.env, COMPOSE_PROJECT_NAME: 'mymdb-djtest', DJANGO_SECRET_KEY: PRODUCTION_ENV.DJANGO_SECRET_KEY,
    DJANGO_DB_PASSWORD: 'test-only-db', POSTGRES_PASSWORD: 'test-only-pg', WEB_PORT: '18081' }
  const dc = $({ cwd: REPO, env, nothrow: true, quiet: true })
  after(async () => { await dc`docker compose down --volumes`; })

  test('passes inside the web image against PostgreSQL', async () => {
    const up = await dc`docker compose up --detach --wait db cache`
    assert.equal(up.exitCode, 0, up.stderr)
    const r = await dc`docker compose run --rm --no-deps -T web python3 manage.py test --noinput`
    const ran = /Ran (\d+) tests?/.exec(r.stderr)
    console.log(`# Django suite: ${ran?.[0] ?? 'no count'}`)
    assert.equal(r.exitCode, 0, r.stderr.slice(-4000))
    assert.ok(Number(ran?.[1]) >= 20, 'the suite ran')
  })
})
