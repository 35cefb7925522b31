// http-auth benchmark, run by hand (never by npm test):
//
//   node --import tsx bench/http-auth.ts [--reps 3] [--quick] [--only a|b] [--profile DIR]
//
// Part A, connect rate: 2000 clients connect, 64 at a time, to tapmq with
//   - no auth plugin (baseline),
//   - http-auth against a local auth server that answers at once, cache off,
//   - the same with the decision cache on (all clients share one credential).
//   Goal: cached >= 0.8 x baseline.
// Part B, isolation from a slow auth server (200 ms per answer): the publish throughput of
//   already-connected clients (fan-in QoS 0, 10 publishers -> 1 subscriber) while 1000 new
//   clients connect (64 at a time), against the same run without the connect storm.
//   Goal: >= 0.9. Both runs measure the flow over the same fixed 6 s window; every CONNACK of
//   the storm must arrive inside it, and the storm clients stay connected past it (see partB).
//   Control: the same with bench/http-auth-delay-plugin.ts, which allows after 200 ms
//   without HTTP, to tell the cost of the HTTP requests from that of pending connects.
//
// The broker runs as its own process (the tapmq CLI, pinned to core 0 when taskset exists);
// the load runs in separate generator processes (bench/lib, raw sockets + mqtt-packet,
// pinned to core 1); the auth server runs in this process (also on core 1). All figures
// are ratios against a baseline measured in the same invocation.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { LoadGenerator, machineInfo, median, pinToCpu, type RunningTarget, type ScenarioParams, type ScenarioResult, tapmqTarget } from './lib/index.ts'
import { TIMELINE_MS } from './lib/scenarios.ts'

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    /** part B: run the brokers with --cpu-prof, profiles in DIR (summarise with bench/profile.ts) */
    profile: { type: 'string' },
    /** part B: which targets (label prefixes: http-auth, control, reference), comma-separated */
    'storm-targets': { type: 'string', default: 'http-auth,control,reference' },
    /** part B: connects in flight at once during the storm */
    'storm-concurrency': { type: 'string', default: '64' },
    /** part B, supplementary: the same storm while the connected clients publish at this fixed rate, msg/s (0: skip) */
    'storm-rate': { type: 'string', default: '50000' }
  }
})
/** `--only a` or `--only b` runs one part */
const PARTS = new Set(args.only ? [args.only.toLowerCase()] : ['a', 'b'])
const REPS = Math.max(1, Number(args.reps))
const QUICK = args.quick === true
const CONNECT_CLIENTS = QUICK ? 500 : 2000
const STORM_CLIENTS = QUICK ? 300 : 1000
const SLOW_MS = 200
/** part B: connects in flight at once during the storm */
const STORM_CONCURRENCY = Math.max(1, Number(args['storm-concurrency']))
/** part B: measured seconds of the flow; the whole storm (connects and closes) must fit in it */
const WINDOW_S = 6
/** part B, supplementary: the fixed publish rate of the connected clients (0: skip) */
const STORM_RATE = Math.max(0, Number(args['storm-rate']))
/** part B: the storm starts this long after the flow's measured window opened */
const STORM_OFFSET_MS = 500
const WARMUP_S = 1
const START_OPTIONS = { cpu: 0, nodeArgs: args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile, '--cpu-prof-interval', '500'] : undefined }

// ---- the auth server ------------------------------------------------------------------

interface AuthServer {
  readonly port: number
  /** requests per client id prefix (the part before the first '-') */
  readonly seen: Map<string, number>
  total: number
  delayMs: number
  close (): Promise<void>
}

async function startAuthServer (): Promise<AuthServer> {
  const state = { seen: new Map<string, number>(), total: 0, delayMs: 0 }
  const server: Server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      state.total++
      const clientId = new URLSearchParams(body).get('clientid') ?? ''
      const prefix = clientId.split('-')[0]!
      state.seen.set(prefix, (state.seen.get(prefix) ?? 0) + 1)
      const answer = () => res.writeHead(200, { 'content-length': '0' }).end()
      if (state.delayMs > 0) setTimeout(answer, state.delayMs)
      else answer()
    })
  })
  server.keepAliveTimeout = 60_000
  server.maxRequestsPerSocket = 0
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return Object.assign(state, {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  })
}

function httpAuthTarget (name: string, auth: AuthServer, extra: string) {
  return tapmqTarget(name, `tapmq + http-auth (${name})`, {
    plugins: 'plugin.http_auth = on\nplugin.http_auth.conf = auth_http.conf\n',
    files: {
      'auth_http.conf': [
        'auth.http.enable = true',
        `auth.http.auth_req.url = http://127.0.0.1:${auth.port}/mqtt/auth`,
        'auth.http.auth_req.method = post',
        'auth.http.auth_req.headers.content-type = application/x-www-form-urlencoded',
        extra
      ].join('\n') + '\n'
    }
  })
}

