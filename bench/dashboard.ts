// What the dashboard's per-topic publish counter costs, run by hand (never by npm test):
//
//   node --import tsx bench/dashboard.ts [--reps 3] [--duration 5]
//
// The HTTP API plugin taps message.publish to count messages per topic (plugins/http-api/
// static.ts), so with it loaded every client message goes through the observe path. This runs
// fan-in QoS 0 (10 publishers -> 1 subscriber, 64 B) against tapmq without plugins (baseline),
// tapmq with a plugin whose message.publish tap does nothing (what any publish observer costs),
// and tapmq with the HTTP API on, interleaved, each broker in its
// own process pinned to core 0 and the load in a generator process on core 1. Figures are
// ratios against the baseline of the same invocation; broker CPU per message is the steadier one.
import { parseArgs } from 'node:util'
import { freePort, LoadGenerator, median, type RunningTarget, type ScenarioResult, tapmqTarget } from './lib/index.ts'

const { values: args } = parseArgs({
  options: { reps: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' } }
})
const REPS = Math.max(1, Number(args.reps))
const DURATION = Math.max(1, Number(args.duration))

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')
const metric = (result: ScenarioResult, name: string) => result.metrics.find((m) => m.name === name)?.value ?? Number.NaN

// a plugin that only taps message.publish and does nothing: the cost of any publish observer
const NOOP_PLUGIN = `export default {
  name: 'bench:noop-publish-tap', version: '1.0.0',
  setup (host) { host.hooks.message.publish.tap('bench:noop-publish-tap', () => {}) }
}
`

const targets = [
  { label: 'no plugins', target: tapmqTarget('plain', 'tapmq, no plugins') },
  {
    label: 'no-op tap',
    target: tapmqTarget('noop-tap', 'tapmq + a plugin whose message.publish tap does nothing', {
      plugins: 'plugin.noop = on\nplugin.noop.source = ./noop-plugin.mjs\n',
      files: { 'noop-plugin.mjs': NOOP_PLUGIN }
    })
  },
  {
    label: 'http-api on',
    target: tapmqTarget('http-api', 'tapmq + http-api (dashboard topic counter)', {
      conf: { 'http_server.enable': 'true', 'http_server.port': String(await freePort()), 'http_server.bind': '127.0.0.1' },
      plugins: 'plugin.http_api = on\n'
    })
  }
]
const generator = new LoadGenerator({ cpu: 1 })
const running: RunningTarget[] = []
const stop = async () => {
  for (const broker of running) await broker.stop().catch(() => {})
  await generator.close()
}
process.once('SIGINT', () => void stop().then(() => process.exit(130)))

try {
  for (const { target } of targets) running.push(await target.start({ cpu: 0 }))
  // each fan-in publisher uses its own topic; every run has its own prefix, so new topics
  const scenarios = [{ name: 'fanin0', label: 'fan-in QoS 0 (10 publishers -> 1 subscriber, 64 B)' }]
  for (const scenario of scenarios) {
    const rates: number[][] = targets.map(() => [])
    const cpu: number[][] = targets.map(() => [])
    const notes: string[] = []
    for (let rep = 0; rep < REPS; rep++) {
      for (let i = 0; i < targets.length; i++) {
        const broker = running[i]!
        const result = await generator.run(scenario.name, broker.address, {
          duration: DURATION, warmup: 1, payload: 64, prefix: `r${rep}t${i}`, pid: broker.pid
        })
        if (!result.valid) notes.push(`${targets[i]!.label} run ${rep}: ${result.invalidReason}`)
        const rate = metric(result, 'fan-in QoS 0')
        rates[i]!.push(rate)
        cpu[i]!.push(((result.brokerCpu ?? Number.NaN) / rate) * 1e6)
      }
    }
    console.log(`\n${scenario.label} (median of ${REPS}, ${DURATION} s each)`)
    for (let i = 0; i < targets.length; i++) {
      console.log(`  ${targets[i]!.label.padEnd(12)} ${fmt(median(rates[i]!)).padStart(7)} msg/s   broker ${fmt(median(cpu[i]!), 2)} us/msg   runs ${rates[i]!.map((r) => fmt(r)).join(', ')}`)
    }
    for (let i = 1; i < targets.length; i++) {
      console.log(`  ${targets[i]!.label} / no plugins: throughput x${fmt(median(rates[i]!) / median(rates[0]!), 3)}, broker CPU per message x${fmt(median(cpu[i]!) / median(cpu[0]!), 3)}`)
    }
    console.log(`  http-api / no-op tap (the counter itself): broker CPU per message x${fmt(median(cpu[2]!) / median(cpu[1]!), 3)}`)
    for (const note of notes) console.log(`  INVALID ${note}`)
  }
} finally {
  await stop()
}
