// A deliberately small MQTT 3.1.1 client for load generation: raw TCP sockets, packets built
// with mqtt-packet's generate() once and patched in place, and a frame splitter that reads
// PUBLISH/PUBACK without allocating per message. mqtt.js does far more per message than a
// broker does, so it cannot saturate one.
import { connect as netConnect, type Socket } from 'node:net'
import mqtt from 'mqtt-packet'

export interface Address {
  readonly host: string
  readonly port: number
}

/** Called for every PUBLISH the client receives; `buf[start..end)` is the payload. */
export type OnPublish = (buf: Buffer, start: number, end: number, qos: number, messageId: number, dup: boolean) => void

export interface WireClientOptions {
  readonly clientId: string
  readonly keepalive?: number
  readonly clean?: boolean
  readonly username?: string
  readonly password?: string
  readonly onPublish?: OnPublish
  /** after every chunk read from the socket (after its PUBLISHes were reported) */
  readonly afterChunk?: () => void
  /** PUBACK received for one of our QoS 1 publishes */
  readonly onPuback?: (messageId: number) => void
  /** called when the socket closes (unexpectedly or not) */
  readonly onClose?: (err?: Error) => void
}

const PINGREQ = mqtt.generate({ cmd: 'pingreq' })
const DISCONNECT = mqtt.generate({ cmd: 'disconnect' })

export class WireClient {
  readonly socket: Socket
  readonly options: WireClientOptions
  /** QoS 1 PUBLISHes we received and acknowledged */
  received1 = 0
  #rest: Buffer | undefined
  #waiters: Array<{ type: number, resolve: (body: Buffer) => void, reject: (err: Error) => void }> = []
  #closed = false
  #pubacks: number[] = []

  private constructor (socket: Socket, options: WireClientOptions) {
    this.socket = socket
    this.options = options
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('error', (err) => this.#close(err))
    socket.on('close', () => this.#close())
  }

  /**
   * Opens the TCP connection and sends CONNECT; resolves with the client and the time from
   * the connect call to the CONNACK, in ms. Rejects on a refused CONNACK or a closed socket.
   */
  static connect (address: Address, options: WireClientOptions): Promise<{ client: WireClient, connackMs: number }> {
    const started = performance.now()
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: address.host, port: address.port })
      const client = new WireClient(socket, options)
      socket.once('connect', () => {
        socket.write(mqtt.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: options.clientId,
          clean: options.clean ?? true,
          keepalive: options.keepalive ?? 0,
          ...(options.username !== undefined ? { username: options.username } : {}),
          ...(options.password !== undefined ? { password: Buffer.from(options.password) } : {})
        }))
      })
      client.#expect(0x20).then((body) => {
        if (body[1] !== 0) {
          socket.destroy()
          reject(new Error(`CONNACK return code ${body[1]} for ${options.clientId}`))
          return
        }
        resolve({ client, connackMs: performance.now() - started })
      }, reject)
    })
  }

  get closed (): boolean {
    return this.#closed
  }

  /** SUBSCRIBE and wait for the SUBACK; rejects when the broker refuses (0x80) */
  async subscribe (topic: string, qos: 0 | 1): Promise<void> {
    const suback = this.#expect(0x90)
    this.socket.write(mqtt.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] }))
    const body = await suback
    if (body[2] === 0x80) throw new Error(`SUBSCRIBE ${topic} refused`)
  }

  ping (): Promise<void> {
    const pong = this.#expect(0xd0)
    this.socket.write(PINGREQ)
    return pong.then(() => undefined)
  }

  /** DISCONNECT, then close; resolves when the socket is closed */
  disconnect (): Promise<void> {
    if (this.#closed) return Promise.resolve()
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve())
      this.socket.end(DISCONNECT)
      setTimeout(() => this.socket.destroy(), 2000).unref()
    })
  }

  destroy (): void {
    this.socket.destroy()
  }

  #close (err?: Error): void {
    if (this.#closed) return
    this.#closed = true
    const error = err ?? new Error(`connection of ${this.options.clientId} closed`)
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error)
    this.options.onClose?.(err)
  }

  #expect (type: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.#closed) reject(new Error(`connection of ${this.options.clientId} closed`))
      else this.#waiters.push({ type, resolve, reject })
    })
  }

  #onData (chunk: Buffer): void {
    let buf = chunk
    if (this.#rest !== undefined) {
      buf = Buffer.concat([this.#rest, chunk])
      this.#rest = undefined
    }
    let pos = 0
    const len = buf.length
    while (pos < len) {
      // fixed header: type byte, then the remaining length (1 to 4 bytes, 7 bits each)
      if (pos + 2 > len) break
      let remaining = 0
      let multiplier = 1
      let i = pos + 1
      let complete = false
      while (i < len && i < pos + 5) {
        const byte = buf[i++]
        remaining += (byte & 0x7f) * multiplier
        multiplier *= 128
        if ((byte & 0x80) === 0) { complete = true; break }
      }
      if (!complete || i + remaining > len) break
      this.#onPacket(buf, pos, i, i + remaining)
      pos = i + remaining
    }
    if (pos < len) this.#rest = buf.subarray(pos)
    if (this.#pubacks.length > 0) this.#flushPubacks()
    this.options.afterChunk?.()
  }

  #onPacket (buf: Buffer, start: number, bodyStart: number, end: number): void {
    const first = buf[start]
    const type = first >> 4
    if (type === 3) {
      const qos = (first >> 1) & 3
      const topicLength = buf.readUInt16BE(bodyStart)
      let payloadStart = bodyStart + 2 + topicLength
      let messageId = 0
      if (qos > 0) {
        messageId = buf.readUInt16BE(payloadStart)
        payloadStart += 2
        this.#pubacks.push(messageId)
        this.received1++
      }
      this.options.onPublish?.(buf, payloadStart, end, qos, messageId, (first & 0x08) !== 0)
      return
    }
    if (type === 4) {
      this.options.onPuback?.(buf.readUInt16BE(bodyStart))
      return
    }
    const index = this.#waiters.findIndex((waiter) => waiter.type === (first & 0xf0))
    if (index >= 0) {
      const [waiter] = this.#waiters.splice(index, 1)
      waiter.resolve(Buffer.from(buf.subarray(bodyStart, end)))
    }
  }

  /** one write with every PUBACK owed for the chunk just read */
  #flushPubacks (): void {
    const ids = this.#pubacks
    this.#pubacks = []
    const out = Buffer.allocUnsafe(ids.length * 4)
    for (let k = 0; k < ids.length; k++) {
      out[k * 4] = 0x40
      out[k * 4 + 1] = 2
      out.writeUInt16BE(ids[k], k * 4 + 2)
    }
    this.socket.write(out)
  }
}

