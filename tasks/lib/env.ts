// The one environment-variable checker of this project (in the style of envalid).
//
// A spec is a record of variables, each made by a validator helper:
//
//   const spec = {
//     WEB_PORT: port({ desc: 'Port the site is published on', example: '8080', default: 8080 }),
//     DJANGO_SECRET_KEY: str({ desc: 'Secret key', example: '…', minLength: 50, secret: true }),
//     DJANGO_UPLOAD_S3_BUCKET: bucketName({ desc: 'Upload bucket', example: 'mymdb-uploads', optional: true }),
//   }
//   const values = checkEnv(spec, loadEnv())   // typed: { WEB_PORT: number, … } or throws EnvError
//
// A variable without `default` and without `optional: true` is required. An empty (or blank)
// value counts as missing. checkEnv reports every problem at once, in one EnvError.
import { existsSync, readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import dotenv from 'dotenv'
import { UserError } from './errors.ts'

export type RawEnv = Record<string, string | undefined>

export interface VarOptions<T> {
  /** What the variable is for (shown in error messages). */
  desc: string
  /** An example value (shown in error messages as the fix: `NAME=example`). */
  example?: string
  /** Used when the variable is unset or empty; makes the variable not required. */
  default?: T
  /** Unset is fine: the value is then `undefined`. */
  optional?: boolean
  /** Never echo the value in messages. */
  secret?: boolean
}

export interface Validator<T> {
  readonly desc: string
  readonly example?: string
  readonly default?: T
  readonly optional: boolean
  readonly secret: boolean
  /** Human description of what is accepted, e.g. "a TCP port number (1-65535)". */
  readonly expected: string
  /** Parses a non-empty raw value; throws an Error whose message says what is wrong. */
  parse(raw: string): T
  /** Turns a value back into the string form (for a child process's environment). */
  format(value: T): string
}

export type Spec = Record<string, Validator<any>>

/** The typed result of checkEnv for a spec. */
export type CleanEnv<S extends Spec> = { [K in keyof S]: S[K] extends Validator<infer T> ? T : never }

type Typed<T, O> = O extends { optional: true } ? Validator<T | undefined> : Validator<T>

export interface Problem {
  name: string
  desc: string
  example?: string
  /** Only for invalid values: what is wrong. */
  reason?: string
  /** Only for invalid values: the value as shown (secret values are not shown). */
  shown?: string
  /** Set when the value came from a command-line option (e.g. --base) rather than the environment. */
  option?: string
}

/** All problems of one checkEnv call. Exit code 2 (a configuration problem the user fixes). */
export class EnvError extends UserError {
  readonly missing: Problem[]
  readonly invalid: Problem[]
  readonly fileProblems: FileProblem[]
  constructor(missing: Problem[], invalid: Problem[], fileHint = '.env', fileProblems: FileProblem[] = []) {
    super(formatProblems(missing, invalid, fileHint, fileProblems), 2)
    this.name = 'EnvError'
    this.missing = missing
    this.invalid = invalid
    this.fileProblems = fileProblems
  }
}

function formatProblems(missing: Problem[], invalid: Problem[], fileHint: string, fileProblems: FileProblem[]): string {
  const vars = missing.length + invalid.length
  const count = vars + fileProblems.length
  const lines = [
    fileProblems.length === 0 ? `${count} environment variable${count === 1 ? '' : 's'} to fix:` : `${count} problem${count === 1 ? '' : 's'} with the settings to fix:`,
  ]
  const fix = (p: Problem) =>
    p.option
      ? `      fix: pass ${p.example !== undefined ? `e.g. ${p.option} ${p.example}` : `another ${p.option}`} (see --help)`
      : `      fix: set ${p.example !== undefined ? `e.g. ${p.name}=${p.example}` : p.name} in ${fileHint} (see .env.example)`
  if (fileProblems.length > 0) {
    lines.push('  Not settings (a line must be NAME=value, a # comment, or blank):')
    for (const f of fileProblems) lines.push(`    ${f.file} line ${f.line}: ${JSON.stringify(f.text)}`)
  }
  if (missing.length > 0) {
    lines.push('  Missing:')
    for (const p of missing) lines.push(`    ${p.name} - ${p.desc}`, fix(p))
  }
  if (invalid.length > 0) {
    lines.push('  Invalid:')
    for (const p of invalid) lines.push(`    ${p.option ? `${p.option} ${p.shown}` : `${p.name}=${p.shown}`} - ${p.reason}; ${p.desc}`, fix(p))
  }
  return lines.join('\n')
}

function isBlank(raw: string | undefined): raw is undefined {
  return raw === undefined || raw.trim() === ''
}

function showValue(raw: string, secret: boolean): string {
  if (secret) return `(hidden, ${raw.length} characters)`
  const shown = raw.length > 60 ? `${raw.slice(0, 57)}...` : raw
  return JSON.stringify(shown)
}

/**
 * A rule over several checked values (a pair that goes together, a file that must be a private
 * key, ...). It runs only when every variable it names passed its own check. It returns what is
 * wrong, or null; the problem is reported against `names[0]`, the variable to fix.
 */
export interface Rule<V = Record<string, any>> {
  names: readonly string[]
  check(values: V, raw: RawEnv): string | null
}

export interface CheckOptions<S extends Spec> {
  /** Where the fix goes (default .env). */
  fileHint?: string
  /** Rules across variables, checked after each variable's own check. */
  rules?: readonly Rule<CleanEnv<S>>[]
  /** Variables whose value came from a command-line option: NAME -> option, e.g. MYMDB_BASE_IMAGE -> --base. */
  options?: Partial<Record<keyof S & string, string>>
}

/**
 * Checks `env` against `spec` and `rules`. Pure: reads only its arguments. Returns the typed
 * values, or throws one EnvError listing every missing and invalid variable and every malformed
 * line of the env file (see loadEnv).
 */
export function checkEnv<S extends Spec>(spec: S, env: RawEnv, opts: CheckOptions<S> = {}): CleanEnv<S> {
  const out: Record<string, unknown> = {}
  const missing: Problem[] = []
  const invalid: Problem[] = []
  const options = (opts.options ?? {}) as Record<string, string | undefined>
  for (const [name, v] of Object.entries(spec)) {
    const raw = env[name]
    if (isBlank(raw)) {
      if (v.default !== undefined) out[name] = v.default
      else if (v.optional) out[name] = undefined
      else missing.push({ name, desc: v.desc, example: v.example })
      continue
    }
    try {
      out[name] = v.parse(raw)
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      invalid.push({ name, desc: v.desc, example: v.example, reason, shown: showValue(raw, v.secret), option: options[name] })
    }
  }
  const failed = new Set([...missing, ...invalid].map((p) => p.name))
  for (const rule of opts.rules ?? []) {
    if (rule.names.some((n) => failed.has(n))) continue
    const reason = rule.check(out as CleanEnv<S>, env)
    if (reason === null) continue
    const name = rule.names[0] ?? '?'
    const v = spec[name]
    const raw = env[name] ?? ''
    invalid.push({
      name,
      desc: v?.desc ?? '',
      example: v?.example,
      reason,
      shown: isBlank(raw) ? '(not set)' : showValue(raw, v?.secret ?? false),
      option: options[name],
    })
    failed.add(name)
  }
  const fileProblems = (env as { [FILE_PROBLEMS]?: FileProblem[] })[FILE_PROBLEMS] ?? []
  if (missing.length > 0 || invalid.length > 0 || fileProblems.length > 0) throw new EnvError(missing, invalid, opts.fileHint, fileProblems)
  return out as CleanEnv<S>
}

/** Turns checked values back into strings for a child process's environment (undefined left out). */
export function formatEnv<S extends Spec>(spec: S, values: CleanEnv<S>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, v] of Object.entries(spec)) {
    const value = (values as Record<string, unknown>)[name]
    if (value !== undefined) out[name] = v.format(value)
  }
  return out
}

