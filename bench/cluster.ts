// Cluster benchmark, run by hand (never by npm test):
//
//   node --import tsx bench/cluster.ts [--reps 3] [--duration 5] [--nodes 2]
//
// Needs redis-server (apt-get install redis-server); starts its own on a free loopback port
// with no persistence. Fan-in QoS 0 (10 publishers -> 1 subscriber, 64 B, messages/s
// delivered), in one invocation:
//   - single: one tapmq node, persistence = memory, no Redis (the baseline);
//   - cluster, same node: publishers and subscriber on node 1 of a cluster (every publish
//     still makes a round trip through Redis pub/sub: mqemitter-redis delivers locally only
//     what comes back from Redis);
//   - cluster, cross-node: publishers on node 2, subscriber on node 1.
// Prints msg/s, ratios to single, CPU (cores) of every node and of redis-server during the
// measured window, and RSS of the nodes and redis-server after the runs.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import {
  freePort, LoadGenerator, machineInfo, median, processCpuSeconds, processRssKb, type RunningTarget, type ScenarioResult, tapmqTarget
} from './lib/index.ts'

const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' }, nodes: { type: 'string', default: '2' } } })
const REPS = Math.max(1, Number(args.reps))
const DURATION = Math.max(1, Number(args.duration))
const NODES = Math.max(2, Number(args.nodes))

if (spawnSync('redis-server', ['--version']).status !== 0) {
  console.error('bench/cluster.ts needs redis-server: apt-get install redis-server')
  process.exit(2)
}

async function startRedis (): Promise<{ port: number, child: ChildProcess }> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk) => { out += chunk; if (/Ready to accept connections/.test(out)) resolve() })
    child.once('exit', () => reject(new Error(`redis-server exited:\n${out}`)))
    setTimeout(() => reject(new Error('redis-server did not start within 30 s')), 30_000).unref()
  })
  return { port, child }
}

const metric = (result: ScenarioResult) => result.metrics[0]?.value ?? Number.NaN
const fmt = (n: number | undefined, digits = 0) => (n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : 'n/a')

const machine = machineInfo()
console.log(`cluster benchmark - ${machine.cpus} cores (${machine.cpuModel}), node ${machine.node}, ${NODES} cluster nodes, reps ${REPS}, ${DURATION} s per run`)

const running: RunningTarget[] = []
const generator = new LoadGenerator({ cpu: 1 })
let redis: { port: number, child: ChildProcess } | undefined
try {
  redis = await startRedis()
  const single = await tapmqTarget('single', 'tapmq, one node, memory', { conf: { persistence: 'memory' } }).start({ cpu: 0 })
  running.push(single)
  const nodes: RunningTarget[] = []
  for (let n = 1; n <= NODES; n++) {
    const node = await tapmqTarget(`node${n}`, `tapmq cluster node ${n}`, {
      conf: { 'cluster.enable': 'true', 'cluster.redis.url': `redis://127.0.0.1:${redis.port}`, 'cluster.node_name': `bench-${n}`, 'heartbeat_interval': '5s' }
    }).start({ cpu: 0 })
    running.push(node)
    nodes.push(node)
  }
  const setups = [
    { label: 'single node (no Redis)', sub: single, pub: single, watch: [single] },
    { label: 'cluster, same node', sub: nodes[0]!, pub: nodes[0]!, watch: nodes },
    { label: 'cluster, cross-node', sub: nodes[0]!, pub: nodes[1]!, watch: nodes }
  ]
  const rates: number[][] = setups.map(() => [])
  const cpu: number[][] = setups.map(() => [])
  const redisCpu: number[][] = setups.map(() => [])
  for (let rep = 0; rep < REPS; rep++) {
    const order = rep % 2 === 0 ? [0, 1, 2] : [2, 1, 0]
    for (const i of order) {
      const setup = setups[i]!
      const before = setup.watch.map((t) => processCpuSeconds(t.pid) ?? 0)
      const redisBefore = processCpuSeconds(redis.child.pid) ?? 0
      const started = performance.now()
      const result = await generator.run('fanin0', setup.sub.address, {
        duration: DURATION, warmup: 1, payload: 64, prefix: `c${rep}x${i}`, publishers: 10, subscribers: 1, qos: 0, window: 500,
        publishAddress: setup.pub.address
      })
      const seconds = (performance.now() - started) / 1000
      const nodeCores = setup.watch.reduce((sum, t, k) => sum + ((processCpuSeconds(t.pid) ?? 0) - before[k]!), 0) / seconds
      const redisCores = setup.watch.includes(single) ? 0 : ((processCpuSeconds(redis.child.pid) ?? 0) - redisBefore) / seconds
      rates[i]!.push(metric(result))
      cpu[i]!.push(nodeCores)
      redisCpu[i]!.push(redisCores)
      console.log(`  rep ${rep + 1} ${setup.label}: ${fmt(metric(result))} msg/s, nodes ${fmt(nodeCores, 2)} cores, redis ${fmt(redisCores, 2)} cores, ` +
        `generator ${fmt(result.generatorCpu, 2)} cores${result.valid ? '' : ` (invalid: ${result.invalidReason})`}`)
    }
  }
  const base = median(rates[0]!)
  console.log('\nfan-in QoS 0 (whole run incl. warm-up and drain for CPU), median:')
  console.log(`  ${'set-up'.padEnd(26)} ${'msg/s'.padStart(8)}  ratio  node cores  redis cores  node µs/msg`)
  for (const [i, { label }] of setups.entries()) {
    const value = median(rates[i]!)
    const perMsg = (median(cpu[i]!) * 1e6) / value
    console.log(`  ${label.padEnd(26)} ${fmt(value).padStart(8)}  ${fmt(value / base, 3)}  ${fmt(median(cpu[i]!), 2).padStart(10)}  ${fmt(median(redisCpu[i]!), 2).padStart(11)}  ${fmt(perMsg, 1).padStart(11)}`)
  }
  console.log(`\nRedis overhead: cross-node/single ${fmt(median(rates[2]!) / base, 3)}, same-node/single ${fmt(median(rates[1]!) / base, 3)}`)
  console.log(`RSS after the runs: single ${fmt((processRssKb(single.pid) ?? 0) / 1024, 1)} MB; ` +
    nodes.map((n) => `${n.name} ${fmt((processRssKb(n.pid) ?? 0) / 1024, 1)} MB`).join(', ') + `; redis-server ${fmt((processRssKb(redis.child.pid) ?? 0) / 1024, 1)} MB`)
} finally {
  for (const target of running) await target.stop().catch(() => {})
  await generator.close()
  redis?.child.kill('SIGKILL')
}
