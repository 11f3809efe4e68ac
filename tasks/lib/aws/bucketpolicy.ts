// The upload bucket's policy: the template AWS/mymdb-bucket-policy.json filled in for a bucket
// (anyone may read uploads/*, nothing else), and comparing policies the way S3 means them (single
// values and lists, order, Principal "*" written two ways).
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { REPO_ROOT } from '../paths.ts'

export const UPLOAD_PREFIX = 'uploads/'
export const POLICY_TEMPLATE_FILE = resolve(REPO_ROOT, 'AWS/mymdb-bucket-policy.json')

export type PolicyDocument = { Version: string; Statement: Record<string, unknown>[] } & Record<string, unknown>

let templateText: string | undefined

function substitute(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') return value.replace(/\$\{([A-Z_]+)\}/g, (m, name: string) => vars[name] ?? m)
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars))
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]))
  return value
}

/**
 * The bucket policy: the template AWS/mymdb-bucket-policy.json parsed, then `${BUCKET}` and
 * `${PREFIX}` replaced inside its strings (never in the JSON text, so a value cannot break the
 * JSON). Returns an object; send it with JSON.stringify. Deterministic (the template is read once).
 */
export function bucketPolicy(bucket: string, prefix = UPLOAD_PREFIX, template?: string): PolicyDocument {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`not an S3 bucket name: ${JSON.stringify(bucket)}`)
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/$/.test(prefix) || prefix.split('/').some((seg) => seg === '.' || seg === '..'))
    throw new Error(`the public prefix must be a path ending in / without wildcards, e.g. uploads/ (got ${JSON.stringify(prefix)})`)
  const text = template ?? (templateText ??= readFileSync(POLICY_TEMPLATE_FILE, 'utf8'))
  const policy = substitute(JSON.parse(text), { BUCKET: bucket, PREFIX: prefix }) as PolicyDocument
  const left = JSON.stringify(policy).match(/\$\{[A-Za-z_]+\}/)
  if (left) throw new Error(`the bucket policy template has an unknown placeholder ${left[0]}`)
  if (policy.Version !== '2012-10-17' || !Array.isArray(policy.Statement) || policy.Statement.length === 0)
    throw new Error('the bucket policy template needs Version 2012-10-17 and at least one Statement')
  return policy
}

const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v])
const sortedJson = (v: unknown[]): string[] => v.map((x) => JSON.stringify(x)).sort()

function normalizePrincipal(p: unknown): unknown {
  if (p === '*') return { AWS: ['"*"'] }
  if (p && typeof p === 'object')
    return Object.fromEntries(Object.entries(p).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, sortedJson(asList(v))]))
  return p
}

/** A policy in a canonical form: single values as lists, lists sorted, Principal "*" as {AWS: "*"}. */
export function normalizePolicy(policy: unknown): unknown {
  const doc = (typeof policy === 'string' ? JSON.parse(policy) : policy) as Record<string, unknown>
  const statements = asList(doc?.Statement).map((s) => {
    const st = s as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(st).sort()) {
      const v = st[key]
      if (key === 'Principal' || key === 'NotPrincipal') out[key] = normalizePrincipal(v)
      else if (['Action', 'NotAction', 'Resource', 'NotResource'].includes(key)) out[key] = sortedJson(asList(v))
      else out[key] = v
    }
    return JSON.stringify(out)
  })
  return { Version: doc?.Version, Statement: statements.sort() }
}

/** Whether two policies (objects or JSON text) say the same. */
export function samePolicy(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(normalizePolicy(a)) === JSON.stringify(normalizePolicy(b))
  } catch {
    return false
  }
}
