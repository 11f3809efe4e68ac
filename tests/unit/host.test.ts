import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { main as destroyMain } from '../../tasks/destroy-aws.ts'
import { removalLines } from '../../tasks/lib/aws/teardown.ts'
import { main } from '../../tasks/host.ts'
import { desiredIngress, flattenIngress, flattenSelf, planIngress, selfPermissions, SWARM_PORTS, toIpPermissions, applySecurityGroup } from '../../tasks/lib/aws/securitygroup.ts'
import { spreadOverZones } from '../../tasks/lib/aws/zones.ts'
import { findHost, launchToken, runInstancesInput, type LaunchSpec, applyInstance } from '../../tasks/lib/aws/instance.ts'
import { backupPolicies, hostPolicies, parsePolicyDocument, applyHostRole } from '../../tasks/lib/aws/roles.ts'
import { keyPairAction, applyKeyPair } from '../../tasks/lib/aws/keypair.ts'
import { myPublicCidr, waitForTcp } from '../../tasks/lib/net.ts'
import { planHost, type HostState } from '../../tasks/lib/aws/host.ts'
import { renderUserData } from '../../tasks/lib/aws/userdata.ts'
import { applyElasticIp } from '../../tasks/lib/aws/address.ts'
import { sameJson } from '../../tasks/lib/aws/clients.ts'
import { inspectKeyFile, keyFilePath, saveKeyFile } from '../../tasks/lib/sshkey.ts'
import type { AwsClients } from '../../tasks/lib/aws/clients.ts'
import { main as stopMain } from '../../tasks/stop.ts'
import { absentStageServices, captureLog, fakeLockTable, noDocker, sshKeyPair, tempDir, testDeps } from './fakes.ts'

const INSTALL = readFileSync(new URL('../../scripts/install-docker.sh', import.meta.url), 'utf8')

/** An awsClients factory that fails the test when called (no AWS call may happen). */
const noAws = () => {
  throw new Error('unexpected AWS call')
}

const BASE_ENV = { AWS_REGION: 'us-west-2', DJANGO_UPLOAD_S3_BUCKET: 'mymdb-uploads-test', MYMDB_SSH_CIDR: '203.0.113.7/32' }

/** What an account holds after a complete host step of stage qa (SSH from 1.1.1.1, bucket b1). */
function allInPlace(): HostState {
  return {
    keyPairInEc2: true,
    keyFile: { path: '/k.pem', exists: true, publicKey: 'ssh-ed25519 AAAA' },
    securityGroup: { id: 'sg-1', ingress: desiredIngress('1.1.1.1/32'), self: [] },
    role: { exists: true, policy: hostPolicies('b1', 'arn:aws:iam::123456789012:role/mymdb-qa-backup').bucket },
    backupRole: {
      exists: true,
      trust: backupPolicies('arn:aws:iam::123456789012:role/mymdb-qa-host', EXTERNAL_ID, 'b1-backups', 'qa').trust,
      policy: backupPolicies('arn:aws:iam::123456789012:role/mymdb-qa-host', EXTERNAL_ID, 'b1-backups', 'qa').write,
    },
    instanceProfile: { exists: true, roles: ['mymdb-qa-host'] },
    nodes: [{ node: 1, instance: { instanceId: 'i-1', state: 'running' }, elasticIp: { node: 1, allocationId: 'eipalloc-1', publicIp: '198.51.100.10', instanceId: 'i-1', associationId: 'eipassoc-1' } }],
    account: '123456789012',
    subnets: [],
  }
}

const EXTERNAL_ID = 'e'.repeat(48)
/** An empty account's state (account 123456789012). */
const NOTHING = { backupRole: { exists: false, trust: null, policy: null }, nodes: [{ node: 1, instance: null, elasticIp: null }], account: '123456789012', subnets: [] }

/** An ed25519 private key in OpenSSH format (what EC2 hands out and the SSH client reads). */
function ed25519Pem(): string {
  return sshKeyPair().private
}

