// The stage's database on RDS and its private network (tasks/lib/aws/database.ts, dbnetwork.ts)
// against moto, read back with the SDK: what AWS would run is what was asked for, a re-run
// makes no twins, and what drifted is put back.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { AttachInternetGatewayCommand, AuthorizeSecurityGroupIngressCommand, CreateInternetGatewayCommand, CreateRouteCommand, CreateSecurityGroupCommand, DescribeInternetGatewaysCommand, DescribeRouteTablesCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2'
import { DeleteDBInstanceCommand, DescribeDBInstancesCommand, DescribeDBParametersCommand, DescribeDBSubnetGroupsCommand, ModifyDBInstanceCommand } from '@aws-sdk/client-rds'
import { awsClients, type AwsClients } from '../../tasks/lib/aws/clients.ts'
import { DATABASE_DEFAULTS, applyDatabase, findDatabase, planDatabase } from '../../tasks/lib/aws/database.ts'
import { applyDbNetwork, findDbNetwork, planDbNetwork } from '../../tasks/lib/aws/dbnetwork.ts'
import { defaultVpcId } from '../../tasks/lib/aws/securitygroup.ts'
import { startMoto, type Moto } from '../rig/moto.ts'
import { main } from '../../tasks/database.ts'
import { captureLog } from '../unit/fakes.ts'

const STAGE = 'dbtest'

