// One bridge: an mqtt.js connection to the upstream broker, kept up with exponential
// backoff, that sends buffered local messages upstream (at most `parallel` QoS 1/2 in
// flight) and publishes the upstream's messages locally.
//
// Each connection attempt gets a fresh mqtt.js client and a generation number; when it
// closes, whatever was in flight goes back to the front of the buffer and is sent again on
// the next connection (at least once). Callbacks of an older generation are ignored, so a
// flapping upstream can neither lose nor double-count a message.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import mqtt, { type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt'
import { compileTopicFilter, type Counter, type Gauge, type Message, mqttClientOptions, type PluginHost, type QoS, type UserProperties } from '../../sdk/index.ts'
import type { Bridge } from './config.ts'
import type { BridgeQueue } from './queue.ts'

export type BridgeState = 'connected' | 'connecting' | 'down'
const STATE_VALUE: Record<BridgeState, number> = { down: 0, connecting: 1, connected: 2 }

/** How long an echo of a forwarded message is waited for, and how many are remembered. */
const ECHO_TTL_MS = 30_000
const ECHO_MAX = 10_000
/** How long close() waits for a polite DISCONNECT before it drops the socket. */
const CLOSE_GRACE_MS = 1000

export interface BridgeMetrics {
  readonly forwarded: Counter
  readonly received: Counter
  readonly droppedOverflow: Counter
  readonly droppedOffline: Counter
  readonly rejected: Counter
  readonly echoSuppressed: Counter
  readonly connects: Counter
  readonly connectionLosses: Counter
  readonly connectFailures: Counter
  readonly resent: Counter
  readonly receiveErrors: Counter
  readonly state: Gauge
  readonly queued: Gauge
  readonly inflight: Gauge
}

export function bridgeMetrics (host: PluginHost, name: string): BridgeMetrics {
  const m = host.metrics
  const p = `${name}_`
  const metrics: BridgeMetrics = {
    forwarded: m.counter(`${p}forwarded_total`, `Bridge ${name}: local messages published upstream (QoS 1/2 counted when acknowledged)`),
    received: m.counter(`${p}received_total`, `Bridge ${name}: upstream messages published locally`),
    droppedOverflow: m.counter(`${p}dropped_overflow_total`, `Bridge ${name}: QoS 1/2 messages dropped because the buffer was full`),
    droppedOffline: m.counter(`${p}dropped_offline_total`, `Bridge ${name}: QoS 0 messages dropped because the upstream was not connected`),
    rejected: m.counter(`${p}rejected_total`, `Bridge ${name}: messages the upstream refused with an MQTT 5 reason code`),
    echoSuppressed: m.counter(`${p}echo_suppressed_total`, `Bridge ${name}: upstream echoes of forwarded messages not published locally`),
    connects: m.counter(`${p}connects_total`, `Bridge ${name}: connections established (CONNACK accepted)`),
    connectionLosses: m.counter(`${p}disconnects_total`, `Bridge ${name}: established connections that closed`),
    connectFailures: m.counter(`${p}connect_failures_total`, `Bridge ${name}: connection attempts that failed before a CONNACK`),
    resent: m.counter(`${p}resent_total`, `Bridge ${name}: in-flight messages sent again after a connection loss`),
    receiveErrors: m.counter(`${p}receive_errors_total`, `Bridge ${name}: upstream messages the local broker failed to publish`),
    state: m.gauge(`${p}state`, `Bridge ${name}: 2 connected, 1 connecting, 0 down`),
    queued: m.gauge(`${p}queued`, `Bridge ${name}: QoS 1/2 messages buffered (waiting or in flight)`),
    inflight: m.gauge(`${p}inflight`, `Bridge ${name}: QoS 1/2 messages sent and not yet acknowledged`)
  }
  return metrics
}

export class BridgeConnection {
  #state: BridgeState = 'down'
  #client?: MqttClient
  #generation = 0
  #attempts = 0
  #timer?: NodeJS.Timeout
  #closing = false
  #pumpScheduled = false
  #lastError = ''
  /** QoS 0 messages waiting for the next pump (only while connected) */
  #qos0: Message[] = []
  readonly #forwards: Array<(topic: string) => boolean>
  readonly #subscribed: Array<(topic: string) => boolean>
  /** fingerprints of forwarded messages the upstream may echo back (MQTT 3.x only) */
  readonly #echoes = new Map<string, { count: number, expires: number }>()
  readonly #trackEchoes: boolean
  readonly #tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'> & { passphrase?: string }

