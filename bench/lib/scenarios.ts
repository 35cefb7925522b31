// The load scenarios. They run inside the load-generator process (see generator.ts), one at a
// time, against one broker address; each returns metrics plus what it needs to judge the run
// valid (nothing lost, nothing out of order, generator not saturated).
import { readFileSync } from 'node:fs'
import { type Address, PublishEncoder, readSeq, readSource, readStamp, WireClient } from './wire.ts'

export type Better = 'higher' | 'lower'

export interface Metric {
  readonly name: string
  readonly value: number
  readonly unit: string
  readonly better: Better
}

export interface ScenarioResult {
  readonly metrics: Metric[]
  /** messages the generator sent / the subscribers received (unique, counted after the drain) */
  readonly sent?: number
  readonly delivered?: number
  readonly lost?: number
  readonly outOfOrder?: number
  readonly duplicates?: number
  readonly valid: boolean
  readonly invalidReason?: string
  /** cores used by the load generator and by the broker during the measured window */
  readonly generatorCpu: number
  readonly brokerCpu?: number
  /** the generator used more than 0.9 core: the figure may be the generator's limit, not the broker's */
  readonly generatorBound?: boolean
  readonly notes?: Record<string, number | string>
}

export interface ScenarioParams {
  /** measured seconds */
  readonly duration: number
  /** seconds of load before measuring */
  readonly warmup: number
  /** payload bytes (>= 16) */
  readonly payload: number
  /** what fills the payload after its 16-byte binary header (zeros when absent), cut to fit */
  readonly payloadText?: string
  /** prefix for topics and client ids, unique per run */
  readonly prefix: string
  /** broker pid, for its CPU and memory (Linux /proc) */
  readonly pid?: number
  readonly publishers?: number
  readonly subscribers?: number
  readonly qos?: 0 | 1
  /** messages a publisher may be ahead of its slowest subscriber */
  readonly window?: number
  /** QoS 1 PUBLISHes a publisher may have un-acknowledged */
  readonly inflight?: number
  /** messages per second for the latency scenarios */
  readonly rate?: number
  readonly clients?: number
  readonly concurrency?: number
  readonly username?: string
  readonly password?: string
  /** seconds without progress after which the drain gives up */
  readonly drainTimeout?: number
  /** subscribers connect with clean = false: persistent sessions, so QoS > 0 goes through the session store */
  readonly persistent?: boolean
  /** where the publishers of the flow scenarios connect (default: the scenario's address; bench/cluster.ts: another node) */
  readonly publishAddress?: Address
  /** connect scenario: seconds to keep the clients connected after the last CONNACK, before closing them */
  readonly hold?: number
}

export interface ScenarioDefinition {
  readonly name: string
  readonly description: string
  /** defaults merged under the caller's params */
  readonly defaults: Partial<ScenarioParams>
  run (address: Address, params: ScenarioParams): Promise<ScenarioResult>
}

// ---- measurement helpers ------------------------------------------------------------

const CLOCK_TICKS = 100
const GENERATOR_BOUND = 0.9

/** utime + stime of a process in seconds, from /proc (undefined when unavailable) */
export function processCpuSeconds (pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : cpuSecondsOf(`/proc/${pid}/stat`)
}

/** utime + stime of one thread of a process in seconds (undefined when unavailable, or when it ended) */
export function threadCpuSeconds (pid: number, tid: number | string): number | undefined {
  return cpuSecondsOf(`/proc/${pid}/task/${tid}/stat`)
}

/** the nice value of one thread of a process (undefined when unavailable, or when it ended) */
export function threadNice (pid: number, tid: number | string): number | undefined {
  const fields = statFields(`/proc/${pid}/task/${tid}/stat`)
  return fields === undefined ? undefined : Number(fields[16])
}

