// The validators of settings: each makes a Validator (env.ts) that parses one kind of value and
// says what is wrong with a bad one: strings, booleans, numbers and ports, host names and lists,
// URLs, addresses and CIDRs, S3 bucket names, AWS regions, image names, tags and references.
import { isIP } from 'node:net'
import type { Typed, Validator, VarOptions } from './env.ts'

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
/** Comma-separated host names or IP addresses, one per host (e.g. 203.0.113.7,203.0.113.8): no scheme, port or path. */
export function hostAddresses<O extends VarOptions<string[]>>(opts: O): Typed<string[], O> {
  const expected = 'host names or IP addresses, comma-separated, e.g. 203.0.113.7 (no http://, no port, no path)'
  return makeValidator<string[]>(
    opts,
    expected,
    (raw) => {
      const all = raw.split(',').map((h) => h.trim())
      const bad = all.filter((v) => isIP(v.replace(/^\[|\]$/g, '')) === 0 && !isHostName(v))
      if (bad.length > 0) fail(`${bad.length === all.length && all.length === 1 ? '' : `not addresses: ${bad.map((h) => JSON.stringify(h)).join(', ')}; `}expected ${expected}`)
      if (new Set(all).size !== all.length) fail('names an address twice: one address per host')
      return all
    },
    (hosts) => hosts.join(','),
  ) as Typed<string[], O>
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
