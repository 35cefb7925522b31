// The delivery side, run in the worker thread: a bounded queue, `pool_size` concurrent
// requests over keep-alive connections, retries with backoff, optional batching and
// signing, and a bounded drain. Nothing here runs on the broker's event loop.
import { readFileSync } from 'node:fs'
import { checkServerIdentity } from 'node:tls'
import { Pool } from 'undici'
import type { Options } from './config.ts'
import { Signer } from './signing.ts'

/** The options the sender uses: everything except what the broker side does (rules, encoding). */
export type SenderConfig = Pick<Options,
  'url' | 'headers' | 'poolSize' | 'pipelining' | 'ssl' | 'connectTimeoutMs' | 'requestTimeoutMs' | 'retry' | 'queue' | 'batch' | 'signingSecrets'>

export const DROP_REASONS = ['queue_full', 'too_large', 'shutdown'] as const
export type DropReason = typeof DROP_REASONS[number]

export interface SenderStats {
  /** events handed to the sender */
  received: number
  /** events a receiver answered with 2xx */
  sent: number
  /** events given up on: a 4xx, a non-retriable error, or retries exhausted */
  failed: number
  /** event deliveries tried again */
  retried: number
  /** HTTP requests made, retries included */
  requests: number
  dropped: Record<DropReason, number>
  /** events waiting */
  depth: number
  /** JSON characters waiting */
  bytes: number
  /** requests under way or waiting to retry */
  inflight: number
  /** requests in a row that failed; 0 after a success */
  consecutiveFailures: number
  lastError?: string
}

export interface SenderLog {
  (level: 'warn' | 'error' | 'info', message: string, data?: Record<string, unknown>): void
}

interface Item {
  readonly body: string
  readonly at: number
}

/** One request under way: its events, and whether a drain already counted them as lost. */
interface Delivery {
  readonly count: number
  lost: boolean
  controller?: AbortController
  wake?: () => void
}

type Outcome =
  | { readonly ok: true }
  | { readonly ok: false, readonly retriable: boolean, readonly error: string, readonly retryAfterMs?: number }

/** Largest response body read before the connection is dropped; receivers should answer empty. */
const MAX_RESPONSE_BYTES = 64 * 1024
const USER_AGENT = 'tapmq-webhook/1.0'

/** A FIFO with O(1) push and shift. */
class Deque<T> {
  #items: T[] = []
  #head = 0

  get length (): number {
    return this.#items.length - this.#head
  }

  push (item: T): void {
    this.#items.push(item)
  }

  peek (): T | undefined {
    return this.#items[this.#head]
  }

  shift (): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head]!
    this.#items[this.#head++] = undefined as T
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }

  clear (): void {
    this.#items = []
    this.#head = 0
  }
}

/** Whether a failed attempt may succeed later: network errors, 5xx, 429. 4xx is permanent. */
function retriableStatus (status: number): boolean {
  return status === 429 || status >= 500
}

/** Retry-After: seconds or an HTTP date. */
function parseRetryAfter (value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined) return undefined
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000
  const date = Date.parse(text)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

export class Sender {
  readonly stats: SenderStats = {
    received: 0, sent: 0, failed: 0, retried: 0, requests: 0,
    dropped: { queue_full: 0, too_large: 0, shutdown: 0 },
    depth: 0, bytes: 0, inflight: 0, consecutiveFailures: 0
  }

  #config!: SenderConfig
  #pool!: Pool
  #path = '/'
  #headers: Record<string, string> = {}
  #signer = new Signer([])
  readonly #queue = new Deque<Item>()
  readonly #deliveries = new Set<Delivery>()
  /** requests (or batches) under way, against poolSize × pipelining */
  #active = 0
  #batchTimer: NodeJS.Timeout | undefined
  #draining = false
  #stopped = false
  #idle: (() => void) | undefined

  constructor (config: SenderConfig, private readonly changed: () => void, private readonly log: SenderLog) {
    this.configure(config)
  }

  /** Applies new settings; requests under way finish on the old connections. */
  configure (config: SenderConfig): void {
    const previous = this.#config
    this.#config = config
    const url = new URL(config.url)
    this.#path = url.pathname + url.search
    this.#headers = requestHeaders(config.headers)
    this.#signer = new Signer(config.signingSecrets)
    const connection = (c: SenderConfig) => JSON.stringify([new URL(c.url).origin, c.poolSize, c.pipelining, c.ssl, c.connectTimeoutMs])
    if (!previous || connection(previous) !== connection(config)) {
      const old = this.#pool
      this.#pool = createPool(url, config)
      old?.close().catch(() => {})
    }
    this.#trim()
    this.#pump()
  }