describe('host: pure parts', () => {
  it('policies: EC2 trust; read and write uploads/ (never delete) and list the bucket, nothing else', () => {
    const { trust, bucket } = hostPolicies('b1')
    assert.deepEqual(trust, {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    })
    const st = (bucket as { Statement: { Action: string | string[]; Resource: string; Effect: string }[] }).Statement
    assert.equal(st.length, 2)
    assert.deepEqual(st[0]?.Action, ['s3:GetObject', 's3:PutObject'])
    assert.equal(st[0]?.Resource, 'arn:aws:s3:::b1/uploads/*')
    assert.equal(st[1]?.Action, 's3:ListBucket')
    assert.equal(st[1]?.Resource, 'arn:aws:s3:::b1')
    assert.ok(st.every((s) => s.Effect === 'Allow'))
    assert.ok(st.every((s) => [s.Action].flat().every((a) => !a.includes('*'))), 'no wildcard actions')
  })

  it("policies: with ECR, the host role pulls the stage's repositories read-only: a token, then layers and manifests of those ARNs only", () => {
    const arns = ['arn:aws:ecr:us-west-2:123456789012:repository/mymdb-web', 'arn:aws:ecr:us-west-2:123456789012:repository/mymdb-db']
    const st = (hostPolicies('b1', undefined, arns).bucket as { Statement: { Sid: string; Action: string | string[]; Resource: string | string[] }[] }).Statement
    const ecr = st.filter((x) => [x.Action].flat().some((a) => a.startsWith('ecr:')))
    assert.deepEqual(ecr.map((x) => [x.Action, x.Resource]), [
      ['ecr:GetAuthorizationToken', '*'],
      [['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'], arns],
    ])
    // nothing that writes: no push, no repository or policy change
    assert.ok(ecr.flatMap((x) => [x.Action].flat()).every((a) => /^ecr:(Get|Batch(Get|Check))/.test(a)))
    assert.equal((hostPolicies('b1').bucket as { Statement: unknown[] }).Statement.length, 2, 'no ECR statement without ECR')
  })

  it('policy documents as IAM returns them (URL-encoded) compare equal regardless of key order', () => {
    const doc = hostPolicies('b1').bucket
    assert.ok(sameJson(parsePolicyDocument(encodeURIComponent(JSON.stringify(doc))), doc))
    assert.ok(sameJson(parsePolicyDocument(JSON.stringify(doc)), doc))
    assert.ok(sameJson({ a: 1, b: [1, { c: 2, d: 3 }] }, { b: [1, { d: 3, c: 2 }], a: 1 }))
    assert.ok(!sameJson(parsePolicyDocument(JSON.stringify(hostPolicies('b2').bucket)), doc))
    assert.equal(parsePolicyDocument(undefined), null)
    assert.equal(parsePolicyDocument('%zz not json'), null)
  })

  it('user-data: bash that writes install-docker.sh verbatim and runs it for the login user', () => {
    const ud = renderUserData(INSTALL, 'admin')
    assert.ok(ud.startsWith('#!/bin/bash\n'))
    assert.ok(ud.includes(INSTALL), 'the install script verbatim')
    assert.match(ud, /set -o errexit/)
    assert.match(ud, /<<'MYMDB_INSTALL_DOCKER_EOF'\n/, 'quoted heredoc: nothing in the script is expanded')
    assert.match(ud, /^\/opt\/mymdb\/install-docker\.sh admin /m)
    // idempotent: the file is overwritten (>), the script itself only does what is missing
    assert.match(ud, /^cat >\/opt\/mymdb\/install-docker\.sh/m)
    assert.doesNotMatch(ud, />>\/opt/)
    assert.equal(renderUserData(INSTALL, 'admin'), ud, 'same input, same output')
    assert.ok(Buffer.byteLength(ud) < 16 * 1024)
    assert.throws(() => renderUserData(INSTALL, 'bad user; rm -rf /'), /not a Unix user name/)
    assert.throws(() => renderUserData('echo\nMYMDB_INSTALL_DOCKER_EOF\n', 'admin'), /contains the line/)
    assert.ok(renderUserData('echo hi', 'ubuntu').includes('echo hi\nMYMDB_INSTALL_DOCKER_EOF\n'))
  })

  it('ingress: 80/443 from anywhere (v4+v6), 22 from the deployer only, never the Docker API', () => {
    const want = desiredIngress('198.51.100.9/32')
    assert.deepEqual(
      want.map((r) => `${r.port} ${r.cidr}`),
      ['80 0.0.0.0/0', '80 ::/0', '443 0.0.0.0/0', '443 ::/0', '22 198.51.100.9/32'],
    )
    assert.ok(!want.some((r) => r.port === 2375 || r.port === 2376))
    const perms = toIpPermissions(want)
    assert.deepEqual(perms[1], { IpProtocol: 'tcp', FromPort: 80, ToPort: 80, Ipv6Ranges: [{ CidrIpv6: '::/0', Description: 'HTTP' }] })
    assert.deepEqual(flattenIngress(perms).map((r) => ({ port: r.port, cidr: r.cidr })), want)
    assert.deepEqual(flattenIngress(perms).map((r) => r.description), ['HTTP', 'HTTP', 'HTTPS', 'HTTPS', 'SSH from the deployer'])
    // a rule to revoke is named as the group has it (its own description, or none)
    assert.deepEqual(toIpPermissions([{ port: 22, cidr: '1.1.1.1/32', description: 'old' }, { port: 2375, cidr: '::/0' }], true), [
      { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '1.1.1.1/32', Description: 'old' }] },
      { IpProtocol: 'tcp', FromPort: 2375, ToPort: 2375, Ipv6Ranges: [{ CidrIpv6: '::/0', Description: undefined }] },
    ])
  })

  it('ingress re-runs: add what is missing, revoke the old SSH source and Docker API rules, leave the rest', () => {
    assert.deepEqual(planIngress(desiredIngress('1.1.1.1/32'), '1.1.1.1/32'), { add: [], revoke: [] })
    const current = [
      { port: 80, cidr: '0.0.0.0/0' },
      { port: 22, cidr: '1.1.1.1/32' },
      { port: 2376, cidr: '0.0.0.0/0' },
      { port: 8080, cidr: '10.0.0.0/8' },
    ]
    const { add, revoke } = planIngress(current, '2.2.2.2/32')
    assert.deepEqual(add.map((r) => `${r.port} ${r.cidr}`), ['80 ::/0', '443 0.0.0.0/0', '443 ::/0', '22 2.2.2.2/32'])
    assert.deepEqual(revoke.map((r) => `${r.port} ${r.cidr}`), ['22 1.1.1.1/32', '2376 0.0.0.0/0'])
  })

  it('RunInstances request: IMDSv2 with hop limit 2, tags on instance and volume, the host key tag on the instance, profile, base64 user-data', () => {
    const spec: LaunchSpec = {
      stage: 'qa',
      node: 1,
      amiId: 'ami-12345678',
      instanceType: 't3.small',
      keyName: 'mymdb-qa',
      securityGroupId: 'sg-1',
      instanceProfile: 'mymdb-qa-host',
      userData: '#!/bin/bash\necho hi\n',
      hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRGjUg3kUIzwlw0VdxDydD6nuMlJwhGWyVr+9chGiCa',
      rootDevice: '/dev/xvda',
      diskGb: 20,
    }
    const input = runInstancesInput(spec)
    assert.deepEqual(input.MetadataOptions, { HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' })
    assert.equal(Buffer.from(input.UserData ?? '', 'base64').toString(), spec.userData)
    assert.deepEqual(input.IamInstanceProfile, { Name: 'mymdb-qa-host' })
    assert.deepEqual(input.BlockDeviceMappings, [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeSize: 20, VolumeType: 'gp3', DeleteOnTermination: true } }])
    assert.deepEqual(input.SecurityGroupIds, ['sg-1'])
    assert.equal(input.KeyName, 'mymdb-qa')
    assert.equal(input.MinCount, 1)
    assert.equal(input.MaxCount, 1)
    assert.deepEqual(input.TagSpecifications?.map((t) => t.ResourceType), ['instance', 'volume'])
    const tags = [
      { Key: 'Name', Value: 'mymdb-qa' },
      { Key: 'Project', Value: 'mymdb' },
      { Key: 'Stage', Value: 'qa' },
      { Key: 'Node', Value: '1' },
    ]
    assert.deepEqual(input.TagSpecifications?.[0]?.Tags, [...tags, { Key: 'HostKey', Value: spec.hostKey }])
    assert.deepEqual(input.TagSpecifications?.[1]?.Tags, tags)
    // same launch -> same token (a retry cannot make a twin); after a destroy the group is new -> new token
    assert.equal(input.ClientToken, launchToken(spec))
    assert.ok((input.ClientToken ?? '').length <= 64)
    assert.notEqual(launchToken({ ...spec, securityGroupId: 'sg-2' }), input.ClientToken)
    // a second host of the stage: its own name, number and token (never the first host's instance)
    const second = runInstancesInput({ ...spec, node: 2 })
    assert.deepEqual(second.TagSpecifications?.[0]?.Tags?.filter((t) => t.Key === 'Name' || t.Key === 'Node'), [{ Key: 'Name', Value: 'mymdb-qa-2' }, { Key: 'Node', Value: '2' }])
    assert.notEqual(second.ClientToken, input.ClientToken)
  })

  it('key pair decisions: exists / import / create, and the unrecoverable case', () => {
    assert.equal(keyPairAction(true, true, 'k', '/f'), 'exists')
    assert.equal(keyPairAction(false, true, 'k', '/f'), 'import')
    assert.equal(keyPairAction(false, false, 'k', '/f'), 'create')
    assert.throws(() => keyPairAction(true, false, 'mymdb-x', '/home/u/.ssh/mymdb-x.pem'), (err: Error) => {
      assert.match(err.message, /\/home\/u\/\.ssh\/mymdb-x\.pem/)
      assert.match(err.message, /MYMDB_SSH_KEY_FILE/)
      assert.match(err.message, /destroy:aws|delete-key-pair/)
      return true
    })
  })

  it('backup role: assumed by the host role only with the external id; writes backups and holds its stage\'s lock, nothing else', () => {
    const { trust, write } = backupPolicies('arn:aws:iam::1:role/mymdb-qa-host', EXTERNAL_ID, 'b1-backups', 'qa') as { trust: any; write: any }
    assert.deepEqual(trust.Statement, [
      { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::1:role/mymdb-qa-host' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'sts:ExternalId': EXTERNAL_ID } } },
    ])
    assert.deepEqual(write.Statement, [
      { Sid: 'WriteBackups', Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: ['arn:aws:s3:::b1-backups/rolling/*', 'arn:aws:s3:::b1-backups/kept/*'] },
      // the scheduled backup's hold on its own stage's lock, no other stage's
      {
        Sid: 'HoldStageLock',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
        Resource: 'arn:aws:dynamodb:*:1:table/mymdb-locks',
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['qa'] } },
      },
    ])
    // the host role may assume it; its S3 access stays the upload bucket's
    const host = hostPolicies('b1', 'arn:aws:iam::1:role/mymdb-qa-backup').bucket as { Statement: any[] }
    assert.deepEqual(host.Statement.flatMap((st) => [st.Resource].flat()).sort(), ['arn:aws:iam::1:role/mymdb-qa-backup', 'arn:aws:s3:::b1', 'arn:aws:s3:::b1/uploads/*'])
    // a re-run keeps the external id the host has; a new role gets a new random one
    const want = { stage: 'qa', sshCidr: '1.1.1.1/32', bucket: 'b1', backupBucket: 'b1-backups' }
    assert.equal(planHost(allInPlace(), want, () => assert.fail('no new id')).backup.externalId, EXTERNAL_ID)
    const fresh = planHost({ ...allInPlace(), backupRole: { exists: false, trust: null, policy: null } }, want)
    assert.match(fresh.backup.externalId, /^[0-9a-f]{48}$/)
    assert.notEqual(fresh.backup.externalId, EXTERNAL_ID)
    assert.deepEqual([fresh.backup.create, fresh.backup.putPolicy, fresh.backup.roleArn], [true, true, 'arn:aws:iam::123456789012:role/mymdb-qa-backup'])
    // another backup bucket: the write policy is replaced, the trust kept
    const moved = planHost(allInPlace(), { ...want, backupBucket: 'other-backups' })
    assert.deepEqual([moved.backup.create, moved.backup.putTrust, moved.backup.putPolicy], [false, false, true])
  })

  it('key file path: default ~/.ssh/mymdb-<stage>.pem, ~ expanded', () => {
    assert.equal(keyFilePath(undefined, 'qa', '/home/u'), '/home/u/.ssh/mymdb-qa.pem')
    assert.equal(keyFilePath('~/keys/k.pem', 'qa', '/home/u'), '/home/u/keys/k.pem')
    assert.equal(keyFilePath('/abs/k.pem', 'qa', '/home/u'), '/abs/k.pem')
  })

  it('plan: everything to create on an empty account, everything exists afterwards', () => {
    const empty: HostState = {
      keyPairInEc2: false,
      keyFile: { path: '/k.pem', exists: false },
      securityGroup: null,
      role: { exists: false, policy: null },
      instanceProfile: null,
      ...NOTHING,
    }
    const want = { stage: 'qa', sshCidr: '1.1.1.1/32', bucket: 'b1', backupBucket: 'b1-backups' }
    assert.deepEqual(planHost(empty, want).items.map((p) => `${p.resource}: ${p.action}`), [
      'key pair mymdb-qa: create',
      'security group mymdb-qa-web: create',
      'IAM role mymdb-qa-host: create',
      'IAM role mymdb-qa-backup: create',
      'instance profile mymdb-qa-host: create',
      'instance mymdb-qa: create',
      'elastic IP mymdb-qa: create',
    ])
    const done = allInPlace()
    assert.ok(planHost(done, want).items.every((p) => p.action === 'exists'))
    // changes: new IP, other bucket, profile without role, stopped instance, local key only
    const changed = planHost(
      {
        ...done,
        keyPairInEc2: false,
        role: { exists: true, policy: hostPolicies('old').bucket },
        instanceProfile: { exists: true, roles: [] },
        nodes: [{ ...done.nodes[0]!, instance: { instanceId: 'i-1', state: 'stopped' } }],
      },
      { ...want, sshCidr: '2.2.2.2/32' },
    )
    assert.deepEqual(changed.items.map((p) => p.action), ['import', 'update', 'update', 'exists', 'update', 'start', 'exists'])
    // what apply will do, exactly
    assert.deepEqual(changed.securityGroup, { id: 'sg-1', add: [{ port: 22, cidr: '2.2.2.2/32' }], revoke: [{ port: 22, cidr: '1.1.1.1/32' }], self: { add: [], revoke: [] } })
    assert.deepEqual([changed.role, changed.profile, changed.nodes[0]?.instance.action], [{ create: false, putPolicy: true, policy: hostPolicies('b1', 'arn:aws:iam::123456789012:role/mymdb-qa-backup').bucket, pullsImages: false }, { create: false, addRole: true }, 'start'])
    // with ECR, the role also pulls the stage's repositories: the policy is updated, and then in place
    const ecrPull = { region: 'us-west-2', repositories: ['mymdb-web', 'mymdb-db'] }
    const pulling = planHost(done, { ...want, ecrPull })
    assert.deepEqual([pulling.role.putPolicy, pulling.items[2]?.action], [true, 'update'])
    assert.match(pulling.items[2]?.detail ?? '', /pulls mymdb-web, mymdb-db from ECR/)
    assert.equal(planHost({ ...done, role: { exists: true, policy: pulling.role.policy } }, { ...want, ecrPull }).items[2]?.action, 'exists')
    assert.match(changed.items[1]?.detail ?? '', /add 22 from 2\.2\.2\.2\/32, revoke 22 from 1\.1\.1\.1\/32/)
    assert.throws(() => planHost({ ...done, keyFile: { path: '/k.pem', exists: false } }, want), /cannot give the private key again/)
  })

  it('plan: several hosts share the key pair, group and roles; each has its own instance and address, new ones in the zones with fewest hosts; Swarm opened between them', () => {
    const want = { stage: 'qa', sshCidr: '1.1.1.1/32', bucket: 'b1', backupBucket: 'b1-backups' }
    const done = allInPlace()
    const subnets = [{ subnetId: 'subnet-a', zone: 'us-west-2a' }, { subnetId: 'subnet-b', zone: 'us-west-2b' }, { subnetId: 'subnet-c', zone: 'us-west-2c' }]
    const first = { ...done.nodes[0]!, instance: { instanceId: 'i-1', state: 'running', zone: 'us-west-2b' } }
    const three = planHost({ ...done, subnets, nodes: [first, { node: 2, instance: null, elasticIp: null }, { node: 3, instance: null, elasticIp: null }] }, want)
    assert.deepEqual(three.items.map((p) => `${p.resource}: ${p.action}`).slice(-6), [
      'instance mymdb-qa: exists',
      'elastic IP mymdb-qa: exists',
      'instance mymdb-qa-2: create',
      'elastic IP mymdb-qa-2: create',
      'instance mymdb-qa-3: create',
      'elastic IP mymdb-qa-3: create',
    ])
    assert.deepEqual(three.nodes.map((h) => [h.node, h.instance.action, h.elasticIp.existing?.allocationId ?? null, h.subnetId ?? null]), [[1, 'exists', 'eipalloc-1', null], [2, 'create', null, 'subnet-a'], [3, 'create', null, 'subnet-c']])
    assert.match(three.items.find((p) => p.resource === 'instance mymdb-qa-2')?.detail ?? '', /in us-west-2a/)
    assert.equal(three.items.filter((p) => p.resource.startsWith('key pair') || p.resource.startsWith('security group')).length, 2)
    // the group opens Swarm's ports to itself, and says so
    assert.deepEqual(three.securityGroup.self, { add: [...SWARM_PORTS], revoke: [] })
    assert.match(three.items[1]?.detail ?? '', /open Swarm 2377\/tcp, 7946\/tcp, 7946\/udp, 4789\/udp between its hosts/)
    // open: nothing more to do; back to one host: closed again
    const open = { ...done.securityGroup!, self: [...SWARM_PORTS] }
    assert.deepEqual(planHost({ ...done, subnets, securityGroup: open, nodes: [first, { node: 2, instance: { instanceId: 'i-2', state: 'running', zone: 'us-west-2a' }, elasticIp: null }] }, want).securityGroup.self, { add: [], revoke: [] })
    assert.deepEqual(planHost({ ...done, securityGroup: open }, want).securityGroup.self, { add: [], revoke: [...SWARM_PORTS] })
    // one host: no subnet chosen, EC2 places it as before
    assert.equal(planHost(done, want).nodes[0]?.subnetId, undefined)
  })

  it('zones: hosts stay where they are, new ones go to the zones with the fewest; no default subnet is an error naming the fix', () => {
    const subnets = [{ subnetId: 's-a', zone: 'z-a' }, { subnetId: 's-b', zone: 'z-b' }]
    const zones = (of: (string | undefined)[]) => spreadOverZones(of, subnets).map((s) => s?.zone ?? null)
    assert.deepEqual(zones([undefined, undefined, undefined]), ['z-a', 'z-b', 'z-a'])
    assert.deepEqual(zones(['z-a', 'z-a', undefined, undefined]), [null, null, 'z-b', 'z-b'])
    assert.deepEqual(zones(['z-b', undefined, undefined]), [null, 'z-a', 'z-a'])
    // a host in a zone without a default subnet (made by hand) stays there and counts in none
    assert.deepEqual(zones(['z-x', undefined, undefined]), [null, 'z-a', 'z-b'])
    assert.throws(() => spreadOverZones([undefined], []), /no default subnet .*create-default-subnet/)
  })

  it("Swarm's ports: never open to an address range (revoked), opened to the group itself as one rule each", () => {
    const current = [{ port: 2377, cidr: '0.0.0.0/0' }, { port: 4789, cidr: '10.0.0.0/8', protocol: 'udp' as const }, { port: 4789, cidr: '10.0.0.0/8' }]
    assert.deepEqual(planIngress([...desiredIngress('1.1.1.1/32'), ...current], '1.1.1.1/32').revoke, current.slice(0, 2))
    assert.deepEqual(toIpPermissions([current[1]!], true), [{ IpProtocol: 'udp', FromPort: 4789, ToPort: 4789, IpRanges: [{ CidrIp: '10.0.0.0/8', Description: undefined }] }])
    const perms = selfPermissions(SWARM_PORTS, 'sg-9')
    assert.deepEqual(perms[2], { IpProtocol: 'udp', FromPort: 7946, ToPort: 7946, UserIdGroupPairs: [{ GroupId: 'sg-9', Description: "Docker Swarm between the stage's hosts" }] })
    assert.deepEqual(flattenSelf(perms, 'sg-9'), [...SWARM_PORTS])
    assert.deepEqual(flattenSelf(perms, 'sg-other'), [], 'from another group is not from itself')
    assert.deepEqual(flattenIngress(perms), [], 'no address range in them')
  })

  it('public IP lookup: a /32 from checkip, a clear error otherwise', async () => {
    const answer = (body: string, status = 200) => (async () => new Response(body, { status })) as unknown as typeof fetch
    assert.equal(await myPublicCidr(answer('203.0.113.7\n')), '203.0.113.7/32')
    await assert.rejects(myPublicCidr(answer('<html>', 200)), /not an IPv4 address: set MYMDB_SSH_CIDR/)
    await assert.rejects(myPublicCidr(answer('', 503)), /HTTP 503.*set MYMDB_SSH_CIDR/)
    const offline = (async () => {
      throw new TypeError('fetch failed')
    }) as unknown as typeof fetch
    await assert.rejects(myPublicCidr(offline), /could not find your public IP address .*fetch failed/)
  })

  it('waitForTcp: true once something listens, false after the bound', async () => {
    const server = createServer((s) => s.on('error', () => {}).end())
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    assert.equal(await waitForTcp('127.0.0.1', port, 2000), true)
    await new Promise((r) => server.close(r))
    const t0 = Date.now()
    assert.equal(await waitForTcp('127.0.0.1', port, 600, 200), false)
    assert.ok(Date.now() - t0 < 3000)
  })

  it('destroy lines: one per resource, none when nothing is left', () => {
    assert.deepEqual(removalLines({ instances: [], securityGroup: null, keyPair: false, instanceProfile: null, role: false, backupRole: false, elasticIps: [] }, 'qa'), [])
    assert.deepEqual(
      removalLines({ instances: [{ id: 'i-1', node: 1 }], securityGroup: 'sg-1', keyPair: true, instanceProfile: { roles: ['r'] }, role: true, backupRole: true, elasticIps: [] }, 'qa'),
      [
        'instance mymdb-qa i-1 (and its disk)',
        'security group mymdb-qa-web sg-1',
        'key pair mymdb-qa',
        'instance profile mymdb-qa-host',
        'IAM role mymdb-qa-host (and its policies)',
        'IAM role mymdb-qa-backup (and its policies; the backups stay in their bucket)',
      ],
    )
  })
})

