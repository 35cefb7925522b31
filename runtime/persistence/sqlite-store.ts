// tapmq's embedded durable store: an aedes persistence (the aedes-persistence 11
// interface, async flavour) on one SQLite file, through better-sqlite3's synchronous API.
//
// Group commit. Writes run at once inside a transaction that stays open for a batch: until
// the end of the event-loop turn of its first write, or `commitWindow` ms after it, and
// with `sync = full` for as long as the fsync of the previous batch is running. Then one
// COMMIT covers every write of the batch. With `sync = full` the fsync does not block the
// event loop: SQLite runs with synchronous = NORMAL and tapmq fdatasyncs the WAL file in
// libuv's thread pool after each COMMIT; the batch's waiters hear only after that (the same
// guarantee as synchronous = FULL, which syncs the WAL at every commit on this thread).
// Two kinds of write:
//   - durable: the promise resolves after the batch that contains the write is committed
//     (and synced). Used where aedes acknowledges or sends something right after the write:
//     SUBACK, UNSUBACK, PUBCOMP (incomingDelPacket), wills at CONNECT/DISCONNECT, and the
//     message id of a QoS 2 message before the PUBLISH goes to the subscriber.
//   - staged: the promise resolves at once; the write commits with the batch. These are
//     the steps of routing one PUBLISH (the QoS 2 dedup entry, the retained message, the
//     offline queues), so that they commit together and `flush()` / `whenEnqueued` make
//     them durable before tapmq acknowledges the PUBLISH (see ack-after-store.ts); and
//     what a crash may lose without breaking a QoS promise (a subscriber's ack: a
//     redelivery).
// Queued messages (the hot path: a row per message and persistent subscriber) wait in
// memory, with their row ids fixed, until the batch commits; a row whose subscriber
// acknowledges it before that is dropped: no INSERT, no DELETE, the message was delivered.
// Kept in memory only: the trie of offline subscriptions (as in aedes' memory store,
// rebuilt from the file at setup) and the packet ids of QoS 1 messages in flight to
// subscribers (after a restart they go out under new ids, which QoS 1 allows).
import { closeSync, fdatasync, fdatasyncSync, mkdirSync, openSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { Readable } from 'node:stream'
import { deserialize, serialize } from 'node:v8'
import Database from 'better-sqlite3'
import { QlobberTrue } from 'qlobber'
import QlobberSub from 'qlobber/aedes/qlobber-sub.js'
import { TapmqError } from '../../sdk/errors.ts'
import { ERR_PERSISTENCE_CORRUPT, ERR_PERSISTENCE_LOCKED, ERR_PERSISTENCE_OPEN } from './errors.ts'

/** A packet as aedes hands it to the store (aedes-packet plus whatever the client sent). */
export interface StoredPacket {
  cmd?: string
  topic?: string
  payload?: Buffer | string
  qos?: number
  retain?: boolean
  messageId?: number
  brokerId?: string
  brokerCounter?: number
  clientId?: string
  [key: string]: unknown
}

export interface StoreSubscription {
  topic: string
  qos: number
  rh?: number
  rap?: boolean
  nl?: boolean
  subscriptionIdentifier?: number
}

interface ClientRef { readonly id: string }
interface BrokerRef { readonly id: string }

// aedes-packet is CommonJS and its typings do not describe its export; this is its constructor
const Packet = createRequire(import.meta.url)('aedes-packet') as new (original: object, broker?: unknown) => StoredPacket

const QLOBBER_OPTIONS = { wildcard_one: '+', wildcard_some: '#', separator: '/' }
/** `PRAGMA application_id`: marks the file as a tapmq store ("tapq") */
const APPLICATION_ID = 0x74617071
/**
 * 1: the first store; 2: adds `sessions` (MQTT 5 session expiry and will delay). A version 1
 * file is migrated in place at open (CREATE TABLE IF NOT EXISTS); a version 2 file is refused
 * by a tapmq that reads only version 1.
 */
const SCHEMA_VERSION = 2
const PAGE = 256

const SCHEMA = `
CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, packet BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions (
  id INTEGER PRIMARY KEY, client_id TEXT NOT NULL, topic TEXT NOT NULL, qos INTEGER NOT NULL, options TEXT NOT NULL,
  UNIQUE (client_id, topic));
CREATE INDEX IF NOT EXISTS subscriptions_by_topic ON subscriptions (topic);
CREATE TABLE IF NOT EXISTS outgoing (
  id INTEGER PRIMARY KEY, client_id TEXT NOT NULL, broker_id TEXT, broker_counter INTEGER, message_id INTEGER,
  packet BLOB NOT NULL, payload BLOB);
CREATE INDEX IF NOT EXISTS outgoing_by_broker ON outgoing (client_id, broker_id, broker_counter);
CREATE INDEX IF NOT EXISTS outgoing_by_message ON outgoing (client_id, message_id) WHERE message_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS incoming (
  client_id TEXT NOT NULL, message_id INTEGER NOT NULL, packet BLOB NOT NULL, payload BLOB, PRIMARY KEY (client_id, message_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wills (client_id TEXT PRIMARY KEY, broker_id TEXT, packet BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
  client_id TEXT PRIMARY KEY, expiry_interval INTEGER NOT NULL, expires_at INTEGER, will_at INTEGER) WITHOUT ROWID;
`

export type SyncMode = 'full' | 'normal'

export interface SqliteStoreOptions {
  /** the database file; `:memory:` for tests */
  readonly file: string
  /** `full`: fsync at every commit, survives power loss; `normal`: survives a crash of the process */
  readonly sync?: SyncMode
  /**
   * milliseconds from the first write of a batch to its COMMIT (default 0: the end of the
   * event-loop turn). Writes of the window share one transaction, and queued messages taken
   * back by their subscriber's PUBACK within it never reach the file.
   */
  readonly commitWindow?: number
  /**
   * how the write-ahead log is synced after a COMMIT (sync = full); fs.fdatasync unless a
   * test injects a failing disk, which cannot be had for real here
   */
  readonly syncWal?: (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void
}

/** Called when a message's store steps are durable, or with the error that lost them. */
export type Settled = (error?: Error | null) => void

/** A message queued for one or more persistent sessions, waiting for the commit. */
interface PendingMessage {
  /** the aedes-packet copy that the queue holds */
  readonly packet: StoredPacket
  /** its row form, made once for all its rows, at the first insert */
  packed?: [string | Buffer, Buffer | string | null]
}

/** A queue row not yet written: its id is fixed already (queue order). */
interface PendingRow {
  readonly clientId: string
  readonly message: PendingMessage
  /** its entry in #pendingByKey, when it has one */
  readonly key?: string
}

interface Track {
  done: boolean
  readonly fn: Settled
}

const rowKey = (clientId: string, brokerId: string, brokerCounter: number | undefined): string => `${clientId}\u0000${brokerId}\u0000${brokerCounter}`

interface Deferred {
  promise: Promise<void>
  resolve (): void
  reject (err: unknown): void
}

function deferred (): Deferred {
  let resolve!: () => void
  let reject!: (err: unknown) => void
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

const encode = (value: unknown): Buffer => serialize(value)
const decode = <T = StoredPacket>(blob: Buffer): T => deserialize(blob) as T

/** A queued or inbound packet as stored: its fields, and its payload apart. */
interface PackedRow {
  /** JSON text of the fields but the payload; a v8-serialized blob of the whole packet for MQTT 5 properties */
  packet: string | Buffer
  /** Buffer or string, as it came; null when the packet has none (PUBREL) */
  payload: Buffer | string | null
}

/**
 * Queued messages are the hot path (a write per message and subscriber), so their fields
 * go in as JSON and the payload as a BLOB of its own: several times cheaper than
 * v8.serialize. Packets with MQTT 5 properties (Buffers inside) take the v8 path.
 */
function pack (packet: StoredPacket): [string | Buffer, Buffer | string | null] {
  if (packet.properties !== undefined) return [serialize(packet), null]
  const { payload, ...fields } = packet
  return [JSON.stringify(fields), payload ?? null]
}

function unpack (row: PackedRow): StoredPacket {
  if (typeof row.packet !== 'string') return decode(row.packet)
  const packet = JSON.parse(row.packet) as StoredPacket
  if (row.payload !== null) packet.payload = row.payload
  // JSON drops undefined; aedes-packet sets messageId undefined on every QoS > 0 PUBLISH and on PUBREL
  if (!('messageId' in packet) && ((packet.qos ?? 0) > 0 || packet.cmd !== 'publish')) packet.messageId = undefined
  return packet
}
/** better-sqlite3 binds null, not undefined */
const id = (value: unknown): number | null => (typeof value === 'number' ? value : null)

function prepareAll (db: Database.Database) {
  const p = <R = unknown>(sql: string) => db.prepare<unknown[], R>(sql)
  return {
    retainedPut: p('INSERT INTO retained (topic, packet) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET packet = excluded.packet'),
    retainedDel: p('DELETE FROM retained WHERE topic = ?'),
    retainedGet: p<{ packet: Buffer }>('SELECT packet FROM retained WHERE topic = ?'),
    retainedPage: p<{ topic: string, packet: Buffer }>('SELECT topic, packet FROM retained WHERE topic > ? ORDER BY topic LIMIT ?'),
    subGet: p<{ qos: number }>('SELECT qos FROM subscriptions WHERE client_id = ? AND topic = ?'),
    subPut: p('INSERT INTO subscriptions (client_id, topic, qos, options) VALUES (?, ?, ?, ?) ' +
      'ON CONFLICT (client_id, topic) DO UPDATE SET qos = excluded.qos, options = excluded.options'),
    subDel: p('DELETE FROM subscriptions WHERE client_id = ? AND topic = ?'),
    subsOfClient: p<{ topic: string, qos: number, options: string }>('SELECT topic, qos, options FROM subscriptions WHERE client_id = ? ORDER BY id'),
    subsDelClient: p('DELETE FROM subscriptions WHERE client_id = ?'),
    subsQoS: p<{ client_id: string, topic: string, qos: number, options: string }>('SELECT client_id, topic, qos, options FROM subscriptions WHERE qos > 0 ORDER BY id'),
    subClients: p<{ n: number }>('SELECT COUNT(DISTINCT client_id) AS n FROM subscriptions'),
    clientsOfTopic: p<{ client_id: string }>('SELECT client_id FROM subscriptions WHERE topic = ? ORDER BY id'),
    outPut: p('INSERT INTO outgoing (id, client_id, broker_id, broker_counter, message_id, packet, payload) VALUES (?, ?, ?, ?, NULL, ?, ?)'),
    outMax: p<{ last: number | null }>('SELECT MAX(id) AS last FROM outgoing'),
    outSetMessageId: p('UPDATE outgoing SET message_id = ? WHERE id = ' +
      '(SELECT id FROM outgoing WHERE client_id = ? AND broker_id = ? AND broker_counter = ? ORDER BY id LIMIT 1)'),
    outReplace: p('UPDATE outgoing SET broker_id = ?, broker_counter = ?, message_id = ?, packet = ?, payload = ? WHERE id = ' +
      '(SELECT id FROM outgoing WHERE client_id = ? AND message_id = ? AND broker_id IS NOT ? ORDER BY id LIMIT 1)'),
    outRowByBroker: p<{ id: number }>('SELECT id FROM outgoing WHERE client_id = ? AND broker_id = ? AND broker_counter = ? ORDER BY id LIMIT 1'),
    outTakeRow: p<PackedRow & { message_id: number | null }>('DELETE FROM outgoing WHERE id = ? RETURNING message_id, packet, payload'),
    outTake: p<PackedRow & { message_id: number | null }>('DELETE FROM outgoing WHERE id = ' +
      '(SELECT id FROM outgoing WHERE client_id = ? AND message_id = ? ORDER BY id LIMIT 1) RETURNING message_id, packet, payload'),
    outLast: p<{ last: number | null }>('SELECT MAX(id) AS last FROM outgoing WHERE client_id = ?'),
    outPage: p<PackedRow & { id: number, message_id: number | null }>('SELECT id, message_id, packet, payload FROM outgoing ' +
      'WHERE client_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?'),
    inPut: p('INSERT INTO incoming (client_id, message_id, packet, payload) VALUES (?, ?, ?, ?) ' +
      'ON CONFLICT (client_id, message_id) DO UPDATE SET packet = excluded.packet, payload = excluded.payload'),
    inGet: p<PackedRow>('SELECT packet, payload FROM incoming WHERE client_id = ? AND message_id = ?'),
    inDel: p('DELETE FROM incoming WHERE client_id = ? AND message_id = ?'),
    inDelClient: p('DELETE FROM incoming WHERE client_id = ?'),
    willPut: p('INSERT INTO wills (client_id, broker_id, packet) VALUES (?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET broker_id = excluded.broker_id, packet = excluded.packet'),
    willGet: p<{ packet: Buffer }>('SELECT packet FROM wills WHERE client_id = ?'),
    willDel: p('DELETE FROM wills WHERE client_id = ?'),
    willsAll: p<{ broker_id: string | null, packet: Buffer }>('SELECT broker_id, packet FROM wills ORDER BY client_id'),
    sessionPut: p('INSERT INTO sessions (client_id, expiry_interval, expires_at, will_at) VALUES (?, ?, ?, NULL) ' +
      'ON CONFLICT (client_id) DO UPDATE SET expiry_interval = excluded.expiry_interval, expires_at = excluded.expires_at, ' +
      'will_at = CASE WHEN excluded.expires_at IS NULL THEN NULL ELSE sessions.will_at END'),
    sessionWill: p('INSERT INTO sessions (client_id, expiry_interval, expires_at, will_at) VALUES (?, 0, NULL, ?) ' +
      'ON CONFLICT (client_id) DO UPDATE SET will_at = excluded.will_at'),
    sessionDel: p('DELETE FROM sessions WHERE client_id = ?'),
    sessionsAll: p<{ client_id: string, expiry_interval: number, expires_at: number | null, will_at: number | null }>(
      'SELECT client_id, expiry_interval, expires_at, will_at FROM sessions ORDER BY client_id'),
    outDelClient: p('DELETE FROM outgoing WHERE client_id = ?'),
    stats: p<{ retained: number, sessions: number, queued: number, wills: number }>('SELECT ' +
      '(SELECT COUNT(*) FROM retained) AS retained, (SELECT COUNT(DISTINCT client_id) FROM subscriptions) AS sessions, ' +
      '(SELECT COUNT(*) FROM outgoing) AS queued, (SELECT COUNT(*) FROM wills) AS wills')
  }
}

type Statements = ReturnType<typeof prepareAll>

/** Maps an error from opening the file onto the TapmqError a user can act on. */
function openError (file: string, err: unknown): TapmqError {
  if (err instanceof TapmqError) return err
  const code = String((err as { code?: unknown }).code ?? '')
  const message = (err as Error).message ?? String(err)
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return ERR_PERSISTENCE_LOCKED(file, err)
  if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) return ERR_PERSISTENCE_CORRUPT(file, message, err)
  return ERR_PERSISTENCE_OPEN(file, code ? `${message} (${code})` : message, err)
}

/**
 * Opens (creating if needed) the store file, takes an exclusive lock on it for the life
 * of the connection, checks that it is a tapmq store in good shape, and creates the schema.
 * `walSync`: the caller fsyncs the WAL itself after each commit (SqliteStore with sync =
 * full), so SQLite runs with `synchronous = NORMAL`.
 */
export function openDatabase (file: string, sync: SyncMode, walSync = false): Database.Database {
  if (file !== ':memory:') {
    try {
      mkdirSync(dirname(file), { recursive: true })
    } catch (err) {
      throw ERR_PERSISTENCE_OPEN(file, `cannot create its directory: ${(err as Error).message}`, err)
    }
    try {
      // a new store is readable by its owner only (messages are in it); SQLite gives its
      // -wal file the same mode. An empty file is an empty database to SQLite.
      closeSync(openSync(file, 'wx', 0o600))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ERR_PERSISTENCE_OPEN(file, (err as Error).message, err)
    }
  }
  let db: Database.Database
  try {
    // timeout 0: a lock held by another process is reported at once instead of waited for
    db = new Database(file, { timeout: 0 })
  } catch (err) {
    throw openError(file, err)
  }
  try {
    // EXCLUSIVE: the first write takes the file lock and keeps it until close, so a second
    // broker on the same data_dir fails here instead of sharing the queues
    db.pragma('locking_mode = EXCLUSIVE')
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${sync === 'full' && !walSync ? 'FULL' : 'NORMAL'}`)
    db.exec('BEGIN EXCLUSIVE')
    const appId = db.pragma('application_id', { simple: true }) as number
    const version = db.pragma('user_version', { simple: true }) as number
    const objects = (db.prepare('SELECT COUNT(*) AS n FROM sqlite_master').get() as { n: number }).n
    if (appId !== APPLICATION_ID && !(appId === 0 && objects === 0)) {
      throw ERR_PERSISTENCE_OPEN(file, 'it is an SQLite database but not a tapmq message store; point data_dir elsewhere')
    }
    if (version > SCHEMA_VERSION) {
      throw ERR_PERSISTENCE_OPEN(file, `it was written by a newer tapmq (store version ${version}, this tapmq reads up to ${SCHEMA_VERSION})`)
    }
    db.exec(SCHEMA)
    db.pragma(`application_id = ${APPLICATION_ID}`)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
    db.exec('COMMIT')
    const check = db.pragma('quick_check', { simple: true })
    if (check !== 'ok') throw ERR_PERSISTENCE_CORRUPT(file, `integrity check: ${String(check)}`)
    return db
  } catch (err) {
    try {
      db.close()
    } catch {}
    throw openError(file, err)
  }
}

export class SqliteStore {
  readonly file: string
  readonly sync: SyncMode
  #db?: Database.Database
  #sql!: Statements
  readonly #trie = new QlobberSub(QLOBBER_OPTIONS)
  #broker?: BrokerRef
  readonly commitWindow: number
  /** waiters for the next COMMIT */
  #batch?: Deferred
  #commitImmediate?: NodeJS.Immediate
  #commitTimeout?: NodeJS.Timeout
  /** callbacks waiting for the offline-queue step of a message, by broker counter (see whenEnqueued) */
  readonly #enqueueWaiters = new Map<number, Settled>()
  /**
   * Queue rows of this batch not yet inserted, in queue order. They are inserted at the
   * COMMIT (or before a read that must see them); a row whose subscriber acknowledges it
   * first is dropped instead: no INSERT, no DELETE.
   */
  readonly #pendingRows = new Map<number, PendingRow>()
  /** client, broker id and counter of a pending row -> its id (what outRowByBroker finds in the file) */
  #pendingByKey = new Map<string, number>()
  /**
   * the same for the rows the last insert wrote: aedes delivers a message to an online
   * subscriber right after the batch that queued it (outgoingUpdate), and this saves the
   * SELECT that would find its row. Replaced at every insert, emptied as it is used.
   */
  #writtenByKey = new Map<string, number>()
  /** messages of this batch whose durability someone waits for */
  #tracks: Track[] = []
  /** the id of the next queue row */
  #nextRowId = 1
  /** clients with a row in `sessions`: a CONNECT of any other client costs no DELETE */
  readonly #sessionRows = new Set<string>()
  /** since open: COMMITs, queue rows written, queue rows taken back before they were written */
  readonly counts = { commits: 0, rowsWritten: 0, rowsElided: 0 }
  /**
   * Packet ids of QoS 1 messages sent to a subscriber and not yet acknowledged, by client:
   * id -> row. Kept in memory only (see outgoingUpdate); bounded by what is in flight.
   */
  readonly #inflight = new Map<string, Map<number, number>>()
  #closed = false
  /** set while destroy() waits for the last sync: commits then sync at once, on this thread */
  #closing?: Promise<void>
  /**
   * sync = full on a file: the WAL file, which tapmq fdatasyncs in libuv's thread pool after
   * each COMMIT (SQLite itself runs with synchronous = NORMAL and syncs only at checkpoints)
   */
  #walFd?: number
  /** the fdatasync of a committed batch is running; resolves when it ended */
  #syncing?: Promise<void>
  /** a COMMIT came due while #syncing: it runs when the sync ends */
  #commitAfterSync = false
  /** called with errors that no caller can receive (a failed group COMMIT) */
  onError: (err: Error) => void = () => {}
  /**
   * Set by the first failed fdatasync: from then on the store refuses every operation. Linux
   * may mark the pages that failed to reach the disk clean, so a later sync can succeed while
   * the WAL holds a hole that recovery stops at; acknowledging anything after it would be a lie.
   */
  #syncFailure?: Error
  /** called once, with the error the store then refuses every operation with */
  onSyncFailure: (err: Error) => void = () => {}
  readonly #syncWal: NonNullable<SqliteStoreOptions['syncWal']>

  constructor (options: SqliteStoreOptions) {
    this.file = options.file
    this.sync = options.sync ?? 'full'
    this.commitWindow = Math.max(0, options.commitWindow ?? 0)
    this.#syncWal = options.syncWal ?? fdatasync
  }

  /** the broker, as aedes-persistence's abstract tests expect */
  get broker (): BrokerRef | undefined {
    return this.#broker
  }

  /** Opens the file (aedes calls this from broker.listen()); throws TapmqErrors naming it. */
  async setup (broker: BrokerRef): Promise<void> {
    this.#broker = broker
    if (this.#db) return
    const walSync = this.sync === 'full' && this.file !== ':memory:'
    const db = openDatabase(this.file, this.sync, walSync)
    this.#db = db
    if (walSync) {
      try {
        // WAL mode with locking_mode = EXCLUSIVE: SQLite keeps this file (resetting it after
        // checkpoints, never deleting it) until the connection closes
        this.#walFd = openSync(`${this.file}-wal`, 'r+')
      } catch (err) {
        db.close()
        this.#db = undefined
        throw ERR_PERSISTENCE_OPEN(this.file, `cannot open its write-ahead log: ${(err as Error).message}`, err)
      }
    }
    this.#sql = prepareAll(db)
    this.#nextRowId = (this.#sql.outMax.get()?.last ?? 0) + 1
    for (const row of this.#sql.sessionsAll.all()) this.#sessionRows.add(row.client_id)
    for (const row of this.#sql.subsQoS.all()) {
      const options = JSON.parse(row.options) as Omit<StoreSubscription, 'topic' | 'qos'>
      this.#trie.add(row.topic, { clientId: row.client_id, topic: row.topic, qos: row.qos, rh: options.rh, rap: options.rap, nl: options.nl })
    }
  }

  // ---- transactions -----------------------------------------------------------------

  #live (): Database.Database {
    if (this.#syncFailure) throw this.#syncFailure
    if (!this.#db || this.#closed) throw new Error(`the message store ${this.file} is closed`)
    return this.#db
  }

  /** Opens the transaction of this batch if none is open. */
  #begin (db: Database.Database): void {
    if (!db.inTransaction) {
      db.exec('BEGIN')
      this.#schedule()
    }
  }

  /** Schedules the COMMIT of this batch: at the end of the turn, or `commitWindow` ms from its first write. */
  #schedule (): void {
    if (this.#commitImmediate !== undefined || this.#commitTimeout !== undefined) return
    if (this.commitWindow > 0) this.#commitTimeout = setTimeout(() => this.#commit(), this.commitWindow)
    else this.#commitImmediate = setImmediate(() => this.#commit())
  }

  #unschedule (): void {
    if (this.#commitImmediate !== undefined) clearImmediate(this.#commitImmediate)
    if (this.#commitTimeout !== undefined) clearTimeout(this.#commitTimeout)
    this.#commitImmediate = undefined
    this.#commitTimeout = undefined
  }

  /** Runs `fn` inside the open transaction of this batch, opening one if needed. */
  #write<T> (fn: (sql: Statements) => T): T {
    const db = this.#live()
    this.#begin(db)
    try {
      return fn(this.#sql)
    } catch (err) {
      // some errors (disk full, I/O) roll the whole transaction back: its waiters must hear it
      if (!db.inTransaction) this.#fail(err as Error)
      throw err
    }
  }

  /** Queues a row for the next COMMIT. */
  #stage (clientId: string, message: PendingMessage): void {
    const { brokerId, brokerCounter } = message.packet
    let key: string | undefined
    if (brokerId !== undefined) {
      key = rowKey(clientId, brokerId, brokerCounter)
      // the same message twice for one client: the first row answers to the key, as in the file
      if (this.#pendingByKey.has(key)) key = undefined
      else this.#pendingByKey.set(key, this.#nextRowId)
    }
    this.#pendingRows.set(this.#nextRowId++, { clientId, message, key })
    this.#schedule()
  }

  /** Drops a pending row. */
  #unstage (rowId: number, row: PendingRow): void {
    this.#pendingRows.delete(rowId)
    if (row.key !== undefined) this.#pendingByKey.delete(row.key)
  }

  /** Inserts the pending rows into the open transaction (opening one). Throws; the caller fails the batch. */
  #insertPending (db: Database.Database): void {
    if (this.#pendingRows.size === 0) return
    this.#begin(db)
    const put = this.#sql.outPut
    for (const [rowId, row] of this.#pendingRows) {
      const message = row.message
      const packed = message.packed ??= pack(message.packet)
      put.run(rowId, row.clientId, message.packet.brokerId ?? null, id(message.packet.brokerCounter), packed[0], packed[1])
    }
    this.counts.rowsWritten += this.#pendingRows.size
    this.#pendingRows.clear()
    this.#writtenByKey = this.#pendingByKey
    this.#pendingByKey = new Map()
  }

  /** Before a statement that must see every queued row: inserts the pending ones (not yet committed). */
  #materialize (): void {
    if (this.#pendingRows.size === 0) return
    const db = this.#live()
    try {
      this.#insertPending(db)
    } catch (err) {
      try {
        if (db.inTransaction) db.exec('ROLLBACK')
      } catch {}
      this.#fail(err as Error)
      throw err
    }
  }

  #commit (): void {
    this.#unschedule()
    const db = this.#db
    if (!db?.open) return
    if (this.#syncFailure) {
      if (db.inTransaction) db.exec('ROLLBACK')
      return this.#fail(this.#syncFailure, false)
    }
    if (this.#syncing && !this.#closing) {
      // group commit: this batch stays open until the running sync ends, gathering the
      // writes of the turns meanwhile; queued rows acknowledged meanwhile are never written
      this.#commitAfterSync = true
      return
    }
    let wrote = false
    try {
      this.#insertPending(db)
      if (db.inTransaction) {
        db.exec('COMMIT')
        this.counts.commits++
        wrote = true
      }
    } catch (err) {
      try {
        if (db.inTransaction) db.exec('ROLLBACK')
      } catch {}
      this.#fail(err as Error)
      return
    }
    const batch = this.#batch
    const tracks = this.#tracks
    this.#batch = undefined
    this.#tracks = []
    const done = (err?: Error | null) => {
      if (err) {
        batch?.reject(err)
        for (const track of tracks) settle(track, err)
        this.onError(err)
        return
      }
      batch?.resolve()
      for (const track of tracks) settle(track)
    }
    const fd = this.#walFd
    if (!wrote || fd === undefined) return done()
    if (this.#closing) {
      let error: Error | undefined
      try {
        fdatasyncSync(fd)
      } catch (err) {
        error = err as Error
      }
      return done(error)
    }
    this.#syncing = new Promise<void>((resolve) => {
      this.#syncWal(fd, (err) => {
        this.#syncing = undefined
        resolve()
        if (err && !this.#syncFailure) {
          this.#syncFailure = new Error(`the message store ${this.file} could not sync its write-ahead log (${err.message}); ` +
            'it accepts no more writes and nothing more is acknowledged: restart tapmq (recovery replays the log up to the failed batch)')
          this.onSyncFailure(this.#syncFailure)
        }
        done(err ? this.#syncFailure : null)
        // the batch that came due meanwhile, or waiters of flush() for writes of the last batch
        if (this.#commitAfterSync || this.#batch) {
          this.#commitAfterSync = false
          this.#commit()
        }
      })
    })
  }

  /** The batch is lost (a failed COMMIT, or a write that rolled the transaction back): tell its waiters. */
  #fail (err: Error, report = true): void {
    this.#unschedule()
    this.#pendingRows.clear()
    this.#pendingByKey.clear()
    this.#writtenByKey.clear()
    const batch = this.#batch
    const tracks = this.#tracks
    this.#batch = undefined
    this.#tracks = []
    batch?.reject(err)
    for (const track of tracks) settle(track, err)
    if (report) this.onError(err)
  }

  /** whether writes wait for a COMMIT */
  get pending (): boolean {
    return this.#pendingRows.size > 0 || this.#db?.inTransaction === true || this.#syncing !== undefined
  }

  /**
   * Calls `fn` once the offline-queue step of the message with this broker counter
   * (outgoingEnqueueCombi, aedes' last store step for a message) is durable: the batch that
   * holds its queue rows is committed (and with sync = full, synced); rows that their
   * subscribers acknowledged before that were never written, which is as durable (the
   * message was delivered). At once when no persistent session matched. So tapmq can
   * acknowledge the message without waiting for the delivery to online subscribers. The
   * caller forgets it with `forgetEnqueued` if the routing ends first.
   */
  whenEnqueued (brokerCounter: number, fn: Settled): void {
    this.#enqueueWaiters.set(brokerCounter, fn)
  }

  /** whether the waiter was still waiting for the queue step (which then never came) */
  forgetEnqueued (brokerCounter: number): boolean {
    return this.#enqueueWaiters.delete(brokerCounter)
  }

  /** Resolves once every write made so far is committed (at once if none is pending). */
  flush (): Promise<void> {
    if (this.#syncFailure) return Promise.reject(this.#syncFailure)
    if (!this.pending) return Promise.resolve()
    this.#batch ??= deferred()
    return this.#batch.promise
  }

  // ---- retained -----------------------------------------------------------------------

  /** staged */
  async storeRetained (packet: StoredPacket): Promise<void> {
    const topic = packet.topic!
    this.#write((sql) => {
      if (packet.payload === undefined || packet.payload.length === 0) sql.retainedDel.run(topic)
      else sql.retainedPut.run(topic, encode({ ...packet }))
    })
  }

  createRetainedStreamCombi (patterns: readonly string[]): Readable {
    return Readable.from(this.#retainedMatching(patterns))
  }

  /** deprecated by aedes-persistence, kept for its tests */
  createRetainedStream (pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  * #retainedMatching (patterns: readonly string[]): Generator<StoredPacket> {
    for (const pattern of patterns) {
      if (!pattern.includes('+') && !pattern.includes('#')) {
        const row = this.#sql.retainedGet.get(pattern)
        if (row) yield decode(row.packet)
        continue
      }
      const matcher = new QlobberTrue(QLOBBER_OPTIONS).add(pattern)
      let after = ''
      for (;;) {
        // a page at a time: other statements may run between two reads of the stream
        this.#live()
        const rows = this.#sql.retainedPage.all(after, PAGE)
        for (const row of rows) if (matcher.test(row.topic)) yield decode(row.packet)
        if (rows.length < PAGE) break
        after = rows[rows.length - 1]!.topic
      }
    }
  }

  // ---- subscriptions ------------------------------------------------------------------

  /** durable: aedes sends the SUBACK next */
  async addSubscriptions (client: ClientRef, subs: readonly StoreSubscription[]): Promise<void> {
    this.#write((sql) => {
      for (const sub of subs) {
        const stored = sql.subGet.get(client.id, sub.topic)
        const options: Omit<StoreSubscription, 'topic' | 'qos'> = { rh: sub.rh, rap: sub.rap, nl: sub.nl }
        if (sub.subscriptionIdentifier !== undefined) options.subscriptionIdentifier = sub.subscriptionIdentifier
        if (sub.qos > 0) {
          this.#trie.add(sub.topic, { clientId: client.id, topic: sub.topic, qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl })
        } else if (stored && stored.qos > 0) {
          this.#trie.remove(sub.topic, { clientId: client.id, topic: sub.topic })
        }
        sql.subPut.run(client.id, sub.topic, sub.qos, JSON.stringify(options))
      }
    })
    await this.flush()
  }

  /** durable: aedes sends the UNSUBACK next */
  async removeSubscriptions (client: ClientRef, topics: readonly string[]): Promise<void> {
    this.#write((sql) => {
      for (const topic of topics) {
        const stored = sql.subGet.get(client.id, topic)
        if (!stored) continue
        if (stored.qos > 0) this.#trie.remove(topic, { clientId: client.id, topic })
        sql.subDel.run(client.id, topic)
      }
    })
    await this.flush()
  }

  async subscriptionsByClient (client: ClientRef): Promise<StoreSubscription[]> {
    this.#live()
    return this.#sql.subsOfClient.all(client.id).map((row) => {
      const options = JSON.parse(row.options) as Omit<StoreSubscription, 'topic' | 'qos'>
      const sub: StoreSubscription = { topic: row.topic, qos: row.qos, rh: options.rh, rap: options.rap, nl: options.nl }
      if (options.subscriptionIdentifier !== undefined) sub.subscriptionIdentifier = options.subscriptionIdentifier
      return sub
    })
  }

  async countOffline (): Promise<{ subsCount: number, clientsCount: number }> {
    this.#live()
    return { subsCount: this.#trie.subscriptionsCount, clientsCount: this.#sql.subClients.get()!.n }
  }

  async subscriptionsByTopic (topic: string) {
    return this.#trie.match(topic)
  }

  /** durable: part of a clean CONNECT */
  async cleanSubscriptions (client: ClientRef): Promise<void> {
    this.#write((sql) => {
      for (const row of sql.subsOfClient.all(client.id)) {
        if (row.qos > 0) this.#trie.remove(row.topic, { clientId: client.id, topic: row.topic })
      }
      sql.subsDelClient.run(client.id)
    })
    await this.flush()
  }

  getClientList (topic: string): Readable {
    this.#live()
    return Readable.from(this.#sql.clientsOfTopic.all(topic).map((row) => row.client_id))
  }

  // ---- offline queues (outgoing) --------------------------------------------------------

  /** staged: a pending row, inserted at the COMMIT of this batch unless its subscriber acknowledges it first */
  async outgoingEnqueue (sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    this.#live()
    this.#stage(sub.clientId, { packet: new Packet(packet) })
  }

  /** staged, like outgoingEnqueue; settles a whenEnqueued waiter */
  async outgoingEnqueueCombi (subs: ReadonlyArray<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    const waiter = this.#enqueueWaiters.size > 0 && packet.brokerId === this.#broker?.id && packet.brokerCounter !== undefined
      ? this.#enqueueWaiters.get(packet.brokerCounter)
      : undefined
    if (waiter) this.#enqueueWaiters.delete(packet.brokerCounter!)
    if (subs.length === 0) return waiter?.()
    this.#live()
    const message: PendingMessage = { packet: new Packet(packet) }
    if (waiter) this.#tracks.push({ done: false, fn: waiter })
    for (const sub of subs) this.#stage(sub.clientId, message)
  }

  /**
   * Records the packet id given to a queued message, or replaces the message by its
   * PUBREL, before aedes writes it to the subscriber; same matching as aedes' memory store.
   * QoS 2: written and durable (the message must keep its id across a restart: the
   * subscriber may hold it awaiting PUBREL). QoS 1: kept in memory only, which saves a
   * write per delivered message; after a restart the message goes out under a new id,
   * which QoS 1 allows.
   */
  async outgoingUpdate (client: ClientRef, packet: StoredPacket): Promise<void> {
    if (packet.qos === 1 && packet.cmd === 'publish' && packet.brokerId !== undefined && typeof packet.messageId === 'number') {
      this.#live()
      let rowId: number | undefined
      if (this.#pendingByKey.size > 0 || this.#writtenByKey.size > 0) {
        const key = rowKey(client.id, packet.brokerId, packet.brokerCounter)
        rowId = this.#pendingByKey.get(key)
        if (rowId === undefined && (rowId = this.#writtenByKey.get(key)) !== undefined) this.#writtenByKey.delete(key)
      }
      rowId ??= this.#sql.outRowByBroker.get(client.id, packet.brokerId, id(packet.brokerCounter))?.id
      if (rowId !== undefined) {
        let ids = this.#inflight.get(client.id)
        if (!ids) this.#inflight.set(client.id, ids = new Map())
        ids.set(packet.messageId, rowId)
        return
      }
    }
    this.#materialize()
    this.#write((sql) => {
      if (packet.brokerId !== undefined &&
        sql.outSetMessageId.run(id(packet.messageId), client.id, packet.brokerId, id(packet.brokerCounter)).changes > 0) return
      const { changes } = sql.outReplace.run(packet.brokerId ?? null, id(packet.brokerCounter), id(packet.messageId), ...pack(packet),
        client.id, id(packet.messageId), packet.brokerId ?? null)
      if (changes === 0) throw new Error('no such packet')
    })
    if (packet.qos === 2 || packet.cmd === 'pubrel') await this.flush()
  }

  /**
   * The subscriber acknowledged the message (PUBACK, PUBCOMP). Staged: if a crash loses the
   * delete, the message or its PUBREL is sent again, which both QoS allow. A row still
   * pending is dropped: neither INSERT nor DELETE. (Its message's waiter still hears at the
   * end of the batch: PUBACKs released one by one as subscribers acknowledge would leave
   * as a trickle of small TCP segments, which Nagle's algorithm holds back, measured
   * 5-6k msg/s instead of 25k with one publisher.)
   */
  async outgoingClearMessageId (client: ClientRef, packet: StoredPacket): Promise<StoredPacket | undefined> {
    const messageId = packet?.messageId
    const ids = typeof messageId === 'number' ? this.#inflight.get(client.id) : undefined
    const rowId = ids?.get(messageId!)
    const pending = rowId !== undefined ? this.#pendingRows.get(rowId) : undefined
    if (pending) {
      this.#live()
      ids!.delete(messageId!)
      if (ids!.size === 0) this.#inflight.delete(client.id)
      this.#unstage(rowId!, pending)
      this.counts.rowsElided++
      const taken: StoredPacket = { ...pending.message.packet, messageId }
      return taken
    }
    return this.#write((sql) => {
      if (rowId !== undefined) {
        ids!.delete(messageId!)
        if (ids!.size === 0) this.#inflight.delete(client.id)
        const row = sql.outTakeRow.get(rowId)
        if (row) return outgoingPacket({ ...row, message_id: messageId! })
      }
      const row = sql.outTake.get(client.id, id(messageId))
      return row ? outgoingPacket(row) : undefined
    })
  }

  /**
   * The client's queue as it is now; messages queued later reach it live. QoS 1 messages
   * already sent keep their packet id (from memory), so a resend after a reconnect reuses it.
   */
  outgoingStream (client: ClientRef): Readable {
    this.#live()
    this.#materialize()
    const last = this.#sql.outLast.get(client.id)?.last ?? 0
    const sql = this.#sql
    const live = () => this.#live()
    // resent under the same ids, which outgoingUpdate then records again (no growth)
    const sent = new Map<number, number>()
    for (const [messageId, rowId] of this.#inflight.get(client.id) ?? []) sent.set(rowId, messageId)
    return Readable.from((function * () {
      let after = 0
      while (after < last) {
        live()
        const rows = sql.outPage.all(client.id, after, last, PAGE)
        for (const row of rows) yield outgoingPacket(row.message_id === null && sent.has(row.id) ? { ...row, message_id: sent.get(row.id)! } : row)
        if (rows.length < PAGE) return
        after = rows[rows.length - 1]!.id
      }
    })())
  }

  // ---- inbound QoS 2 ------------------------------------------------------------------

  /** staged: committed with the routing of the same PUBLISH, before its PUBREC */
  async incomingStorePacket (client: ClientRef, packet: StoredPacket): Promise<void> {
    const stored = new Packet(packet)
    stored.messageId = packet.messageId
    this.#write((sql) => sql.inPut.run(client.id, id(packet.messageId), ...pack(stored)))
  }

  async incomingGetPacket (client: ClientRef, packet: StoredPacket): Promise<StoredPacket> {
    this.#live()
    const row = this.#sql.inGet.get(client.id, id(packet.messageId))
    if (!row) throw new Error('no such packet')
    // aedes answers a DUP re-send it finds here with PUBREC at once: the row may belong to a
    // batch not yet committed and synced, and that PUBREC must not come before the first one's
    if (this.pending) await this.flush()
    return unpack(row)
  }

  /** durable: aedes sends the PUBCOMP next; a lost delete would swallow a reused message id */
  async incomingDelPacket (client: ClientRef, packet: StoredPacket): Promise<void> {
    const { changes } = this.#write((sql) => sql.inDel.run(client.id, id(packet.messageId)))
    await this.flush()
    if (changes === 0) throw new Error('no such packet')
  }

  /** durable */
  async cleanIncoming (client: ClientRef): Promise<void> {
    this.#write((sql) => sql.inDelClient.run(client.id))
    await this.flush()
  }

  // ---- wills ------------------------------------------------------------------------

  /** durable: part of CONNECT */
  async putWill (client: ClientRef, packet: StoredPacket): Promise<void> {
    packet.brokerId = this.#broker?.id
    packet.clientId = client.id
    this.#write((sql) => sql.willPut.run(client.id, packet.brokerId ?? null, encode(packet)))
    await this.flush()
  }

  async getWill (client: ClientRef): Promise<StoredPacket | undefined> {
    this.#live()
    const row = this.#sql.willGet.get(client.id)
    return row ? decode(row.packet) : undefined
  }

  /** durable: a DISCONNECT removes the will for good */
  async delWill (client: ClientRef): Promise<StoredPacket | undefined> {
    const will = this.#write((sql) => {
      const row = sql.willGet.get(client.id)
      if (!row) return undefined
      sql.willDel.run(client.id)
      return decode(row.packet)
    })
    await this.flush()
    return will
  }

  /** Wills of brokers not in `brokers` (all wills without it). */
  streamWill (brokers: Record<string, unknown> = {}): Readable {
    this.#live()
    const rows = this.#sql.willsAll.all().filter((row) => row.broker_id === null || !brokers[row.broker_id])
    return Readable.from(rows.map((row) => decode(row.packet)))
  }

  // ---- MQTT 5 session expiry and will delay (optional persistence methods tapmq's aedes patch calls) ----

  /**
   * staged: a session's Session Expiry Interval (seconds) and its deadline (ms epoch; null
   * while the client is connected, or for 0xFFFFFFFF, never). A null deadline also forgets
   * the due time of a delayed will (the client is back).
   */
  async setSessionExpiry (clientId: string, interval: number, expiresAt: number | null): Promise<void> {
    this.#write((sql) => sql.sessionPut.run(clientId, interval, expiresAt))
    this.#sessionRows.add(clientId)
  }

  /** staged: when a delayed will of this session is due (ms epoch) */
  async setWillDelay (clientId: string, willAt: number): Promise<void> {
    this.#write((sql) => sql.sessionWill.run(clientId, willAt))
    this.#sessionRows.add(clientId)
  }

  /** staged: the session ended (or never outlives its connection) */
  async delSessionExpiry (clientId: string): Promise<void> {
    if (!this.#sessionRows.delete(clientId)) return
    this.#write((sql) => sql.sessionDel.run(clientId))
  }

  /** every session with an expiry or a pending will, for aedes' restoreSessions() */
  async sessionExpiries (): Promise<Array<{ clientId: string, interval: number, expiresAt: number | null, willAt: number | null }>> {
    this.#live()
    return this.#sql.sessionsAll.all().map((row) => ({ clientId: row.client_id, interval: row.expiry_interval, expiresAt: row.expires_at, willAt: row.will_at }))
  }

  /** staged: drops a client's whole offline queue (an ended session) */
  async outgoingClear (client: ClientRef): Promise<void> {
    this.#materialize()
    this.#write((sql) => sql.outDelClient.run(client.id))
    this.#inflight.delete(client.id)
  }

  // ---- life cycle ---------------------------------------------------------------------

  /** What the file holds: retained messages, persistent sessions, queued messages, wills. */
  stats (): { retained: number, sessions: number, queued: number, wills: number } {
    this.#live()
    this.#materialize()
    return this.#sql.stats.get()!
  }

  /** Commits what is pending and closes the file (releasing its lock). Idempotent. */
  async destroy (): Promise<void> {
    if (this.#closed) return
    if (this.#closing) return this.#closing
    this.#closing = (async () => {
      // the running sync first: its batch's waiters hear from it; then the rest, synchronously
      await this.#syncing
      this.#commit()
      this.#closed = true
      if (this.#walFd !== undefined) closeSync(this.#walFd)
      this.#walFd = undefined
      this.#db?.close()
    })()
    return this.#closing
  }

  close (): Promise<void> {
    return this.destroy()
  }
}

function settle (track: Track, err?: Error): void {
  if (track.done) return
  track.done = true
  track.fn(err)
}

function outgoingPacket (row: PackedRow & { message_id: number | null }): StoredPacket {
  const packet = unpack(row)
  if (row.message_id !== null) packet.messageId = row.message_id
  return packet
}