  /** Queues events, dropping the oldest when a bound is passed (EMQX 5's policy). */
  push (bodies: readonly string[]): void {
    const { maxBytes } = this.#config.queue
    const at = Date.now()
    const stats = this.stats
    stats.received += bodies.length
    if (this.#stopped) {
      stats.dropped.shutdown += bodies.length
      this.changed()
      return
    }
    for (const body of bodies) {
      if (body.length > maxBytes || body.length > this.#config.batch.maxBytes) {
        stats.dropped.too_large++
        continue
      }
      this.#queue.push({ body, at })
      stats.bytes += body.length
    }
    this.#trim()
    this.#pump()
    this.changed()
  }

  #trim (): void {
    const { maxEvents, maxBytes } = this.#config.queue
    const stats = this.stats
    while (this.#queue.length > maxEvents || stats.bytes > maxBytes) {
      stats.bytes -= this.#queue.shift()!.body.length
      stats.dropped.queue_full++
    }
    stats.depth = this.#queue.length
  }

  /** Starts requests while there is room in the pool and something to send. */
  #pump (): void {
    const { poolSize, pipelining, batch } = this.#config
    while (!this.#stopped && this.#active < poolSize * pipelining && this.#queue.length > 0) {
      if (batch.maxEvents > 1 && !this.#draining && this.#queue.length < batch.maxEvents && this.stats.bytes < batch.maxBytes) {
        // a partial batch waits for more events, up to max_delay after its oldest one
        const wait = this.#queue.peek()!.at + batch.maxDelayMs - Date.now()
        if (wait > 0) {
          this.#batchTimer ??= setTimeout(() => {
            this.#batchTimer = undefined
            this.#pump()
          }, wait)
          break
        }
      }
      const items = this.#take()
      this.#active++
      this.stats.inflight = this.#active
      this.#deliver(items).finally(() => {
        this.#active--
        this.stats.inflight = this.#active
        this.changed()
        this.#pump()
        if (this.#active === 0 && this.#queue.length === 0) this.#idle?.()
      })
    }
    this.stats.depth = this.#queue.length
  }

  #take (): Item[] {
    const { maxEvents, maxBytes } = this.#config.batch
    const items: Item[] = []
    let bytes = 2
    while (items.length < maxEvents && this.#queue.length > 0) {
      const next = this.#queue.peek()!
      if (items.length > 0 && bytes + next.body.length + 1 > maxBytes) break
      this.#queue.shift()
      this.stats.bytes -= next.body.length
      bytes += next.body.length + 1
      items.push(next)
    }
    return items
  }

  /** One request (one event, or one batch as a JSON array) with its retries. */
  async #deliver (items: readonly Item[]): Promise<void> {
    const batched = this.#config.batch.maxEvents > 1
    const body = batched ? '[' + items.map((item) => item.body).join(',') + ']' : items[0]!.body
    const delivery: Delivery = { count: items.length, lost: false }
    this.#deliveries.add(delivery)
    const stats = this.stats
    // the same webhook-id on every attempt, so receivers can de-duplicate
    let id: string | undefined
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.#signer.enabled) id ??= Signer.newId()
        const outcome = await this.#attempt(body, id, delivery)
        if (delivery.lost) return
        if (outcome.ok) {
          stats.sent += items.length
          stats.consecutiveFailures = 0
          return
        }
        stats.consecutiveFailures++
        stats.lastError = outcome.error
        const { maxRetries, initialBackoffMs, maxBackoffMs } = this.#config.retry
        if (!outcome.retriable || attempt >= maxRetries) {
          stats.failed += items.length
          this.log('warn', 'webhook request failed; events dropped', {
            events: items.length, error: outcome.error, attempts: attempt + 1, retriable: outcome.retriable
          })
          return
        }
        // exponential backoff with equal jitter; Retry-After wins when it asks for longer
        const exponential = Math.min(maxBackoffMs, initialBackoffMs * 2 ** attempt)
        const backoff = exponential / 2 + Math.random() * exponential / 2
        const delay = Math.min(maxBackoffMs, Math.max(backoff, outcome.retryAfterMs ?? 0))
        stats.retried += items.length
        this.changed()
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay)
          delivery.wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        delivery.wake = undefined
        if (delivery.lost) return
      }
    } finally {
      this.#deliveries.delete(delivery)
    }
  }

  async #attempt (body: string, id: string | undefined, delivery: Delivery): Promise<Outcome> {
    const { requestTimeoutMs, pipelining } = this.#config
    const headers = id === undefined ? this.#headers : { ...this.#headers, ...this.#signer.headers(id, body) }
    const controller = new AbortController()
    delivery.controller = controller
    const timer = setTimeout(() => controller.abort(new Error(`no complete answer within ${requestTimeoutMs} ms`)), requestTimeoutMs)
    this.stats.requests++
    try {
      const response = await this.#pool.request({
        path: this.#path,
        method: 'POST',
        headers,
        body,
        signal: controller.signal,
        headersTimeout: requestTimeoutMs,
        bodyTimeout: requestTimeoutMs,
        // webhook-id makes a replay harmless, so requests may share a connection's pipeline
        idempotent: pipelining > 1,
        blocking: pipelining <= 1
      })
      // read (and forget) the answer, so the connection can carry the next request
      await response.body.dump({ limit: MAX_RESPONSE_BYTES })
      const status = response.statusCode
      if (status >= 200 && status < 300) return { ok: true }
      return {
        ok: false,
        retriable: retriableStatus(status),
        error: `HTTP ${status}`,
        retryAfterMs: parseRetryAfter(response.headers['retry-after'])
      }
    } catch (err) {
      const error = controller.signal.aborted ? controller.signal.reason as Error : err as Error
      const code = (err as NodeJS.ErrnoException).code
      return { ok: false, retriable: true, error: code ? `${code}: ${error.message}` : error.message }
    } finally {
      clearTimeout(timer)
      delivery.controller = undefined
    }
  }

  /**
   * Sends what is queued (partial batches at once) for up to `timeoutMs`, then gives up on
   * the rest. Returns how many events were lost. The sender accepts nothing afterwards.
   */
  async drain (timeoutMs: number): Promise<{ lost: number }> {
    this.#draining = true
    clearTimeout(this.#batchTimer)
    this.#batchTimer = undefined
    this.#pump()
    if (this.#active > 0 || this.#queue.length > 0) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>((resolve) => { this.#idle = resolve }),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })
      ])
      clearTimeout(timer)
    }
    this.#stopped = true
    let lost = this.#queue.length
    this.#queue.clear()
    for (const delivery of this.#deliveries) {
      delivery.lost = true
      lost += delivery.count
      delivery.controller?.abort(new Error('shutting down'))
      delivery.wake?.()
    }
    this.stats.dropped.shutdown += lost
    this.stats.depth = 0
    this.stats.bytes = 0
    this.changed()
    await this.#pool.destroy().catch(() => {})
    return { lost }
  }
}