describe('host: key files', () => {
  it('a missing file is fine (created later); a private key gives its OpenSSH public key', () => {
    const { dir } = tempDir()
    assert.deepEqual(inspectKeyFile(join(dir, 'none.pem')), { path: join(dir, 'none.pem'), exists: false })
    const ed = join(dir, 'ed.pem')
    writeFileSync(ed, ed25519Pem(), { mode: 0o600 })
    const k = inspectKeyFile(ed, 'mymdb-qa')
    assert.ok(k.exists)
    assert.match(k.exists ? k.publicKey : '', /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/=]+ mymdb-qa$/)
    // PEM (PKCS#1) RSA keys are read too
    const rsa = join(dir, 'rsa.pem')
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 })
    const r = inspectKeyFile(rsa)
    assert.match(r.exists ? r.publicKey : '', /^ssh-rsa AAAAB3NzaC1yc2E/)
  })

  it('a public key, or a PKCS#8 key the SSH client cannot use: ConfigError naming the fix', () => {
    const { dir } = tempDir()
    const pub = join(dir, 'id.pub')
    writeFileSync(pub, `${sshKeyPair().public} me@laptop\n`)
    assert.throws(() => inspectKeyFile(pub), (e: Error & { exitCode?: number }) => e.exitCode === 2 && /is a public key: MYMDB_SSH_KEY_FILE must name the private key/.test(e.message))
    const p8 = join(dir, 'p8.pem')
    writeFileSync(p8, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }))
    assert.throws(() => inspectKeyFile(p8), /is a PKCS#8 private key, which the SSH client cannot use: convert it to OpenSSH format with ssh-keygen -p/)
  })

  it('unreadable, not a key, or a directory: ConfigError (exit 2)', () => {
    const { dir } = tempDir()
    const junk = join(dir, 'junk.pem')
    writeFileSync(junk, 'hello')
    assert.throws(() => inspectKeyFile(junk), (e: Error & { exitCode?: number }) => e.exitCode === 2 && /not a usable private key/.test(e.message))
    const sub = join(dir, 'sub')
    mkdirSync(sub)
    assert.throws(() => inspectKeyFile(sub), (e: Error & { exitCode?: number }) => e.exitCode === 2 && /cannot read the SSH key file/.test(e.message))
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked.pem')
      writeFileSync(locked, ed25519Pem())
      chmodSync(locked, 0o000)
      assert.throws(() => inspectKeyFile(locked), /cannot read the SSH key file/)
    }
  })

  it('saveKeyFile: mode 0600, ~/.ssh created 0700, never overwrites', () => {
    const { dir } = tempDir()
    const path = join(dir, 'home', '.ssh', 'mymdb-qa.pem')
    saveKeyFile(path, 'KEY')
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.equal(statSync(join(dir, 'home', '.ssh')).mode & 0o777, 0o700)
    assert.equal(readFileSync(path, 'utf8'), 'KEY\n')
    assert.throws(() => saveKeyFile(path, 'OTHER'), /EEXIST/)
    assert.equal(readFileSync(path, 'utf8'), 'KEY\n')
  })
})

