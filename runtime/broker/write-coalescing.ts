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
// 2. Every other write (CONNACK, SUBACK, PUBACK, QoS 1/2 PUBLISH) is corked on the first
//    write of a turn and uncorked once per turn, so that they coalesce too.
//
// Safety: back-pressure is kept (a write that fills the socket buffer holds the batch's
// callbacks until 'drain', through aedes' waitForDrain and its drain_timeout, which is what
// throttles mqemitter and so the publishers); per-turn work is bounded (a queue flushes at
// most MAX_BATCH messages per turn, callbacks never recurse into a flush); nothing is
// dropped that aedes would have written (a corked stream is uncorked before it is destroyed).
import type { Aedes, Client } from 'aedes'
import type { Duplex } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import { deliveryInternals, outgoingPublishWatcher, type OutgoingPublish } from './aedes-internals.ts'

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

class ClientQueue {
  readonly client: Client
  readonly conn: Duplex
  readonly coalescer: WriteCoalescer
  /** undefined: the message is not forwarded (no-local, duplicate, refused), its callback still runs */
  packets: Array<RoutedPacket | undefined> = []
  callbacks: Callback[] = []
  queued = false
  corked = false

  constructor (client: Client, coalescer: WriteCoalescer) {
    this.client = client
    this.conn = client.conn as unknown as Duplex
    this.coalescer = coalescer
  }

  /** replaces aedes' deliverQoS0: the same checks, then a place in the queue */
  deliver0 = (packet: RoutedPacket, cb: Callback): void => {
    const client = this.client
    let forward: RoutedPacket | undefined
    // MQTT 5 no-local, as aedes: not to the publisher itself
    if (!(packet.clientId === client.id && packet.nl)) {
      forward = dedupe(client, packet) ? (this.coalescer.broker.authorizeForward(client, packet as never) as unknown as RoutedPacket | undefined | null) ?? undefined : undefined
    }
    this.packets.push(forward)
    this.callbacks.push(cb)
    if (!this.queued) {
      this.queued = true
      this.coalescer.schedule(this)
    }
  }

  /** Writes up to MAX_BATCH queued messages as one buffer, then completes their callbacks. */
  flush (): void {
    this.queued = false
    let packets = this.packets
    let callbacks = this.callbacks
    if (packets.length > MAX_BATCH) {
      this.packets = packets.slice(MAX_BATCH)
      this.callbacks = callbacks.slice(MAX_BATCH)
      packets = packets.slice(0, MAX_BATCH)
      callbacks = callbacks.slice(0, MAX_BATCH)
      this.queued = true
      this.coalescer.schedule(this)
    } else {
      this.packets = []
      this.callbacks = []
    }
    const client = deliveryInternals(this.client)
    let error: Error | undefined
    let waitForDrain = false
    if (client.connecting || client.connected) {
      let buffer: Buffer | undefined
      try {
        buffer = encodeQos0(packets, client.version, outgoingPublishWatcher(this.conn))
      } catch {
        error = new Error('packet received not valid')
      }
      if (buffer !== undefined && buffer.length > 0) waitForDrain = !this.conn.write(buffer) && !client.errored
    } else if (packets.some((p) => p !== undefined)) {
      error = new Error('connection closed')
    }
    // as aedes: a failed write closes the client, and the callbacks still run
    if (error) client._onError(error)
    if (waitForDrain) {
      client.waitForDrain(() => complete(callbacks))
    } else {
      complete(callbacks)
    }
  }

  /** the first write of a turn corks the stream; the coalescer uncorks it at the end of the turn */
  corkTurn (): void {
    if (this.corked) return
    const conn = this.conn
    if (conn.destroyed || conn.writableEnded) return
    this.corked = true
    conn.cork()
    this.coalescer.scheduleUncork(this)
  }

  uncork (): void {
    if (!this.corked) return
    this.corked = false
    this.conn.uncork()
  }
}

function complete (callbacks: Callback[]): void {
  for (let i = 0; i < callbacks.length; i++) callbacks[i]()
}

