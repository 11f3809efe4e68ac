import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { main } from '../../tasks/build.ts'
import { BOOTSTRAP_BASE, DEBIAN_BASE, describeBase, imageTags, planBase, planImages, PULL_TIMEOUT_MS } from '../../tasks/lib/images.ts'
import { baseIdentity, contextFiles, inputsDigest, type InputFile } from '../../tasks/lib/imageinputs.ts'
import { dockerOk, fakeRunner, noDocker, testDeps, type Answer } from './fakes.ts'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const none = { debianLocal: false, bootstrapLocal: false }
const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '')

describe('planBase (base image resolution)', () => {
  it('auto: the local debian:trixie-slim first', () => {
    assert.deepEqual(planBase('auto', { debianLocal: true, bootstrapLocal: true }), {
      kind: 'use',
      image: DEBIAN_BASE,
      why: `auto: ${DEBIAN_BASE} exists locally`,
    })
  })
  it('auto: else pull within 20 s, falling back to the local mymdb-base:trixie', () => {
    const s = planBase('auto', { debianLocal: false, bootstrapLocal: true })
    assert.ok(s.kind === 'pull')
    assert.equal(s.timeoutMs, 20_000)
    assert.deepEqual(s.orElse, { kind: 'use', image: BOOTSTRAP_BASE, why: 'auto: the pull failed; mymdb-base:trixie exists locally' })
  })
  it('auto: else pull within 20 s, falling back to bootstrapping', () => {
    const s = planBase('auto', none)
    assert.equal(s.kind, 'pull')
    assert.ok(s.kind === 'pull')
    assert.equal(s.image, DEBIAN_BASE)
    assert.equal(s.timeoutMs, PULL_TIMEOUT_MS)
    assert.equal(PULL_TIMEOUT_MS, 20_000)
    assert.deepEqual(s.orElse, { kind: 'bootstrap', image: BOOTSTRAP_BASE, rebuild: false, why: 'auto: the pull failed' })
    assert.match(describeBase(s), /^docker pull debian:trixie-slim within 20 s .*, else bootstrap mymdb-base:trixie/)
  })
  it('pull: must pull, no time limit, no fallback (even when present locally)', () => {
    const s = planBase('pull', { debianLocal: true, bootstrapLocal: true })
    assert.deepEqual(s, { kind: 'pull', image: DEBIAN_BASE, why: 'MYMDB_BASE_IMAGE=pull' })
  })
  it('bootstrap: the local mymdb-base:trixie, made when missing, remade with --rebuild-base', () => {
    assert.deepEqual(planBase('bootstrap', { debianLocal: true, bootstrapLocal: true }).image, BOOTSTRAP_BASE)
    assert.equal(planBase('bootstrap', { debianLocal: true, bootstrapLocal: true }).kind, 'use')
    assert.deepEqual(planBase('bootstrap', none), { kind: 'bootstrap', image: BOOTSTRAP_BASE, rebuild: false, why: 'MYMDB_BASE_IMAGE=bootstrap' })
    const rebuild = planBase('bootstrap', { debianLocal: false, bootstrapLocal: true }, true)
    assert.equal(rebuild.kind, 'bootstrap')
    assert.ok(rebuild.kind === 'bootstrap' && rebuild.rebuild)
    assert.equal(planBase('auto', { debianLocal: true, bootstrapLocal: true }, true).kind, 'bootstrap')
  })
  it('any other value: that image as is', () => {
    assert.deepEqual(planBase('registry.example.com/debian:trixie-slim', none), {
      kind: 'use',
      image: 'registry.example.com/debian:trixie-slim',
      why: 'MYMDB_BASE_IMAGE=registry.example.com/debian:trixie-slim',
    })
  })
})