/** A line of the env file that is not a setting, a comment or blank (dotenv would drop it silently). */
export interface FileProblem {
  file: string
  line: number
  text: string
}

/**
 * Where loadEnv keeps the malformed lines of the file it read, so that checkEnv reports them
 * together with every other problem. A symbol key: invisible to Object.entries, copied by `{...raw}`.
 */
export const FILE_PROBLEMS = Symbol('env file problems')

// dotenv's own line grammar (dotenv/lib/main.js LINE): what it does not match, it drops.
const DOTENV_LINE = /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/gm

/** The lines of an env file that dotenv would ignore although they are neither blank nor comments (pure). */
export function malformedLines(text: string, file = '.env'): FileProblem[] {
  const src = text.replace(/\r\n?/g, '\n')
  const covered = new Array<boolean>(src.length + 1).fill(false)
  for (const m of src.matchAll(DOTENV_LINE)) for (let i = m.index; i < m.index + m[0].length; i++) covered[i] = true
  const problems: FileProblem[] = []
  let offset = 0
  src.split('\n').forEach((line, n) => {
    const trimmed = line.trim()
    const start = offset + line.indexOf(trimmed)
    offset += line.length + 1
    if (trimmed === '' || trimmed.startsWith('#')) return
    if (!covered[start]) problems.push({ file, line: n + 1, text: trimmed.length > 60 ? `${trimmed.slice(0, 57)}...` : trimmed })
  })
  return problems
}

