import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DATABASE_DEFAULTS, planDatabase, rdsTarget, type DbInstanceFound } from '../../tasks/lib/aws/database.ts'
import { freeCidrs, planDbNetwork, type DbNetworkFound } from '../../tasks/lib/aws/dbnetwork.ts'

const DEFAULT_VPC: DbNetworkFound = {
  vpc: { id: 'vpc-1', cidr: '172.31.0.0/16' },
  zones: ['us-west-2a', 'us-west-2b', 'us-west-2c'],
  taken: ['172.31.0.0/20', '172.31.16.0/20', '172.31.32.0/20'],
  routeTable: null,
  subnets: [],
  subnetGroup: null,
  securityGroup: null,
}

const instance = (o: Partial<DbInstanceFound> = {}): DbInstanceFound => ({
  status: 'available',
  instanceClass: 'db.t4g.micro',
  storageGb: 20,
  backupDays: 7,
  public: false,
  encrypted: true,
  deletionProtection: true,
  managedPassword: true,
  parameterGroup: 'mymdb-prod-postgres17',
  endpoint: { address: 'mymdb-prod.x.rds.amazonaws.com', port: 5432 },
  masterSecretArn: 'arn:secret',
  ...o,
})

describe('the database on RDS: its network', () => {
  it('free /24 blocks from the top of the VPC, none overlapping a subnet', () => {
    assert.deepEqual(freeCidrs('172.31.0.0/16', DEFAULT_VPC.taken, 2), ['172.31.255.0/24', '172.31.254.0/24'])
    assert.deepEqual(freeCidrs('10.0.0.0/23', ['10.0.1.0/24'], 1), ['10.0.0.0/24'])
    assert.deepEqual(freeCidrs('172.31.0.0/16', ['172.31.240.0/20'], 1), ['172.31.239.0/24'])
    assert.throws(() => freeCidrs('10.0.0.0/24', ['10.0.0.0/24'], 1), /no 1 free \/24 blocks/)
  })
  it('nothing yet: a private route table, a subnet in each of the first two zones, the subnet group, a group admitting 5432 from the hosts only', () => {
    const p = planDbNetwork('prod', DEFAULT_VPC)
    assert.deepEqual(p.newSubnets, [{ zone: 'us-west-2a', cidr: '172.31.255.0/24' }, { zone: 'us-west-2b', cidr: '172.31.254.0/24' }])
    assert.deepEqual(p.lines.map((l) => `${l.resource} ${l.action}`), [
      'route table mymdb-prod-private create',
      'subnet mymdb-prod-db-us-west-2a create',
      'subnet mymdb-prod-db-us-west-2b create',
      'DB subnet group mymdb-prod-db create',
      'security group mymdb-prod-db create',
    ])
    assert.equal(p.allowHosts, true)
  })
  it('as wanted: nothing to do; a route out, a lost subnet and other sources of 5432 are put right', () => {
    const subnets = [{ id: 's-a', zone: 'us-west-2a', cidr: '172.31.255.0/24' }, { id: 's-b', zone: 'us-west-2b', cidr: '172.31.254.0/24' }]
    const done: DbNetworkFound = {
      ...DEFAULT_VPC,
      taken: [...DEFAULT_VPC.taken, '172.31.255.0/24', '172.31.254.0/24'],
      routeTable: { id: 'rtb-1', subnets: ['s-a', 's-b'], routesOut: [] },
      subnets,
      subnetGroup: { subnets: ['s-a', 's-b'] },
      securityGroup: { id: 'sg-db', rules: [{ id: 'sgr-1', port: '5432', source: 'the-hosts' }] },
    }
    const same = planDbNetwork('prod', done)
    assert.deepEqual(same.lines.map((l) => l.action), ['exists', 'exists', 'exists', 'exists', 'exists'])
    assert.deepEqual([same.newSubnets, same.allowHosts, same.removeRoutesOut, same.associated, same.revoke], [[], false, [], ['s-a', 's-b'], []])
    const drifted = planDbNetwork('prod', {
      ...done,
      routeTable: { id: 'rtb-1', subnets: ['s-a'], routesOut: ['0.0.0.0/0'] },
      subnets: [subnets[0]!],
      securityGroup: {
        id: 'sg-db',
        rules: [
          { id: 'sgr-1', port: '5432', source: 'the-hosts' },
          { id: 'sgr-2', port: '5432', source: 'sg-other' },
          { id: 'sgr-3', port: '5432', source: '0.0.0.0/0' },
          { id: 'sgr-4', port: '22', source: 'the-hosts' },
        ],
      },
    })
    assert.deepEqual([drifted.removeRoutesOut, drifted.associated], [['0.0.0.0/0'], ['s-a']])
    assert.deepEqual(drifted.newSubnets, [{ zone: 'us-west-2b', cidr: '172.31.253.0/24' }])
    assert.equal(drifted.subnetGroup, 'update')
    assert.deepEqual([drifted.allowHosts, drifted.revoke], [false, ['sgr-2', 'sgr-3', 'sgr-4']])
    assert.equal(drifted.lines.at(-1)!.detail, 'revoke 5432 from sg-other, revoke 5432 from 0.0.0.0/0, revoke 22 from the-hosts')
    const noHosts = planDbNetwork('prod', { ...done, securityGroup: { id: 'sg-db', rules: [] } })
    assert.deepEqual([noHosts.allowHosts, noHosts.revoke, noHosts.lines.at(-1)!.detail], [true, [], 'allow 5432 from the hosts'])
  })
  it('one zone only: RDS cannot be placed', () => {
    assert.throws(() => planDbNetwork('prod', { ...DEFAULT_VPC, zones: ['us-west-2a'] }), /subnets in 1 zone\(s\); RDS needs 2/)
  })
})

