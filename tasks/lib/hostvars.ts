// The project's settings model, part 3: the deploy's host (instance, SSH), the site's HTTPS
// (domain, ACME CA, DNS wait), the SSH key file, and what the host step (npm run host) reads.
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { homedir } from 'node:os'
import { checkEnv, loadEnv, type CleanEnv, type RawEnv, type Rule, type Validator } from './env.ts'
import type { Env } from './main.ts'
import { bool, cidr, hostAddresses, int, isHostName, makeValidator, port, str, url } from './validators.ts'
import { inspectKeyFile, keyFilePath } from './sshkey.ts'
import { expandHome } from './paths.ts'
import { parseHostKey } from './hostkey.ts'
import { fileSafe, imageVars } from './vars.ts'
import { clusterDatabaseRule, databaseVars, dbCaFileRule } from './dbvars.ts'
import { awsVars, backupBucketRules, backupBucketVars, bucketVars, optionalRegistryVar } from './awsvars.ts'

const INSTANCE_TYPE = /^([a-z]+(?:-[a-z0-9]+)?\d[a-z0-9]*(?:-[a-z0-9]+)?)\.(nano|micro|small|medium|large|xlarge|[1-9]\d*xlarge|metal(?:-\d+xl)?)$/
// Graviton (arm64) families: a "g" among the option letters after the generation (t4g, m7gd, c6gn), or a1.
const ARM_FAMILY = /^(a1|[a-z]+\d+[a-z]*g[a-z]*)$/

/** An EC2 instance type of a family and size that exist, for amd64 (the images are built here for amd64). */
function instanceType(opts: { desc: string; example: string; default: string }): Validator<string> {
  const expected = 'an EC2 instance type like t3.micro'
  return makeValidator(opts, expected, (raw) => {
    const m = INSTANCE_TYPE.exec(raw.trim())
    if (!m) throw new Error(`expected ${expected} (a family like t3, m7i and a size like micro, large, 2xlarge)`)
    if (ARM_FAMILY.test(m[1] ?? '')) throw new Error('is an arm64 (Graviton) type, but the images are built for amd64: use e.g. t3.micro or t3a.small')
    return raw.trim()
  })
}

export const hostVars = {
  MYMDB_INSTANCE_TYPE: instanceType({ desc: 'EC2 instance type of the host', example: 't3.micro', default: 't3.micro' }),
  MYMDB_DISK_GB: int({ desc: "size of a new host's disk (its root volume, encrypted) in GiB: the database, the images of the kept releases, the logs", example: '8', default: 8, min: 8, max: 16384 }),
  MYMDB_AMI_SSM_PARAMETER: str({
    desc: 'public SSM parameter naming the AMI of the host (Debian 13 by default)',
    example: '/aws/service/debian/release/13/latest/amd64',
    default: '/aws/service/debian/release/13/latest/amd64',
    pattern: /^\/[A-Za-z0-9_./-]+$/,
    patternDesc: 'an SSM parameter path starting with /',
  }),
  MYMDB_AMI_ID: str({ desc: 'AMI of the host, instead of the SSM lookup', example: 'ami-0123456789abcdef0', optional: true, pattern: /^ami-[0-9a-f]{8,17}$/, patternDesc: 'ami- and 8 to 17 hex digits' }),
  MYMDB_SSH_USER: str({ desc: 'login user of the AMI', example: 'admin', default: 'admin', pattern: /^[a-z_][a-z0-9_-]{0,31}$/, patternDesc: 'a Unix user name' }),
  MYMDB_SSH_KEY_FILE: str({ desc: 'private key for SSH to the host (created with the key pair when the file does not exist; default ~/.ssh/mymdb-<stage>.pem)', example: '~/.ssh/mymdb-production.pem', optional: true }),
  MYMDB_SSH_CIDR: cidr({ desc: 'who may SSH to the host (default: your current public IP /32)', example: '203.0.113.7/32', optional: true, minPrefix: 8 }),
  MYMDB_HOSTS: int({ desc: 'how many EC2 hosts the stage runs on, as one Docker Swarm (spread over the availability zones; 3 or more: three managers)', example: '1', default: 1, min: 1, max: 20 }),
  MYMDB_HOST_ADDRESS: hostAddresses({ desc: 'address to reach the host at instead of its public IP (a bastion, or the test rig); with several hosts one per host, comma-separated, in host order (then those of hosts being taken away)', example: '127.0.0.1', optional: true }),
  MYMDB_HOST_SSH_PORT: port({ desc: 'SSH port of the host', example: '22', default: 22 }),
  MYMDB_HOST_KEY: hostKeySetting({
    desc: "the SSH host key a host the deploy did not launch must present: its public key or fingerprint (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); a launched host's key is pinned by the deploy",
    example: 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s',
    optional: true,
  }),
  MYMDB_HOST_HTTP_PORT: port({ desc: 'HTTP port the site is checked on', example: '80', default: 80 }),
}