describe('host: main without AWS', () => {
  it('--help, unknown flags', async () => {
    const help = testDeps(noDocker())
    assert.equal(await main(['--help'], {}, { ...help, awsClients: noAws }), 0)
    assert.match(help.log.text(), /--dry-run/)
    assert.match(help.log.text(), /--no-wait-ssh/)
    const bad = testDeps(noDocker())
    assert.equal(await main(['--bogus'], BASE_ENV, { ...bad, awsClients: noAws }), 2)
  })

  it('bad settings: exit 2 listing them, and no AWS call', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ AWS_REGION: '' }, /AWS_REGION/],
      [{ DJANGO_UPLOAD_S3_BUCKET: '' }, /DJANGO_UPLOAD_S3_BUCKET/],
      [{ MYMDB_SSH_CIDR: '1.2.3.4' }, /MYMDB_SSH_CIDR="1\.2\.3\.4" - expected an IPv4 CIDR/],
      [{ MYMDB_SSH_CIDR: '300.2.3.4/32' }, /MYMDB_SSH_CIDR/],
      [{ MYMDB_AMI_ID: 'ubuntu' }, /MYMDB_AMI_ID/],
      [{ MYMDB_STAGE: 'Prod' }, /MYMDB_STAGE/],
      [{ MYMDB_INSTANCE_TYPE: 'big' }, /MYMDB_INSTANCE_TYPE/],
    ]
    for (const [over, re] of cases) {
      const deps = testDeps(noDocker())
      const { dir } = tempDir()
      assert.equal(await main([], { ...BASE_ENV, HOME: dir, ...over }, { ...deps, awsClients: noAws }), 2, JSON.stringify(over))
      assert.match(deps.log.err.join(''), re)
    }
  })

  it('an unusable key file: exit 2, no AWS call', async () => {
    const { dir } = tempDir()
    const junk = join(dir, 'junk.pem')
    writeFileSync(junk, 'not a key')
    const deps = testDeps(noDocker())
    assert.equal(await main([], { ...BASE_ENV, HOME: dir, MYMDB_SSH_KEY_FILE: junk }, { ...deps, awsClients: noAws }), 2)
    assert.match(deps.log.err.join(''), /junk\.pem is not a usable private key/)
  })

  it('no MYMDB_SSH_CIDR and no way to look up the IP: says to set it, no AWS call', async () => {
    const { dir } = tempDir()
    const deps = testDeps(noDocker())
    const offline = (async () => {
      throw new TypeError('fetch failed')
    }) as unknown as typeof fetch
    const env = { ...BASE_ENV, HOME: dir, MYMDB_SSH_CIDR: '' }
    const noCall = { send: async () => assert.fail('an AWS call was made') }
    const clients = () => ({ region: 'us-west-2', ec2: noCall, iam: noCall, ssm: noCall }) as unknown as AwsClients
    assert.equal(await main([], env, { ...deps, awsClients: clients, fetch: offline }), 1)
    assert.match(deps.log.err.join(''), /set MYMDB_SSH_CIDR/)
  })

  it('destroy and stop --aws: bad settings exit 2 before AWS; stop --aws never touches Docker', async () => {
    const d = testDeps(noDocker())
    assert.equal(await destroyMain([], { AWS_REGION: 'nowhere' }, { ...d, awsClients: noAws }), 2)
    assert.match(d.log.err.join(''), /AWS_REGION/)
    const h = testDeps(noDocker())
    assert.equal(await destroyMain(['--help'], {}, h), 0)
    assert.match(h.log.text(), /--delete-key-file/)
    const s = testDeps(noDocker())
    assert.equal(await stopMain(['--aws'], { MYMDB_STAGE: 'Bad' }, { ...s, awsClients: noAws }), 2)
    assert.match(s.log.err.join(''), /MYMDB_STAGE/)
    const both = testDeps(noDocker())
    assert.equal(await stopMain(['--aws', '--delete-data'], { AWS_REGION: 'us-west-2' }, { ...both, awsClients: noAws }), 2)
  })

  it('stop --aws asks AWS, not Docker', async () => {
    const calls: string[] = []
    const fakeClients = {
      region: 'us-west-2',
      ec2: {
        send: async (cmd: { constructor: { name: string } }) => {
          calls.push(cmd.constructor.name)
          return { Reservations: [] }
        },
      },
      dynamodb: fakeLockTable(),
    } as unknown as AwsClients
    const deps = testDeps(noDocker())
    assert.equal(await stopMain(['--aws'], { AWS_REGION: 'us-west-2', MYMDB_STAGE: 'qa' }, { ...deps, awsClients: () => fakeClients }), 0, deps.log.text())
    assert.deepEqual(calls, ['DescribeInstancesCommand'])
    assert.match(deps.log.text(), /no EC2 host for stage qa in us-west-2: nothing to stop/)
  })
})