/**
 * The environment as a plain object: `env` (default process.env) merged over the variables of
 * `file` (default `.env`, parsed with dotenv, never written into process.env). A variable set in
 * `env` wins over the file, even when empty (as with Docker Compose). A missing file is fine; its
 * malformed lines are carried along (FILE_PROBLEMS) and reported by checkEnv.
 */
export function loadEnv(env: RawEnv = process.env, file = '.env'): RawEnv {
  const path = resolve(file)
  const text = existsSync(path) ? readFileSync(path, 'utf8') : ''
  const merged: RawEnv = { ...dotenv.parse(text) }
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v
  const inherited = (env as { [FILE_PROBLEMS]?: FileProblem[] })[FILE_PROBLEMS] ?? []
  const problems = [...inherited, ...malformedLines(text, file.startsWith('/') ? relativeName(path) : file)]
  if (problems.length > 0) Object.assign(merged, { [FILE_PROBLEMS]: dedupe(problems) })
  return merged
}

function relativeName(path: string): string {
  const rel = path.startsWith(`${process.cwd()}/`) ? path.slice(process.cwd().length + 1) : path
  return rel
}

function dedupe(problems: FileProblem[]): FileProblem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const key = `${p.file}:${p.line}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

// --- validator helpers --------------------------------------------------------------------------

/** A validator of its own kind: `parse` throws an Error saying what is wrong. */
export function makeValidator<T>(
  opts: VarOptions<T>,
  expected: string,
  parse: (raw: string) => T,
  format: (value: T) => string = String,
): Validator<T> {
  return {
    desc: opts.desc,
    example: opts.example,
    default: opts.default,
    optional: opts.optional ?? false,
    secret: opts.secret ?? false,
    expected,
    parse,
    format,
  }
}

function fail(message: string): never {
  throw new Error(message)
}

export interface StrOptions extends VarOptions<string> {
  minLength?: number
  maxLength?: number
  /** The whole value must match. */
  pattern?: RegExp
  /** What the pattern means, for messages, e.g. "letters, digits and _". */
  patternDesc?: string
}

/** Any string (optionally with length limits or a pattern). */
export function str<O extends StrOptions>(opts: O): Typed<string, O> {
  const { minLength, maxLength, pattern, patternDesc } = opts
  const expected = [
    'a string',
    minLength !== undefined ? `of at least ${minLength} characters` : '',
    maxLength !== undefined ? `of at most ${maxLength} characters` : '',
    pattern ? `made of ${patternDesc ?? `text matching ${pattern}`}` : '',
  ]
    .filter(Boolean)
    .join(' ')
  return makeValidator<string>(opts, expected, (raw) => {
    if (minLength !== undefined && raw.length < minLength)
      fail(`too short: ${raw.length} characters, at least ${minLength} needed`)
    if (maxLength !== undefined && raw.length > maxLength)
      fail(`too long: ${raw.length} characters, at most ${maxLength} allowed`)
    if (pattern && !pattern.test(raw)) fail(`expected ${patternDesc ?? `text matching ${pattern}`}`)
    return raw
  }) as Typed<string, O>
}

const TRUE = ['true', '1', 'yes', 'on']
const FALSE = ['false', '0', 'no', 'off']

/** true/false (also 1/0, yes/no, on/off; any case). Formats as "true"/"false". */
export function bool<O extends VarOptions<boolean>>(opts: O): Typed<boolean, O> {
  return makeValidator<boolean>(opts, 'true or false', (raw) => {
    const v = raw.trim().toLowerCase()
    if (TRUE.includes(v)) return true
    if (FALSE.includes(v)) return false
    return fail('expected true or false')
  }) as Typed<boolean, O>
}

export interface IntOptions extends VarOptions<number> {
  min?: number
  max?: number
}

function rangeText(min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`
  if (min !== undefined) return ` of at least ${min}`
  if (max !== undefined) return ` of at most ${max}`
  return ''
}