/** An SSH public key line (`ssh-ed25519 AAAA...`) or an OpenSSH fingerprint (`SHA256:...`). */
function hostKeySetting<O extends { desc: string; example: string; optional: true }>(opts: O): Validator<string | undefined> {
  const expected = 'an SSH public key (ssh-ed25519 AAAA...) or its fingerprint (SHA256: and 43 characters)'
  return makeValidator<string | undefined>(opts, expected, (raw) => {
    if (!parseHostKey(raw, 'MYMDB_HOST_KEY')) throw new Error(`expected ${expected}`)
    return raw.trim()
  })
}

/** The site's DNS name: two labels at least, no wildcard, not an IP address; lowercase. */
function domainName<O extends { desc: string; example: string; optional: true }>(opts: O): Validator<string | undefined> {
  const expected = 'a DNS name like movies.example.com (no wildcard, not an IP address)'
  return makeValidator<string | undefined>(opts, expected, (raw) => {
    const v = raw.trim().toLowerCase().replace(/\.$/, '')
    if (isIP(v) !== 0) throw new Error(`is an IP address; certificates are for names: expected ${expected}`)
    if (!v.includes('.') || !isHostName(v)) throw new Error(`expected ${expected}`)
    return v
  })
}

/** An IP address with an optional port: 1.1.1.1, 127.0.0.1:8053, [::1]:53. */
function dnsServer(opts: { desc: string; example: string; optional: true }): Validator<string | undefined> {
  const expected = 'an IP address with an optional port, e.g. 1.1.1.1 or 127.0.0.1:8053'
  return makeValidator<string | undefined>(opts, expected, (raw) => {
    const v = raw.trim()
    // [v6]:port, v4:port, or a bare address of either kind
    const [, ip = '', p = '53'] = /^\[(.+)\](?::(\d{1,5}))?$/.exec(v) ?? /^([0-9.]+):(\d{1,5})$/.exec(v) ?? [v, v]
    if (isIP(ip) === 0 || Number(p) < 1 || Number(p) > 65535) throw new Error(`expected ${expected}`)
    return v
  })
}

/** How the stack is spread over the host's Swarm (one host, or several). */
export const clusterVars = fileSafe({
  MYMDB_WEB_REPLICAS: int({ desc: "web's replicas over the Swarm's nodes (default: one per node)", example: '3', optional: true, min: 1, max: 100 }),
})

export const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory'
export const LETS_ENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory'

