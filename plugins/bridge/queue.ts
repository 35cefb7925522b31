// The bridge's buffer of QoS 1/2 messages for the upstream: bounded, FIFO, with a window
// of messages in flight. A message leaves the buffer only when the upstream acknowledged it
// (PUBACK, or PUBCOMP for QoS 2); messages in flight when the connection drops go back to
// the front. With a durable store every change is written to an SQLite file before the
// local publisher gets its acknowledgement, so a restart resends what was not acknowledged.
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { QoS, UserProperties } from '../../sdk/index.ts'

export interface QueuedMessage {
  readonly id: number
  readonly topic: string
  readonly payload: Buffer
  readonly qos: Exclude<QoS, 0>
  readonly retain: boolean
  /** MQTT 5 user properties of the local message, sent upstream by an MQTT 5 bridge */
  readonly userProperties?: UserProperties
}

export interface QueueLimits {
  readonly maxMessages: number
  readonly overflow: 'drop_oldest' | 'drop_newest'
}

/** Where a durable queue keeps its messages. */
interface Store {
  insert (message: QueuedMessage): void
  delete (id: number): void
  all (): QueuedMessage[]
  close (): void
}

export class BridgeQueue {
  /** waiting to be sent, oldest first: `#pending[#head..]` */
  #pending: QueuedMessage[] = []
  #head = 0
  readonly #inflight = new Map<number, QueuedMessage>()
  #nextId = 1
  #limits: QueueLimits

  private constructor (limits: QueueLimits, private readonly store?: Store, readonly file?: string) {
    this.#limits = limits
    if (store) {
      const saved = store.all()
      this.#pending = saved
      if (saved.length > 0) this.#nextId = saved[saved.length - 1]!.id + 1
    }
  }

  static memory (limits: QueueLimits): BridgeQueue {
    return new BridgeQueue(limits)
  }

  /** Opens (or creates) the SQLite file; messages left from an earlier run come first. */
  static async durable (limits: QueueLimits, file: string): Promise<BridgeQueue> {
    mkdirSync(dirname(file), { recursive: true })
    let Database: typeof import('better-sqlite3')
    try {
      Database = (await import('better-sqlite3')).default
    } catch (err) {
      throw new Error(`a durable bridge queue needs the better-sqlite3 package (npm install better-sqlite3): ${(err as Error).message}`)
    }
    const db = new Database(file)
    // WAL with synchronous=NORMAL: a commit survives a crash of the process (not of the OS)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.exec('CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL)')
    // MQTT 5 user properties as JSON (NULL without); a file from before they were kept gets the column
    const columns = db.prepare<[], { name: string }>('PRAGMA table_info(messages)').all()
    if (!columns.some((column) => column.name === 'user_properties')) db.exec('ALTER TABLE messages ADD COLUMN user_properties TEXT')
    const insert = db.prepare('INSERT INTO messages (id, topic, payload, qos, retain, user_properties) VALUES (?, ?, ?, ?, ?, ?)')
    const remove = db.prepare('DELETE FROM messages WHERE id = ?')
    const all = db.prepare<[], { id: number, topic: string, payload: Buffer, qos: number, retain: number, user_properties: string | null }>(
      'SELECT id, topic, payload, qos, retain, user_properties FROM messages ORDER BY id')
    const store: Store = {
      insert: (m) => { insert.run(m.id, m.topic, m.payload, m.qos, m.retain ? 1 : 0, m.userProperties === undefined ? null : JSON.stringify(m.userProperties)) },
      delete: (id) => { remove.run(id) },
      all: () => all.all().map((row) => {
        const message = { id: row.id, topic: row.topic, payload: row.payload, qos: row.qos === 2 ? 2 : 1, retain: row.retain === 1 } as const
        return row.user_properties === null ? message : { ...message, userProperties: JSON.parse(row.user_properties) as UserProperties }
      }),
      close: () => db.close()
    }
    return new BridgeQueue(limits, store, file)
  }

  get durable (): boolean {
    return this.store !== undefined
  }

  /** waiting plus in flight */
  get size (): number {
    return this.pendingCount + this.#inflight.size
  }

  get pendingCount (): number {
    return this.#pending.length - this.#head
  }

  get inflightCount (): number {
    return this.#inflight.size
  }

  setLimits (limits: QueueLimits): void {
    this.#limits = limits
  }

  /**
   * Buffers a message. When the buffer is full, `drop_oldest` drops the oldest message not
   * in flight and `drop_newest` refuses this one; returns how many messages were dropped.
   */
  push (message: Omit<QueuedMessage, 'id'>): number {
    let dropped = 0
    while (this.size >= this.#limits.maxMessages) {
      if (this.#limits.overflow === 'drop_newest' || this.pendingCount === 0) return dropped + 1
      const oldest = this.#shift()!
      this.store?.delete(oldest.id)
      dropped++
    }
    const entry: QueuedMessage = { ...message, id: this.#nextId++ }
    this.store?.insert(entry)
    this.#pending.push(entry)
    return dropped
  }

  /** The next message to send; it counts as in flight until `ack` or `requeue`. */
  take (): QueuedMessage | undefined {
    const next = this.#shift()
    if (next) this.#inflight.set(next.id, next)
    return next
  }

  /** The upstream acknowledged the message: it leaves the buffer. */
  ack (id: number): boolean {
    if (!this.#inflight.delete(id)) return false
    this.store?.delete(id)
    return true
  }

  /** Puts every message in flight back in front, oldest first; returns how many. */
  requeue (): number {
    const back = [...this.#inflight.values()].sort((a, b) => a.id - b.id)
    this.#inflight.clear()
    if (back.length > 0) {
      this.#pending = [...back, ...this.#pending.slice(this.#head)]
      this.#head = 0
    }
    return back.length
  }

  close (): void {
    this.store?.close()
  }

  #shift (): QueuedMessage | undefined {
    if (this.#head >= this.#pending.length) return undefined
    const next = this.#pending[this.#head]!
    this.#pending[this.#head] = undefined as unknown as QueuedMessage
    this.#head++
    // compact now and then, so the array does not grow without bound
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head)
      this.#head = 0
    }
    return next
  }
}
