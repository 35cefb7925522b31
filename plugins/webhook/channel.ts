// The broker thread's end of delivery: taps hand it events, it packs them into one buffer
// for a few milliseconds (records.mjs) and transfers that to the worker in one message. The
// broker pays for a few buffer writes per event, never for HTTP, and for message.publish not
// even for its JSON body.
import { Worker } from 'node:worker_threads'
import type { Logger, PluginMetrics, PublishEvent } from '../../sdk/index.ts'
import type { PayloadEncoding } from './encoding.mjs'
import { messagePublish } from './bodies.ts'
import { RecordWriter } from './records.mjs'
import type { FromWorker, ToWorker, WorkerData } from './protocol.ts'
import { DROP_REASONS, type SenderConfig, type SenderStats } from './protocol.ts'

const WORKER_URL = new URL('./worker.mjs', import.meta.url)
/**
 * Events on their way to the worker are bounded too, should its event loop ever stall. The
 * worker reports what it received every 50 ms, so the bound must hold far more than 50 ms of
 * events at full rate (~10k), or a busy worker would look stalled.
 */
const MIN_TRANSIT_EVENTS = 100_000
const MIN_TRANSIT_BYTES = 32 * 1024 * 1024
/** how often taps' bodies go to the worker, at most */
const FLUSH_INTERVAL_MS = 5
/** ... unless this many wait: then at the end of the loop's turn */
const FLUSH_EVENTS = 512
const RESTART_DELAY_MS = 1000
/** how long past the drain deadline to wait for the worker's own count */
const DRAIN_GRACE_MS = 500
const MAX_RESTART_DELAY_MS = 60_000

type ChannelDrop = typeof DROP_REASONS[number] | 'overload' | 'worker_exit'

const EMPTY_STATS: SenderStats = {
  received: 0, sent: 0, failed: 0, retried: 0, requests: 0,
  dropped: { queue_full: 0, too_large: 0, shutdown: 0, malformed: 0 },
  depth: 0, bytes: 0, inflight: 0, inflightEvents: 0, consecutiveFailures: 0
}

/** The plugin's counters; one set per broker, shared by every instance across reloads. */
export class WebhookMetrics {
  readonly matched
  readonly sent
  readonly failed
  readonly retried
  readonly requests
  readonly dropped
  readonly droppedBy: Record<ChannelDrop, ReturnType<PluginMetrics['counter']>>

  constructor (metrics: PluginMetrics, current: () => WebhookChannel | undefined) {
    this.matched = metrics.counter('matched_total', 'Events that matched a rule')
    this.sent = metrics.counter('sent_total', 'Events a receiver accepted (2xx)')
    this.failed = metrics.counter('failed_total', 'Events given up on: 4xx, or retries exhausted')
    this.retried = metrics.counter('retried_total', 'Event deliveries retried')
    this.requests = metrics.counter('requests_total', 'HTTP requests made, retries included')
    this.dropped = metrics.counter('dropped_total', 'Events dropped before delivery, all reasons')
    const help: Record<ChannelDrop, string> = {
      queue_full: 'Oldest events dropped because the queue was full (web.hook.queue.*)',
      too_large: 'Events larger than web.hook.queue.max_bytes or web.hook.batch.max_bytes',
      shutdown: 'Events still queued when the drain at shutdown or reload ran out of time',
      malformed: 'Events of a hand-off the delivery worker could not read (a bug; reported in the log)',
      overload: 'Events dropped because the delivery worker fell behind by more than the queue bounds',
      worker_exit: 'Events lost because the delivery worker stopped unexpectedly'
    }
    this.droppedBy = Object.fromEntries(Object.entries(help).map(([reason, text]) =>
      [reason, metrics.counter(`dropped_${reason}_total`, text)])) as WebhookMetrics['droppedBy']
    const stat = (read: (channel: WebhookChannel) => number) => () => {
      const channel = current()
      return channel ? read(channel) : 0
    }
    metrics.gauge('queue_depth', 'Events waiting for delivery', stat((channel) => channel.depth))
    metrics.gauge('queue_bytes', 'JSON characters waiting for delivery', stat((channel) => channel.stats.bytes))
    metrics.gauge('inflight_requests', 'Requests under way or waiting to retry', stat((channel) => channel.stats.inflight))
  }

