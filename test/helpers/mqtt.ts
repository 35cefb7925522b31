// Small, bounded test helpers for MQTT: waits that never hang, mqtt.js clients that are
// closed at teardown, a raw mqtt-packet client for what mqtt.js will not do (silence
// after CONNECT, garbage bytes, a socket that never reads), and temp directories.
//
//   const client = await connectClient(t, broker.url, { clientId: 'a' })
//   const [topic, payload] = await once(client, 'message')
//   const raw = await RawClient.connect(t, broker.port, { clientId: 'raw', keepalive: 1 })
import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet'

/** What the helpers need of an ava ExecutionContext. */
export interface Teardown {
  teardown (fn: () => unknown): void
}

/** Every wait in the suite is bounded by this unless a test asks for less. */
export const WAIT_MS = 5000

/** Anything with `once` and `off`: node EventEmitters, mqtt.js clients, sockets. */
export interface Emitter {
  once (event: string, listener: (...args: any[]) => void): unknown
  off (event: string, listener: (...args: any[]) => void): unknown
}

/** Resolves with the arguments of the next `event`; rejects after `timeoutMs` naming the event. */
export function once<T extends unknown[] = unknown[]> (emitter: Emitter, event: string, timeoutMs = WAIT_MS): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener)
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (...args: unknown[]) => {
      clearTimeout(timer)
      resolve(args as T)
    }
    emitter.once(event, listener)
  })
}

/** Rejects with `what` if `promise` has not settled after `timeoutMs`. */
export function within<T> (promise: Promise<T>, what: string, timeoutMs = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expiry = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${timeoutMs} ms`)), timeoutMs)
  })
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer))
}

/**
 * Polls `check` every 10 ms until it returns a truthy value, which it resolves with; for
 * state that has no event (a log line, a metric). Bounded like every other wait.
 */
export async function until<T> (check: () => T | undefined | null | false, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`${what}: not true within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Lets pending I/O callbacks run, for "nothing else happened" checks after a known round trip. */
export function settle (ms = 50): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * A list of events with bounded waits for the next ones: push from a hook tap, await in the
 * test. `events.list` keeps everything that arrived.
 */
export class Recorder<T> {
  readonly list: T[] = []
  /**
   * Bound; pass it straight to `hook.tap(name, recorder.push)`. Returns `undefined`, so a
   * decision hook (`auth`) treats it as "no opinion".
   */
  readonly push = (item: T): undefined => {
    this.list.push(item)
    return undefined
  }

  /** Resolves once `count` items (in total) arrived, with the list. */
  async count (count: number, timeoutMs = WAIT_MS): Promise<T[]> {
    await until(() => this.list.length >= count, `${count} events (have ${this.list.length})`, timeoutMs)
    return this.list
  }

  /** Resolves with the first item (already there or still to come) that matches. */
  async find (match: (item: T) => boolean, timeoutMs = WAIT_MS): Promise<T> {
    return until(() => this.list.find(match), 'a matching event', timeoutMs)
  }
}

/** mqtt.js 5 client on MQTT 3.1.1, no reconnects; ended (forcibly) at teardown. */
export async function connectClient (t: Teardown, url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options })
  t.teardown(() => client.endAsync(true).catch(() => {}))
  await within(new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error('connection closed before CONNACK')))
  }), `connect to ${url}`)
  return client
}

/**
 * Connects with the message handler attached before CONNACK, so that a queue the broker
 * flushes right after it is seen; the caller awaits `connack` (its session-present flag).
 * No reconnects; ended at teardown.
 */
export function connectBeforeConnack (t: Teardown, url: string, options: IClientOptions,
  onMessage?: (topic: string, payload: Buffer) => void, timeoutMs = WAIT_MS): { client: MqttClient, connack: Promise<{ sessionPresent: boolean }> } {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: timeoutMs, ...options })
  t.teardown(() => { client.end(true) })
  if (onMessage) client.on('message', (topic, payload) => onMessage(topic, payload))
  const connack = once<[{ sessionPresent: boolean }]>(client, 'connect', timeoutMs).then(([packet]) => packet)
  return { client, connack }
}

/**
 * Connects a client that the broker is expected to refuse; resolves with the error mqtt.js
 * reports (its `code` is the CONNACK return code), or the close if none came.
 */
