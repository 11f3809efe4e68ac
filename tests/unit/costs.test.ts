import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { costLines, monthlyCost } from '../../tasks/lib/aws/costs.ts'

describe('what a set-up costs a month (printed by the host step, a dry run too)', () => {
  it('one host: the instance, its disk and its address at list prices; three hosts: three of each', () => {
    const one = monthlyCost({ hosts: 1, instanceType: 't3.micro', diskGb: 8 })
    // 730 h x $0.0104 + 8 GiB x $0.08 + 730 h x $0.005
    assert.equal(one.total.toFixed(2), (7.592 + 0.64 + 3.65).toFixed(2))
    assert.deepEqual(one.unpriced, [])
    const three = monthlyCost({ hosts: 3, instanceType: 't3.micro', diskGb: 8 })
    assert.equal(three.total.toFixed(2), (3 * one.total).toFixed(2))
    assert.match(costLines({ hosts: 3, instanceType: 't3.micro', diskGb: 8 })[0] ?? '', /^about \$35\.65 a month: 3 x t3\.micro instance \$7\.59; 3 x 8 GiB gp3 disk \$0\.64; 3 x Elastic IP \(public IPv4\) \$3\.65$/)
  })
  it('a type not in the table: named without a price, never guessed; the rest still counted', () => {
    const lines = costLines({ hosts: 2, instanceType: 'x2iedn.32xlarge', diskGb: 20 })
    assert.match(lines[0] ?? '', /^about \$10\.50 a month plus the x2iedn\.32xlarge instance: 2 x x2iedn\.32xlarge instance \(price not in the table\);/)
    assert.match(lines[1] ?? '', /us-east-1 .* other regions differ; S3, ECR, data transfer, snapshots beyond the database's size, load balancer capacity units and EFS by use, not counted; see https:\/\/aws\.amazon\.com\/ec2\/pricing\/on-demand\//)
  })
  it('the database on RDS: its class and its storage added to the hosts', () => {
    const hosts = monthlyCost({ hosts: 2, instanceType: 't3.micro', diskGb: 8 }).total
    const withDb = monthlyCost({ hosts: 2, instanceType: 't3.micro', diskGb: 8, database: { instanceClass: 'db.t4g.micro', storageGb: 20 } })
    // 730 h x $0.016 + 20 GiB x $0.115
    assert.equal((withDb.total - hosts).toFixed(2), (11.68 + 2.3).toFixed(2))
    assert.match(costLines({ hosts: 1, instanceType: 't3.micro', diskGb: 8, database: { instanceClass: 'db.r8g.48xlarge', storageGb: 100 } })[0] ?? '', /plus the RDS db\.r8g\.48xlarge: .*1 x RDS db\.r8g\.48xlarge \(price not in the table\); 1 x 100 GiB RDS storage \$11\.50$/)
  })
  it('several hosts: the load balancer and its address in each zone added', () => {
    const hosts = monthlyCost({ hosts: 3, instanceType: 't3.micro', diskGb: 8 }).total
    const withFront = monthlyCost({ hosts: 3, instanceType: 't3.micro', diskGb: 8, front: { zones: 3 } })
    // 730 h x $0.0225 + 3 x 730 h x $0.005
    assert.equal((withFront.total - hosts).toFixed(2), (16.425 + 10.95).toFixed(2))
    assert.match(costLines({ hosts: 3, instanceType: 't3.micro', diskGb: 8, front: { zones: 2 } })[0] ?? '', /; 1 x Network Load Balancer \$16\.43; 2 x load balancer's Elastic IP \$3\.65$/)
  })
})