/** Configured headers as written, plus Content-Type and User-Agent unless configured (Q16). */
function requestHeaders (configured: SenderConfig['headers']): Record<string, string> {
  const headers: Record<string, string> = {}
  const has = (name: string) => configured.some((header) => header.name.toLowerCase() === name)
  if (!has('content-type')) headers['content-type'] = 'application/json'
  if (!has('user-agent')) headers['user-agent'] = USER_AGENT
  for (const { name, value } of configured) headers[name] = value
  return headers
}

function createPool (url: URL, config: SenderConfig): Pool {
  const { ssl } = config
  const tls = url.protocol === 'https:'
    ? {
        ca: ssl.cacertfile ? readFileSync(ssl.cacertfile) : undefined,
        cert: ssl.certfile ? readFileSync(ssl.certfile) : undefined,
        key: ssl.keyfile ? readFileSync(ssl.keyfile) : undefined,
        rejectUnauthorized: ssl.verify,
        ...(ssl.serverNameIndication === 'disable'
          // EMQX's `disable`: the chain is still verified, the host name is not
          ? { checkServerIdentity: () => undefined }
          : ssl.serverNameIndication
            ? { servername: ssl.serverNameIndication, checkServerIdentity: (_host: string, cert: Parameters<typeof checkServerIdentity>[1]) => checkServerIdentity(ssl.serverNameIndication!, cert) }
            : {})
      }
    : {}
  return new Pool(url.origin, {
    connections: config.poolSize,
    pipelining: config.pipelining,
    connect: { timeout: config.connectTimeoutMs, ...tls }
  })
}