/** Fake clients answering by command name; records what was sent. */
function fakeClients(answers: Record<string, () => unknown>): AwsClients & { sent: string[] } {
  const sent: string[] = []
  const send = async (cmd: { constructor: { name: string } }) => {
    const name = cmd.constructor.name.replace(/Command$/, '')
    sent.push(name)
    const a = answers[name]
    if (!a) throw new Error(`unexpected AWS call ${name}`)
    return a()
  }
  const noSuchEntity = Object.assign(new Error('not found'), { name: 'NoSuchEntity' })
  return {
    region: 'us-west-2',
    ec2: { send },
    iam: {
      send: async (cmd: { constructor: { name: string } }) => {
        const name = cmd.constructor.name.replace(/Command$/, '')
        sent.push(name)
        if (answers[name]) return answers[name]()
        throw noSuchEntity
      },
    },
    ...absentStageServices(sent),
    // the stage's lock (destroy asks holding it)
    dynamodb: fakeLockTable(),
    sent,
  } as unknown as AwsClients & { sent: string[] }
}

describe('destroy and findHost with a fake AWS', () => {
  const instances = {
    DescribeInstances: () => ({
      Reservations: [
        { Instances: [{ InstanceId: 'i-new', State: { Name: 'running' }, LaunchTime: new Date(2026, 1, 2) }] },
        { Instances: [{ InstanceId: 'i-old', State: { Name: 'stopped' }, LaunchTime: new Date(2026, 1, 1), PublicIpAddress: '', PublicDnsName: '' }] },
      ],
    }),
    DescribeSecurityGroups: () => ({ SecurityGroups: [] }),
    DescribeKeyPairs: () => ({ KeyPairs: [] }),
    DescribeAddresses: () => ({ Addresses: [] }),
    // (no database on RDS)
    DescribeVpcs: () => ({ Vpcs: [{ VpcId: 'vpc-1', CidrBlock: '172.31.0.0/16' }] }),
    DescribeSubnets: () => ({ Subnets: [] }),
    DescribeRouteTables: () => ({ RouteTables: [] }),
  }

  it('findHost: the oldest of the stage, with empty addresses as undefined', async () => {
    const c = fakeClients(instances)
    assert.deepEqual(await findHost(c, 'qa'), { instanceId: 'i-old', state: 'stopped', publicIp: undefined, publicDns: undefined })
  })

  it('on a terminal, destroy asks first; "no" removes nothing', async () => {
    const c = fakeClients(instances)
    let asked = ''
    const deps = testDeps(noDocker(), { interactive: true, confirm: async (q) => ((asked = q), false) })
    const env = { AWS_REGION: 'us-west-2', MYMDB_STAGE: 'qa', HOME: tempDir().dir }
    assert.equal(await destroyMain([], env, { ...deps, awsClients: () => c }), 1)
    assert.equal(asked, 'Remove them?')
    assert.match(deps.log.text(), /instance mymdb-qa i-new \(and its disk\)/)
    assert.match(deps.log.err.join(''), /nothing removed \(not confirmed\)/)
    assert.ok(!c.sent.some((n) => /Terminate|Delete|Remove/.test(n)), c.sent.join(' '))
  })
})

