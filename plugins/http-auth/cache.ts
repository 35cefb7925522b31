// The decision cache (off by default): an LRU of verdicts with separate TTLs for allow and
// deny, jitter, the server's Cache-Control, and single-flight so that a storm of identical
// requests costs one HTTP call. Keys of auth_req and super_req are keyed hashes of the
// rendered parameters under a per-process secret, so a password is part of a key only as a
// hash and is never stored. acl_req has no password: its keys are plain text
// (Endpoint.aclKey), and each connection also keeps the ACL answers it already got
// (ConnectionAnswers), so that a known answer costs a Map lookup per PUBLISH.
import { hash, randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Options } from './config.ts'
import type { Classified, Verdict } from './http.ts'

/** Told where each decision came from, as it happens (a shared one before it is answered). */
export interface CacheEvents {
  hit (): void
  shared (): void
  stored (size: number): void
}

export class DecisionCache {
  readonly #lru: LRUCache<string, Verdict>
  readonly #inflight = new Map<string, Promise<Classified>>()
  readonly #secret = randomBytes(32).toString('base64')

  constructor (private readonly options: Options['cache'], private readonly events: CacheEvents) {
    // ttlResolution 0: read the clock at each lookup; the default caches it for 1 ms with a
    // setTimeout, which under a connect storm is one timer per lookup or two
    this.#lru = new LRUCache<string, Verdict>({ max: options.maxEntries, ttl: options.allowTtl, ttlAutopurge: false, ttlResolution: 0 })
  }

  get size (): number {
    return this.#lru.size
  }

  /**
   * The key of an auth_req or super_req decision: a keyed SHA-256 of the kind and the rendered
   * parameters (which hold the password), under a per-process random secret. One endpoint per
   * kind, so the parameters determine the request. A one-shot hash: no Hmac object per connect.
   */
  key (kind: string, pairs: ReadonlyArray<readonly [string, string]>): string {
    return hash('sha256', `${this.#secret}\0${kind}\0${JSON.stringify(pairs)}`, 'base64url')
  }

  /** A cached verdict (counted as a hit), or undefined: the hot path, synchronous. */
  get (key: string): Verdict | undefined {
    const cached = this.#lru.get(key)
    if (cached !== undefined) this.events.hit()
    return cached
  }

  /** After `get()` missed: the verdict of an identical request in flight, else `fetch()`'s, which is stored. */
  async fetch (key: string, fetch: () => Promise<Classified>): Promise<Verdict> {
    const inflight = this.#inflight.get(key)
    if (inflight) {
      this.events.shared()
      return (await inflight).verdict
    }
    const request = fetch()
    this.#inflight.set(key, request)
    try {
      const classified = await request
      this.#store(key, classified)
      return classified.verdict
    } finally {
      this.#inflight.delete(key)
    }
  }

  /** A cached verdict, else the one of an identical request in flight, else `fetch()`'s. */
  lookup (key: string, fetch: () => Promise<Classified>): Verdict | Promise<Verdict> {
    return this.get(key) ?? this.fetch(key, fetch)
  }

  #store (key: string, { verdict, maxAgeMs }: Classified): void {
    const configured = verdict.result === 'deny' ? this.options.denyTtl : this.options.allowTtl
    const base = maxAgeMs ?? configured
    if (base <= 0) return
    // jitter spreads the expiry of answers cached together (a reconnect storm) over time
    const ttl = Math.max(1, Math.round(base * (1 - Math.random() * this.options.jitter)))
    this.#lru.set(key, verdict, { ttl })
    this.events.stored(this.#lru.size)
  }

  /** When the cached answer under `key` expires (Date.now() based), or 0 when none is cached. */
  expiresAt (key: string): number {
    const remaining = this.#lru.getRemainingTTL(key)
    return remaining > 0 ? Date.now() + Math.floor(remaining) : 0
  }

  clear (): void {
    this.#lru.clear()
  }
}

interface Known {
  readonly verdict: Verdict
  /** Date.now() based */
  readonly expires: number
}

/**
 * Per connection, the ACL answers it already got (asked or from the shared cache), each
 * until its shared cache entry expires: a PUBLISH whose answer is known costs one WeakMap
 * and one Map lookup, with no key to build. Slots are access and QoS; entries are by topic.
 * At most `max` answers in all: then every connection's are dropped at once (the shared
 * cache still has them), and a closed connection's go with it (WeakMap).
 */
export class ConnectionAnswers {
  #byClient = new WeakMap<object, Array<Map<string, Known> | undefined>>()
  #count = 0

  constructor (private readonly max: number) {}

  static slot (access: 'publish' | 'subscribe', qos: number): number {
    return (access === 'publish' ? 3 : 0) + qos
  }

  get (client: object, slot: number, topic: string, now: number): Verdict | undefined {
    const known = this.#byClient.get(client)?.[slot]?.get(topic)
    return known !== undefined && known.expires > now ? known.verdict : undefined
  }

  /** When the known answer expires (Date.now() based), or 0. */
  expiresAt (client: object, slot: number, topic: string): number {
    return this.#byClient.get(client)?.[slot]?.get(topic)?.expires ?? 0
  }

  set (client: object, slot: number, topic: string, verdict: Verdict, expires: number): void {
    if (this.#count >= this.max) this.clear()
    let slots = this.#byClient.get(client)
    if (slots === undefined) this.#byClient.set(client, slots = [])
    const answers = slots[slot] ??= new Map()
    if (!answers.has(topic)) this.#count++
    answers.set(topic, { verdict, expires })
  }

  clear (): void {
    this.#byClient = new WeakMap()
    this.#count = 0
  }
}