  constructor (
    private readonly host: PluginHost,
    readonly config: Bridge,
    readonly clientId: string,
    readonly queue: BridgeQueue,
    private readonly metrics: BridgeMetrics
  ) {
    this.#forwards = config.forwards.map(compileTopicFilter)
    this.#subscribed = config.subscriptions.map(({ topic }) => compileTopicFilter(topic))
    this.#trackEchoes = config.suppressEcho && config.protoVer < 5 && this.#subscribed.length > 0
    const { ssl } = config
    this.#tls = {
      ca: ssl.cacertfile ? readFileSync(ssl.cacertfile) : undefined,
      cert: ssl.certfile ? readFileSync(ssl.certfile) : undefined,
      key: ssl.keyfile ? readFileSync(ssl.keyfile) : undefined,
      passphrase: ssl.keyPassword
    }
    this.#sync()
  }

  get name (): string {
    return this.config.name
  }

  get state (): BridgeState {
    return this.#state
  }

  get lastError (): string {
    return this.#lastError
  }

  start (): void {
    this.#connect()
  }

  /** Whether a local message goes upstream. */
  matches (topic: string): boolean {
    return this.#forwards.some((match) => match(topic))
  }

  /** From the `message.publish` tap: only buffers, the sending happens on the next tick. */
  forward (message: Message): void {
    if (message.qos === 0) {
      if (this.#state !== 'connected' || this.#qos0.length >= this.config.queue.maxMessages) {
        this.metrics.droppedOffline.inc()
        return
      }
      this.#qos0.push(message)
    } else {
      const userProperties = message.properties?.userProperties
      const dropped = this.queue.push(userProperties === undefined
        ? { topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain }
        : { topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain, userProperties })
      if (dropped > 0) this.metrics.droppedOverflow.inc(dropped)
      this.metrics.queued.set(this.queue.size)
    }
    this.#schedulePump()
  }

  async close (): Promise<void> {
    this.#closing = true
    clearTimeout(this.#timer)
    const client = this.#client
    this.#client = undefined
    this.#generation++
    this.queue.requeue()
    this.#setState('down')
    if (!client) return
    if (client.connected) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        client.endAsync(false).catch(() => {}),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_GRACE_MS) })
      ])
      clearTimeout(timer)
    }
    await client.endAsync(true).catch(() => {})
  }

  #connect (): void {
    if (this.#closing) return
    const generation = ++this.#generation
    const { config } = this
    const connect = mqttClientOptions(config, this.clientId)
    const tls = connect.protocol === 'mqtts'
    this.#setState('connecting')
    const client = mqtt.connect({
      ...connect,
      reconnectPeriod: 0,
      connectTimeout: config.connectTimeout,
      resubscribe: false,
      queueQoSZero: false,
      ...(tls
        ? { ...this.#tls, rejectUnauthorized: config.ssl.verifyPeer, servername: config.ssl.serverName ?? new URL(config.address).hostname }
        : {})
    })
    this.#client = client
    // the upstream's PUBACK waits until the message is published here
    client.handleMessage = (packet, done) => this.#fromUpstream(packet, done)
    client.on('connect', () => {
      if (generation !== this.#generation) return
      this.#connected(client)
    })
    client.on('error', (err) => {
      if (generation !== this.#generation) return
      this.#lastError = err.message
    })
    client.on('close', () => {
      if (generation !== this.#generation) return
      this.#closed(client)
    })
  }

  #connected (client: MqttClient): void {
    const { config } = this
    this.#attempts = 0
    this.#lastError = ''
    this.metrics.connects.inc()
    this.#setState('connected')
    this.host.log.info({ bridge: this.name, address: config.address, clientId: this.clientId }, 'bridge connected')
    if (config.subscriptions.length > 0) {
      const v5 = config.protoVer === 5
      const topics = Object.fromEntries(config.subscriptions.map(({ topic, qos }) =>
        [topic, v5 ? { qos, nl: true, rap: true } : { qos }]))
      client.subscribe(topics, (err, granted) => {
        if (err) {
          this.#lastError = `subscribe failed: ${err.message}`
          this.host.log.warn({ bridge: this.name, err: err.message }, 'bridge subscription failed')
          return
        }
        const refused = (granted ?? []).filter((grant) => grant.qos === 128).map((grant) => grant.topic)
        if (refused.length > 0) {
          this.#lastError = `upstream refused subscriptions: ${refused.join(', ')}`
          this.host.log.warn({ bridge: this.name, refused }, 'upstream refused bridge subscriptions')
        }
      })
    }
    this.#schedulePump()
  }

  #closed (client: MqttClient): void {
    const wasConnected = this.#state === 'connected'
    this.#generation++
    this.#client = undefined
    client.removeAllListeners('connect')
    client.removeAllListeners('close')
    client.endAsync(true).catch(() => {})
    // QoS 0 is at most once: what did not go out with this connection is gone
    if (this.#qos0.length > 0) {
      this.metrics.droppedOffline.inc(this.#qos0.length)
      this.#qos0 = []
    }
    const resent = this.queue.requeue()
    if (resent > 0) this.metrics.resent.inc(resent)
    if (wasConnected) {
      this.metrics.connectionLosses.inc()
      this.host.log.warn({ bridge: this.name, queued: this.queue.size, err: this.#lastError || undefined }, 'bridge connection lost')
    } else {
      this.metrics.connectFailures.inc()
      if (this.#attempts < 3 || this.#attempts % 20 === 0) {
        this.host.log.warn({ bridge: this.name, address: this.config.address, err: this.#lastError || 'closed', attempt: this.#attempts + 1 }, 'bridge connect failed')
      }
    }
    this.#setState('down')
    if (this.#closing) return
    const { minInterval, maxInterval } = this.config.reconnect
    const base = Math.min(maxInterval, minInterval * 2 ** Math.min(this.#attempts, 30))
    this.#attempts++
    // ±20% jitter, so that many edges do not reconnect in step
    const delay = Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)))
    this.#timer = setTimeout(() => this.#connect(), delay)
  }

  #schedulePump (): void {
    if (this.#pumpScheduled || this.#state !== 'connected') return
    this.#pumpScheduled = true
    setImmediate(() => {
      this.#pumpScheduled = false
      this.#pump()
    })
  }

  #pump (): void {
    const client = this.#client
    if (!client || this.#state !== 'connected') return
    const generation = this.#generation
    for (const message of this.#qos0) {
      this.#noteEcho(message.topic, message.payload)
      client.publish(message.topic, message.payload, this.#publishOptions(0, message.retain, message.properties?.userProperties))
      this.metrics.forwarded.inc()
    }
    this.#qos0 = []
    while (this.queue.inflightCount < this.config.parallel) {
      const message = this.queue.take()
      if (!message) break
      this.#noteEcho(message.topic, message.payload)
      client.publish(message.topic, message.payload, this.#publishOptions(message.qos, message.retain, message.userProperties), (err) => {
        // an older connection's callback: its messages were put back when it closed
        if (generation !== this.#generation) return
        if (err && typeof (err as { code?: unknown }).code !== 'number') return // the connection is closing
        if (this.queue.ack(message.id)) {
          if (err) {
            this.metrics.rejected.inc()
            this.host.log.warn({ bridge: this.name, topic: message.topic, err: err.message }, 'upstream refused a forwarded message')
          } else {
            this.metrics.forwarded.inc()
          }
        }
        this.#sync()
        this.#pump()
      })
    }
    this.#sync()
  }

  /** MQTT 5 bridges pass user properties on (§3.3.2.3.7); 3.1/3.1.1 cannot carry them. */
  #publishOptions (qos: QoS, retain: boolean, userProperties: UserProperties | undefined): IClientPublishOptions {
    return userProperties === undefined || this.config.protoVer !== 5
      ? { qos, retain }
      : { qos, retain, properties: { userProperties: userProperties as Record<string, string | string[]> } }
  }

  /** An upstream message, published locally before the upstream gets its acknowledgement. */
  #fromUpstream (packet: IPublishPacket, done: (error?: Error) => void): void {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload)
    const topic = packet.topic
    if (this.#trackEchoes && this.#consumeEcho(topic, payload)) {
      this.metrics.echoSuppressed.inc()
      done()
      return
    }
    const userProperties = packet.properties?.userProperties
    this.host.broker.publish(userProperties === undefined
      ? { topic, payload, qos: packet.qos as QoS, retain: packet.retain }
      : { topic, payload, qos: packet.qos as QoS, retain: packet.retain, properties: { userProperties } }).then(() => {
      this.metrics.received.inc()
      done()
    }, (err: Error) => {
      this.metrics.receiveErrors.inc()
      this.host.log.warn({ bridge: this.name, topic, err: err.message }, 'could not publish an upstream message locally')
      done()
    })
  }

  #noteEcho (topic: string, payload: Buffer): void {
    if (!this.#trackEchoes || !this.#subscribed.some((match) => match(topic))) return
    const key = fingerprint(topic, payload)
    const now = Date.now()
    const known = this.#echoes.get(key)
    if (known && known.expires > now) {
      known.count++
      known.expires = now + ECHO_TTL_MS
      return
    }
    this.#echoes.delete(key)
    if (this.#echoes.size >= ECHO_MAX) this.#echoes.delete(this.#echoes.keys().next().value!)
    this.#echoes.set(key, { count: 1, expires: now + ECHO_TTL_MS })
  }

  #consumeEcho (topic: string, payload: Buffer): boolean {
    const key = fingerprint(topic, payload)
    const known = this.#echoes.get(key)
    if (!known) return false
    if (known.expires < Date.now()) {
      this.#echoes.delete(key)
      return false
    }
    if (--known.count === 0) this.#echoes.delete(key)
    return true
  }

  #setState (state: BridgeState): void {
    this.#state = state
    this.#sync()
  }

  #sync (): void {
    this.metrics.state.set(STATE_VALUE[this.#state])
    this.metrics.queued.set(this.queue.size)
    this.metrics.inflight.set(this.queue.inflightCount)
  }
}

function fingerprint (topic: string, payload: Buffer): string {
  return `${topic}\n${createHash('sha1').update(payload).digest('base64')}`
}