describe('host: apply executes the plan and reads nothing again', () => {
  const want = { stage: 'qa', sshCidr: '1.1.1.1/32', bucket: 'b1', backupBucket: 'b1-backups', vpcId: 'vpc-1' }
  /** Fake clients that answer every write and record it; a read fails the test. */
  const writer = () => {
    const sent: string[] = []
    const send = async (cmd: { constructor: { name: string }; input?: unknown }) => {
      const name = cmd.constructor.name.replace(/Command$/, '')
      if (/^(Describe|Get|List)/.test(name)) throw new Error(`apply read AWS again: ${name}`)
      sent.push(name)
      if (name === 'CreateKeyPair') return { KeyMaterial: sshKeyPair().private }
      if (name === 'CreateSecurityGroup') return { GroupId: 'sg-new' }
      if (name === 'RunInstances') return { Instances: [{ InstanceId: 'i-new' }] }
      return {}
    }
    return { sent, clients: { region: 'us-west-2', ec2: { send }, iam: { send } } as unknown as AwsClients }
  }
  const launch = async (): Promise<LaunchSpec> => ({ stage: 'qa', node: 1, amiId: 'ami-12345678', instanceType: 't3.micro', keyName: 'mymdb-qa', securityGroupId: 'sg-new', instanceProfile: 'mymdb-qa-host', userData: '#!/bin/bash\n', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRGjUg3kUIzwlw0VdxDydD6nuMlJwhGWyVr+9chGiCa', rootDevice: '/dev/xvda', diskGb: 8 })
  /** Every apply part, in the order hostStep runs them; what was sent and what came back. */
  const applyAll = async (plan: ReturnType<typeof planHost>, launchSpec: () => Promise<LaunchSpec>) => {
    const { sent, clients } = writer()
    const log = captureLog()
    await applyKeyPair(clients, plan, log)
    const groupId = await applySecurityGroup(clients, plan, log)
    await applyHostRole(clients, plan, log)
    const instanceId = await applyInstance(clients, plan.nodes[0]!, launchSpec, log)
    return { sent, groupId, instanceId }
  }

  it('an empty account: exactly the creations the plan lists, in order', async () => {
    const { dir } = tempDir()
    const plan = planHost(
      { keyPairInEc2: false, keyFile: { path: join(dir, 'k.pem'), exists: false }, securityGroup: null, role: { exists: false, policy: null }, instanceProfile: null, ...NOTHING },
      want,
    )
    const { sent, groupId, instanceId } = await applyAll(plan, launch)
    assert.deepEqual([groupId, instanceId], ['sg-new', 'i-new'])
    assert.deepEqual(sent, ['CreateKeyPair', 'CreateSecurityGroup', 'AuthorizeSecurityGroupIngress', 'CreateRole', 'PutRolePolicy', 'CreateRole', 'PutRolePolicy', 'CreateInstanceProfile', 'AddRoleToInstanceProfile', 'RunInstances'])
  })
  it('everything in place: apply sends nothing at all', async () => {
    const plan = planHost(allInPlace(), want)
    const { sent, groupId, instanceId } = await applyAll(plan, () => assert.fail('no launch'))
    assert.deepEqual([groupId, instanceId], ['sg-1', 'i-1'])
    assert.deepEqual(sent, [])
  })
  it('a new instance profile not yet visible to EC2: the same launch again, then the instance', async () => {
    let tries = 0
    const send = async () => {
      tries++
      if (tries < 3) throw Object.assign(new Error('Value (mymdb-qa-host) for parameter iamInstanceProfile.name is invalid'), { name: 'InvalidParameterValue' })
      return { Instances: [{ InstanceId: 'i-late' }] }
    }
    const plan = planHost(
      { keyPairInEc2: true, keyFile: { path: '/k.pem', exists: true, publicKey: 'x' }, securityGroup: null, role: { exists: false, policy: null }, instanceProfile: null, ...NOTHING },
      want,
    )
    const log = captureLog()
    const id = await applyInstance({ region: 'us-west-2', ec2: { send } } as unknown as AwsClients, plan.nodes[0]!, launch, log, 0)
    assert.equal(id, 'i-late')
    assert.equal(tries, 3)
    assert.match(log.text(), /not visible to EC2 yet; retrying in 0 s \(2\/12\)/)
  })
})

describe('host: the elastic IP', () => {
  it('none: allocated with the stage tags, then associated; unassociated: associated; with the instance: no call', async () => {
    const log = captureLog()
    const sent: { name: string; input: any }[] = []
    const clients = {
      region: 'us-west-2',
      ec2: {
        send: async (cmd: { constructor: { name: string }; input: any }) => {
          const name = cmd.constructor.name.replace(/Command$/, '')
          sent.push({ name, input: cmd.input })
          return name === 'AllocateAddress' ? { AllocationId: 'eipalloc-9', PublicIp: '198.51.100.9' } : {}
        },
      },
    } as unknown as AwsClients
    assert.equal(await applyElasticIp(clients, { stage: 'qa', node: 1, elasticIp: { existing: null } }, 'i-1', log), '198.51.100.9')
    assert.deepEqual(sent.map((s) => s.name), ['AllocateAddress', 'AssociateAddress'])
    assert.deepEqual(sent[0]?.input.TagSpecifications[0].Tags, [{ Key: 'Name', Value: 'mymdb-qa' }, { Key: 'Project', Value: 'mymdb' }, { Key: 'Stage', Value: 'qa' }, { Key: 'Node', Value: '1' }])
    assert.deepEqual(sent[1]?.input, { AllocationId: 'eipalloc-9', InstanceId: 'i-1', AllowReassociation: true })
    sent.length = 0
    await applyElasticIp(clients, { stage: 'qa', node: 1, elasticIp: { existing: { node: 1, allocationId: 'eipalloc-9', publicIp: '198.51.100.9' } } }, 'i-2', log)
    assert.deepEqual(sent.map((s) => s.name), ['AssociateAddress'])
    sent.length = 0
    await applyElasticIp(clients, { stage: 'qa', node: 1, elasticIp: { existing: { node: 1, allocationId: 'eipalloc-9', publicIp: '198.51.100.9', instanceId: 'i-2' } } }, 'i-2', log)
    assert.deepEqual(sent, [])
  })
})
