// Write coalescing (`write_coalescing = true`): per connection, everything written in one
// event-loop turn leaves in one socket write.
//
// Stock aedes delivers each QoS 0 message in its own setImmediate and writes it with
// mqtt-packet's writeToStream, whose cork/nextTick-uncork makes every message one writev
// syscall of five small buffers. Under load that syscall and its garbage are most of the
// broker's CPU (docs/benchmarks.md). Two changes, per client, applied where the listener
// hands the stream to aedes:
//
// 1. QoS 0 deliveries (client.deliver0) go into a per-client queue instead of a
//    setImmediate each. Once per turn the queue is encoded into one buffer and written
//    once; then the delivery callbacks complete. Same checks as aedes (no-local, dedupe,
//    authorizeForward) in the same place, same order, same per-subscriber FIFO.
// 2. Other writes (PUBACK, QoS 1/2 PUBLISH, SUBACK, CONNACK) coalesce too: what the first
//    callback of a turn writes goes out as in aedes (a lone CONNACK or PUBACK is not
//    delayed); a write from a later callback in the same turn corks the stream until the
//    turn ends.
//
// Safety: back-pressure is kept (a write that fills the socket buffer holds the batch's
// callbacks until 'drain', through aedes' waitForDrain and its drain_timeout, which is what
// throttles mqemitter and so the publishers); per-turn work is bounded (a queue flushes at
// most MAX_BATCH messages per turn, callbacks never recurse into a flush); nothing is
// dropped that aedes would have written (a corked stream is uncorked before it is destroyed).
import type { Aedes, Client } from 'aedes'
import type { Duplex } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import { type AedesDeliveryInternals, deliveryInternals, outgoingPublishWatcher, type OutgoingPublish } from './aedes-internals.ts'

type Callback = () => void

/** a message as aedes hands it to deliver0 (an aedes-packet Packet) */
interface RoutedPacket {
  cmd: string
  topic: string
  payload: Buffer | string
  qos: number
  retain: boolean
  dup?: boolean
  clientId?: string
  nl?: boolean
  brokerId?: string
  brokerCounter?: number
  properties?: object
}

/** most QoS 0 messages one connection writes in one turn; the rest wait for the next turn */
export const MAX_BATCH = 4096

const QUEUE = Symbol('tapmq.writeCoalescing')

/** a stream under coalescing: its queue, and aedes' own write and destroy */
type CoalescedStream = Duplex & { [QUEUE]: ClientQueue }

class ClientQueue {
  readonly client: Client
  readonly conn: Duplex
  readonly coalescer: WriteCoalescer
  /** the stream's own write and destroy, called by the shared wrappers below */
  readonly write: Duplex['write']
  readonly destroy: Duplex['destroy']
  /**
   * queued deliveries, a packet then its callback, allocated on demand (an idle connection
   * holds none); a packet is undefined when it is not forwarded (no-local, duplicate,
   * refused) but its callback still runs
   */
  pending: Array<RoutedPacket | Callback | undefined> | undefined
  queued = false
  /** writes this turn: 0, 1 (written by one callback, gone out as usual), 2 (corked) */
  turnWrites = 0
  /** the callback (see currentEpoch) of the first write this turn */
  epoch = 0
  /** the QoS 0 delivery function aedes calls; subscriptions keep a reference to it */
  readonly deliver0: (packet: RoutedPacket, cb: Callback) => void

  constructor (client: Client, coalescer: WriteCoalescer) {
    this.client = client
    this.conn = client.conn as unknown as Duplex
    this.coalescer = coalescer
    this.write = this.conn.write
    this.destroy = this.conn.destroy
    // bound rather than a closure: no context object per connection
    this.deliver0 = this.enqueue.bind(this)
  }

  /** aedes' deliverQoS0 checks (no-local, dedupe, authorizeForward), then a place in the queue */
  enqueue (packet: RoutedPacket, cb: Callback): void {
    const client = this.client
    let forward: RoutedPacket | undefined
    if (!(packet.clientId === client.id && packet.nl) && dedupe(client, packet)) {
      forward = (this.coalescer.broker.authorizeForward(client, packet as never) as unknown as RoutedPacket | null | undefined) ?? undefined
      // MQTT 5: every matching Subscription Identifier on the one copy (aedes' client.js)
      if (forward !== undefined && (client as { _siFilters?: unknown })._siFilters !== undefined) deliveryInternals(client).allSubscriptionIdentifiers(forward)
    }
    const pending = this.pending ??= []
    pending.push(forward, cb)
    if (!this.queued) {
      this.queued = true
      this.coalescer.schedule(this)
    }
  }