/** HTTPS for the site: its name, the CA its certificate comes from, and the wait for its DNS record. */
export const siteVars = fileSafe({
  MYMDB_DOMAIN: domainName({
    desc: "the site's DNS name; with it the host serves HTTPS with a certificate from MYMDB_ACME_CA (without it: plain HTTP at the host's public name)",
    example: 'movies.example.com',
    optional: true,
  }),
  MYMDB_ACME_CA: url({
    desc: `ACME directory the certificate comes from (Let's Encrypt; its staging CA for trials: ${LETS_ENCRYPT_STAGING})`,
    example: LETS_ENCRYPT,
    default: LETS_ENCRYPT,
  }),
  MYMDB_ACME_EMAIL: str({
    desc: 'email for the ACME account (the CA writes there before a certificate expires unrenewed)',
    example: 'ops@example.com',
    optional: true,
    pattern: /^[^\s@'"{}]+@[^\s@'"{}]+\.[^\s@'"{}]+$/,
    patternDesc: 'an email address',
  }),
  MYMDB_ACME_CA_ROOT: str({
    desc: "PEM file with the root certificate of a private ACME CA's own HTTPS (step-ca, the test rig's pebble); not for Let's Encrypt",
    example: '~/ca/root.pem',
    optional: true,
  }),
  MYMDB_ACME_RENEW_INTERVAL: str({
    desc: 'how often the host looks for certificates to renew (Caddy renews when a third of the lifetime is left)',
    example: '10m',
    default: '10m',
    pattern: /^[1-9][0-9]*(s|m|h)$/,
    patternDesc: 'a number and s, m or h, e.g. 10m',
  }),
  MYMDB_HSTS_SECONDS: int({
    desc: 'with MYMDB_DOMAIN: how long browsers remember to use HTTPS only (Strict-Transport-Security max-age, sent by the front; 0: not sent). Raise it once HTTPS works, e.g. to 31536000',
    example: '86400',
    default: 86400,
    min: 0,
    max: 63072000,
  }),
  MYMDB_HSTS_SUBDOMAINS: bool({ desc: 'with MYMDB_DOMAIN: HSTS covers every subdomain too (includeSubDomains): only when all of them serve HTTPS', example: 'false', default: false }),
  MYMDB_HSTS_PRELOAD: bool({ desc: "with MYMDB_DOMAIN: HSTS asks to be in browsers' preload lists (preload; needs MYMDB_HSTS_SUBDOMAINS and a year's max-age; hard to undo)", example: 'false', default: false }),
  MYMDB_DNS_WAIT: int({ desc: "seconds the deploy waits for MYMDB_DOMAIN to resolve to the host's address before it asks for a certificate", example: '900', default: 900, min: 0, max: 86400 }),
  MYMDB_DNS_SERVER: dnsServer({ desc: 'DNS server the deploy asks about MYMDB_DOMAIN (default: the system resolver)', example: '1.1.1.1', optional: true }),
  MYMDB_HOST_HTTPS_PORT: port({ desc: 'HTTPS port the site is checked on (with MYMDB_DOMAIN)', example: '443', default: 443 }),
})

/** HSTS preload only with includeSubDomains and a max-age of a year or more (what the preload lists accept). */
export const hstsRule: Rule<{ MYMDB_HSTS_SECONDS: number; MYMDB_HSTS_SUBDOMAINS: boolean; MYMDB_HSTS_PRELOAD: boolean }> = {
  names: ['MYMDB_HSTS_PRELOAD', 'MYMDB_HSTS_SUBDOMAINS', 'MYMDB_HSTS_SECONDS'],
  check: (v) =>
    v.MYMDB_HSTS_PRELOAD && (!v.MYMDB_HSTS_SUBDOMAINS || v.MYMDB_HSTS_SECONDS < 31536000)
      ? `true needs MYMDB_HSTS_SUBDOMAINS=true and MYMDB_HSTS_SECONDS of at least 31536000 (got ${v.MYMDB_HSTS_SUBDOMAINS}, ${v.MYMDB_HSTS_SECONDS})`
      : null,
}

/** MYMDB_ACME_CA_ROOT, when set, is a readable PEM certificate. */
export const acmeCaRootRule: Rule<{ MYMDB_ACME_CA_ROOT?: string }> = {
  names: ['MYMDB_ACME_CA_ROOT'],
  check: (v, raw) => {
    if (v.MYMDB_ACME_CA_ROOT === undefined) return null
    try {
      return readAcmeCaRoot(v.MYMDB_ACME_CA_ROOT, raw) === null ? 'is not a PEM certificate (-----BEGIN CERTIFICATE-----)' : null
    } catch (e) {
      return `cannot be read: ${e instanceof Error ? e.message : String(e)}`
    }
  },
}

/** The PEM text of MYMDB_ACME_CA_ROOT (~ is HOME), or null when the file holds no certificate. */
export function readAcmeCaRoot(path: string, raw: RawEnv): string | null {
  const text = readFileSync(expandHome(path, raw.HOME || homedir()), 'utf8')
  return text.includes('-----BEGIN CERTIFICATE-----') ? text : null
}

