// The delivery side, run in the worker thread: a bounded queue, `pool_size` concurrent
// requests over keep-alive connections (an undici Pool), retries with backoff, optional
// batching and signing, and a bounded drain. Nothing here runs on the broker's event loop.
//
// Plain JavaScript with JSDoc types from protocol.ts: see the note there.
import { subscribe } from 'node:diagnostics_channel'
import { readFileSync } from 'node:fs'
import { checkServerIdentity } from 'node:tls'
import { Pool } from 'undici'
import { recordEnd, RequestBody } from './records.mjs'
import { Signer } from './signing.mjs'

/**
 * @typedef {import('./protocol.ts').SenderConfig} SenderConfig
 * @typedef {import('./protocol.ts').DropReason} DropReason
 * @typedef {import('undici').Dispatcher.DispatchHandler} DispatchHandler
 * @typedef {import('undici').Dispatcher.DispatchController} DispatchController
 * @typedef {(level: 'warn' | 'error' | 'info', message: string, data?: Record<string, unknown>) => void} SenderLog
 * @typedef {{ readonly count: number, lost: boolean, pool?: Pool, wake?: () => void }} Delivery
 *   one request under way: its events, and whether a drain already counted them as lost
 * @typedef {{ ok: true } | { ok: false, retriable: boolean, error: string, retryAfterMs?: number }} Outcome
 */

/** Largest response body read before the connection is dropped; receivers should answer empty. */
const MAX_RESPONSE_BYTES = 64 * 1024
const USER_AGENT = 'tapmq-webhook/1.0'

/**
 * Which request bodies went to the kernel whole when undici wrote them. A body's memory may
 * serve a later body once its delivery is over (RequestBody#recycle), but only if every
 * write of it was taken whole at once: otherwise the socket still held the rest when the
 * answer came (a receiver may answer first and read afterwards), and it is never reused.
 * undici tells which socket a request goes out on, and that it wrote the body, only through
 * these diagnostics channels, published one after the other in the same call; should they
 * change, nothing is confirmed and nothing reused.
 */
const flushed = new WeakSet()
const held = new WeakSet()
/** @type {{ request?: { body?: unknown }, socket?: { writableLength?: number } } | undefined} */
let writing
subscribe('undici:client:sendHeaders', (message) => {
  writing = /** @type {typeof writing} */ (message)
})
subscribe('undici:request:bodySent', (message) => {
  const request = /** @type {{ request?: { body?: unknown } }} */ (message).request
  const body = request?.body
  if (typeof body === 'object' && body !== null) {
    if (writing?.request === request && writing?.socket?.writableLength === 0) flushed.add(body)
    else held.add(body)
  }
  writing = undefined
})

/**
 * @param {Buffer} body
 * @returns {boolean} whether no socket holds any of `body` (see `flushed`); exported for tests
 */
export function released (body) {
  return flushed.has(body) && !held.has(body)
}

/** A FIFO with O(1) push and shift. @template T */
class Deque {
  /** @type {Array<T | undefined>} */
  #items = []
  #head = 0

  get length () {
    return this.#items.length - this.#head
  }

  /** @param {T} item */
  push (item) {
    this.#items.push(item)
  }

  /** @returns {T | undefined} */
  peek () {
    return this.#items[this.#head]
  }

  /** @returns {T | undefined} */
  shift () {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head++] = undefined
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }

  clear () {
    this.#items = []
    this.#head = 0
  }
}

/**
 * One hand-off from the broker thread: records (records.mjs) kept whole in their buffer. An
 * event becomes its JSON body only when it is sent, so events that are dropped unsent (a
 * full queue in front of a dead receiver) cost no allocation each.
 */
class Chunk {
  /**
   * @param {Buffer} data
   * @param {number[]} bounds start and end offset of each event, in pairs
   * @param {number} at arrival time, epoch ms
   */
  constructor (data, bounds, at) {
    this.data = data
    this.bounds = bounds
    this.at = at
    /** index of the next event (a pair in `bounds`) */
    this.next = 0
  }

  get remaining () {
    return this.bounds.length / 2 - this.next
  }
}

