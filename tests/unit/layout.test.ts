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

  it('the system tests run in two lanes: deploy, tls and rds one after another, the others beside them and remote last; every file once', () => {
    const files = readdirSync(join(ROOT, 'tests/system')).filter((f) => f.endsWith('.test.ts'))
    const [heavy, light] = lanes(files)
    assert.deepEqual(heavy, ['deploy.test.ts', 'tls.test.ts', 'rds.test.ts'])
    assert.equal(light.at(-1), 'remote.test.ts')
    assert.deepEqual([...heavy, ...light].sort(), [...files].sort())
    assert.deepEqual(lanes(['remote.test.ts', 'b.test.ts', 'a.test.ts', 'tls.test.ts', 'site.test.ts']), [['tls.test.ts'], ['site.test.ts', 'a.test.ts', 'b.test.ts', 'remote.test.ts']])
  })
})
