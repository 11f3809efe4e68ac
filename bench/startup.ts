// npm run bench -- startup: how long a task takes to answer --help, and to refuse bad settings
// (exit 2), through `npm run` as a user types it; the median of 5 runs of each. Nothing reaches
// Docker, AWS or SSH: each bad input is one the bad-input unit suite proves stops before them.
import { $ } from 'zx'

const REPO = new URL('..', import.meta.url).pathname

/** Each npm command with a bad input that it refuses with exit 2 before doing anything. */
const CASES: { script: string; args: string[]; env: Record<string, string> }[] = [
  { script: 'build', args: ['--base', 'Bad:Base'], env: {} },
  { script: 'up:local', args: [], env: { WEB_PORT: 'abc' } },
  { script: 'stop', args: [], env: { COMPOSE_PROJECT_NAME: 'Bad Name' } },
  { script: 'push', args: [], env: { MYMDB_REGISTRY: 'bad registry' } },
  { script: 'bucket', args: [], env: { AWS_REGION: 'nowhere' } },
  { script: 'host', args: [], env: { AWS_REGION: 'nowhere' } },
  { script: 'remote:up', args: ['--address', 'https://203.0.113.7'], env: {} },
  { script: 'deploy:aws', args: [], env: { AWS_REGION: 'nowhere' } },
  { script: 'destroy:aws', args: [], env: { AWS_REGION: 'nowhere' } },
  { script: 'status', args: ['--aws'], env: { AWS_REGION: 'nowhere' } },
  { script: 'logs', args: ['--lines', 'many'], env: {} },
  { script: 'manage', args: [], env: {} },
  { script: 'ssh', args: [], env: { AWS_REGION: 'nowhere' } },
  { script: 'backup', args: [], env: { COMPOSE_PROJECT_NAME: 'Bad Name' } },
  { script: 'backups', args: [], env: { COMPOSE_PROJECT_NAME: 'Bad Name' } },
  { script: 'restore', args: [], env: {} },
]

async function median(times: number, fn: () => Promise<void>): Promise<number> {
  const runs: number[] = []
  for (let i = 0; i < times; i++) {
    const start = performance.now()
    await fn()
    runs.push((performance.now() - start) / 1000)
  }
  runs.sort((a, b) => a - b)
  return runs[Math.floor(runs.length / 2)] ?? NaN
}

export async function benchStartup(record: (what: string, value: string) => void): Promise<void> {
  const help: number[] = []
  const bad: number[] = []
  for (const c of CASES) {
    const sh = $({ cwd: REPO, env: { ...process.env, ...c.env, FORCE_COLOR: '0' }, quiet: true, nothrow: true })
    const h = await median(5, async () => {
      const r = await sh`npm run --silent ${c.script} -- --help`
      if (r.exitCode !== 0) throw new Error(`${c.script} --help: exit ${r.exitCode}`)
    })
    const b = await median(5, async () => {
      const r = await sh`npm run --silent ${c.script} -- ${c.args}`
      if (r.exitCode !== 2) throw new Error(`${c.script} ${c.args.join(' ')}: exit ${r.exitCode}, expected 2:\n${r.stdout}${r.stderr}`)
    })
    console.log(`[bench] ${c.script}: --help ${h.toFixed(2)} s, bad setting ${b.toFixed(2)} s`)
    help.push(h)
    bad.push(b)
    record(`npm run ${c.script}: --help / bad setting (exit 2), median of 5`, `${h.toFixed(2)} s / ${b.toFixed(2)} s`)
  }
  record('slowest of all tasks: --help / bad setting', `${Math.max(...help).toFixed(2)} s / ${Math.max(...bad).toFixed(2)} s`)
}