describe('the database on RDS (moto)', { timeout: 5 * 60_000 }, () => {
  let moto: Moto
  let clients: AwsClients
  let vpcId = ''
  let hosts = ''

  /** The whole database step as deploy:aws will run it: find, plan, apply both modules. */
  const deployDatabase = async (settings = DATABASE_DEFAULTS) => {
    const log = captureLog()
    const network = planDbNetwork(STAGE, await findDbNetwork(clients, STAGE, vpcId, hosts))
    const database = planDatabase(STAGE, settings, await findDatabase(clients, STAGE))
    const made = await applyDbNetwork(clients, STAGE, network, hosts)
    const result = await applyDatabase(clients, STAGE, settings, database, made, log, 0)
    return { lines: [...network.lines, ...database.lines], result, log }
  }

  /** npm run database with the stage's settings (no .env file). */
  const runTask = async (argv: string[], extra: Record<string, string> = {}) => {
    const log = captureLog()
    const code = await main(argv, { PATH: process.env.PATH, HOME: process.env.HOME, ...moto.env, AWS_REGION: 'us-west-2', MYMDB_STAGE: STAGE, MYMDB_DATABASE: 'rds', ...extra }, { log, envFile: '/nonexistent/.env', interactive: false, pollSeconds: 0 })
    return { code, text: log.text() }
  }

  before(async () => {
    moto = await startMoto('mymdb-rig-moto-database')
    clients = awsClients('us-west-2', moto.env)
    vpcId = await defaultVpcId(clients)
    hosts = (await clients.ec2.send(new CreateSecurityGroupCommand({ GroupName: `mymdb-${STAGE}-web`, Description: 'the hosts', VpcId: vpcId }))).GroupId!
  })
  after(async () => {
    await moto?.stop()
  })

  it('made from nothing: private subnets in two zones, TLS only, encrypted, backed up, protected, not public, reached from the hosts only', async () => {
    const { lines, result } = await deployDatabase()
    assert.deepEqual(lines.map((l) => l.action), ['create', 'create', 'create', 'create', 'create', 'create', 'create'])
    assert.match(result.endpoint.address, /^mymdb-dbtest\./)
    assert.equal(result.endpoint.port, 5432)
    assert.match(result.masterSecretArn, /^arn:aws:secretsmanager:/)

    const db = (await clients.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'mymdb-dbtest' }))).DBInstances![0]!
    assert.deepEqual(
      [db.Engine, db.DBInstanceClass, db.AllocatedStorage, db.StorageEncrypted, db.PubliclyAccessible, db.BackupRetentionPeriod, db.DeletionProtection, db.DBParameterGroups?.[0]?.DBParameterGroupName, db.DBSubnetGroup?.DBSubnetGroupName],
      ['postgres', 'db.t4g.micro', 20, true, false, 7, true, 'mymdb-dbtest-postgres17', 'mymdb-dbtest-db'],
    )
    const params = await clients.rds.send(new DescribeDBParametersCommand({ DBParameterGroupName: 'mymdb-dbtest-postgres17', Source: 'user' }))
    assert.deepEqual(params.Parameters?.map((p) => `${p.ParameterName}=${p.ParameterValue}`), ['rds.force_ssl=1'])

    // the subnet group's subnets: two zones, no public addresses, on a route table with no way out of the VPC
    const group = (await clients.rds.send(new DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: 'mymdb-dbtest-db' }))).DBSubnetGroups![0]!
    const ids = group.Subnets!.map((s) => s.SubnetIdentifier!)
    const subnets = (await clients.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ids }))).Subnets!
    assert.equal(new Set(subnets.map((s) => s.AvailabilityZone)).size, 2)
    assert.ok(subnets.every((s) => s.MapPublicIpOnLaunch === false), 'no public addresses')
    const tables = (await clients.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: ids }] }))).RouteTables!
    assert.equal(tables.length, 1)
    assert.deepEqual(tables[0]!.Routes!.map((r) => r.GatewayId), ['local'])
    assert.deepEqual(tables[0]!.Associations!.map((a) => a.SubnetId).sort(), [...ids].sort())

    // 5432 from the hosts' security group, nothing else
    const sg = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: db.VpcSecurityGroups!.map((g) => g.VpcSecurityGroupId!) }))).SecurityGroups![0]!
    assert.deepEqual(sg.IpPermissions!.map((p) => [p.IpProtocol, p.FromPort, p.ToPort, p.UserIdGroupPairs!.map((u) => u.GroupId), p.IpRanges!.length]), [['tcp', 5432, 5432, [hosts], 0]])

    // deletion protection holds
    await assert.rejects(clients.rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: 'mymdb-dbtest', SkipFinalSnapshot: true })), /protect/i)
  })

  it('run again: nothing to do and no twins', async () => {
    const { lines } = await deployDatabase()
    assert.deepEqual(lines.map((l) => l.action), ['exists', 'exists', 'exists', 'exists', 'exists', 'exists', 'exists'])
    const ours = await clients.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }] }))
    assert.equal(ours.Subnets!.length, 2)
    const tables = await clients.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }] }))
    assert.equal(tables.RouteTables!.length, 1)
  })

  it('drift put back: made public, unprotected, without backups, another port open to the world and a route to the internet', async () => {
    await clients.rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: 'mymdb-dbtest', PubliclyAccessible: true, DeletionProtection: false, BackupRetentionPeriod: 0, ApplyImmediately: true }))
    const sgId = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['mymdb-dbtest-db'] }] }))).SecurityGroups![0]!.GroupId!
    // (another port: moto files a second source of 5432 under the hosts' rule and cannot revoke it alone; AWS keeps one rule per source)
    await clients.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: sgId, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] }))
    const table = (await clients.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'tag:Stage', Values: [STAGE] }] }))).RouteTables![0]!.RouteTableId!
    const attached = (await clients.ec2.send(new DescribeInternetGatewaysCommand({ Filters: [{ Name: 'attachment.vpc-id', Values: [vpcId] }] }))).InternetGateways?.[0]?.InternetGatewayId
    const igw = attached ?? (await clients.ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway!.InternetGatewayId!
    if (!attached) await clients.ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: igw, VpcId: vpcId }))
    await clients.ec2.send(new CreateRouteCommand({ RouteTableId: table, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igw }))

    const { lines, log } = await deployDatabase()
    assert.deepEqual(lines.filter((l) => l.action !== 'exists').map((l) => `${l.resource}: ${l.detail}`), [
      'route table mymdb-dbtest-private: a route out of the VPC removed',
      'security group mymdb-dbtest-db: revoke 22 from 0.0.0.0/0',
      'RDS instance mymdb-dbtest: BackupRetentionPeriod 7, PubliclyAccessible false, DeletionProtection true',
    ])
    assert.match(log.text(), /\[database\] RDS instance mymdb-dbtest: BackupRetentionPeriod, PubliclyAccessible, DeletionProtection changed/)
    const db = (await clients.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'mymdb-dbtest' }))).DBInstances![0]!
    assert.deepEqual([db.PubliclyAccessible, db.DeletionProtection, db.BackupRetentionPeriod], [false, true, 7])
    const sg = (await clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [sgId] }))).SecurityGroups![0]!
    assert.deepEqual(sg.IpPermissions!.flatMap((p) => [...p.UserIdGroupPairs!.map((u) => u.GroupId), ...p.IpRanges!.map((r) => r.CidrIp)]), [hosts])
    const routes = (await clients.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [table] }))).RouteTables![0]!.Routes!
    assert.deepEqual(routes.map((r) => r.GatewayId), ['local'])
    assert.deepEqual((await deployDatabase()).lines.map((l) => l.action), ['exists', 'exists', 'exists', 'exists', 'exists', 'exists', 'exists'])
  })

  it('npm run database: the step alone, the same state found (nothing to do); refused without MYMDB_DATABASE=rds', async () => {
    const r = await runTask([])
    assert.equal(r.code, 0, r.text)
    assert.match(r.text, /\[database\] +RDS instance mymdb-dbtest +exists/)
    assert.doesNotMatch(r.text, / create | update /)
    assert.match(r.text, /\[database\] mymdb-dbtest available at mymdb-dbtest\.[\w.-]+:5432 \(TLS only/)
    const container = await runTask([], { MYMDB_DATABASE: 'container' })
    assert.equal(container.code, 2)
    assert.match(container.text, /MYMDB_DATABASE is container: .* set MYMDB_DATABASE=rds/)
  })

  it("a stage without hosts yet: the dry run shows every part to create; a real run stops before making anything, naming npm run host", async () => {
    const fresh = { MYMDB_STAGE: 'nohosts' }
    const dry = await runTask(['--dry-run'], fresh)
    assert.equal(dry.code, 0, dry.text)
    assert.match(dry.text, /\[database\] +RDS instance mymdb-nohosts +create +PostgreSQL 17, db\.t4g\.micro, 20 GB encrypted/)
    assert.match(dry.text, /admitted from the hosts' security group mymdb-nohosts-web \(made by the host step\)/)
    const real = await runTask([], fresh)
    assert.equal(real.code, 1, real.text)
    assert.match(real.text, /the hosts' security group mymdb-nohosts-web does not exist yet: run npm run host first/)
    const made = await clients.rds.send(new DescribeDBInstancesCommand({})).then((r) => (r.DBInstances ?? []).map((d) => d.DBInstanceIdentifier))
    assert.ok(!made.includes('mymdb-nohosts'), made.join(', '))
  })
})
