// What a stage's set-up costs a month, roughly, so that a user sees it before anything is made
// (the host step prints it, a dry run too). AWS's own on-demand list prices in us-east-1 for
// Linux, as AWS listed them when this table was written (below); other regions differ (typically by 0-30 %), and S3, ECR, data
// transfer, snapshots, load balancer capacity units and EFS are billed by use and not counted. An instance type not in the table is
// named without a price, never guessed.

/** When the prices below were taken from AWS's pricing pages (they change rarely, mostly downwards). */
export const PRICES_AS_OF = '2025'
export const PRICING_PAGE = 'https://aws.amazon.com/ec2/pricing/on-demand/'

/** Hours AWS bills a month as (365 * 24 / 12). */
const HOURS_A_MONTH = 730

/** On-demand USD an hour, Linux, us-east-1. */
const INSTANCE_HOURLY: Record<string, number> = {
  't3.nano': 0.0052,
  't3.micro': 0.0104,
  't3.small': 0.0208,
  't3.medium': 0.0416,
  't3.large': 0.0832,
  't3.xlarge': 0.1664,
  't3.2xlarge': 0.3328,
  't3a.nano': 0.0047,
  't3a.micro': 0.0094,
  't3a.small': 0.0188,
  't3a.medium': 0.0376,
  't3a.large': 0.0752,
  't3a.xlarge': 0.1504,
  'm6i.large': 0.096,
  'm6i.xlarge': 0.192,
  'm7i.large': 0.1008,
  'm7i.xlarge': 0.2016,
  'c6i.large': 0.085,
  'c7i.large': 0.08925,
  'r6i.large': 0.126,
  'r7i.large': 0.1323,
}

/** gp3 storage, USD a GiB-month (its baseline IOPS and throughput are included). */
const GP3_GB_MONTH = 0.08
/** A public IPv4 address (an Elastic IP, in use or not), USD an hour. */
const PUBLIC_IPV4_HOURLY = 0.005

/** RDS for PostgreSQL, single-AZ, on-demand USD an hour, us-east-1. */
const DB_INSTANCE_HOURLY: Record<string, number> = {
  'db.t4g.micro': 0.016,
  'db.t4g.small': 0.032,
  'db.t4g.medium': 0.065,
  'db.t4g.large': 0.129,
  'db.t3.micro': 0.018,
  'db.t3.small': 0.036,
  'db.t3.medium': 0.072,
  'db.t3.large': 0.145,
}
/** RDS gp3 storage, USD a GiB-month (automated backups up to the database's size are free). */
const DB_GP3_GB_MONTH = 0.115

/** A Network Load Balancer, USD an hour (its capacity units, LCUs, are billed by use: not counted). */
const NLB_HOURLY = 0.0225

/** The set-up whose cost is wanted. */
export interface CostInput {
  hosts: number
  instanceType: string
  diskGb: number
  /** The database on RDS (MYMDB_DATABASE=rds). */
  database?: { instanceClass: string; storageGb: number }
  /** The front door of several hosts: a load balancer with an Elastic IP in each of `zones` zones (its EFS holds kilobytes: cents). */
  front?: { zones: number }
}

/** One line of the estimate: what, how many, the monthly price of one (undefined: not in the table). */
export interface CostItem {
  what: string
  count: number
  each?: number
}

/** The items of a set-up and their monthly total (of the priced ones), in USD (pure). */
export function monthlyCost(c: CostInput): { items: CostItem[]; total: number; unpriced: string[] } {
  const hourly = INSTANCE_HOURLY[c.instanceType]
  const items: CostItem[] = [
    { what: `${c.instanceType} instance`, count: c.hosts, ...(hourly !== undefined ? { each: hourly * HOURS_A_MONTH } : {}) },
    { what: `${c.diskGb} GiB gp3 disk`, count: c.hosts, each: c.diskGb * GP3_GB_MONTH },
    { what: 'Elastic IP (public IPv4)', count: c.hosts, each: PUBLIC_IPV4_HOURLY * HOURS_A_MONTH },
  ]
  if (c.database) {
    const dbHourly = DB_INSTANCE_HOURLY[c.database.instanceClass]
    items.push(
      { what: `RDS ${c.database.instanceClass}`, count: 1, ...(dbHourly !== undefined ? { each: dbHourly * HOURS_A_MONTH } : {}) },
      { what: `${c.database.storageGb} GiB RDS storage`, count: 1, each: c.database.storageGb * DB_GP3_GB_MONTH },
    )
  }
  if (c.front)
    items.push(
      { what: 'Network Load Balancer', count: 1, each: NLB_HOURLY * HOURS_A_MONTH },
      { what: "load balancer's Elastic IP", count: c.front.zones, each: PUBLIC_IPV4_HOURLY * HOURS_A_MONTH },
    )
  const total = items.reduce((sum, i) => sum + (i.each ?? 0) * i.count, 0)
  return { items, total, unpriced: items.filter((i) => i.each === undefined).map((i) => i.what) }
}

const usd = (n: number) => `$${n.toFixed(2)}`

/** The estimate as lines for the log (pure). */
export function costLines(c: CostInput): string[] {
  const { items, total, unpriced } = monthlyCost(c)
  const parts = items.map((i) => `${i.count} x ${i.what}${i.each !== undefined ? ` ${usd(i.each)}` : ' (price not in the table)'}`)
  return [
    `about ${usd(total)} a month${unpriced.length > 0 ? ` plus the ${unpriced.join(', ')}` : ''}: ${parts.join('; ')}`,
    `(on-demand list prices of us-east-1 as listed in ${PRICES_AS_OF}, other regions differ; S3, ECR, data transfer, snapshots beyond the database's size, load balancer capacity units and EFS by use, not counted; see ${PRICING_PAGE})`,
  ]
}