describe('imageTags and planImages', () => {
  it('tags: commit (+ -dirty), latest and MYMDB_TAG, without duplicates', () => {
    assert.deepEqual(imageTags({ commit: 'abc1234', dirty: false }), ['abc1234', 'latest'])
    assert.deepEqual(imageTags({ commit: 'abc1234', dirty: true }), ['abc1234-dirty', 'latest'])
    assert.deepEqual(imageTags({ commit: 'abc1234', dirty: false }, 'v2'), ['abc1234', 'latest', 'v2'])
    assert.deepEqual(imageTags(null, 'latest'), ['latest'])
  })
  const IMAGES = { web: 'mymdb-web', db: 'mymdb-db', proxy: 'mymdb-proxy', cache: 'mymdb-cache' }
  const SHORT = { web: 'w', db: 'd', proxy: 'p', cache: 'c' }
  it('the docker build commands of the four images; only web carries the commit', () => {
    const plan = planImages({ images: IMAGES, tags: ['abc1234', 'latest'], baseImage: 'debian:trixie-slim', revision: 'abc1234' })
    assert.deepEqual(plan.map((b) => b.name), ['web', 'db', 'proxy', 'cache'])
    assert.deepEqual(plan[0]?.refs, ['mymdb-web:abc1234', 'mymdb-web:latest'])
    assert.deepEqual(plan[0]?.cmd, [
      'docker', 'build', '--progress=plain', '--file', 'Dockerfile', '--build-arg', 'BASE_IMAGE=debian:trixie-slim',
      '--label', 'org.opencontainers.image.revision=abc1234', '--tag', 'mymdb-web:abc1234', '--tag', 'mymdb-web:latest', '.',
    ])
    assert.deepEqual(plan[1]?.cmd.slice(3, 7), ['--file', 'docker/psql/Dockerfile', '--build-arg', 'BASE_IMAGE=debian:trixie-slim'])
    assert.equal(plan[1]?.cmd.at(-1), 'docker/psql')
    assert.equal(plan[2]?.cmd.at(-1), 'docker/proxy')
    assert.deepEqual(plan[2]?.refs, ['mymdb-proxy:abc1234', 'mymdb-proxy:latest'])
    assert.equal(plan[3]?.cmd.at(-1), 'docker/cache')
    assert.deepEqual(plan[3]?.cmd.slice(3, 5), ['--file', 'docker/cache/Dockerfile'])
    // a label with the commit would make every build of an unchanged db, proxy or cache a new image
    assert.ok(plan.slice(1).every((b) => !b.cmd.includes('--label')))
  })
  it('--no-cache rebuilds every layer', () => {
    const plan = planImages({ images: SHORT, tags: ['latest'], baseImage: 'b', noCache: true })
    assert.ok(plan.every((b) => b.cmd.includes('--no-cache')))
    assert.ok(!planImages({ images: SHORT, tags: ['latest'], baseImage: 'b' })[0]?.cmd.includes('--no-cache'))
  })
  it('--only picks one image', () => {
    const plan = planImages({ only: 'db', images: SHORT, tags: ['latest'], baseImage: 'b' })
    assert.deepEqual(plan.map((b) => b.refs), [['d:latest']])
  })
})

