import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import { deploySpec } from '../../tasks/lib/remote/settings.ts'
import * as vars from '../../tasks/lib/vars.ts'

it('.env.example documents every variable a task reads', () => {
  const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
  const documented = new Set([...example.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]))
  // The spec groups: objects whose every member is a validator (rules and functions are not settings).
  const isSpec = (v: unknown): v is object =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'object' && x !== null && 'parse' in x)
  const groups = (Object.values(vars) as unknown[]).filter(isSpec)
  const names = new Set([...groups.flatMap((g) => Object.keys(g)), ...Object.keys(deploySpec)])
  const undocumented = [...names].filter((n) => !documented.has(n))
  assert.deepEqual(undocumented, [], `add to .env.example: ${undocumented.join(', ')}`)
})