function cpuSecondsOf (statFile: string): number | undefined {
  const fields = statFields(statFile)
  return fields === undefined ? undefined : (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** the fields of a /proc stat file after the command name, from `state` on */
function statFields (statFile: string): string[] | undefined {
  try {
    const stat = readFileSync(statFile, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** resident set size of a process in KB (undefined when unavailable) */
export function processRssKb (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

/** CPU use of this process and of the broker between start() and stop(), in cores */
class CpuWindow {
  readonly #pid?: number
  #usage = process.cpuUsage()
  #broker?: number
  #at = performance.now()
  generator = 0
  broker?: number

  constructor (pid?: number) {
    this.#pid = pid
  }

  start (): void {
    this.#usage = process.cpuUsage()
    this.#broker = processCpuSeconds(this.#pid)
    this.#at = performance.now()
  }

  stop (): void {
    const seconds = (performance.now() - this.#at) / 1000
    const used = process.cpuUsage(this.#usage)
    this.generator = (used.user + used.system) / 1e6 / seconds
    const broker = processCpuSeconds(this.#pid)
    if (broker !== undefined && this.#broker !== undefined) this.broker = (broker - this.#broker) / seconds
  }
}

export function percentile (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Resolves when `done()` is true, or after `timeoutMs` without `progress()` changing. */
async function waitUntil (done: () => boolean, progress: () => number, timeoutMs: number): Promise<boolean> {
  let last = progress()
  let lastChange = performance.now()
  while (!done()) {
    await sleep(20)
    const now = progress()
    if (now !== last) {
      last = now
      lastChange = performance.now()
    } else if (performance.now() - lastChange > timeoutMs) {
      return false
    }
  }
  return true
}

/** Runs `fn` for each index with at most `concurrency` in flight. */
async function bounded (count: number, concurrency: number, fn: (index: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) await fn(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

/** Per-source sequence tracking at one subscriber. */
class SequenceCheck {
  readonly expected: Uint32Array
  received = 0
  outOfOrder = 0
  duplicates = 0

  constructor (sources: number) {
    this.expected = new Uint32Array(sources)
  }

  /** returns false for a duplicate */
  take (source: number, seq: number): boolean {
    const expected = this.expected[source]
    if (seq === expected) {
      this.expected[source] = seq + 1
    } else if (seq < expected) {
      this.duplicates++
      return false
    } else {
      // a gap: either lost or overtaken; either way the run is invalid
      this.outOfOrder++
      this.expected[source] = seq + 1
    }
    this.received++
    return true
  }
}

function invalidity (parts: Array<[boolean, string]>): { valid: boolean, invalidReason?: string } {
  const reasons = parts.filter(([bad]) => bad).map(([, why]) => why)
  return reasons.length === 0 ? { valid: true } : { valid: false, invalidReason: reasons.join('; ') }
}

async function closeAll (clients: Iterable<WireClient>): Promise<void> {
  await Promise.all([...clients].map((client) => client.disconnect()))
}

// ---- message flow: N publishers -> M subscribers, windowed -----------------------------

interface FlowOptions {
  readonly publishers: number
  readonly subscribers: number
  readonly qos: 0 | 1
  readonly window: number
  readonly inflight: number
  /** undefined: as fast as the window allows; else messages/s for the whole run (latency) */
  readonly rate?: number
}

interface FlowOutcome {
  sent: number
  /** unique messages received, summed over subscribers */
  delivered: number
  measuredDeliveries: number
  outOfOrder: number
  duplicates: number
  drained: boolean
  latencies: number[]
  cpu: CpuWindow
  seconds: number
  /** the measured window, wall clock (Date.now() ms), for scripts that time other load against it */
  windowStart: number
  windowEnd: number
  /** deliveries in each TIMELINE_MS of the measured window */
  timeline: number[]
}

/** the resolution of a flow's timeline (ScenarioResult.notes.timeline) */
export const TIMELINE_MS = 250

/**
 * The core of every throughput and latency scenario. Publishers may run at most `window`
 * messages ahead of the slowest subscriber, so an overloaded broker queues a bounded amount
 * instead of dropping or buffering without limit; after the measured window the
 * publishers stop and the run waits for every subscriber to receive everything (the drain)
 * before counting losses.
 */
async function flow (address: Address, params: ScenarioParams, options: FlowOptions): Promise<FlowOutcome> {
  const { publishers: nPub, subscribers: nSub, qos, window, inflight } = options
  const topic = `${params.prefix}/flow`
  const encoder = Array.from({ length: nPub }, () => new PublishEncoder(topic, params.payload, qos, params.payloadText))
  const sent = new Uint32Array(nPub)
  const acked = new Uint32Array(nPub)
  const unacked = new Uint32Array(nPub)
  const blocked = new Uint8Array(nPub)
  const checks = Array.from({ length: nSub }, () => new SequenceCheck(nPub))
  // received per subscriber per source, to find the slowest subscriber of each publisher
  const minReceived = (source: number) => {
    let min = Infinity
    for (const check of checks) min = Math.min(min, check.expected[source])
    return min
  }
  const latencies: number[] = []
  let measuring = false
  let measuredDeliveries = 0
  // false until every client is connected and subscribed
  let running = false
  const batchMin = Math.max(1, Math.min(64, Math.floor(window / 4)))
  const maxBatch = 256
  const clients: WireClient[] = []
  const pubClients: WireClient[] = []

  let pumpScheduled = false
  const schedulePump = () => {
    if (pumpScheduled) return
    pumpScheduled = true
    queueMicrotask(() => {
      pumpScheduled = false
      if (options.rate === undefined) pump()
    })
  }

  const send = (i: number, count: number) => {
    const buf = encoder[i].encode(i, sent[i], count, performance.now())
    sent[i] += count
    if (qos > 0) unacked[i] += count
    const socket = pubClients[i].socket
    if (!socket.write(buf)) {
      blocked[i] = 1
      socket.once('drain', () => {
        blocked[i] = 0
        schedulePump()
      })
    }
  }

  const pump = () => {
    if (!running) return
    for (let i = 0; i < nPub; i++) {
      if (blocked[i]) continue
      let allowed = window - (sent[i] - minReceived(i))
      if (qos > 0) allowed = Math.min(allowed, inflight - unacked[i])
      if (allowed < batchMin) continue
      send(i, Math.min(allowed, maxBatch))
    }
  }

  try {
    for (let s = 0; s < nSub; s++) {
      const check = checks[s]
      const { client } = await WireClient.connect(address, {
        clientId: `${params.prefix}-s${s}`,
        clean: params.persistent !== true,
        username: params.username,
        password: params.password,
        onPublish: (buf, start) => {
          const seq = readSeq(buf, start)
          const source = readSource(buf, start)
          if (source >= nPub || !check.take(source, seq)) return
          if (measuring) {
            measuredDeliveries++
            if (options.rate !== undefined) latencies.push(performance.now() - readStamp(buf, start))
          }
        },
        afterChunk: schedulePump
      })
      clients.push(client)
      await client.subscribe(topic, qos)
    }
    for (let i = 0; i < nPub; i++) {
      const { client } = await WireClient.connect(params.publishAddress ?? address, {
        clientId: `${params.prefix}-p${i}`,
        username: params.username,
        password: params.password,
        onPuback: () => {
          unacked[i]--
          acked[i]++
          schedulePump()
        }
      })
      clients.push(client)
      pubClients.push(client)
    }

    let ticker: NodeJS.Timeout | undefined
    const started = performance.now()
    running = true
    if (options.rate !== undefined) {
      // fixed rate: every millisecond, send what is due so far, spread over the publishers
      const perPublisher = options.rate / nPub
      ticker = setInterval(() => {
        const due = Math.floor(((performance.now() - started) / 1000) * perPublisher)
        for (let i = 0; i < nPub && running; i++) {
          const count = Math.min(due - sent[i], maxBatch)
          if (count > 0 && !blocked[i]) send(i, count)
        }
      }, 1)
    } else {
      pump()
    }

    const cpu = new CpuWindow(params.pid)
    await sleep(params.warmup * 1000)
    measuring = true
    cpu.start()
    const t0 = performance.now()
    const windowStart = Date.now()
    const timeline: number[] = []
    let counted = measuredDeliveries
    const sampler = setInterval(() => {
      timeline.push(measuredDeliveries - counted)
      counted = measuredDeliveries
    }, TIMELINE_MS)
    await sleep(params.duration * 1000)
    clearInterval(sampler)
    measuring = false
    cpu.stop()
    const windowEnd = Date.now()
    const seconds = (performance.now() - t0) / 1000
    running = false
    if (ticker) clearInterval(ticker)

    const totalSent = () => sent.reduce((a, b) => a + b, 0)
    const delivered = () => checks.reduce((a, c) => a + c.received, 0)
    const everyone = () => totalSent() * nSub
    const acksDone = () => qos === 0 || unacked.every((n) => n === 0)
    const drained = await waitUntil(
      () => delivered() >= everyone() && acksDone(),
      () => delivered() + acked.reduce((a, b) => a + b, 0),
      (params.drainTimeout ?? 5) * 1000)

    return {
      sent: everyone(),
      delivered: delivered(),
      measuredDeliveries,
      outOfOrder: checks.reduce((a, c) => a + c.outOfOrder, 0),
      duplicates: checks.reduce((a, c) => a + c.duplicates, 0),
      drained,
      latencies,
      cpu,
      seconds,
      windowStart,
      windowEnd,
      timeline
    }
  } finally {
    running = false
    await closeAll(clients)
  }
}

/**
 * Broker CPU time per delivered message (or per connection), in µs: utime + stime, so that
 * time the broker spent waiting for a core (other processes on a busy machine) is not in it.
 * Steadier than throughput when the machine is shared.
 */
function cpuCost (name: string, cpu: CpuWindow, seconds: number, operations: number): Metric[] {
  if (cpu.broker === undefined || operations === 0) return []
  return [{ name: `${name} broker CPU`, value: (cpu.broker * seconds * 1e6) / operations, unit: 'µs/op', better: 'lower' }]
}

function flowResult (outcome: FlowOutcome, metrics: Metric[], notes?: Record<string, number | string>): ScenarioResult {
  const lost = Math.max(0, outcome.sent - outcome.delivered)
  return {
    metrics: [...metrics, ...cpuCost(metrics[0].name.replace(/ p50$/, ''), outcome.cpu, outcome.seconds, outcome.measuredDeliveries)],
    sent: outcome.sent,
    delivered: outcome.delivered,
    lost,
    outOfOrder: outcome.outOfOrder,
    duplicates: outcome.duplicates,
    generatorCpu: outcome.cpu.generator,
    brokerCpu: outcome.cpu.broker,
    notes: { ...notes, windowStart: outcome.windowStart, windowEnd: outcome.windowEnd, timeline: outcome.timeline.join(',') },
    ...invalidity([
      [lost > 0, `lost ${lost} of ${outcome.sent} (delivered/sent ${outcome.delivered}/${outcome.sent}${outcome.drained ? '' : ', drain timed out'})`],
      [outcome.outOfOrder > 0, `${outcome.outOfOrder} out of order`]
    ]),
    generatorBound: outcome.cpu.generator > GENERATOR_BOUND
  }
}

function throughput (name: string, unit: string) {
  return async (address: Address, params: ScenarioParams): Promise<ScenarioResult> => {
    const outcome = await flow(address, params, {
      publishers: params.publishers ?? 1,
      subscribers: params.subscribers ?? 1,
      qos: params.qos ?? 0,
      window: params.window ?? 500,
      inflight: params.inflight ?? 100
    })
    return flowResult(outcome, [{ name, value: outcome.measuredDeliveries / outcome.seconds, unit, better: 'higher' }])
  }
}

function latency (name: string) {
  return async (address: Address, params: ScenarioParams): Promise<ScenarioResult> => {
    const rate = params.rate ?? 2000
    const outcome = await flow(address, params, {
      publishers: params.publishers ?? 1,
      subscribers: params.subscribers ?? 1,
      qos: params.qos ?? 0,
      window: Number.MAX_SAFE_INTEGER,
      inflight: Number.MAX_SAFE_INTEGER,
      rate
    })
    const sorted = Float64Array.from(outcome.latencies).sort()
    return flowResult(outcome, [
      { name: `${name} p50`, value: percentile(sorted, 50), unit: 'ms', better: 'lower' },
      { name: `${name} p99`, value: percentile(sorted, 99), unit: 'ms', better: 'lower' }
    ], { rate, samples: sorted.length })
  }
}

// ---- connections ----------------------------------------------------------------------

async function connectMany (address: Address, params: ScenarioParams, count: number, concurrency: number, keepalive: number) {
  const clients: WireClient[] = []
  const connack = new Float64Array(count)
  let failures = 0
  let firstError: string | undefined
  const t0 = performance.now()
  await bounded(count, concurrency, async (index) => {
    try {
      const { client, connackMs } = await WireClient.connect(address, {
        clientId: `${params.prefix}-c${index}`, keepalive, username: params.username, password: params.password
      })
      connack[index] = connackMs
      clients.push(client)
    } catch (err) {
      failures++
      firstError ??= (err as Error).message
      connack[index] = Number.NaN
    }
  })
  return { clients, connack, failures, firstError, seconds: (performance.now() - t0) / 1000 }
}

/**
 * The connect scenario's warm-up (params.warmup > 0): the same storm, unmeasured, then closed.
 * A fresh broker's connect path is not compiled yet and its heap has not grown to hold the
 * connections; a warm-up of 500 clients still left the first measured run of every Node
 * broker ~40 % slower than the next ones.
 */
export const CONNECT_WARMUP_CLIENTS = 2000

async function connectStorm (address: Address, params: ScenarioParams): Promise<ScenarioResult> {
  const count = params.clients ?? 2000
  const concurrency = params.concurrency ?? 64
  if (params.warmup > 0) {
    // the same storm, unmeasured, then closed: what is measured is the steady state
    const warm = await connectMany(address, { ...params, prefix: `${params.prefix}-w` }, Math.min(count, CONNECT_WARMUP_CLIENTS), concurrency, 60)
    await closeAll(warm.clients)
    await sleep(200)
  }
  const cpu = new CpuWindow(params.pid)
  cpu.start()
  const storm = await connectMany(address, params, count, concurrency, 60)
  cpu.stop()
  const connectedAt = Date.now()
  try {
    if (params.hold) await sleep(params.hold * 1000)
    const sorted = storm.connack.filter((v) => !Number.isNaN(v)).sort()
    return {
      metrics: [
        { name: 'connect rate', value: sorted.length / storm.seconds, unit: 'conn/s', better: 'higher' },
        { name: 'CONNACK p50', value: percentile(sorted, 50), unit: 'ms', better: 'lower' },
        { name: 'CONNACK p99', value: percentile(sorted, 99), unit: 'ms', better: 'lower' },
        ...cpuCost('connect', cpu, storm.seconds, sorted.length)
      ],
      generatorCpu: cpu.generator,
      brokerCpu: cpu.broker,
      generatorBound: cpu.generator > GENERATOR_BOUND,
      // wall clock (Date.now() ms) of the last CONNACK; the clients close after `hold` seconds
      notes: { clients: count, concurrency, warmupClients: params.warmup > 0 ? Math.min(count, CONNECT_WARMUP_CLIENTS) : 0, connectedAt },
      ...invalidity([[storm.failures > 0, `${storm.failures} of ${count} connects failed (${storm.firstError})`]])
    }
  } finally {
    await closeAll(storm.clients)
  }
}

async function idleMemory (address: Address, params: ScenarioParams): Promise<ScenarioResult> {
  const count = params.clients ?? 10_000
  const concurrency = params.concurrency ?? 100
  if (params.pid === undefined) throw new Error('the memory scenario needs the broker pid')
  // one connection first, so that lazily created state is not counted per connection
  const probe = await connectMany(address, params, 1, 1, 600)
  await sleep(1000)
  const before = processRssKb(params.pid) ?? Number.NaN
  const cpu = new CpuWindow(params.pid)
  cpu.start()
  const storm = await connectMany(address, { ...params, prefix: `${params.prefix}-m` }, count, concurrency, 600)
  cpu.stop()
  try {
    // all CONNACKs are in; give the broker a moment to finish what follows a CONNECT
    await sleep(2000)
    const after = processRssKb(params.pid) ?? Number.NaN
    const connected = storm.clients.filter((c) => !c.closed).length
    return {
      metrics: [{ name: 'RSS per idle conn', value: (after - before) / connected, unit: 'KB', better: 'lower' }],
      generatorCpu: cpu.generator,
      brokerCpu: cpu.broker,
      notes: { clients: count, connected, rssBeforeKb: before, rssAfterKb: after },
      ...invalidity([
        [storm.failures > 0, `${storm.failures} of ${count} connects failed (${storm.firstError})`],
        [connected < count - storm.failures, `${count - storm.failures - connected} connections dropped while idle`]
      ])
    }
  } finally {
    await closeAll([...probe.clients, ...storm.clients])
  }
}

// ---- the registry -----------------------------------------------------------------------

export const SCENARIOS: Record<string, ScenarioDefinition> = {
  fanin0: {
    name: 'fanin0',
    description: '10 publishers -> 1 subscriber, QoS 0, 64 B; messages/s delivered',
    defaults: { publishers: 10, subscribers: 1, qos: 0, window: 500 },
    run: throughput('fan-in QoS 0', 'msg/s')
  },
  fanin1: {
    name: 'fanin1',
    description: '10 publishers -> 1 subscriber, QoS 1 both ways (PUBACKed), 64 B; messages/s delivered',
    defaults: { publishers: 10, subscribers: 1, qos: 1, window: 500, inflight: 100 },
    run: throughput('fan-in QoS 1', 'msg/s')
  },
  fanout: {
    name: 'fanout',
    description: '1 publisher -> 100 subscribers, QoS 0, 64 B; deliveries/s summed over subscribers',
    defaults: { publishers: 1, subscribers: 100, qos: 0, window: 500 },
    run: throughput('fan-out QoS 0', 'deliv/s')
  },
  connect: {
    name: 'connect',
    description: '2000 clients connect, 64 at a time, and stay connected; connects/s and CONNACK latency',
    defaults: { clients: 2000, concurrency: 64 },
    run: connectStorm
  },
  latency0: {
    name: 'latency0',
    description: '1 publisher -> 1 subscriber at a fixed 2000 msg/s, QoS 0; publish-to-delivery latency',
    defaults: { publishers: 1, subscribers: 1, qos: 0, rate: 2000 },
    run: latency('latency QoS 0')
  },
  latency1: {
    name: 'latency1',
    description: '1 publisher -> 1 subscriber at a fixed 2000 msg/s, QoS 1; publish-to-delivery latency',
    defaults: { publishers: 1, subscribers: 1, qos: 1, rate: 2000 },
    run: latency('latency QoS 1')
  },
  memory: {
    name: 'memory',
    description: '10,000 idle clients (keepalive 600 s); broker RSS growth per connection',
    defaults: { clients: 10_000, concurrency: 100 },
    run: idleMemory
  }
}
