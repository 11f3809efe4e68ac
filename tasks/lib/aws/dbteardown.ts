// What destroy:aws does with the stage's RDS database (MYMDB_DATABASE=rds): by default it keeps
// it (deletion protection, its data and automated backups stay) and only takes the hosts' group
// out of its security group (the hosts' group goes, and a group another one refers to cannot be
// deleted; the next deploy admits the new hosts). With --delete-database: a final snapshot first
// (RDS takes it as part of the deletion: the instance is never deleted without one), then the
// instance, then its private network and parameter group. What is gone already is skipped.
import type { Log } from '../log.ts'
import { databaseResources } from '../names.ts'
import { EC2, RDS, aws, type AwsClients } from './clients.ts'
import { findDatabase } from './database.ts'
import { HOSTS, findDbNetwork, type DbNetworkFound } from './dbnetwork.ts'
import { removeWhileBusy } from './remove.ts'
import { defaultVpcId, deleteSecurityGroup } from './securitygroup.ts'

export interface DatabaseInventory {
  /** The RDS instance and its state (null: none). */
  instance: { status: string } | null
  parameterGroup: boolean
  network: DbNetworkFound
  /** Rules of the database's group that admit the hosts' group (they go with the hosts' group). */
  hostRules: string[]
}

/** The stage's database and its network as they are (reads only); null when the stage has none. */
export async function databaseInventory(clients: AwsClients, stage: string, hostsGroupId: string | null): Promise<DatabaseInventory | null> {
  const found = await findDatabase(clients, stage)
  const network = await findDbNetwork(clients, stage, await defaultVpcId(clients), hostsGroupId)
  if (!found.instance && !found.parameterGroup && !network.securityGroup && !network.subnetGroup && network.subnets.length === 0 && !network.routeTable) return null
  return {
    instance: found.instance ? { status: found.instance.status } : null,
    parameterGroup: found.parameterGroup !== null,
    network,
    hostRules: (network.securityGroup?.rules ?? []).filter((r) => hostsGroupId !== null && r.source === HOSTS).map((r) => r.id),
  }
}

/** The final snapshot's name: the instance's and the time (RDS: letters, digits, hyphens). */
export function finalSnapshotName(stage: string, at: Date): string {
  return `${databaseResources(stage).instance}-final-${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'z').toLowerCase()}`
}

/** What destroy says about the database (pure): kept, or removed after a final snapshot. */
export function databaseLines(inv: DatabaseInventory, stage: string, remove: boolean, snapshot: string): string[] {
  const n = databaseResources(stage)
  if (!remove)
    return inv.instance
      ? [`the RDS database ${n.instance} is KEPT with its network (deletion protection; its data and automated backups stay): --delete-database removes it after a final snapshot`]
      : []
  const net = inv.network
  return [
    ...(inv.instance ? [`RDS instance ${n.instance} (${inv.instance.status}), after a final snapshot ${snapshot} (kept until you delete it)`] : []),
    ...(inv.parameterGroup ? [`DB parameter group ${n.parameterGroup}`] : []),
    ...(net.subnetGroup ? [`DB subnet group ${n.subnetGroup}`] : []),
    ...(net.securityGroup ? [`security group ${n.securityGroup} ${net.securityGroup.id}`] : []),
    ...net.subnets.map((s) => `subnet ${n.subnet(s.zone)} ${s.id}`),
    ...(net.routeTable ? [`route table ${n.routeTable} ${net.routeTable.id}`] : []),
  ]
}

/** Takes the hosts' group out of the database's group (the database stays; the next deploy admits the new hosts). */
export async function detachHosts(clients: AwsClients, inv: DatabaseInventory): Promise<void> {
  const sg = inv.network.securityGroup
  if (!sg || inv.hostRules.length === 0) return
  await aws("take the hosts' group out of the database's group", () => clients.ec2.send(new EC2.RevokeSecurityGroupIngressCommand({ GroupId: sg.id, SecurityGroupRuleIds: inv.hostRules })))
}


/**
 * Deletes the database after a final snapshot (RDS takes it, and keeps it), waits until the
 * instance is gone, then removes its network and parameter group. Returns what was removed.
 */
export async function removeDatabase(clients: AwsClients, stage: string, inv: DatabaseInventory, snapshot: string, log: Log, pollMs = 15_000): Promise<string[]> {
  const n = databaseResources(stage)
  const removed: string[] = []
  if (inv.instance) {
    if (inv.instance.status !== 'deleting') {
      await aws('lift the deletion protection', () => clients.rds.send(new RDS.ModifyDBInstanceCommand({ DBInstanceIdentifier: n.instance, DeletionProtection: false, ApplyImmediately: true })))
      await aws('delete the RDS instance after a final snapshot', () =>
        clients.rds.send(new RDS.DeleteDBInstanceCommand({ DBInstanceIdentifier: n.instance, SkipFinalSnapshot: false, FinalDBSnapshotIdentifier: snapshot, DeleteAutomatedBackups: false })),
      )
      log.info(`[destroy] RDS instance ${n.instance}: deleting, final snapshot ${snapshot} (AWS takes some minutes)`)
    }
    for (;;) {
      const left = await findDatabase(clients, stage)
      if (!left.instance) break
      log.info(`[destroy] RDS instance ${n.instance}: ${left.instance.status}`)
      await new Promise((r) => setTimeout(r, pollMs))
    }
    removed.push(`RDS instance ${n.instance} (final snapshot ${snapshot})`)
  }
  const net = inv.network
  if (net.subnetGroup) {
    await removeWhileBusy('delete the DB subnet group', { gone: ['DBSubnetGroupNotFoundFault'] }, () => clients.rds.send(new RDS.DeleteDBSubnetGroupCommand({ DBSubnetGroupName: n.subnetGroup })), { delayMs: pollMs })
    removed.push(`DB subnet group ${n.subnetGroup}`)
  }
  if (inv.parameterGroup) {
    await removeWhileBusy('delete the DB parameter group', { gone: ['DBParameterGroupNotFound', 'DBParameterGroupNotFoundFault'] }, () => clients.rds.send(new RDS.DeleteDBParameterGroupCommand({ DBParameterGroupName: n.parameterGroup })), { delayMs: pollMs })
    removed.push(`DB parameter group ${n.parameterGroup}`)
  }
  if (net.securityGroup) {
    const id = net.securityGroup.id
    // (the instance's network interfaces may hold it a while after it is gone)
    await deleteSecurityGroup(clients, id, log, pollMs)
    removed.push(`security group ${n.securityGroup}`)
  }
  if (net.routeTable) {
    // the subnets off the route table first (a route table with subnets on it cannot be deleted)
    const id = net.routeTable.id
    const table = (await aws('look up the route table', () => clients.ec2.send(new EC2.DescribeRouteTablesCommand({ RouteTableIds: [id] })))).RouteTables?.[0]
    for (const a of (table?.Associations ?? []).filter((x) => !x.Main && x.RouteTableAssociationId))
      await aws('take a subnet off the route table', () => clients.ec2.send(new EC2.DisassociateRouteTableCommand({ AssociationId: a.RouteTableAssociationId })))
  }
  for (const s of net.subnets) {
    await aws('delete a subnet of the database', () => clients.ec2.send(new EC2.DeleteSubnetCommand({ SubnetId: s.id })))
    removed.push(`subnet ${n.subnet(s.zone)}`)
  }
  if (net.routeTable) {
    const id = net.routeTable.id
    await aws('delete the route table', () => clients.ec2.send(new EC2.DeleteRouteTableCommand({ RouteTableId: id })))
    removed.push(`route table ${n.routeTable}`)
  }
  return removed
}