  /** Writes up to MAX_BATCH queued messages as one buffer, then completes their callbacks. */
  flush (): void {
    this.queued = false
    let pending = this.pending ?? []
    if (pending.length > 2 * MAX_BATCH) {
      this.pending = pending.slice(2 * MAX_BATCH)
      pending = pending.slice(0, 2 * MAX_BATCH)
      this.queued = true
      this.coalescer.schedule(this)
    } else {
      this.pending = undefined
    }
    const client = deliveryInternals(this.client)
    let error: Error | undefined
    let waitForDrain = false
    if (client.connecting || client.connected) {
      let buffer: Buffer | undefined
      try {
        buffer = encodeQos0(pending, client.version, outgoingPublishWatcher(this.conn), client)
      } catch {
        error = new Error('packet received not valid')
      }
      if (buffer !== undefined) waitForDrain = !this.conn.write(buffer) && !client.errored
    } else {
      for (let i = 0; i < pending.length; i += 2) if (pending[i] !== undefined) error = new Error('connection closed')
    }
    // as aedes: a failed write closes the client, and the callbacks still run
    if (error) client._onError(error)
    if (waitForDrain) {
      client.waitForDrain(() => complete(pending))
    } else {
      complete(pending)
    }
  }

  /**
   * every write: the writes of the first callback (macrotask) that writes in a turn go out
   * as usual (mqtt-packet's own cork/nextTick-uncork joins a packet's parts); a later
   * callback's write corks the stream until the turn ends
   */
  noteWrite (): void {
    const epoch = currentEpoch()
    if (this.turnWrites === 0) {
      this.turnWrites = 1
      this.epoch = epoch
      this.coalescer.scheduleTurnEnd(this)
    } else if (this.turnWrites === 1 && epoch !== this.epoch) {
      const conn = this.conn
      if (conn.destroyed || conn.writableEnded) return
      this.turnWrites = 2
      conn.cork()
    }
  }

  endTurn (): void {
    const corked = this.turnWrites === 2
    this.turnWrites = 0
    if (corked) this.conn.uncork()
  }
}

let epoch = 0
let epochEnding = false
const nextEpoch = () => {
  epochEnding = false
  epoch++
}

/** A number that changes after every callback (macrotask) that asks for it: its nextTick queue ends it. */
function currentEpoch (): number {
  if (!epochEnding) {
    epochEnding = true
    process.nextTick(nextEpoch)
  }
  return epoch
}

/** the stream's write, for every writer (aedes, mqtt-packet, the flush above) */
function coalescedWrite (this: CoalescedStream, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  const queue = this[QUEUE]
  queue.noteWrite()
  return (queue.write as (this: Duplex, ...args: unknown[]) => boolean).call(this, chunk, encoding, cb)
}

/** the stream's destroy: what was written before it still goes out, as without corking */
function coalescedDestroy (this: CoalescedStream, err?: Error): CoalescedStream {
  const queue = this[QUEUE]
  queue.endTurn()
  queue.destroy.call(this, err)
  return this
}

function complete (pending: ReadonlyArray<RoutedPacket | Callback | undefined>): void {
  for (let i = 1; i < pending.length; i += 2) (pending[i] as Callback)()
}

/**
 * aedes' dedupe (patched, lib/client.js): a message that reached this client through two
 * routes goes out once. The routes' calls are consecutive, so only the last counter seen is a
 * duplicate; an older counter is a message that was overtaken, not a copy.
 */
function dedupe (client: Client, packet: RoutedPacket): boolean {
  const id = packet.brokerId
  if (!id) return true
  const duplicates = deliveryInternals(client).duplicates
  const counter = packet.brokerCounter ?? 0
  if (duplicates[id] !== counter) {
    duplicates[id] = counter
    return true
  }
  return false
}

/**
 * Encodes QoS 0 PUBLISH packets (MQTT 3.1 / 3.1.1) into one buffer: fixed header, remaining
 * length, topic, payload. DUP is always 0 at QoS 0 [MQTT-3.3.1-2]. Packets with MQTT 5
 * properties go through mqtt-packet.
 */