describe('the database on RDS: the instance', () => {
  it('nothing yet: the TLS-only parameter group and the instance are made', () => {
    const p = planDatabase('prod', DATABASE_DEFAULTS, { parameterGroup: null, instance: null })
    assert.deepEqual([p.parameterGroup, p.instance], ['create', 'create'])
    assert.match(p.lines[1]!.detail, /PostgreSQL 17, db\.t4g\.micro, 20 GB encrypted, backups kept 7 days, not public, deletion protection, master password in Secrets Manager/)
  })
  it('as wanted: nothing; drifted (public, unprotected, no backups, a bigger class wanted): each put back by one modify', () => {
    assert.equal(planDatabase('prod', DATABASE_DEFAULTS, { parameterGroup: { forceSsl: true }, instance: instance() }).instance, 'exists')
    const p = planDatabase('prod', { ...DATABASE_DEFAULTS, instanceClass: 'db.t4g.small', storageGb: 40 }, {
      parameterGroup: { forceSsl: false },
      instance: instance({ public: true, deletionProtection: false, backupDays: 0, managedPassword: false, parameterGroup: 'default.postgres17' }),
    })
    assert.equal(p.parameterGroup, 'update')
    assert.deepEqual(p.modify, {
      DBInstanceClass: 'db.t4g.small',
      AllocatedStorage: 40,
      BackupRetentionPeriod: 7,
      PubliclyAccessible: false,
      DeletionProtection: true,
      ManageMasterUserPassword: true,
      DBParameterGroupName: 'mymdb-prod-postgres17',
    })
  })
  it('what AWS cannot change in place is reported, all of it, with the fix', () => {
    assert.throws(() => planDatabase('prod', DATABASE_DEFAULTS, { parameterGroup: null, instance: instance({ encrypted: false, storageGb: 100 }) }), (e: Error) => {
      assert.match(e.message, /unencrypted storage, which AWS cannot change in place: take a snapshot, copy it encrypted/)
      assert.match(e.message, /has 100 GB and RDS storage cannot shrink: set MYMDB_DB_STORAGE_GB=100 or more/)
      return true
    })
  })
})

describe('how the start reaches the database', () => {
  it('its endpoint, the secret of its master password and the region; nothing while it has no endpoint', () => {
    assert.deepEqual(rdsTarget({ endpoint: { address: 'db.example', port: 5432 }, masterSecretArn: 'arn:s' }, 'us-west-2'), { address: 'db.example', port: 5432, masterSecretArn: 'arn:s', region: 'us-west-2' })
    assert.equal(rdsTarget({ endpoint: null, masterSecretArn: 'arn:s' }, 'us-west-2'), undefined)
  })
})
