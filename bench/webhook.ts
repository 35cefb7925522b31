// WebHook benchmark, run by hand (never by npm test):
//
//   node --import tsx bench/webhook.ts [--duration 5] [--repeat 3] [--batch 100] [--quick] [--nice N] [--profile DIR] [--payload binary|text]
//
// --repeat: rounds of (1)/(2), the targets alternating, medians reported. --batch: events per
// request of the batched target. --nice sets web.hook.worker_nice (default: the plugin's
// default). --profile writes the brokers' V8 CPU profiles (every thread) to DIR;
// `node --import tsx bench/profile.ts DIR` sums them. --payload: the 64 B payloads are the load
// generator's 16-byte binary header (sequence, time stamp) and then zeros (binary, the
// default: in plain encoding most bytes become 6-byte \u0000 escapes, ~505 B of JSON per
// event) or a 48-byte JSON text (text: ~290 B per event).
//
// (1) Cost on MQTT: fan-in QoS 0 (10 publishers -> 1 subscriber, 64 B) through tapmq with the
//     webhook on and a rule matching every message, against a fast local receiver, vs the
//     same broker with the webhook off. Goal: >= 0.90. Unbatched and batched are both shown.
// (2) Isolation: the same with a receiver that accepts connections and never answers.
//     Goal: >= 0.95, and broker RSS flat over five rounds on one broker.
// (3) Delivery rate: events/s reaching the receiver vs the publish rate: unbatched at a
//     fixed 10,000 msg/s (goal: keeps up, no drops), batched at the full fan-in QoS 0 rate
//     (goal: keeps up).
//
// Each broker is the tapmq CLI in its own process; the load comes from the shared generator
// process of bench/lib (raw sockets + mqtt-packet); the receivers run in this process. All
// ratios compare runs of this invocation. Nothing is pinned: the webhook's worker thread
// needs the second core, which it shares with the generator and the receiver.
import { readdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { freePort, LoadGenerator, machineInfo, processRssKb, type RunningTarget, type ScenarioResult, tapmqTarget, threadCpuSeconds, threadNice } from './lib/index.ts'

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    quick: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '3' },
    batch: { type: 'string', default: '100' },
    nice: { type: 'string' },
    profile: { type: 'string' },
    payload: { type: 'string', default: 'binary' }
  }
})
if (args.payload !== 'binary' && args.payload !== 'text') throw new Error('--payload is binary or text')
/** after the generator's 16-byte header */
const PAYLOAD_TEXT = args.payload === 'text' ? '{"id":"sensor-0042","temp":21.5,"hum":40,"ok":1}' : undefined
const DURATION = args.quick ? 2 : Math.max(1, Number(args.duration))
const WARMUP = 1
const FIXED_RATE = 10_000
const SILENT_ROUNDS = args.quick ? 2 : 5
const REPEAT = args.quick ? 1 : Math.max(1, Number(args.repeat))
const BATCH_EVENTS = Math.max(2, Number(args.batch))

// ---- receivers --------------------------------------------------------------------------

interface CountingReceiver {
  readonly url: string
  requests: number
  events: number
  reset (): void
  close (): Promise<void>
}

/** Answers 200 at once; counts requests and events (a batch is an array of events). */
async function countingReceiver (): Promise<CountingReceiver> {
  const state = { requests: 0, events: 0 }
  // it must cost little (it shares the two cores with the broker): no decoding, no
  // concatenation, a native search per chunk. A marker split across two chunks is found in
  // the seam: the previous chunk's last bytes and the new one's first (a marker there that
  // starts in the old bytes is the split one; the others are in the chunk itself)
  const marker = Buffer.from('"action":')
  const keep = marker.length - 1
  const server = createServer((req, res) => {
    let tail: Buffer | undefined
    req.on('data', (chunk: Buffer) => {
      let seam: Buffer | undefined
      if (tail !== undefined) {
        seam = Buffer.concat([tail, chunk.subarray(0, keep)])
        const at = seam.indexOf(marker)
        if (at !== -1 && at < tail.length) state.events++
      }
      let at = chunk.indexOf(marker)
      while (at !== -1) {
        state.events++
        at = chunk.indexOf(marker, at + marker.length)
      }
      // (a chunk shorter than the marker: the seam holds the bytes before it too)
      tail = chunk.length >= keep || seam === undefined ? chunk.subarray(Math.max(0, chunk.length - keep)) : seam.subarray(Math.max(0, seam.length - keep))
    })
    req.on('end', () => {
      state.requests++
      res.writeHead(200, { 'content-length': '0' }).end()
    })
  })
  server.keepAliveTimeout = 60_000
  server.maxRequestsPerSocket = 0
  const port = await listen(server)
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/hook`,
    reset () { state.requests = 0; state.events = 0 },
    close: () => close(server)
  })
}

/** Reads requests and never answers them. */
async function silentReceiver (): Promise<{ url: string, requests: number, close (): Promise<void> }> {
  const state = { requests: 0 }
  const server = createServer((req) => {
    req.resume()
    req.on('end', () => { state.requests++ })
  })
  server.requestTimeout = 0
  server.headersTimeout = 0
  const port = await listen(server)
  return Object.assign(state, { url: `http://127.0.0.1:${port}/hook`, close: () => close(server) })
}

