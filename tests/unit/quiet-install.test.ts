// Package installs say nothing unless they fail, and then show apt's output: the quietly wrapper
// of the shell scripts (run for real, on a succeeding and a failing command), and every apt-get
// and dpkg call of the scripts and the Dockerfiles going through it (or the same pattern inline).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'

const ROOT = new URL('../..', import.meta.url).pathname
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8')

const SCRIPTS = ['scripts/install-docker.sh', 'scripts/install_packages.sh']
const DOCKERFILES = ['Dockerfile', 'docker/psql/Dockerfile', 'docker/proxy/Dockerfile', 'docker/cache/Dockerfile']

/** A shell function of a script, as written there (`name() {` to the `}` that closes it). */
function shellFunction(script: string, name: string): string {
  const m = new RegExp(`^${name}\\(\\) \\{[^\\n]*\\}$|^${name}\\(\\) \\{\\n[\\s\\S]*?\\n\\}$`, 'm').exec(read(script))
  assert.ok(m, `${script} defines ${name}()`)
  return m[0]
}

/** Runs `command` under the script's own quietly() (and its log()), as the script would. */
function quietly(script: string, command: string) {
  const program = ['set -o errexit -o nounset -o pipefail', shellFunction(script, 'log'), shellFunction(script, 'quietly'), `quietly sh -c '${command}'`, 'echo after'].join('\n')
  return spawnSync('bash', ['-c', program], { encoding: 'utf8' })
}

// What apt and dpkg write for one package, with the progress that flooded the first up:local.
const NOISE = 'echo "Get:1 http://deb.debian.org/debian trixie/main amd64 memcached"; for p in 5 10 15 20; do printf "(Reading database ... %s%%\\r" $p; done; echo "Setting up memcached"'

describe('quiet package installs', () => {
  for (const script of SCRIPTS) {
    it(`${script}: quietly says nothing when the command works`, () => {
      const r = quietly(script, NOISE)
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout, 'after\n')
      assert.equal(r.stderr, '')
    })
    it(`${script}: quietly shows the whole output and the exit code when the command fails, and the script stops`, () => {
      const r = quietly(script, `${NOISE}; echo "E: Unable to locate package no-such-package" >&2; exit 100`)
      assert.equal(r.status, 100)
      assert.equal(r.stdout, '', 'errexit: the script stops at the failed install')
      assert.match(r.stderr, /failed \(exit code 100\): sh -c/)
      assert.match(r.stderr, /Get:1 http:\/\/deb\.debian\.org/)
      assert.match(r.stderr, /E: Unable to locate package no-such-package/)
    })
    it(`${script}: every apt-get and dpkg call goes through quietly`, () => {
      const calls = read(script)
        .split('\n')
        .filter((l) => !/^\s*#/.test(l) && /\b(apt-get (update|install|upgrade)|dpkg (-i|--install|--purge))\b/.test(l))
      assert.ok(calls.length > 0)
      for (const l of calls) assert.match(l, /\bquietly (apt-get|dpkg) /, l)
    })
  }

  for (const file of DOCKERFILES) {
    it(`${file}: apt-get and dpkg output set aside, shown only when they fail`, () => {
      const text = read(file).replace(/\\\n/g, ' ') // RUN instructions on one line each
      const calls = text.split('\n').filter((l) => /^RUN\b/.test(l) && /\b(apt-get|dpkg --purge)\b/.test(l))
      for (const run of calls) {
        // every command of the RUN that installs or removes packages is redirected into the log ...
        const commands = run.split(/;\s*(?![^{]*\})/).filter((c) => /\b(apt-get (update|install)|dpkg --purge)\b/.test(c))
        for (const c of commands) assert.match(c, />"\$log" 2>&1\s+\|\|\s+\{ cat "\$log"; exit 1; \}/, `${file}: ${c.trim()}`)
      }
      // ... or the image runs a script that does so (the web image: install_packages.sh)
      if (calls.length === 0) assert.match(text, /RUN bash \/mymdb\/scripts\/install_packages\.sh/)
    })
  }
})