  drop (reason: ChannelDrop, count: number): void {
    if (count <= 0) return
    this.droppedBy[reason].inc(count)
    this.dropped.inc(count)
  }
}

export interface ChannelLimits {
  readonly maxEvents: number
  readonly maxBytes: number
}

export class WebhookChannel {
  #worker!: Worker
  #config: SenderConfig
  #pending = new RecordWriter()
  #timer: NodeJS.Timeout | undefined
  #immediate: NodeJS.Immediate | undefined
  readonly #flushNow = () => this.#flush()
  #matched = 0
  /** events and bytes posted to the current worker, against what it says it received */
  #posted = 0
  #postedBytes = 0
  #receivedBytes = 0
  #stats: SenderStats = EMPTY_STATS
  #running = false
  #ready = false
  #restartDelay = RESTART_DELAY_MS
  #closing = false
  /** events counted lost (`worker_exit`) since the worker stopped; a drain while it is down reports them */
  #lostWhileDown = 0
  #restartTimer: NodeJS.Timeout | undefined
  #drained: ((lost: number) => void) | undefined

  private constructor (config: SenderConfig, private readonly log: Logger, private readonly metrics: WebhookMetrics) {
    this.#config = config
  }

  /**
   * Starts the worker without waiting for it: loading undici takes a moment, and events
   * posted meanwhile wait in its port.
   */
  static start (config: SenderConfig, log: Logger, metrics: WebhookMetrics): WebhookChannel {
    const channel = new WebhookChannel(config, log, metrics)
    channel.#spawn()
    return channel
  }

  get stats (): SenderStats {
    return this.#stats
  }

  /** events waiting: in the worker's queue, on their way to it, and not yet posted */
  get depth (): number {
    return this.#stats.depth + this.#transit() + this.#pending.count
  }

  /** a worker exists (it may still be loading) */
  get running (): boolean {
    return this.#running
  }

  /** the worker has loaded and reads its port */
  get ready (): boolean {
    return this.#ready
  }

  /** An event whose JSON body is finished; called from hook taps on the broker thread. */
  enqueue (body: string): void {
    this.#pending.json(body)
    this.#queued()
  }

  /** The hot path: a message.publish event, whose body the worker builds (or, rarely, this thread: see records.mjs). */
  enqueuePublish (event: PublishEvent, encoding: PayloadEncoding): void {
    // a message with MQTT 5 user properties goes as its finished body: the record has no field for them
    if (event.properties?.userProperties !== undefined || !this.#pending.publish(event.ts, event.topic, event.retain, event.qos, event.fromUsername, event.from, event.payload, encoding)) {
      this.#pending.json(messagePublish(event, encoding))
    }
    this.#queued()
  }

