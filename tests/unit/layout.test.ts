// The shape of the code a newcomer reads: no source file over 400 lines (a longer one holds two
// things: split it), and every task a short step file over the shared code in tasks/lib/.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'
import { lanes } from '../run-system.ts'

const ROOT = new URL('../..', import.meta.url).pathname

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path)
    return name.endsWith('.ts') ? [path] : []
  })
}

const lines = (path: string) => readFileSync(join(ROOT, path), 'utf8').split('\n').length

describe('layout', () => {
  it('no source file in tasks/, bench/ or tests/rig/ is over 400 lines', () => {
    const long = ['tasks', 'bench', 'tests/rig'].flatMap(sources).filter((p) => lines(p) > 400)
    assert.deepEqual(long.map((p) => `${relative('.', p)}: ${lines(p)} lines`), [])
  })

  it('the system tests run in three lanes: the SSH-host files with load loops; site, then cluster; the files without a load loop, new ones last; every file once', () => {
    const files = readdirSync(join(ROOT, 'tests/system')).filter((f) => f.endsWith('.test.ts'))
    const [first, second, third] = lanes(files)
    assert.deepEqual(first, ['deploy.test.ts', 'tls.test.ts'])
    assert.deepEqual(second, ['site.test.ts', 'cluster.test.ts'])
    assert.deepEqual(third.slice(0, 5), ['second-checkout.test.ts', 'checks.test.ts', 'backup.test.ts', 'remote.test.ts', 'rds.test.ts'])
    assert.deepEqual([...first, ...second, ...third].sort(), [...files].sort())
    // a new file goes to the end of the third lane
    assert.deepEqual(lanes(['remote.test.ts', 'b.test.ts', 'a.test.ts', 'tls.test.ts', 'site.test.ts']), [['tls.test.ts'], ['site.test.ts'], ['remote.test.ts', 'a.test.ts', 'b.test.ts']])
  })
})