/**
 * Builds PUBLISH packets for one topic and payload size. Payload layout (little endian):
 * [0..4) source index, [4..8) sequence number, [8..16) send time in ms (performance.now()),
 * the rest `text` (UTF-8, cut to fit) or zeros. Sequence numbers let a subscriber check order and count losses.
 */
export class PublishEncoder {
  readonly template: Buffer
  readonly payloadOffset: number
  readonly qos: 0 | 1
  #nextId = 0

  constructor (topic: string, payloadSize: number, qos: 0 | 1, text?: string) {
    if (payloadSize < 16) throw new Error('payload must be at least 16 bytes')
    this.qos = qos
    const payload = Buffer.alloc(payloadSize)
    if (text !== undefined) payload.write(text, 16)
    this.template = mqtt.generate({
      cmd: 'publish', topic, payload, qos, retain: false, dup: false, ...(qos > 0 ? { messageId: 1 } : {})
    })
    this.payloadOffset = this.template.length - payloadSize
  }

  /**
   * Encodes `count` consecutive messages into one buffer; returns it and fills `ids` with the
   * message ids used (QoS 1). `stamp` is the send time written into each payload.
   */
  encode (source: number, firstSeq: number, count: number, stamp: number, ids?: number[]): Buffer {
    const size = this.template.length
    const out = Buffer.allocUnsafe(size * count)
    for (let k = 0; k < count; k++) {
      const base = k * size
      this.template.copy(out, base)
      const p = base + this.payloadOffset
      out.writeUInt32LE(source, p)
      out.writeUInt32LE((firstSeq + k) >>> 0, p + 4)
      out.writeDoubleLE(stamp, p + 8)
      if (this.qos > 0) {
        this.#nextId = this.#nextId === 65535 ? 1 : this.#nextId + 1
        out.writeUInt16BE(this.#nextId, p - 2)
        ids?.push(this.#nextId)
      }
    }
    return out
  }
}

export function readSource (buf: Buffer, start: number): number {
  return buf.readUInt32LE(start)
}

export function readSeq (buf: Buffer, start: number): number {
  return buf.readUInt32LE(start + 4)
}

export function readStamp (buf: Buffer, start: number): number {
  return buf.readDoubleLE(start + 8)
}