/** The events waiting, oldest first, as chunks. */
class EventQueue {
  /** @type {Deque<Chunk>} */
  #chunks = new Deque()
  length = 0
  /** bytes of records waiting */
  bytes = 0

  /**
   * Queues the events of `data` no longer than `maxLength`; returns how many were longer.
   * @param {Buffer} data
   * @param {number} maxLength
   * @param {number} at
   */
  push (data, maxLength, at) {
    /** @type {number[]} */
    const bounds = []
    let tooLarge = 0
    for (let start = 0; start < data.length;) {
      const end = recordEnd(data, start)
      // a record that does not fit its hand-off: the rest cannot be read (the caller counts it)
      if (!(end > start && end <= data.length)) break
      if (end - start > maxLength) tooLarge++
      else {
        bounds.push(start, end)
        this.bytes += end - start
      }
      start = end
    }
    if (bounds.length > 0) {
      this.#chunks.push(new Chunk(data, bounds, at))
      this.length += bounds.length / 2
    }
    return tooLarge
  }

  /** arrival time of the oldest event */
  get oldestAt () {
    return this.#chunks.peek()?.at ?? Date.now()
  }

  /**
   * Appends the oldest event, which stays queued, to `body`; returns the mark to take it
   * back.
   * @param {RequestBody} body
   * @returns {number}
   */
  appendOldest (body) {
    const chunk = /** @type {Chunk} */ (this.#chunks.peek())
    return body.append(chunk.data, chunk.bounds[chunk.next * 2], chunk.bounds[chunk.next * 2 + 1])
  }

  /** Removes the oldest event. */
  drop () {
    const chunk = /** @type {Chunk} */ (this.#chunks.peek())
    const start = chunk.bounds[chunk.next * 2]
    const end = chunk.bounds[chunk.next * 2 + 1]
    chunk.next++
    if (chunk.remaining === 0) this.#chunks.shift()
    this.length--
    this.bytes -= end - start
  }

  clear () {
    this.#chunks.clear()
    this.length = 0
    this.bytes = 0
  }
}

/**
 * Whether a failed answer may succeed later: 5xx and 429. Other 4xx (and 3xx: redirects are
 * not followed) are permanent.
 * @param {number} status
 */
function retriableStatus (status) {
  return status === 429 || status >= 500
}

/**
 * Retry-After: seconds, or an HTTP date.
 * @param {string | string[] | undefined} value
 * @returns {number | undefined} milliseconds
 */
function parseRetryAfter (value) {
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined) return undefined
  if (/^\s*\d+\s*$/.test(text)) return Number(text.trim()) * 1000
  const date = Date.parse(text)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/**
 * Reads (and forgets) the answer to one request, for undici's dispatch(): pool.request()
 * wraps every answer in a stream and an async resource, which took a tenth of the delivery
 * thread's time. A longer answer than MAX_RESPONSE_BYTES is cut off, which closes the
 * connection; its status still counts.
 * @implements {DispatchHandler}
 */
class Answer {
  /** @type {(outcome: Outcome) => void} */
  #resolve
  #status = 0
  /** @type {string | string[] | undefined} */
  #retryAfter
  #bytes = 0
  #cut = false

  /** @param {(outcome: Outcome) => void} resolve */
  constructor (resolve) {
    this.#resolve = resolve
  }

  /** (again when undici replays a pipelined request whose connection failed) */
  onRequestStart () {
    this.#status = 0
    this.#bytes = 0
    this.#cut = false
  }

  /**
   * @param {DispatchController} controller
   * @param {number} status
   * @param {import('node:http').IncomingHttpHeaders} headers
   */
  onResponseStart (controller, status, headers) {
    this.#status = status
    this.#retryAfter = headers['retry-after']
    if (Number(headers['content-length']) > MAX_RESPONSE_BYTES) this.#cutOff(controller)
  }

  /**
   * @param {DispatchController} controller
   * @param {Buffer} chunk
   */
  onResponseData (controller, chunk) {
    this.#bytes += chunk.length
    if (this.#bytes > MAX_RESPONSE_BYTES) this.#cutOff(controller)
  }

  onResponseEnd () {
    this.#answered()
  }

  /**
   * @param {DispatchController} _controller
   * @param {Error & { code?: string }} error
   */
  onResponseError (_controller, error) {
    if (this.#cut) this.#answered()
    else this.#resolve({ ok: false, retriable: true, error: error.code ? `${error.code}: ${error.message}` : error.message })
  }

  /** @param {DispatchController} controller */
  #cutOff (controller) {
    this.#cut = true
    controller.abort(new Error('answer longer than ' + MAX_RESPONSE_BYTES + ' bytes'))
  }

  #answered () {
    const status = this.#status
    if (status >= 200 && status < 300) this.#resolve({ ok: true })
    else this.#resolve({ ok: false, retriable: retriableStatus(status), error: `HTTP ${status}`, retryAfterMs: parseRetryAfter(this.#retryAfter) })
  }
}

export class Sender {
  stats = {
    received: 0,
    sent: 0,
    failed: 0,
    retried: 0,
    requests: 0,
    /** @type {Record<DropReason, number>} */
    dropped: { queue_full: 0, too_large: 0, shutdown: 0, malformed: 0 },
    depth: 0,
    bytes: 0,
    inflight: 0,
    inflightEvents: 0,
    consecutiveFailures: 0,
    /** @type {string | undefined} */
    lastError: undefined
  }

  /** @type {SenderConfig} */
  #config
  /** @type {Pool} */
  #pool
  #path = '/'
  /** @type {Record<string, string>} */
  #headers = {}
  #signer = new Signer([])
  #queue = new EventQueue()
  #body = new RequestBody()
  /** @type {Set<Delivery>} */
  #deliveries = new Set()
  /** requests (or batches) under way, against poolSize × pipelining */
  #active = 0
  /** @type {NodeJS.Timeout | undefined} */
  #batchTimer
  #draining = false
  #stopped = false
  /** @type {(() => void) | undefined} */
  #idle
  #changed
  #log

  /**
   * @param {SenderConfig} config
   * @param {() => void} changed called whenever stats change
   * @param {SenderLog} log
   */
  constructor (config, changed, log) {
    this.#changed = changed
    this.#log = log
    this.#config = config
    this.#pool = this.#apply(config, undefined)
  }

  /**
   * Applies new settings; requests under way finish on the old connections.
   * @param {SenderConfig} config
   */
  configure (config) {
    const previous = this.#config
    this.#config = config
    this.#pool = this.#apply(config, previous)
    this.#trim()
    this.#pump()
    this.#changed()
  }

  /**
   * @param {SenderConfig} config
   * @param {SenderConfig | undefined} previous
   * @returns {Pool}
   */
  #apply (config, previous) {
    const url = new URL(config.url)
    this.#path = url.pathname + url.search
    this.#headers = requestHeaders(config.headers)
    this.#signer = new Signer(config.signingSecrets)
    /** @param {SenderConfig} c */
    const connection = (c) => JSON.stringify([new URL(c.url).origin, c.poolSize, c.pipelining, c.ssl, c.connectTimeoutMs])
    if (previous && connection(previous) === connection(config)) return this.#pool
    const pool = createPool(url, config)
    if (previous) this.#pool.close().catch(() => {})
    return pool
  }

  /**
   * Queues events (records.mjs), dropping the oldest when a bound is passed (EMQX 5's
   * policy).
   * @param {Buffer} data
   * @param {number} count the events the broker thread packed into `data`
   * @returns {number} how many events `data` held
   */
  push (data, count) {
    const { queue, batch } = this.#config
    const stats = this.stats
    const before = this.#queue.length
    const tooLarge = this.#queue.push(data, Math.min(queue.maxBytes, batch.maxBytes), Date.now())
    const read = this.#queue.length - before + tooLarge
    if (read < count) {
      stats.dropped.malformed += count - read
      this.#log('error', 'webhook hand-off cut short; its remaining events are dropped', { events: count, read })
    }
    const received = Math.max(read, count)
    stats.received += received
    stats.dropped.too_large += tooLarge
    if (this.#stopped) {
      stats.dropped.shutdown += this.#queue.length
      this.#queue.clear()
    }
    this.#trim()
    this.#pump()
    this.#changed()
    return received
  }

  #trim () {
    const { maxEvents, maxBytes } = this.#config.queue
    const stats = this.stats
    while (this.#queue.length > maxEvents || this.#queue.bytes > maxBytes) {
      this.#queue.drop()
      stats.dropped.queue_full++
    }
    stats.depth = this.#queue.length
    stats.bytes = this.#queue.bytes
  }