/** aedes' dedupe: a message that reached this client through two routes goes out once */
function dedupe (client: Client, packet: RoutedPacket): boolean {
  const id = packet.brokerId
  if (!id) return true
  const duplicates = deliveryInternals(client).duplicates
  const counter = packet.brokerCounter ?? 0
  if ((duplicates[id] ?? 0) < counter) {
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
function encodeQos0 (packets: ReadonlyArray<RoutedPacket | undefined>, version: number, watch?: (packet: OutgoingPublish) => void): Buffer | undefined {
  let size = 0
  const chunks: Array<Buffer | undefined> = []
  const topicLengths: number[] = []
  for (let i = 0; i < packets.length; i++) {
    const packet = packets[i]
    if (packet === undefined) { topicLengths.push(0); continue }
    if (typeof packet.topic !== 'string' || packet.topic.length === 0) throw new Error('invalid topic')
    if (typeof packet.payload === 'string') packet.payload = Buffer.from(packet.payload)
    watch?.({ cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: 0, retain: packet.retain, dup: false, clientId: packet.clientId } as OutgoingPublish)
    if (version === 5 || packet.properties !== undefined) {
      const encoded = mqttPacket.generate({ cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: 0, retain: packet.retain, dup: false, properties: packet.properties } as never, { protocolVersion: version as 3 | 4 | 5 })
      chunks[i] = encoded
      topicLengths.push(0)
      size += encoded.length
      continue
    }
    const topicLength = Buffer.byteLength(packet.topic)
    if (topicLength > 65535) throw new Error('topic too long')
    topicLengths.push(topicLength)
    const remaining = 2 + topicLength + packet.payload.length
    size += 1 + varIntSize(remaining) + remaining
  }
  if (size === 0) return undefined
  const out = Buffer.allocUnsafe(size)
  let pos = 0
  for (let i = 0; i < packets.length; i++) {
    const packet = packets[i]
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

function varIntSize (n: number): number {
  if (n < 128) return 1
  if (n < 16_384) return 2
  if (n < 2_097_152) return 3
  if (n < 268_435_456) return 4
  throw new Error('packet too large')
}

/** One per broker: the turn-end flush for every connection with queued or corked writes. */
export class WriteCoalescer {
  readonly broker: Aedes
  #flushing: ClientQueue[] = []
  #uncorking: ClientQueue[] = []
  #scheduled = false

  constructor (broker: Aedes) {
    this.broker = broker
  }

  /** Takes over the client's QoS 0 deliveries and corks its writes per turn. Call right after broker.handle(). */
  attach (client: Client): void {
    const queue = new ClientQueue(client, this)
    const internal = deliveryInternals(client)
    internal.deliver0 = queue.deliver0 as never
    const conn = queue.conn
    const write = conn.write
    const destroy = conn.destroy
    // an own property in front of the prototype's write and destroy, for this stream only
    conn.write = function (this: Duplex, ...args: Parameters<Duplex['write']>) {
      queue.corkTurn()
      return write.apply(this, args)
    } as Duplex['write']
    conn.destroy = function (this: Duplex, err?: Error) {
      // what was written before the destroy still goes out, as without corking
      queue.uncork()
      return destroy.call(this, err)
    }
  }

  schedule (queue: ClientQueue): void {
    this.#flushing.push(queue)
    this.#arm()
  }

  scheduleUncork (queue: ClientQueue): void {
    this.#uncorking.push(queue)
    this.#arm()
  }

  #arm (): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(this.#turn)
  }

  /**
   * The end of a turn: flush the delivery queues (their writes cork), then uncork every
   * stream corked this turn. Deliveries queued while this runs (a callback frees mqemitter,
   * which routes the next message) wait for the next turn.
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
      const uncorking = this.#uncorking
      this.#uncorking = []
      for (let k = 0; k < uncorking.length; k++) uncorking[k].uncork()
      this.#scheduled = false
      if (this.#flushing.length > 0 || this.#uncorking.length > 0) this.#arm()
    }
  }
}