// ---- helpers ----------------------------------------------------------------------------

const metric = (result: ScenarioResult, name: string) => result.metrics.find((m) => m.name === name)?.value ?? Number.NaN
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until (check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`)
    await sleep(20)
  }
}

function verdict (ratio: number, goal: number): string {
  return `${fmt(ratio, 3)} (goal >= ${goal}: ${ratio >= goal ? 'met' : 'NOT met'})`
}

// ---- main -------------------------------------------------------------------------------

const started = Date.now()
const machine = machineInfo()
console.log(`http-auth benchmark - ${machine.cpus} cores (${machine.cpuModel}), node ${machine.node}, reps ${REPS}${QUICK ? ', quick' : ''}`)

// the auth server (this process) shares core 1 with the load generators: core 0 is the broker's
pinToCpu(process.pid, 1)
const auth = await startAuthServer()
const generator = new LoadGenerator({ cpu: 1 })
const stormGenerator = new LoadGenerator({ cpu: 1 })
const running: RunningTarget[] = []

try {
  if (PARTS.has('a')) await partA()
  if (PARTS.has('b')) await partB()
  console.log(`\nauth requests answered: ${auth.total}; total time ${fmt((Date.now() - started) / 1000, 1)} s`)
} finally {
  for (const broker of running) await broker.stop().catch(() => {})
  await generator.close()
  await stormGenerator.close()
  await auth.close()
}

async function partA (): Promise<void> {
  const targets = [
    { label: 'auth off', target: tapmqTarget('off', 'tapmq, no plugins') },
    { label: 'http-auth uncached', target: httpAuthTarget('uncached', auth, 'auth.http.auth_req.params = username=%u,password=%P') },
    { label: 'http-auth cached', target: httpAuthTarget('cached', auth, 'auth.http.auth_req.params = username=%u,password=%P\nauth.http.cache.enable = true') }
  ]
  const brokers = []
  for (const { target } of targets) {
    const broker = await target.start({ cpu: 0 })
    running.push(broker)
    brokers.push(broker)
  }
  const rates: number[][] = targets.map(() => [])
  const requests: number[][] = targets.map(() => [])
  /** broker CPU per connect in ms: less sensitive to a busy machine than the rate */
  const cpuPerConnect: number[][] = targets.map(() => [])
  const failures: string[] = []
  for (let rep = 0; rep < REPS; rep++) {
    // interleaved, so that drift over the run hits every target alike
    for (let i = 0; i < targets.length; i++) {
      const before = auth.total
      // the first round warms each broker up with one unmeasured storm (its connects and
      // auth requests are in "auth requests per run"): a cold Node broker's first storm is ~40 % slower
      const result = await generator.run('connect', brokers[i]!.address, {
        duration: 0, warmup: rep === 0 ? 1 : 0, payload: 16, prefix: `a${rep}x${i}`, pid: brokers[i]!.pid,
        clients: CONNECT_CLIENTS, concurrency: 64, username: 'bench', password: 'bench-secret'
      })
      if (!result.valid) failures.push(`${targets[i]!.label}: ${result.invalidReason}`)
      rates[i]!.push(metric(result, 'connect rate'))
      cpuPerConnect[i]!.push(((result.brokerCpu ?? Number.NaN) / metric(result, 'connect rate')) * 1000)
      requests[i]!.push(auth.total - before)
    }
  }
  for (const broker of brokers) await broker.stop()
  running.length = 0

  console.log(`\nA. connect rate: ${CONNECT_CLIENTS} clients, 64 at a time, auth server answering at once (median of ${REPS})`)
  const base = median(rates[0]!)
  for (let i = 0; i < targets.length; i++) {
    const value = median(rates[i]!)
    console.log(`  ${targets[i]!.label.padEnd(20)} ${fmt(value).padStart(7)} conn/s   x${fmt(value / base, 3)} of auth off   runs ${rates[i]!.map((r) => fmt(r)).join(', ')}   broker CPU ${fmt(median(cpuPerConnect[i]!), 3)} ms/connect   auth requests per run ${requests[i]!.join(', ')}`)
  }
  console.log(`  cached / auth off:   ${verdict(median(rates[2]!) / base, 0.8)}`)
  console.log(`  uncached / auth off: ${fmt(median(rates[1]!) / base, 3)}`)
  for (const failure of failures) console.log(`  INVALID RUN ${failure}`)
}

/**
 * Part B: publish throughput during a connect storm on a slow auth server.
 *
 * Design: the flow (fan-in QoS 0, 10 publishers -> 1 subscriber) measures a fixed window of
 * WINDOW_S seconds after WARMUP_S of warm-up. In the storm run, STORM_CLIENTS new clients
 * connect, STORM_CONCURRENCY at a time, starting STORM_OFFSET_MS after the window opened; every
 * CONNACK must arrive inside the window, else the run is reported invalid. The storm clients
 * stay connected until the window has closed (then they disconnect, unmeasured). The quiet run
 * is the same flow without the storm, on the same broker. Ratio = flow messages/s with the
 * storm / without, both over the whole window.
 */
async function partB (): Promise<void> {
  auth.delayMs = SLOW_MS
  const targets = [
    {
      label: 'http-auth',
      target: httpAuthTarget('slow', auth, 'auth.http.auth_req.params = clientid=%c,username=%u,password=%P\nauth.http.timeout = 30s\nauth.http.pool_size = 64'),
      // the flow's 11 clients got their answers (each answer leaves SLOW_MS after the request)
      flowConnected: async (prefix: string) => {
        await until(() => (auth.seen.get(prefix) ?? 0) >= 11, 'the flow clients to connect', 30_000)
        await sleep(SLOW_MS + 100)
      }
    },
    {
      label: 'control: in-process 200 ms delay, no HTTP',
      target: tapmqTarget('delay', 'tapmq + a plugin that allows after 200 ms', {
        plugins: `plugin.delay = on\nplugin.delay.source = ${fileURLToPath(new URL('./http-auth-delay-plugin.ts', import.meta.url))}\nplugin.delay.delay = ${SLOW_MS}\n`
      }),
      // 11 clients connect one after the other, SLOW_MS each
      flowConnected: () => sleep(11 * SLOW_MS + 300)
    },
    {
      label: 'reference: no auth plugin, every CONNECT answered at once',
      target: tapmqTarget('noauth', 'tapmq, no plugins'),
      flowConnected: () => sleep(300)
    }
  ]
  const wanted = args['storm-targets']!.split(',').map((name) => name.trim())
  targets.splice(0, targets.length, ...targets.filter((t) => wanted.some((name) => t.label.startsWith(name))))
  const quiet: number[][] = targets.map(() => [])
  const stormy: number[][] = targets.map(() => [])
  /** the fixed-rate flow: [p50, p99, delivered msg/s] quiet and with the storm */
  const paced: Array<Array<{ quiet: number[], storm: number[] }>> = targets.map(() => [])
  const notes: string[] = []
  const reps = Math.min(REPS, 2)
  // throughput over the window in TIMELINE_MS steps, k msg/s: where the storm bites
  const perSecond = (result: ScenarioResult) => String(result.notes?.timeline ?? '').split(',').map((n) => fmt(Number(n) * (1000 / TIMELINE_MS) / 1000)).join(' ')
  const delivered = (result: ScenarioResult) => String(result.notes?.timeline ?? '').split(',').reduce((sum, n) => sum + Number(n), 0) / WINDOW_S

  /** the flow alone, then the flow with the storm inside its window; undefined storm result when the storm did not fit */
  async function pair (broker: RunningTarget, label: string, flowConnected: (prefix: string) => Promise<unknown>, scenario: string, extra: Partial<ScenarioParams>, tag: string) {
    const flow = { duration: WINDOW_S, warmup: WARMUP_S, payload: 64, pid: broker.pid, username: 'bench', password: 'bench-secret', ...extra }
    const alone = await generator.run(scenario, broker.address, { ...flow, prefix: `q${tag}` })
    const prefix = `s${tag}`
    const during = generator.run(scenario, broker.address, { ...flow, prefix })
    await flowConnected(prefix)
    // the window opens WARMUP_S after the last flow client connected
    await sleep(WARMUP_S * 1000 + STORM_OFFSET_MS)
    const stormStart = Date.now()
    const storm = stormGenerator.run('connect', broker.address, {
      duration: 0, warmup: 0, payload: 16, prefix: `storm${tag}`, pid: broker.pid,
      clients: STORM_CLIENTS, concurrency: STORM_CONCURRENCY, username: 'bench', password: 'bench-secret',
      // connected clients stay: they disconnect only after the window
      hold: WINDOW_S
    }).then((result) => ({ result, end: Number(result.notes?.connectedAt), closed: Number(result.notes?.connectedAt) + WINDOW_S * 1000 }))
    const [withStorm, stormDone] = await Promise.all([during, storm])
    const windowStart = Number(withStorm.notes?.windowStart)
    const windowEnd = Number(withStorm.notes?.windowEnd)
    const inside = stormStart >= windowStart && stormDone.end <= windowEnd && stormDone.closed >= windowEnd
    if (!inside) {
      notes.push(`INVALID ${label} ${scenario} ${tag}: the connects (${stormStart - windowStart} .. ${stormDone.end - windowStart} ms, closes from ${stormDone.closed - windowStart} ms) are not inside the measured window (0 .. ${windowEnd - windowStart} ms)`)
    }
    for (const [what, result] of [['quiet', alone], ['storm', withStorm], ['connects', stormDone.result]] as const) {
      if (!result.valid) notes.push(`INVALID ${label} ${scenario} ${what} ${tag}: ${result.invalidReason}`)
    }
    notes.push(`${label}, ${scenario} ${tag}: broker ${fmt(alone.brokerCpu ?? NaN, 2)} cores quiet, ${fmt(withStorm.brokerCpu ?? NaN, 2)} with the storm; ` +
      `connects from ${fmt((stormStart - windowStart) / 1000, 2)} s to ${fmt((stormDone.end - windowStart) / 1000, 2)} s of the ${WINDOW_S} s window ` +
      `(CONNACK p50 ${fmt(metric(stormDone.result, 'CONNACK p50'))} ms, p99 ${fmt(metric(stormDone.result, 'CONNACK p99'))} ms); ` +
      `flow generator ${fmt(alone.generatorCpu, 2)} / ${fmt(withStorm.generatorCpu, 2)} cores, storm generator ${fmt(stormDone.result.generatorCpu, 2)} cores`)
    notes.push(`  k msg/s per ${TIMELINE_MS} ms, quiet: ${perSecond(alone)}`)
    notes.push(`  k msg/s per ${TIMELINE_MS} ms, storm: ${perSecond(withStorm)}`)
    return { alone, withStorm: inside && withStorm.valid ? withStorm : undefined }
  }

  for (let rep = 0; rep < reps; rep++) {
    for (let i = 0; i < targets.length; i++) {
      const { label, target, flowConnected } = targets[i]!
      const broker = await target.start(START_OPTIONS)
      running.push(broker)
      const saturated = await pair(broker, label, flowConnected, 'fanin0', {}, `${rep}x${i}`)
      quiet[i]!.push(metric(saturated.alone, 'fan-in QoS 0'))
      stormy[i]!.push(saturated.withStorm ? metric(saturated.withStorm, 'fan-in QoS 0') : Number.NaN)
      if (STORM_RATE > 0) {
        // the supplementary question: connected clients at a fixed, moderate rate (10 publishers -> 1 subscriber)
        const fixed = await pair(broker, label, flowConnected, 'latency0', { publishers: 10, rate: STORM_RATE }, `r${rep}x${i}`)
        const figures = (result: ScenarioResult | undefined) => (result ? [metric(result, 'latency QoS 0 p50'), metric(result, 'latency QoS 0 p99'), delivered(result)] : [Number.NaN, Number.NaN, Number.NaN])
        paced[i]!.push({ quiet: figures(fixed.alone), storm: figures(fixed.withStorm) })
      }
      await broker.stop()
      running.splice(running.indexOf(broker), 1)
    }
  }

  console.log(`\nB. fan-in QoS 0 (10 pub -> 1 sub, 64 B) measured over a fixed ${WINDOW_S} s window; each client's auth answered after ${SLOW_MS} ms; ` +
    `in the storm run ${STORM_CLIENTS} new clients connect (${STORM_CONCURRENCY} at a time) from ${STORM_OFFSET_MS} ms into the window, all inside it, and stay connected until it closed (median of ${reps})`)
  for (let i = 0; i < targets.length; i++) {
    const valid = stormy[i]!.filter((v) => Number.isFinite(v))
    const ratio = median(valid) / median(quiet[i]!)
    console.log(`  ${targets[i]!.label}`)
    console.log(`    without storm ${fmt(median(quiet[i]!))} msg/s (runs ${quiet[i]!.map((v) => fmt(v)).join(', ')}), with storm ${fmt(median(valid))} msg/s (runs ${stormy[i]!.map((v) => fmt(v)).join(', ')})`)
    console.log(`    with / without: ${i === 0 ? verdict(ratio, 0.9) : fmt(ratio, 3)}`)
  }
  if (STORM_RATE > 0) {
    console.log(`\nB, supplementary: the same storm while the connected clients publish at a fixed ${STORM_RATE} msg/s (10 pub -> 1 sub, QoS 0): ` +
      `publish-to-delivery latency and delivered msg/s over the window (median of ${reps})`)
    for (let i = 0; i < targets.length; i++) {
      const pick = (side: 'quiet' | 'storm', k: number) => median(paced[i]!.map((p) => p[side][k]!).filter((v) => Number.isFinite(v)))
      console.log(`  ${targets[i]!.label}`)
      console.log(`    without storm: p50 ${fmt(pick('quiet', 0), 2)} ms, p99 ${fmt(pick('quiet', 1), 2)} ms, ${fmt(pick('quiet', 2))} msg/s; ` +
        `with storm: p50 ${fmt(pick('storm', 0), 2)} ms, p99 ${fmt(pick('storm', 1), 2)} ms, ${fmt(pick('storm', 2))} msg/s`)
    }
  }
  for (const note of notes) console.log(`  ${note}`)
}
