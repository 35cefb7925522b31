// Bridge benchmark, run by hand (never by npm test):
//
//   node --import tsx bench/bridge.ts [--reps 3] [--duration 5] [--profile DIR]
//
// --profile DIR writes a CPU profile of each edge (node --cpu-prof) into DIR.
//
// Local traffic on an edge broker (fan-in QoS 1: 10 publishers -> 1 subscriber, 64 B,
// PUBACKed, messages/s delivered) in three set-ups, each edge a tapmq CLI process:
//   - baseline: the edge without a bridge;
//   - forwarding: the edge's bridge forwards every message (forwards = #) to an upstream tapmq;
//   - flapping: the same, but the connection to the upstream goes through a TCP proxy (in
//     this process) that cuts every connection every 250 ms, so the bridge reconnects about
//     four times a second while the load runs.
// Results are ratios measured in the same invocation. forwarding/baseline is the cost of
// forwarding (every message is also published upstream by the edge, and processed by an
// upstream broker on the same two cores): reported, no goal. flapping/forwarding is the
// figure that matters here, goal >= 0.9: NanoMQ 0.8 fixed a lock contention on bridge
// reconnects, and in tapmq reconnects must not slow local traffic.
//
// The edges are pinned to core 0 and the load generator to core 1 when taskset exists; the
// upstream broker and the proxy share the machine, as a remote broker would not: on a
// two-core machine the forwarding set-ups lose throughput to the upstream's CPU use, which
// the printed edge and generator CPU figures show.
import { createServer, type Server, type Socket, connect } from 'node:net'
import { parseArgs } from 'node:util'
import { LoadGenerator, machineInfo, median, type RunningTarget, type ScenarioResult, tapmqTarget } from './lib/index.ts'

const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' }, profile: { type: 'string' } } })
const REPS = Math.max(1, Number(args.reps))
const DURATION = Math.max(1, Number(args.duration))
const CUT_EVERY_MS = 250

/** A TCP proxy to `port` that can cut all its connections at an interval. */
async function flakyProxy (port: number): Promise<{ port: number, cuts: number, close (): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((inbound) => {
    const outbound = connect(port, '127.0.0.1')
    for (const socket of [inbound, outbound]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => {})
    }
    inbound.pipe(outbound).pipe(inbound)
    inbound.on('close', () => outbound.destroy())
    outbound.on('close', () => inbound.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const state = { port: (server.address() as { port: number }).port, cuts: 0 }
  const timer = setInterval(() => {
    if (sockets.size === 0) return
    state.cuts++
    for (const socket of sockets) socket.destroy()
  }, CUT_EVERY_MS)
  return Object.assign(state, {
    close: () => new Promise<void>((resolve) => {
      clearInterval(timer)
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    })
  })
}

function edgeTarget (name: string, upstreamPort?: number) {
  const bridge = upstreamPort === undefined
    ? {}
    : {
        plugins: 'plugin.bridge = on\nplugin.bridge.conf = bridge.conf\n',
        files: {
          'bridge.conf': [
            'bridge.mqtt.bridge_mode = true',
            `bridge.mqtt.address = mqtt-tcp://127.0.0.1:${upstreamPort}`,
            'bridge.mqtt.forwards = #',
            'bridge.mqtt.parallel = 64',
            'bridge.mqtt.queue.max_messages = 100000',
            'bridge.mqtt.reconnect.min_interval = 20ms',
            'bridge.mqtt.reconnect.max_interval = 200ms'
          ].join('\n') + '\n'
        }
      }
  return tapmqTarget(name, `tapmq edge (${name})`, { conf: { persistence: 'memory' }, ...bridge })
}

const metric = (result: ScenarioResult) => result.metrics[0]?.value ?? Number.NaN
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')

const machine = machineInfo()
console.log(`bridge benchmark - ${machine.cpus} cores (${machine.cpuModel}), node ${machine.node}, reps ${REPS}, ${DURATION} s per run`)

const running: RunningTarget[] = []
const generator = new LoadGenerator({ cpu: 1 })
let proxy: Awaited<ReturnType<typeof flakyProxy>> | undefined
try {
  const upstream = await tapmqTarget('upstream', 'tapmq upstream', { conf: { persistence: 'memory' } }).start()
  running.push(upstream)
  proxy = await flakyProxy(upstream.address.port)
  const setups = [
    { label: 'baseline (no bridge)', target: edgeTarget('baseline') },
    { label: 'forwarding to upstream', target: edgeTarget('forwarding', upstream.address.port) },
    { label: 'forwarding, upstream flapping', target: edgeTarget('flapping', proxy.port) }
  ]
  const brokers: RunningTarget[] = []
  for (const { target } of setups) {
    const broker = await target.start({ cpu: 0, nodeArgs: args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : [] })
    running.push(broker)
    brokers.push(broker)
  }
  const rates: number[][] = setups.map(() => [])
  for (let rep = 0; rep < REPS; rep++) {
    // alternate the order, so drift of a busy machine does not favour one set-up
    const order = rep % 2 === 0 ? [0, 1, 2] : [2, 1, 0]
    for (const i of order) {
      const cutsBefore = proxy.cuts
      const result = await generator.run('fanin1', brokers[i]!.address, {
        duration: DURATION, warmup: 1, payload: 64, prefix: `b${rep}x${i}`, pid: brokers[i]!.pid, publishers: 10, subscribers: 1, qos: 1, window: 500, inflight: 100
      })
      rates[i]!.push(metric(result))
      const cuts = i === 2 ? `, ${proxy.cuts - cutsBefore} connection cuts` : ''
      console.log(`  rep ${rep + 1} ${setups[i]!.label}: ${fmt(metric(result))} msg/s, edge ${fmt(result.brokerCpu ?? Number.NaN, 2)} cores, generator ${fmt(result.generatorCpu, 2)} cores${result.valid ? '' : ` (invalid: ${result.invalidReason})`}${cuts}`)
    }
  }
  const base = median(rates[0]!)
  console.log('\nlocal fan-in QoS 1, median msg/s and ratio to the baseline:')
  for (const [i, { label }] of setups.entries()) {
    const value = median(rates[i]!)
    console.log(`  ${label.padEnd(32)} ${fmt(value).padStart(8)}  ${fmt(value / base, 3)}`)
  }
  const flapping = median(rates[2]!) / median(rates[1]!)
  console.log(`\nflapping/forwarding ${fmt(flapping, 3)} (goal >= 0.9: ${flapping >= 0.9 ? 'met' : 'NOT met'})`)
} finally {
  await proxy?.close()
  for (const broker of running) await broker.stop().catch(() => {})
  await generator.close()
}