export async function connectRefused (t: Teardown, url: string, options: IClientOptions = {}): Promise<Error & { code?: number }> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options })
  t.teardown(() => client.endAsync(true).catch(() => {}))
  return within(new Promise((resolve, reject) => {
    client.once('connect', () => reject(new Error(`${url} accepted a connection it should refuse`)))
    client.once('error', resolve)
    client.once('close', () => resolve(Object.assign(new Error('closed without CONNACK'), { code: undefined })))
  }), `refusal by ${url}`)
}

/**
 * SUBSCRIBEs and resolves with the SUBACK return codes in order, 128 (refused) included:
 * mqtt.js rejects a SUBACK with a refusal, keeping the packet on the error.
 */
export async function subackCodes (client: MqttClient, subscriptions: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  try {
    return (await client.subscribeAsync(subscriptions)).map((grant) => grant.qos)
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted
    if (granted) return granted
    throw err
  }
}

/** Resolves with [topic, payload] of the next message on `client`. */
export async function nextMessage (client: MqttClient, timeoutMs = WAIT_MS): Promise<[string, Buffer]> {
  const [topic, payload] = await once<[string, Buffer]>(client, 'message', timeoutMs)
  return [topic, payload]
}

/**
 * MQTT over a plain socket with mqtt-packet: send any packet or raw bytes, read the
 * packets the broker sends, see when it closes the socket.
 */
export class RawClient {
  readonly packets: Packet[] = []
  /** resolves when the broker (or anyone) closed the socket */
  readonly closed: Promise<void>
  readonly #events = new EventEmitter()

  private constructor (readonly socket: Socket, protocolVersion: number) {
    const parser = mqttPacket.parser({ protocolVersion })
    parser.on('packet', (packet: Packet) => {
      this.packets.push(packet)
      this.#events.emit('packet', packet)
    })
    parser.on('error', () => socket.destroy())
    socket.on('data', (chunk: Buffer) => parser.parse(chunk))
    socket.on('error', () => {})
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
  }

  /** Opens a socket to 127.0.0.1:`port`; destroyed at teardown. */
  static async open (t: Teardown, port: number, protocolVersion = 4): Promise<RawClient> {
    const socket = createConnection({ host: '127.0.0.1', port })
    t.teardown(() => socket.destroy())
    await once(socket, 'connect')
    return new RawClient(socket, protocolVersion)
  }

  /** Opens a socket, sends CONNECT and waits for the CONNACK (which it returns). */
  static async connect (t: Teardown, port: number, connect: Partial<IConnectPacket> & { clientId: string }): Promise<{ client: RawClient, connack: Packet }> {
    const client = await RawClient.open(t, port, connect.protocolVersion ?? 4)
    client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, ...connect })
    const connack = await client.next('connack')
    return { client, connack }
  }

  send (packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet))
  }

  write (bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** The first packet with `cmd` that arrived and was not taken yet, or the next one to come. */
  next (cmd: Packet['cmd'], timeoutMs = WAIT_MS): Promise<Packet> {
    const take = () => {
      const index = this.packets.findIndex((packet) => packet.cmd === cmd)
      return index === -1 ? undefined : this.packets.splice(index, 1)[0]
    }
    const ready = take()
    if (ready) return Promise.resolve(ready)
    return within(new Promise((resolve) => {
      const listener = () => {
        const packet = take()
        if (!packet) return
        this.#events.off('packet', listener)
        resolve(packet)
      }
      this.#events.on('packet', listener)
    }), `${cmd} from the broker`, timeoutMs)
  }

  /** Resolves when the socket closed; rejects if it is still open after `timeoutMs`. */
  waitClosed (timeoutMs = WAIT_MS): Promise<void> {
    return within(this.closed, 'socket close', timeoutMs)
  }
}

/** A fresh directory under the OS temp dir, removed at teardown. */
export async function tmpDir (t: Teardown, prefix = 'tapmq-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** MQTT's variable-length "remaining length" encoding of `n`, for packets written by hand. */
export function remainingLength (n: number): Buffer {
  const out: number[] = []
  do {
    let digit = n % 128
    n = Math.floor(n / 128)
    if (n > 0) digit |= 0x80
    out.push(digit)
  } while (n > 0)
  return Buffer.from(out)
}

/** `bytes` as an MQTT string field (two-byte length first), for packets written by hand. */
export function lengthPrefixed (bytes: Buffer): Buffer {
  const length = Buffer.alloc(2)
  length.writeUInt16BE(bytes.length)
  return Buffer.concat([length, bytes])
}
