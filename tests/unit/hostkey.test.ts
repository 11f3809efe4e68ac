// Pinned SSH host keys (tasks/lib/hostkey.ts, trust.ts, ssh.ts): the launched host's key, its
// fingerprint as OpenSSH writes it, the known_hosts file, which source wins, and an ssh2 server
// on loopback that presents the pinned key (a session) or another one (refused, and the server
// sees no login and no command).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { userDataHostKey, withHostKey } from '../../tasks/lib/aws/userdata.ts'
import { UserError } from '../../tasks/lib/errors.ts'
import { deriveHostKey, fingerprint, keyBlob, knownHostsPath, parseHostKey, pinnedHostKey, readKnownHost, writeKnownHost } from '../../tasks/lib/hostkey.ts'
import { openRemote, presentedHostKey } from '../../tasks/lib/ssh.ts'
import { openPinned } from '../../tasks/lib/trust.ts'
import { captureLog, sshKeyPair } from './fakes.ts'
import { startImpostor, type Impostor } from '../rig/impostor.ts'

const dir = mkdtempSync(join(tmpdir(), 'mymdb-hostkey-'))

describe('the host key of a launched host', () => {
  it('is derived: the same inputs give the same key (a retried launch), others another', () => {
    const a = deriveHostKey('deployer', 'qa', 1, 'sg-1')
    assert.deepEqual(deriveHostKey('deployer', 'qa', 1, 'sg-1'), a)
    for (const other of [deriveHostKey('deployer', 'qa', 2, 'sg-1'), deriveHostKey('deployer', 'qa', 1, 'sg-2'), deriveHostKey('someone', 'qa', 1, 'sg-1')])
      assert.notEqual(other.publicLine, a.publicLine)
  })
  it('is a key OpenSSH reads, with the public half and the fingerprint OpenSSH gives it', () => {
    const k = deriveHostKey('deployer', 'qa', 1, 'sg-1')
    const file = join(dir, 'host_key')
    writeFileSync(file, k.privatePem, { mode: 0o600 })
    assert.equal(execFileSync('ssh-keygen', ['-y', '-f', file]).toString().trim(), k.publicLine)
    const fp = execFileSync('ssh-keygen', ['-l', '-f', file]).toString().split(' ')[1]
    assert.equal(fingerprint(keyBlob(k.publicLine) as Buffer), fp)
  })
  it('travels in the user-data as cloud-config ssh_keys beside the script; the rig reads it back', () => {
    const k = deriveHostKey('deployer', 'qa', 1, 'sg-1')
    const ud = withHostKey('#!/bin/bash\necho hi\n', k)
    assert.match(ud, /^Content-Type: multipart\/mixed; boundary="MYMDB-USER-DATA-PART"/)
    assert.match(ud, /Content-Type: text\/cloud-config[^\n]*\n\n#cloud-config\n[\s\S]*ssh_genkeytypes: \[\]\nssh_keys:\n {2}ed25519_private: \|\n {4}-----BEGIN OPENSSH PRIVATE KEY-----/)
    assert.ok(ud.includes(`  ed25519_public: ${k.publicLine}\n`))
    assert.match(ud, /Content-Type: text\/x-shellscript[^\n]*\n\n#!\/bin\/bash\necho hi\n--MYMDB-USER-DATA-PART--\n$/)
    assert.equal(userDataHostKey(ud), k.privatePem)
    assert.equal(userDataHostKey('#!/bin/bash\n'), null)
  })
})

describe('which key a host must present', () => {
  const keyFile = join(dir, 'mymdb-qa.pem')
  const file = knownHostsPath(keyFile, 'qa')
  const a = deriveHostKey('deployer', 'qa', 1, 'sg-1').publicLine
  const b = deriveHostKey('deployer', 'qa', 1, 'sg-2').publicLine
  const fp = (line: string) => fingerprint(keyBlob(line) as Buffer)

  it('the setting, else the tag, else the known_hosts file; a new line is to be recorded', () => {
    assert.equal(file, join(dir, 'mymdb-qa.known_hosts'))
    assert.equal(pinnedHostKey({ stage: 'qa', sshKeyFile: keyFile }), null)
    const tagged = pinnedHostKey({ stage: 'qa', sshKeyFile: keyFile, tagged: a })
    assert.deepEqual(tagged, { key: { fingerprint: fp(a), type: 'ssh-ed25519', source: 'the HostKey tag of the instance mymdb-qa' }, record: a })
    writeKnownHost(file, 'qa', 1, a)
    assert.equal(pinnedHostKey({ stage: 'qa', sshKeyFile: keyFile, tagged: a })?.record, undefined, 'already recorded')
    assert.equal(pinnedHostKey({ stage: 'qa', sshKeyFile: keyFile })?.key.fingerprint, fp(a))
    assert.equal(pinnedHostKey({ stage: 'qa', sshKeyFile: keyFile, tagged: b })?.key.fingerprint, fp(b), 'a new instance: its tag')
    const bySetting = pinnedHostKey({ stage: 'qa', sshKeyFile: keyFile, setting: fp(b) })
    assert.deepEqual(bySetting, { key: { fingerprint: fp(b), source: 'MYMDB_HOST_KEY' } }, 'a fingerprint alone: nothing to record')
  })
  it('MYMDB_HOST_KEY and the instance tag disagree: refused', () => {
    assert.throws(() => pinnedHostKey({ stage: 'qa', sshKeyFile: keyFile, setting: a, tagged: b }), (e: unknown) => e instanceof UserError && /MYMDB_HOST_KEY \(SHA256:\S+\) is not the key the deploy gave the instance mymdb-qa/.test(e.message))
  })
  it('known_hosts: one line per host, replaced, in the format OpenSSH reads', () => {
    writeKnownHost(file, 'qa', 2, b)
    writeKnownHost(file, 'qa', 1, b)
    assert.equal(readFileSync(file, 'utf8'), `mymdb-qa-2 ${b}\nmymdb-qa ${b}\n`)
    assert.equal(readKnownHost(file, 'qa', 1), b)
    assert.equal(readKnownHost(file, 'other', 1), undefined)
    // ssh-keygen -F finds it (the user's own ssh: -o UserKnownHostsFile=... -o HostKeyAlias=mymdb-qa)
    assert.match(execFileSync('ssh-keygen', ['-F', 'mymdb-qa', '-f', file]).toString(), /mymdb-qa ssh-ed25519/)
  })
  it('parses keys and fingerprints, nothing else', () => {
    assert.equal(parseHostKey(a, 'x')?.type, 'ssh-ed25519')
    assert.equal(parseHostKey(fp(a), 'x')?.fingerprint, fp(a))
    for (const bad of ['', 'SHA256:short', 'ssh-ed25519 AAAA', `ssh-rsa ${a.split(' ')[1]}`, 'hello']) assert.equal(parseHostKey(bad, 'x'), null, bad)
  })
})

describe('an SSH server that presents the pinned key, or another', () => {
  const client = sshKeyPair()
  const serverKey = deriveHostKey('server', 'qa', 1, 'sg-1')
  let server: Impostor
  let seen: string[] = []
  let port = 0
  before(async () => {
    server = await startImpostor(serverKey.privatePem)
    seen = server.seen
    port = server.port
  })
  after(() => server.stop())
  const target = () => ({ host: '127.0.0.1', port, username: 'admin', privateKey: client.private, attempts: 3, retryDelayMs: 10 })

  it('the pinned key: logged in, the command runs', async () => {
    seen.length = 0
    const remote = await openRemote({ ...target(), hostKey: parseHostKey(serverKey.publicLine, 'test') as NonNullable<ReturnType<typeof parseHostKey>> })
    const r = await remote.run(['true'])
    remote.close()
    assert.equal(r.exitCode, 0)
    assert.deepEqual(seen.slice(0, 2), ['connection', 'login admin'])
    assert.ok(seen.some((s) => s.startsWith('exec ')))
  })
  it('another key: refused at once (not retried), and the server gets no login and no command', async () => {
    seen.length = 0
    const retries: number[] = []
    const pinned = parseHostKey(deriveHostKey('deployer', 'qa', 1, 'sg-9').publicLine, 'the HostKey tag') as NonNullable<ReturnType<typeof parseHostKey>>
    await assert.rejects(
      openRemote({ ...target(), hostKey: pinned, onRetry: (n) => retries.push(n) }),
      (e: unknown) => e instanceof UserError && e.message.includes(`presented the key ${fingerprint(keyBlob(serverKey.publicLine) as Buffer)}, not ${pinned.fingerprint} (the HostKey tag); nothing was sent to it`),
    )
    assert.deepEqual(retries, [])
    assert.deepEqual(seen, ['connection'])
  })
  it('no key known: refused without a terminal; on one, its fingerprint shown, then recorded once confirmed', async () => {
    const keyFile = join(dir, 'tofu.pem')
    const src = { stage: 'tofu', sshKeyFile: keyFile }
    seen.length = 0
    await assert.rejects(
      openPinned(openRemote, target(), src, { interactive: false, confirm: async () => true, log: captureLog() }),
      (e: unknown) => e instanceof UserError && /no host key is known for it .*set MYMDB_HOST_KEY/.test(e.message),
    )
    assert.deepEqual(seen, [], 'not even a connection')
    assert.equal((await presentedHostKey(target())).fingerprint, fingerprint(keyBlob(serverKey.publicLine) as Buffer))
    const log = captureLog()
    const asked: string[] = []
    await assert.rejects(openPinned(openRemote, target(), src, { interactive: true, confirm: async (q) => (asked.push(q), false), log }), /was not confirmed; nothing was sent/)
    assert.ok(!seen.some((s) => s === 'login admin'))
    assert.match(log.text(), /presents the host key SHA256:/)
    const remote = await openPinned(openRemote, target(), src, { interactive: true, confirm: async () => true, log })
    remote.close()
    assert.equal(readKnownHost(knownHostsPath(keyFile, 'tofu'), 'tofu'), serverKey.publicLine)
  })
})