async function listen (server: Server): Promise<number> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  ;(server as Server & { sockets: Set<Socket> }).sockets = sockets
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

function close (server: Server): Promise<void> {
  for (const socket of (server as Server & { sockets: Set<Socket> }).sockets) socket.destroy()
  return new Promise((resolve) => server.close(() => resolve()))
}

// ---- brokers -----------------------------------------------------------------------------

/**
 * tapmq with the HTTP API on a spare port (to read the webhook's counters) and, unless
 * `url` is undefined, the webhook with a rule for every publish.
 */
async function target (name: string, url: string | undefined, extra: readonly string[] = []) {
  const apiPort = await freePort()
  const broker = tapmqTarget(name, `tapmq (${name})`, {
    conf: { 'http_server.enable': 'true', 'http_server.port': String(apiPort), 'http_server.bind': '127.0.0.1' },
    plugins: 'plugin.http_api = on\n' + (url ? 'plugin.webhook = on\nplugin.webhook.conf = web_hook.conf\n' : ''),
    files: url
      ? {
          'web_hook.conf': [
            'web.hook.enable = true',
            `web.hook.url = ${url}`,
            'web.hook.headers.content-type = application/json',
            'web.hook.body.encoding_of_payload_field = plain',
            'web.hook.pool_size = 32',
            'web.hook.rule.message.publish.1 = {"action": "on_message_publish"}',
            ...(args.nice === undefined ? [] : [`web.hook.worker_nice = ${args.nice}`]),
            ...extra
          ].join('\n') + '\n'
        }
      : {}
  })
  return Object.assign(broker, { apiPort })
}
type BenchTarget = Awaited<ReturnType<typeof target>>

/** The webhook's counters from the broker's HTTP API (empty when it has no webhook). */
async function webhookCounters (apiPort: number): Promise<Record<string, number>> {
  try {
    const response = await fetch(`http://127.0.0.1:${apiPort}/api/v4/plugins/webhook`, {
      headers: { authorization: 'Basic ' + Buffer.from('admin:public').toString('base64') }
    })
    const json = await response.json() as { data?: { counters?: Record<string, number> } }
    return json.data?.counters ?? {}
  } catch {
    return {}
  }
}

// ---- helpers -----------------------------------------------------------------------------

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const rateOf = (result: ScenarioResult) => result.metrics.find((m) => m.name === 'fan-in QoS 0')?.value ?? Number.NaN
/** broker process CPU (all its threads) per delivered message: steadier than msg/s on a shared machine */
const cpuOf = (result: ScenarioResult) => `${fmt(result.metrics.find((m) => m.name.endsWith('broker CPU'))?.value ?? Number.NaN, 1)} µs CPU/msg, generator ${fmt(result.generatorCpu, 2)} cores`
const verdict = (value: number, goal: number) => `${fmt(value, 3)} (goal >= ${goal}: ${value >= goal ? 'met' : 'NOT met'})`

/**
 * Counts receiver events over the generator's measured window: it starts `WARMUP` s after
 * the run request (plus the clients' connects, ~0.1 s).
 */