/** A whole number, optionally within [min, max]. */
export function int<O extends IntOptions>(opts: O): Typed<number, O> {
  const { min, max } = opts
  const expected = `a whole number${rangeText(min, max)}`
  return makeValidator<number>(opts, expected, (raw) => {
    const v = raw.trim()
    if (!/^[+-]?\d+$/.test(v)) fail(`expected ${expected}`)
    const n = Number(v)
    if (!Number.isSafeInteger(n) || (min !== undefined && n < min) || (max !== undefined && n > max))
      fail(`expected ${expected}`)
    return n
  }) as Typed<number, O>
}

/** A TCP port number, 1-65535. */
export function port<O extends VarOptions<number>>(opts: O): Typed<number, O> {
  const expected = 'a TCP port number (1-65535)'
  const asInt = int({ desc: opts.desc, min: 1, max: 65535 })
  return makeValidator<number>(opts, expected, (raw) => {
    try {
      return asInt.parse(raw)
    } catch {
      return fail(`expected ${expected}`)
    }
  }) as Typed<number, O>
}

// RFC 1123 host name label; a leading "." (Django: the domain and its subdomains) and a
// leading "*." wildcard are allowed in host lists, as are IPv4/IPv6 addresses.
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/

export function isHostName(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false
  return host.split('.').every((label) => LABEL.test(label))
}

/** Comma-separated host names (or IP addresses), e.g. "example.com,.example.org,127.0.0.1". */
export function hostList<O extends VarOptions<string[]>>(opts: O): Typed<string[], O> {
  const expected = 'comma-separated host names, e.g. example.com,www.example.com'
  return makeValidator<string[]>(
    opts,
    expected,
    (raw) => {
      const hosts = raw.split(',').map((h) => h.trim())
      const bad = hosts.filter((h) => {
        if (h === '') return true
        if (isIP(h.replace(/^\[|\]$/g, ''))) return false
        const name = h.startsWith('*.') ? h.slice(2) : h.startsWith('.') ? h.slice(1) : h
        return !isHostName(name)
      })
      if (bad.length > 0)
        fail(`not host names: ${bad.map((h) => JSON.stringify(h)).join(', ')} (expected ${expected})`)
      return hosts
    },
    (hosts) => hosts.join(','),
  ) as Typed<string[], O>
}

/** One of a fixed list of values (exact match). */
export function oneOf<const C extends readonly string[], O extends VarOptions<C[number]>>(
  choices: C,
  opts: O,
): Typed<C[number], O> {
  const expected = `one of ${choices.join(', ')}`
  return makeValidator<C[number]>(opts, expected, (raw) => {
    if (!(choices as readonly string[]).includes(raw)) fail(`expected ${expected}`)
    return raw as C[number]
  }) as Typed<C[number], O>
}

/** An absolute http(s) URL. */
export function url<O extends VarOptions<string>>(opts: O): Typed<string, O> {
  const expected = 'an http:// or https:// URL'
  return makeValidator<string>(opts, expected, (raw) => {
    let u: URL
    try {
      u = new URL(raw)
    } catch {
      return fail(`expected ${expected}`)
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(`expected ${expected}`)
    return raw
  }) as Typed<string, O>
}

/** An IPv4 or IPv6 address (e.g. a bind address). */
export function ipAddress<O extends VarOptions<string>>(opts: O): Typed<string, O> {
  const expected = 'an IP address, e.g. 127.0.0.1 or 0.0.0.0'
  return makeValidator<string>(opts, expected, (raw) => {
    if (isIP(raw) === 0) fail(`expected ${expected}`)
    return raw
  }) as Typed<string, O>
}

/** An S3 bucket name (general purpose bucket naming rules). */
export function bucketName<O extends VarOptions<string>>(opts: O): Typed<string, O> {
  const expected = 'an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens'
  return makeValidator<string>(opts, expected, (raw) => {
    const problems: string[] = []
    if (raw.length < 3 || raw.length > 63) problems.push('must be 3-63 characters long')
    if (!/^[a-z0-9.-]*$/.test(raw)) problems.push('only lowercase letters, digits, dots (.) and hyphens (-)')
    if (!/^[a-z0-9]/.test(raw) || !/[a-z0-9]$/.test(raw)) problems.push('must begin and end with a letter or digit')
    if (raw.includes('..')) problems.push('no two adjacent dots')
    if (/^\d{1,3}(\.\d{1,3}){3}$/.test(raw)) problems.push('must not look like an IP address')
    if (/^(xn--|sthree-|amzn-s3-demo-)/.test(raw)) problems.push('must not start with xn--, sthree- or amzn-s3-demo-')
    if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(raw))
      problems.push('must not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3')
    if (problems.length > 0) fail(`not a valid S3 bucket name: ${problems.join('; ')}`)
    return raw
  }) as Typed<string, O>
}