  /** Starts requests while there is room in the pool and something to send. */
  #pump () {
    const { poolSize, pipelining, batch } = this.#config
    while (!this.#stopped && this.#active < poolSize * pipelining && this.#queue.length > 0) {
      if (batch.maxEvents > 1 && !this.#draining && this.#queue.length < batch.maxEvents && this.#queue.bytes < batch.maxBytes) {
        // a partial batch waits for more events, up to max_delay after its oldest one
        const wait = this.#queue.oldestAt + batch.maxDelayMs - Date.now()
        if (wait > 0) {
          this.#batchTimer ??= setTimeout(() => {
            this.#batchTimer = undefined
            this.#pump()
          }, wait)
          break
        }
      }
      const request = this.#take()
      if (request === undefined) continue
      this.#active++
      this.stats.inflight = this.#active
      this.stats.inflightEvents += request.events
      this.#deliver(request.body, request.events).finally(() => {
        this.#active--
        this.stats.inflight = this.#active
        this.stats.inflightEvents -= request.events
        this.#changed()
        this.#pump()
        if (this.#active === 0 && this.#queue.length === 0) this.#idle?.()
      })
    }
    this.stats.depth = this.#queue.length
    this.stats.bytes = this.#queue.bytes
  }

  /** @returns {{ body: Buffer, events: number } | undefined} the next request; none when no event fitted */
  #take () {
    const { maxEvents, maxBytes } = this.#config.batch
    const body = this.#body
    body.start(maxEvents > 1)
    let events = 0
    while (events < maxEvents && this.#queue.length > 0) {
      const mark = this.#queue.appendOldest(body)
      if (body.finishedLength > maxBytes) {
        body.truncate(mark)
        if (events > 0) break
        // its record was small enough, its JSON is not (an encoded payload grows)
        this.#queue.drop()
        this.stats.dropped.too_large++
        continue
      }
      this.#queue.drop()
      events++
    }
    return events === 0 ? undefined : { body: body.finish(), events }
  }

  /**
   * One request (one event, or a batch as a JSON array) with its retries. The slot stays
   * taken while waiting to retry, so pool_size = 1 keeps events in order.
   * @param {Buffer} body
   * @param {number} events
   */
  async #deliver (body, events) {
    /** @type {Delivery} */
    const delivery = { count: events, lost: false }
    this.#deliveries.add(delivery)
    const stats = this.stats
    // the same webhook-id on every attempt, so receivers can de-duplicate
    /** @type {string | undefined} */
    let id
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.#signer.enabled) id ??= Signer.newId()
        const outcome = await this.#attempt(body, id, delivery)
        if (delivery.lost) return
        if (outcome.ok) {
          stats.sent += events
          stats.consecutiveFailures = 0
          return
        }
        stats.consecutiveFailures++
        stats.lastError = outcome.error
        const { maxRetries, initialBackoffMs, maxBackoffMs } = this.#config.retry
        if (!outcome.retriable || attempt >= maxRetries) {
          stats.failed += events
          this.#log('warn', 'webhook request failed; events dropped', {
            events, error: outcome.error, attempts: attempt + 1, retriable: outcome.retriable
          })
          return
        }
        // exponential backoff with equal jitter; Retry-After wins when it asks for longer
        const exponential = Math.min(maxBackoffMs, initialBackoffMs * 2 ** attempt)
        const backoff = exponential / 2 + Math.random() * exponential / 2
        const delay = Math.min(maxBackoffMs, Math.max(backoff, outcome.retryAfterMs ?? 0))
        stats.retried += events
        this.#changed()
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, delay)
          delivery.wake = () => {
            clearTimeout(timer)
            resolve(undefined)
          }
        })
        delivery.wake = undefined
        if (delivery.lost) return
      }
    } finally {
      this.#deliveries.delete(delivery)
      if (released(body)) this.#body.recycle(body)
    }
  }

  /**
   * @param {Buffer} body
   * @param {string | undefined} id
   * @param {Delivery} delivery
   * @returns {Promise<Outcome>}
   */
  async #attempt (body, id, delivery) {
    const { requestTimeoutMs, pipelining } = this.#config
    const headers = id === undefined ? this.#headers : { ...this.#headers, ...this.#signer.headers(id, body) }
    const pool = this.#pool
    delivery.pool = pool
    this.stats.requests++
    try {
      return await new Promise((resolve) => {
        // undici's own timers bound the wait for the answer's headers and every gap in its
        // body (cheaper than an AbortSignal and a timer per request); the drain destroys the
        // pool to cut requests short
        pool.dispatch({
          path: this.#path,
          method: 'POST',
          headers,
          body,
          headersTimeout: requestTimeoutMs,
          bodyTimeout: requestTimeoutMs,
          // webhook-id makes a replay harmless, so requests may share a connection's pipeline
          idempotent: pipelining > 1,
          blocking: pipelining <= 1
        }, new Answer(resolve))
      })
    } finally {
      delivery.pool = undefined
    }
  }

  /**
   * Sends what is queued (partial batches at once) for up to `timeoutMs`, then gives up on
   * the rest. The sender accepts nothing afterwards.
   * @param {number} timeoutMs
   * @returns {Promise<{ lost: number }>}
   */
  async drain (timeoutMs) {
    this.#draining = true
    clearTimeout(this.#batchTimer)
    this.#batchTimer = undefined
    this.#pump()
    if (this.#active > 0 || this.#queue.length > 0) {
      /** @type {NodeJS.Timeout | undefined} */
      let timer
      await Promise.race([
        new Promise((resolve) => { this.#idle = () => resolve(undefined) }),
        new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs) })
      ])
      clearTimeout(timer)
    }
    this.#stopped = true
    let lost = this.#queue.length
    this.#queue.clear()
    for (const delivery of this.#deliveries) {
      delivery.lost = true
      lost += delivery.count
      delivery.wake?.()
    }
    this.stats.dropped.shutdown += lost
    this.stats.depth = 0
    this.stats.bytes = 0
    this.#changed()
    // cuts every request still under way, on this pool and on one a reload replaced
    const pools = new Set([this.#pool, ...[...this.#deliveries].map((delivery) => delivery.pool)])
    await Promise.all([...pools].map((pool) => pool?.destroy().catch(() => {})))
    return { lost }
  }
}

/**
 * Configured headers as written, plus Content-Type and User-Agent unless configured (Q16).
 * @param {SenderConfig['headers']} configured
 */
function requestHeaders (configured) {
  /** @type {Record<string, string>} */
  const headers = {}
  /** @param {string} name */
  const has = (name) => configured.some((header) => header.name.toLowerCase() === name)
  if (!has('content-type')) headers['content-type'] = 'application/json'
  if (!has('user-agent')) headers['user-agent'] = USER_AGENT
  for (const { name, value } of configured) headers[name] = value
  return headers
}

/**
 * @param {URL} url
 * @param {SenderConfig} config
 */
function createPool (url, config) {
  const { ssl } = config
  const sni = ssl.serverNameIndication
  const tls = url.protocol === 'https:'
    ? {
        ca: ssl.cacertfile ? readFileSync(ssl.cacertfile) : undefined,
        cert: ssl.certfile ? readFileSync(ssl.certfile) : undefined,
        key: ssl.keyfile ? readFileSync(ssl.keyfile) : undefined,
        rejectUnauthorized: ssl.verify,
        ...(sni === 'disable'
          // EMQX's `disable`: the chain is still verified, the host name is not
          ? { checkServerIdentity: () => undefined }
          : sni
            ? { servername: sni, checkServerIdentity: (/** @type {string} */ _host, /** @type {import('node:tls').PeerCertificate} */ cert) => checkServerIdentity(sni, cert) }
            : {})
      }
    : {}
  return new Pool(url.origin, {
    connections: config.poolSize,
    pipelining: config.pipelining,
    connect: { timeout: config.connectTimeoutMs, ...tls }
  })
}