describe('the digest of an image\'s build inputs (label org.mymdb.inputs)', () => {
  const files: InputFile[] = [
    { path: 'Dockerfile', executable: false, content: Buffer.from('FROM x\n') },
    { path: 'start.sh', executable: true, content: Buffer.from('#!/bin/sh\n') },
  ]
  const d = inputsDigest('debian:trixie-slim sha256:1', 'docker/psql/Dockerfile', files)
  it('the same inputs in any order: the same digest', () => {
    assert.match(d, /^sha256:[0-9a-f]{64}$/)
    assert.equal(inputsDigest('debian:trixie-slim sha256:1', 'docker/psql/Dockerfile', [...files].reverse()), d)
  })
  it('a changed file, executable bit, file name, base image or Dockerfile path: another digest', () => {
    const other = [
      inputsDigest('debian:trixie-slim sha256:1', 'docker/psql/Dockerfile', [files[0]!, { ...files[1]!, content: Buffer.from('#!/bin/sh \n') }]),
      inputsDigest('debian:trixie-slim sha256:1', 'docker/psql/Dockerfile', [files[0]!, { ...files[1]!, executable: false }]),
      inputsDigest('debian:trixie-slim sha256:1', 'docker/psql/Dockerfile', [files[0]!, { ...files[1]!, path: 'run.sh' }]),
      inputsDigest('debian:trixie-slim sha256:2', 'docker/psql/Dockerfile', files),
      inputsDigest('debian:trixie-slim sha256:1', 'docker/proxy/Dockerfile', files),
    ]
    assert.equal(new Set([d, ...other]).size, 6)
  })
  it('reads every file of a context, nested too, with its executable bit; a .dockerignore is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mymdb-inputs-'))
    try {
      mkdirSync(join(dir, 'conf'))
      writeFileSync(join(dir, 'Dockerfile'), 'FROM x\n')
      writeFileSync(join(dir, 'conf', 'a.sh'), 'echo\n')
      chmodSync(join(dir, 'conf', 'a.sh'), 0o755)
      assert.deepEqual(contextFiles(dir).map((f) => [f.path, f.executable, f.content.toString()]).sort(), [['Dockerfile', false, 'FROM x\n'], ['conf/a.sh', true, 'echo\n']])
      writeFileSync(join(dir, '.dockerignore'), 'conf\n')
      assert.throws(() => contextFiles(dir), /does not know \.dockerignore/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
  it('the base by its registry digest when pulled, else its id; the name alone when unknown', async () => {
    const answers: Record<string, Answer> = {
      pulled: { stdout: `debian@sha256:${'a'.repeat(64)}\nsha256:${'b'.repeat(64)}\n` },
      built: { stdout: `sha256:${'c'.repeat(64)}\n` },
      gone: { exitCode: 1, stderr: 'No such image' },
    }
    const run = fakeRunner((cmd) => answers[cmd.split(' ').at(-1)!])
    assert.equal(await baseIdentity(run, 'pulled'), `pulled debian@sha256:${'a'.repeat(64)}`)
    assert.equal(await baseIdentity(run, 'built'), `built sha256:${'c'.repeat(64)}`)
    assert.equal(await baseIdentity(run, 'gone'), 'gone')
  })
})

/** A Docker where debian:trixie-slim is local and git says abc1234, clean. */
function docker(extra: (cmd: string) => Answer = () => undefined) {
  return fakeRunner((cmd) => {
    const e = extra(cmd)
    if (e) return e
    if (cmd === 'git rev-parse --short HEAD') return { stdout: 'abc1234\n' }
    if (cmd.startsWith('git status')) return { stdout: '' }
    if (cmd.startsWith('docker image inspect')) return cmd.endsWith(DEBIAN_BASE) ? { stdout: 'sha256:1' } : { exitCode: 1, stderr: 'No such image' }
    return dockerOk(cmd)
  })
}

describe('build main()', () => {
  it('--help prints usage and runs nothing', async () => {
    const run = noDocker()
    const deps = testDeps(run)
    assert.equal(await main(['--help'], {}, deps), 0)
    assert.match(deps.log.text(), /Usage: npm run build/)
    assert.match(deps.log.text(), /-dirty/)
    assert.equal(run.calls.length, 0)
  })
  it('bad env or options: exit 2 before any command', async () => {
    for (const [argv, env, msg] of [
      [[], { MYMDB_TAG: 'bad tag' }, /MYMDB_TAG="bad tag"/],
      [[], { MYMDB_WEB_IMAGE: 'Web' }, /Invalid:\n\s+MYMDB_WEB_IMAGE="Web"/],
      [['--only', 'nginx'], {}, /--only takes web, db, proxy, cache, not "nginx"/],
      [['--base', 'no good'], {}, /--base "no good"/],
      [['--frobnicate'], {}, /Unknown option '--frobnicate'/],
    ] as const) {
      const run = noDocker()
      const deps = testDeps(run)
      assert.equal(await main([...argv], { ...env }, deps), 2, deps.log.text())
      assert.match(deps.log.err.join(''), msg)
      assert.equal(run.calls.length, 0)
    }
  })
  it('--dry-run prints the plan and builds nothing', async () => {
    const run = docker()
    const deps = testDeps(run)
    assert.equal(await main(['--dry-run'], {}, deps), 0, deps.log.text())
    const out = deps.log.text()
    assert.match(out, /base image: debian:trixie-slim \(auto: debian:trixie-slim exists locally\)/)
    assert.match(out, /web: mymdb-web:abc1234, mymdb-web:latest/)
    assert.match(out, /\$ DOCKER_BUILDKIT=1 docker build .*--file docker\/psql\/Dockerfile .* docker\/psql\n/)
    assert.ok(!run.commands().some((c) => /docker (build|pull)|make-base-image/.test(c)), run.commands().join('\n'))
  })
  it('--dry-run works without a Docker engine (local images counted as absent)', async () => {
    const run = fakeRunner((cmd) => (cmd.startsWith('docker') ? { exitCode: 1, stderr: 'Cannot connect to the Docker daemon' } : undefined))
    const deps = testDeps(run)
    assert.equal(await main(['--dry-run', '--only', 'web'], {}, deps), 0, deps.log.text())
    assert.match(deps.log.text(), /Docker engine not reachable/)
    assert.match(deps.log.text(), /with mymdb-base:trixie if the pull fails/)
    assert.match(deps.log.text(), /--build-arg BASE_IMAGE=debian:trixie-slim --tag mymdb-web:latest \.\n/)
    assert.match(deps.log.text(), /not a git checkout/)
  })
  it('builds the four images with BuildKit, the base image and the tags; db, proxy and cache labelled with the digest of their inputs', async () => {
    const run = docker()
    const deps = testDeps(run, { root: ROOT })
    assert.equal(await main([], { MYMDB_TAG: 'v1' }, deps), 0, deps.log.text())
    const builds = run.calls.filter((c) => c.cmd[1] === 'build')
    assert.equal(builds.length, 4)
    for (const b of builds) {
      assert.equal(b.opts?.cwd, ROOT)
      assert.equal(b.opts?.env?.DOCKER_BUILDKIT, '1')
      assert.ok(b.cmd.includes('BASE_IMAGE=debian:trixie-slim'))
    }
    assert.ok(builds[0]?.cmd.includes('mymdb-web:v1'))
    const out = deps.log.text()
    assert.match(out, /\[build\] web image mymdb-web:abc1234 \(from debian:trixie-slim\) done \(\d/)
    assert.match(out, /mymdb-db:abc1234\n\s+mymdb-db:latest\n\s+mymdb-db:v1\n/)
    // the base as the engine names it (the fake's inspect answers the id sha256:1)
    const label = (b: (typeof builds)[number] | undefined) => b?.cmd[b.cmd.indexOf('--label') + 1]
    assert.equal(label(builds[1]), `org.mymdb.inputs=${inputsDigest('debian:trixie-slim sha256:1', 'docker/psql/Dockerfile', contextFiles(join(ROOT, 'docker/psql')))}`)
    assert.equal(label(builds[3]), `org.mymdb.inputs=${inputsDigest('debian:trixie-slim sha256:1', 'docker/cache/Dockerfile', contextFiles(join(ROOT, 'docker/cache')))}`)
    assert.notEqual(label(builds[1]), label(builds[2]))
    assert.ok(!builds[0]?.cmd.some((a) => a.startsWith('org.mymdb.inputs=')), 'web changes with every commit: no inputs label')
  })
  it('auto without a local base: pulls with a time limit, falls back to bootstrapping', async () => {
    const run = docker((cmd) => {
      if (cmd.startsWith('docker image inspect')) return { exitCode: 1 }
      if (cmd.startsWith('docker pull')) return { exitCode: null, signal: 'SIGTERM', ok: false }
      return undefined
    })
    const deps = testDeps(run, { root: ROOT })
    const code = await main(['--only', 'db'], {}, deps)
    const pull = run.calls.find((c) => c.cmd[1] === 'pull')
    assert.equal(pull?.opts?.timeoutMs, 20_000)
    assert.match(deps.log.text(), /could not pull debian:trixie-slim \(no answer within 20 s\); falling back/)
    if (process.getuid?.() === 0) {
      assert.equal(code, 0, deps.log.text())
      assert.ok(run.commands().includes('bash scripts/make-base-image.sh mymdb-base:trixie'))
      assert.ok(run.calls.find((c) => c.cmd[1] === 'build')?.cmd.includes('BASE_IMAGE=mymdb-base:trixie'))
    } else {
      assert.equal(code, 1)
      assert.match(deps.log.err.join(''), /needs root: run sudo bash scripts\/make-base-image\.sh mymdb-base:trixie/)
    }
  })
  it('a failed build reports $ command, exit code and stderr', async () => {
    const run = docker((cmd) => (cmd.startsWith('docker build') ? { exitCode: 17, stderr: 'ERROR: failed to solve\n' } : undefined))
    const deps = testDeps(run)
    assert.equal(await main(['--only', 'web'], {}, deps), 1)
    const err = deps.log.err.join('')
    assert.match(err, /Could not build the web image\.\n\$ docker build --progress=plain .*\nexit code 17\nstderr:\n  ERROR: failed to solve/)
  })
})