type KeyValues = { MYMDB_SSH_KEY_FILE?: string; MYMDB_STAGE: string }

/** The private key file of a stage's host: MYMDB_SSH_KEY_FILE, or ~/.ssh/mymdb-<stage>.pem under HOME. */
export function sshKeyPath(v: KeyValues, raw: RawEnv): string {
  return keyFilePath(v.MYMDB_SSH_KEY_FILE, v.MYMDB_STAGE, raw.HOME || homedir())
}

/** The key file, when it exists, is an unencrypted private key (not the .pub, not a certificate). */
export const sshKeyRule: Rule<KeyValues> = {
  names: ['MYMDB_SSH_KEY_FILE', 'MYMDB_STAGE'],
  check: (v, raw) => {
    try {
      inspectKeyFile(sshKeyPath(v, raw))
      return null
    } catch (e) {
      return e instanceof Error ? e.message : String(e)
    }
  },
}

/** What is wrong with the key file at `path` for connecting with it (missing, unreadable, not a private key), or null. */
export function keyFileProblem(path: string): string | null {
  try {
    return inspectKeyFile(path).exists ? null : `${path} does not exist: run npm run host (it creates the key), or point MYMDB_SSH_KEY_FILE at your key`
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
}

/** MYMDB_HOST_ADDRESS, when set, names one address per host (MYMDB_HOSTS); more: those of hosts being taken away. */
export const hostAddressRule: Rule<{ MYMDB_HOSTS: number; MYMDB_HOST_ADDRESS?: string[] }> = {
  names: ['MYMDB_HOST_ADDRESS', 'MYMDB_HOSTS'],
  check: (v) => {
    const n = v.MYMDB_HOST_ADDRESS?.length
    return n === undefined || n >= v.MYMDB_HOSTS ? null : `MYMDB_HOST_ADDRESS names ${n} address${n === 1 ? '' : 'es'} for ${v.MYMDB_HOSTS} hosts (MYMDB_HOSTS): give one per host, comma-separated, in host order`
  },
}

/** The key file must exist (for the steps that only use it: the start over SSH, stop, ssh). */
export const sshKeyExistsRule: Rule<KeyValues> = {
  names: ['MYMDB_SSH_KEY_FILE', 'MYMDB_STAGE'],
  check: (v, raw) => keyFileProblem(sshKeyPath(v, raw)),
}

/** Every variable the host step (npm run host) reads. */
export const hostSpec = {
  ...awsVars,
  ...hostVars,
  ...bucketVars,
  MYMDB_BACKUP_BUCKET: backupBucketVars.MYMDB_BACKUP_BUCKET,
  // with ecr, the host role may pull these images' repositories
  MYMDB_REGISTRY: optionalRegistryVar,
  MYMDB_WEB_IMAGE: imageVars.MYMDB_WEB_IMAGE,
  MYMDB_DB_IMAGE: imageVars.MYMDB_DB_IMAGE,
  MYMDB_PROXY_IMAGE: imageVars.MYMDB_PROXY_IMAGE,
  MYMDB_CACHE_IMAGE: imageVars.MYMDB_CACHE_IMAGE,
  // the database on RDS: its cost is printed with the hosts'
  ...databaseVars,
}
/** The checked settings, with the private key file they name (MYMDB_SSH_KEY_FILE, or ~/.ssh/mymdb-<stage>.pem). */
export type HostSettings = CleanEnv<typeof hostSpec> & { sshKeyFile: string }

/** The host step's settings, checked (EnvError, exit 2), with the key file's rule: before any AWS call. */
export function hostSettings(env: Env, envFile: string): { raw: RawEnv; values: HostSettings } {
  const raw = loadEnv(env, envFile)
  const values = checkEnv(hostSpec, raw, { rules: [sshKeyRule, hostAddressRule, dbCaFileRule, clusterDatabaseRule, ...backupBucketRules] })
  return { raw, values: { ...values, sshKeyFile: sshKeyPath(values, raw) } }
}
