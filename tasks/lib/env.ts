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

export type Typed<T, O> = O extends { optional: true } ? Validator<T | undefined> : Validator<T>

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

/** The values of `spec`'s variables only, out of a larger set of checked values. */
export function valuesOf<S extends Spec>(spec: S, values: CleanEnv<S>): CleanEnv<S> {
  return Object.fromEntries(Object.keys(spec).map((k) => [k, (values as Record<string, unknown>)[k]])) as CleanEnv<S>
}