function windowCounter (receiver: CountingReceiver) {
  let start = 0
  let end: number | undefined
  const timers: NodeJS.Timeout[] = []
  return {
    begin () {
      timers.push(setTimeout(() => { start = receiver.events }, WARMUP * 1000 + 100))
      timers.push(setTimeout(() => { end = receiver.events }, (WARMUP + DURATION) * 1000 + 100))
    },
    perSecond: () => ((end ?? 0) - start) / DURATION,
    cancel: () => {
      for (const timer of timers) clearTimeout(timer)
      // a run that ended (broker stopped) before the window's end: the count at its end
      end ??= receiver.events
    }
  }
}

// ---- main --------------------------------------------------------------------------------

const started = Date.now()
const machine = machineInfo()
console.log(`webhook benchmark: ${machine.cpus} cores (${machine.cpuModel}), node ${machine.node}, ${DURATION} s per run (+${WARMUP} s warm-up), worker_nice ${args.nice ?? 'default'}, ${args.payload} payloads, load average ${loadavg().map((n) => n.toFixed(1)).join(' ')}`)

const fast = await countingReceiver()
const silent = await silentReceiver()
const generator = new LoadGenerator()
let running: RunningTarget | undefined
let runNo = 0

/**
 * Starts `target`, runs `scenario`, waits (up to 5 s) for the webhook to catch up, reads its
 * counters, stops it; RSS of the broker before and after the load.
 */
async function measure (bench: BenchTarget, scenario: string, params: Record<string, number> = {}, onStart?: () => void, rounds = 1) {
  running = await bench.start(args.profile ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', args.profile, '--cpu-prof-interval', '500'] } : {})
  const broker = running
  try {
    await sleep(1500) // the webhook worker loads (undici) before the load starts
    const rss = [processRssKb(broker.pid) ?? Number.NaN]
    onStart?.()
    const results: ScenarioResult[] = []
    const cpuBefore = threadCpu(broker.pid)
    const receiverBefore = process.cpuUsage()
    const wallBefore = performance.now()
    for (let round = 0; round < rounds; round++) {
      results.push(await generator.run(scenario, broker.address, {
        duration: DURATION, warmup: WARMUP, payload: 64, payloadText: PAYLOAD_TEXT, prefix: `wh${runNo++}`, pid: broker.pid, ...params
      }))
      rss.push(processRssKb(broker.pid) ?? Number.NaN)
    }
    const wall = (performance.now() - wallBefore) / 1000
    const cpuAfter = threadCpu(broker.pid)
    const receiverCpu = process.cpuUsage(receiverBefore)
    const cores = {
      main: (cpuAfter.main - cpuBefore.main) / wall,
      worker: (cpuAfter.worker - cpuBefore.worker) / wall,
      others: (cpuAfter.others - cpuBefore.others) / wall,
      // this process: the receivers (and the generator's controller), on the same two cores
      receiver: (receiverCpu.user + receiverCpu.system) / 1e6 / wall
    }
    let counters = await webhookCounters(bench.apiPort)
    const settled = (c: Record<string, number>) => (c.sent_total ?? 0) + (c.failed_total ?? 0) + (c.dropped_total ?? 0) >= (c.matched_total ?? 0)
    for (let i = 0; i < 50 && counters.matched_total !== undefined && !settled(counters) && !bench.name.includes('silent'); i++) {
      await sleep(100)
      counters = await webhookCounters(bench.apiPort)
    }
    // the webhook worker's CPU per event sent, until the queue settled (it also received
    // and dropped the others, which costs little): steadier than the ratios on a shared machine
    const workerPerEvent = (threadCpu(broker.pid).worker - cpuBefore.worker) / (counters.sent_total ?? Number.NaN) * 1e6
    return { result: results[0]!, results, rss, rssBefore: rss[0]!, rssAfter: rss.at(-1)!, counters, cores, workerPerEvent }
  } finally {
    await broker.stop()
    running = undefined
  }
}

const mb = (kb: number) => fmt(kb / 1024, 1)

/**
 * CPU seconds so far of the broker's main thread, of the webhook worker, and of all its
 * other threads (V8's and libuv's helpers), from /proc (Linux; zeros elsewhere): whether the
 * event loop itself paid for the webhook, or the second core did. The worker is the thread
 * with a nice value (web.hook.worker_nice; the broker starts at 0): with --nice 0 it is
 * counted among the others.
 */
function threadCpu (pid: number): { main: number, worker: number, others: number } {
  const cpu = { main: 0, worker: 0, others: 0 }
  let tids: string[] = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return cpu
  }
  for (const tid of tids) {
    const seconds = threadCpuSeconds(pid, tid) ?? 0 // a thread that ended meanwhile
    if (Number(tid) === pid) cpu.main += seconds
    else if ((threadNice(pid, tid) ?? 0) > 0) cpu.worker += seconds
    else cpu.others += seconds
  }
  return cpu
}
const coresOf = (run: { cores: { main: number, worker: number, others: number, receiver: number } }) =>
  `broker thread ${fmt(run.cores.main, 2)} cores, webhook worker ${fmt(run.cores.worker, 2)}, other threads ${fmt(run.cores.others, 2)}, receiver ${fmt(run.cores.receiver, 2)}`