  #queued (): void {
    this.#matched++
    // one postMessage per FLUSH_INTERVAL_MS, or per turn of the loop once FLUSH_EVENTS wait:
    // waking the worker costs more than an event, so it must not happen per event
    if (this.#pending.count >= FLUSH_EVENTS) {
      this.#immediate ??= setImmediate(this.#flushNow)
    } else if (this.#timer === undefined && this.#immediate === undefined) {
      this.#timer = setTimeout(this.#flushNow, FLUSH_INTERVAL_MS)
    }
  }

  configure (config: SenderConfig): void {
    this.#config = config
    if (this.#running) this.#post({ type: 'configure', config })
  }

  /**
   * Sends what is queued for up to `timeoutMs`, then stops the worker. Resolves with the
   * number of events lost.
   */
  async drain (timeoutMs: number): Promise<number> {
    this.#closing = true
    clearTimeout(this.#restartTimer)
    this.#flush()
    if (!this.#running) return this.#lostWhileDown
    // a deadline rather than a duration: a worker still loading must not get the full time
    const deadline = Date.now() + timeoutMs
    const lost = await new Promise<number | undefined>((resolve) => {
      // the worker keeps the deadline itself; this only covers a worker that cannot answer
      const timer = setTimeout(() => resolve(undefined), timeoutMs + DRAIN_GRACE_MS)
      this.#drained = (count) => {
        clearTimeout(timer)
        resolve(count)
      }
      this.#post({ type: 'drain', deadline })
    })
    this.#running = false
    const unanswered = lost === undefined ? this.#stats.depth + this.#stats.inflightEvents + this.#transit() : 0
    this.metrics.drop('shutdown', unanswered)
    await this.#worker.terminate()
    return (lost ?? 0) + unanswered
  }

  #limits (): ChannelLimits {
    const { maxEvents, maxBytes } = this.#config.queue
    return { maxEvents: Math.max(maxEvents, MIN_TRANSIT_EVENTS), maxBytes: Math.max(maxBytes, MIN_TRANSIT_BYTES) }
  }

  #transit (): number {
    return this.#posted - this.#stats.received
  }

  #flush (): void {
    clearTimeout(this.#timer)
    clearImmediate(this.#immediate)
    this.#timer = undefined
    this.#immediate = undefined
    if (this.#matched > 0) {
      this.metrics.matched.inc(this.#matched)
      this.#matched = 0
    }
    const pending = this.#pending
    if (pending.count === 0) return
    const { buffer, byteLength, count } = pending.take()
    if (!this.#running) {
      if (!this.#closing) this.#lostWhileDown += count
      this.metrics.drop(this.#closing ? 'shutdown' : 'worker_exit', count)
      return
    }
    // a worker that is not reading its port would otherwise grow this thread's memory;
    // it is stalled, so what is already on its way is older: this hand-off goes (a hand-off
    // alone may pass the bounds: one event may be larger than them)
    const limits = this.#limits()
    const transit = this.#transit()
    const transitBytes = this.#postedBytes - this.#receivedBytes
    if (transit > 0 && (count > limits.maxEvents - transit || byteLength > limits.maxBytes - transitBytes)) {
      this.metrics.drop('overload', count)
      return
    }
    this.#posted += count
    this.#postedBytes += byteLength
    this.#worker.postMessage({ type: 'events', data: buffer, byteLength, count } satisfies ToWorker, [buffer])
  }

  #post (message: ToWorker): void {
    this.#worker.postMessage(message)
  }

  #spawn (): void {
    const data: WorkerData = { config: this.#config }
    const worker = new Worker(WORKER_URL, {
      workerData: data,
      // a worker out of memory is stopped alone, never the broker
      resourceLimits: { maxOldGenerationSizeMb: Math.max(256, Math.ceil(this.#config.queue.maxBytes * 6 / 1024 / 1024)) }
    })
    const spawnedAt = performance.now()
    this.#worker = worker
    this.#running = true
    this.#ready = false
    this.#posted = 0
    this.#postedBytes = 0
    this.#receivedBytes = 0
    this.#stats = EMPTY_STATS
    this.#lostWhileDown = 0
    let previous = EMPTY_STATS
    worker.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'ready':
          this.log.debug({ startupMs: Math.round(performance.now() - spawnedAt) }, 'webhook worker ready')
          this.#ready = true
          this.#restartDelay = RESTART_DELAY_MS
          break
        case 'fatal':
          this.log.error({ err: message.message }, 'webhook worker cannot start')
          break
        case 'stats':
          this.#applyStats(previous, message.stats)
          previous = message.stats
          this.#stats = message.stats
          this.#receivedBytes = message.receivedBytes
          break
        case 'log':
          this.log[message.level](message.data ?? {}, message.message)
          break
        case 'drained':
          this.#drained?.(message.lost)
          break
      }
    })
    worker.on('error', (err) => this.log.error({ err }, 'webhook worker failed'))
    worker.on('exit', (code) => {
      if (this.#worker !== worker || this.#closing || !this.#running) return
      this.#running = false
      // at most: what the worker took in during its last stats interval may have been sent
      const lost = this.#stats.depth + this.#stats.inflightEvents + this.#transit()
      this.#lostWhileDown = lost
      this.metrics.drop('worker_exit', lost)
      this.log.error({ code, lost, restartInMs: this.#restartDelay }, 'webhook worker stopped unexpectedly; restarting it')
      this.#restartTimer = setTimeout(() => this.#spawn(), this.#restartDelay)
      this.#restartDelay = Math.min(MAX_RESTART_DELAY_MS, this.#restartDelay * 2)
    })
  }

  /** Turns the worker's running totals into counter increments. */
  #applyStats (before: SenderStats, after: SenderStats): void {
    const m = this.metrics
    m.sent.inc(after.sent - before.sent)
    m.failed.inc(after.failed - before.failed)
    m.retried.inc(after.retried - before.retried)
    m.requests.inc(after.requests - before.requests)
    for (const reason of DROP_REASONS) m.drop(reason, after.dropped[reason] - before.dropped[reason])
  }
}