/** An AWS region name like us-west-2, eu-central-1, ap-southeast-4, us-gov-west-1. */
export function awsRegion<O extends VarOptions<string>>(opts: O): Typed<string, O> {
  const expected = 'an AWS region like us-west-2'
  return makeValidator<string>(opts, expected, (raw) => {
    if (!/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/.test(raw)) fail(`expected ${expected}`)
    return raw
  }) as Typed<string, O>
}

/** A Docker image repository name, e.g. mymdb-web or registry.example.com:5000/team/mymdb-web. */
export function imageName<O extends VarOptions<string>>(opts: O): Typed<string, O> {
  const expected = 'an image name: lowercase letters, digits, and . _ - / (optionally a registry host[:port]/ first)'
  const re = /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/
  return makeValidator<string>(opts, expected, (raw) => {
    if (!re.test(raw) || raw.length > 255) fail(`expected ${expected}`)
    return raw
  }) as Typed<string, O>
}

/** A Docker image tag, e.g. latest or 1a2b3c4. */
export function imageTag<O extends VarOptions<string>>(opts: O): Typed<string, O> {
  const expected = 'an image tag: letters, digits, _ . - (up to 128, not starting with . or -)'
  return makeValidator<string>(opts, expected, (raw) => {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(raw)) fail(`expected ${expected}`)
    return raw
  }) as Typed<string, O>
}

/** A host name or an IP address (no scheme, no port, no path), e.g. 203.0.113.7 or host.example.com. */
export function hostAddress<O extends VarOptions<string>>(opts: O): Typed<string, O> {
  const expected = 'a host name or IP address, e.g. 203.0.113.7 (no http://, no port, no path)'
  return makeValidator<string>(opts, expected, (raw) => {
    const v = raw.trim()
    if (isIP(v.replace(/^\[|\]$/g, '')) === 0 && !isHostName(v)) fail(`expected ${expected}`)
    return v
  }) as Typed<string, O>
}

export interface CidrOptions extends VarOptions<string> {
  /** The shortest prefix allowed (e.g. 8: nothing wider than a /8). */
  minPrefix?: number
}

/** An IPv4 CIDR block, e.g. 203.0.113.7/32. */
export function cidr<O extends CidrOptions>(opts: O): Typed<string, O> {
  const expected = 'an IPv4 CIDR like 203.0.113.7/32'
  const min = opts.minPrefix ?? 0
  return makeValidator<string>(opts, expected, (raw) => {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(raw.trim())
    if (!m || isIP(m[1] ?? '') !== 4 || Number(m[2]) > 32) return fail(`expected ${expected}`)
    const prefix = Number(m[2])
    if (prefix < min)
      fail(prefix === 0 ? 'opens it to the whole internet' : `opens it to ${2 ** (32 - prefix)} addresses (at most a /${min} is allowed)`)
    return raw.trim()
  }) as Typed<string, O>
}

/** An image reference: [registry[:port]/]name[:tag][@sha256:digest], the name in lowercase. */
export function imageRef<O extends VarOptions<string>>(opts: O, keywords: readonly string[] = []): Typed<string, O> {
  const expected = `${keywords.length > 0 ? `${keywords.join(', ')} or ` : ''}an image like debian:trixie-slim (lowercase name, optional registry/ and :tag)`
  const name = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
  const re = new RegExp(`^(?:[a-zA-Z0-9.-]+(?::\\d+)?/)?${name}(?:/${name})*(?::[\\w][\\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`)
  return makeValidator<string>(opts, expected, (raw) => {
    if (keywords.includes(raw)) return raw
    // A first part without . or : is not a registry host: it must be lowercase like any name part.
    const first = raw.split('/')[0] ?? ''
    const hasRegistry = raw.includes('/') && /[.:]|^localhost$/.test(first)
    if (!re.test(raw) || (!hasRegistry && /[A-Z]/.test(first))) fail(`expected ${expected}`)
    return raw
  }) as Typed<string, O>
}

/**
 * `v` with one more check on the raw value (e.g. a value a .env file cannot hold, a placeholder
 * that production refuses). `check` returns what is wrong, or null.
 */
export function refine<T>(v: Validator<T>, check: (raw: string) => string | null): Validator<T> {
  return {
    ...v,
    parse(raw: string) {
      const problem = check(raw)
      if (problem !== null) fail(problem)
      return v.parse(raw)
    },
  }
}