const dropsOf = (c: Record<string, number>) => `dropped ${fmt(c.dropped_total ?? 0)} (queue full ${fmt(c.dropped_queue_full_total ?? 0)})`

const median = (values: number[]) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)]!
}
type Measured = Awaited<ReturnType<typeof measure>>
/** the run whose MQTT rate is the median of `runs` (its counters and CPU go with it) */
const medianRun = (runs: Measured[]) => {
  const rate = median(runs.map((run) => rateOf(run.result)))
  return runs.find((run) => rateOf(run.result) === rate) ?? runs[0]!
}

try {
  const off = await target('webhook-off', undefined)
  const on = await target('webhook-on', fast.url)
  const batched = await target('webhook-batched', fast.url, [`web.hook.batch.max_events = ${BATCH_EVENTS}`, 'web.hook.batch.max_delay = 50ms'])
  const hanging = await target('webhook-silent', silent.url, ['web.hook.request_timeout = 60s'])

  console.log(`\n(1)/(2) fan-in QoS 0, 10 publishers -> 1 subscriber, 64 B: MQTT msg/s delivered; ${REPEAT} rounds, targets alternating, medians`)
  const runs: Record<'off' | 'unbatched' | 'batched' | 'silent', Measured[]> = { off: [], unbatched: [], batched: [], silent: [] }
  const events: Record<'unbatched' | 'batched', number[]> = { unbatched: [], batched: [] }
  const requests: number[] = []
  for (let round = 0; round < REPEAT; round++) {
    // the order rotates, so that no target always runs first or last
    const order = (['off', 'unbatched', 'batched', 'silent'] as const).map((_, i, all) => all[(i + round) % all.length]!)
    for (const name of order) {
      if (name === 'off') runs.off.push(await measure(off, 'fanin0'))
      else if (name === 'silent') runs.silent.push(await measure(hanging, 'fanin0'))
      else {
        fast.reset()
        const window = windowCounter(fast)
        runs[name].push(await measure(name === 'unbatched' ? on : batched, 'fanin0', {}, () => window.begin()))
        window.cancel()
        events[name].push(window.perSecond())
        if (name === 'batched') requests.push(fast.requests)
      }
      const run = runs[name].at(-1)!
      console.log(`  round ${round + 1} ${name.padEnd(10)} ${fmt(rateOf(run.result))} msg/s, ${cpuOf(run.result)}, ${coresOf(run)}${run.result.valid ? '' : ` (invalid: ${run.result.invalidReason})`}` +
        (name === 'off' ? '' : `; matched ${fmt(run.counters.matched_total ?? Number.NaN)}, sent ${fmt(run.counters.sent_total ?? Number.NaN)}, ${dropsOf(run.counters)}; worker ${fmt(run.workerPerEvent, 2)} µs CPU per event sent`))
    }
  }
  const baseline = medianRun(runs.off)
  const unbatched = medianRun(runs.unbatched)
  const batch = medianRun(runs.batched)
  console.log('  medians:')
  console.log(`    webhook off                     ${fmt(rateOf(baseline.result))} msg/s, ${cpuOf(baseline.result)}, ${coresOf(baseline)}`)
  console.log(`    webhook on, unbatched           ${fmt(median(runs.unbatched.map((r) => rateOf(r.result))))} msg/s, ${cpuOf(unbatched.result)}, ${coresOf(unbatched)}; receiver got ${fmt(median(events.unbatched))} events/s`)
  console.log(`    webhook on, batched (${BATCH_EVENTS}/50 ms) ${fmt(median(runs.batched.map((r) => rateOf(r.result))))} msg/s, ${cpuOf(batch.result)}, ${coresOf(batch)}; receiver got ${fmt(median(events.batched))} events/s in ${fmt(median(requests))} requests; worker ${fmt(median(runs.batched.map((r) => r.workerPerEvent)), 2)} µs CPU per event sent`)
  console.log(`    webhook on, receiver silent     ${fmt(median(runs.silent.map((r) => rateOf(r.result))))} msg/s, ${cpuOf(medianRun(runs.silent).result)}, ${coresOf(medianRun(runs.silent))}`)

  // several rounds on one broker: RSS after each shows whether memory keeps growing
  const silentRun = await measure(hanging, 'fanin0', {}, undefined, SILENT_ROUNDS)
  console.log(`\n(2) memory: ${SILENT_ROUNDS} rounds on one broker, receiver silent: ${silentRun.results.map((r) => fmt(rateOf(r))).join(', ')} msg/s; ` +
    `${fmt(silentRun.counters.matched_total ?? Number.NaN)} events, queue depth ${fmt(silentRun.counters.queue_depth ?? Number.NaN)}, ${dropsOf(silentRun.counters)}; ` +
    `receiver saw ${silent.requests} requests, answered none`)
  console.log(`    broker RSS before and after each round: ${silentRun.rss.map(mb).join(' -> ')} MB`)

  console.log(`\n(3) unbatched delivery at a fixed ${fmt(FIXED_RATE)} msg/s (1 publisher -> 1 subscriber, QoS 0, 64 B)`)
  fast.reset()
  const window = windowCounter(fast)
  const fixed = await measure(on, 'latency0', { rate: FIXED_RATE, publishers: 1 }, () => window.begin())
  window.cancel()
  const fixedEvents = window.perSecond()
  console.log(`    receiver got ${fmt(fixedEvents)} events/s; matched ${fmt(fixed.counters.matched_total ?? Number.NaN)}, sent ${fmt(fixed.counters.sent_total ?? Number.NaN)}, ` +
    `${dropsOf(fixed.counters)}; MQTT p50 ${fmt(fixed.result.metrics.find((m) => m.name.endsWith('p50'))?.value ?? Number.NaN, 1)} ms`)

  const base = rateOf(baseline.result)
  const ratio = (name: 'unbatched' | 'batched' | 'silent') => median(runs[name].map((r) => rateOf(r.result))) / base
  console.log('\nratios (same invocation, medians)')
  console.log(`  (1) webhook on (unbatched) / off:   ${verdict(ratio('unbatched'), 0.9)}`)
  console.log(`  (1) webhook on (batched) / off:     ${verdict(ratio('batched'), 0.9)}`)
  console.log(`  (2) receiver silent / off:          ${verdict(ratio('silent'), 0.95)}; RSS after the last round / after the first ${fmt(silentRun.rssAfter / silentRun.rss[1]!, 2)}`)
  // "keeps up": every matched event reached the receiver by the end of the run, none dropped
  // (the events/s figures above come from a timed window, so they are approximate)
  const delivered = (c: Record<string, number>) => (c.sent_total ?? 0) / (c.matched_total ?? Number.NaN)
  console.log(`  (3) unbatched at ${fmt(FIXED_RATE)} msg/s, delivered / matched: ${verdict(delivered(fixed.counters), 1)}; dropped ${fmt(fixed.counters.dropped_total ?? Number.NaN)}; ` +
    `receiver events/s / publish rate ${fmt(fixedEvents / FIXED_RATE, 3)}`)
  console.log(`  (3) batched at full rate, delivered / matched (median run): ${verdict(delivered(batch.counters), 1)}; dropped ${fmt(batch.counters.dropped_total ?? Number.NaN)}; ` +
    `receiver events/s / MQTT msg/s ${fmt(median(events.batched) / median(runs.batched.map((r) => rateOf(r.result))), 3)}`)
  console.log(`\ntotal ${fmt((Date.now() - started) / 1000, 1)} s`)
} finally {
  await running?.stop().catch(() => {})
  await generator.close()
  await fast.close()
  await silent.close()
}
