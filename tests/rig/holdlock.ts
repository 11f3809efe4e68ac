// A run that holds a stage's lock, for tests/system/lock.test.ts: takes it with a short lease
// (real lock.ts, the emulator behind AWS_ENDPOINT_URL), prints "held", then runs `workMs` of
// counted work standing in for a command on the host, then waits to be killed.
//   node --import tsx tests/rig/holdlock.ts <stage> <leaseSeconds> <workMs>
import { awsClients } from '../../tasks/lib/aws/clients.ts'
import { acquireLock } from '../../tasks/lib/lock.ts'
import { remoteWork } from '../../tasks/lib/remotework.ts'

const [stage = 'lock', lease = '120', work = '0'] = process.argv.slice(2)
const clients = awsClients(process.env.AWS_REGION ?? 'us-west-2', process.env)
await acquireLock(clients.dynamodb, stage, 'holdlock', { leaseSeconds: Number(lease) })
process.stdout.write('held\n')
if (Number(work) > 0) {
  await remoteWork('the work on the host', () => new Promise((r) => setTimeout(r, Number(work))))
  process.stdout.write('work ended\n')
}
setInterval(() => {}, 1 << 30)