function encodeQos0 (pending: ReadonlyArray<RoutedPacket | Callback | undefined>, version: number, watch: ((packet: OutgoingPublish) => void) | undefined, client: AedesDeliveryInternals): Buffer | undefined {
  let size = 0
  const chunks: Array<Buffer | undefined> = []
  const topicLengths: number[] = []
  for (let i = 0; i < pending.length; i += 2) {
    const packet = pending[i] as RoutedPacket | undefined
    if (packet === undefined) { topicLengths[i] = 0; continue }
    if (typeof packet.topic !== 'string' || packet.topic.length === 0) throw new Error('invalid topic')
    if (typeof packet.payload === 'string') packet.payload = Buffer.from(packet.payload)
    // MQTT 5: as aedes' write() would send it: with an outbound topic alias, or not at all
    // when larger than the client's Maximum Packet Size (as if delivered, [MQTT-3.1.2-25])
    const out = version === 5 ? client.prepareOutboundPublish(packet) : packet
    if (out === null) {
      chunks[i] = DISCARDED
      topicLengths[i] = 0
      continue
    }
    watch?.({ cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: 0, retain: packet.retain, dup: false, clientId: packet.clientId } as OutgoingPublish)
    if (version === 5 || packet.properties !== undefined) {
      const encoded = mqttPacket.generate({ cmd: 'publish', topic: out.topic, payload: packet.payload, qos: 0, retain: packet.retain, dup: false, properties: out.properties } as never, { protocolVersion: version as 3 | 4 | 5 })
      chunks[i] = encoded
      topicLengths[i] = 0
      size += encoded.length
      continue
    }
    const topicLength = Buffer.byteLength(packet.topic)
    if (topicLength > 65535) throw new Error('topic too long')
    topicLengths[i] = topicLength
    const remaining = 2 + topicLength + packet.payload.length
    size += 1 + varIntSize(remaining) + remaining
  }
  if (size === 0) return undefined
  const out = Buffer.allocUnsafe(size)
  let pos = 0
  for (let i = 0; i < pending.length; i += 2) {
    const packet = pending[i] as RoutedPacket | undefined
    if (packet === undefined) continue
    const pre = chunks[i]
    if (pre !== undefined) {
      pos += pre.copy(out, pos)
      continue
    }
    const payload = packet.payload as Buffer
    const topicLength = topicLengths[i]
    out[pos++] = packet.retain ? 0x31 : 0x30
    let remaining = 2 + topicLength + payload.length
    do {
      let byte = remaining % 128
      remaining = Math.floor(remaining / 128)
      if (remaining > 0) byte |= 0x80
      out[pos++] = byte
    } while (remaining > 0)
    out[pos++] = topicLength >> 8
    out[pos++] = topicLength & 0xff
    pos += out.write(packet.topic, pos, topicLength, 'utf8')
    pos += payload.copy(out, pos)
  }
  return out
}

/** the encoding of a message that is not sent */
const DISCARDED = Buffer.alloc(0)

function varIntSize (n: number): number {
  if (n < 128) return 1
  if (n < 16_384) return 2
  if (n < 2_097_152) return 3
  if (n < 268_435_456) return 4
  throw new Error('packet too large')
}

/** One per broker: the turn-end flush for every connection with queued deliveries or writes. */
export class WriteCoalescer {
  readonly broker: Aedes
  #flushing: ClientQueue[] = []
  #ending: ClientQueue[] = []
  #scheduled = false

  constructor (broker: Aedes) {
    this.broker = broker
  }

  /** Takes over the client's QoS 0 deliveries and coalesces its writes. Call right after broker.handle(). */
  attach (client: Client): void {
    const queue = new ClientQueue(client, this)
    deliveryInternals(client).deliver0 = queue.deliver0 as never
    // own properties in front of the prototype's write and destroy, for this stream only
    const conn = queue.conn as CoalescedStream
    conn[QUEUE] = queue
    ;(conn as Duplex).write = coalescedWrite as Duplex['write']
    ;(conn as Duplex).destroy = coalescedDestroy as Duplex['destroy']
  }

  schedule (queue: ClientQueue): void {
    this.#flushing.push(queue)
    this.#arm()
  }

  scheduleTurnEnd (queue: ClientQueue): void {
    this.#ending.push(queue)
    this.#arm()
  }

  #arm (): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(this.#turn)
  }

  /**
   * The end of a turn: flush the delivery queues, then end the turn of every stream written
   * to (uncorking those corked). Deliveries queued while this runs (a callback frees
   * mqemitter, which routes the next message) wait for the next turn.
   */
  #turn = (): void => {
    const flushing = this.#flushing
    this.#flushing = []
    let i = 0
    try {
      for (; i < flushing.length; i++) flushing[i].flush()
    } finally {
      // a throwing callback must not strand the other connections' messages
      for (let k = i + 1; k < flushing.length; k++) this.#flushing.push(flushing[k])
      const ending = this.#ending
      this.#ending = []
      for (let k = 0; k < ending.length; k++) ending[k].endTurn()
      this.#scheduled = false
      if (this.#flushing.length > 0 || this.#ending.length > 0) this.#arm()
    }
  }
}
