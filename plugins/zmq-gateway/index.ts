// NanoMQ's ZeroMQ gateway (nanomq_gateway.conf) as a plugin: a ZeroMQ SUB socket whose
// messages are published on one MQTT topic, and an MQTT subscription whose messages go out
// on a ZeroMQ PUB socket. Both ZeroMQ sockets connect, as NanoMQ's do, to a ZeroMQ "server"
// (an app or an XSUB/XPUB proxy) that binds the two endpoints.
//
//   ZMQ PUB (sub_address) ──► gateway SUB [sub_pre] ──► MQTT publish on pub topic (forward)
//   MQTT subscription (sub topic) ──► gateway PUB ──► [pub_pre] + payload ──► ZMQ SUB (pub_address)
//
// The MQTT side is this broker itself, in process, unless gateway.mqtt.address names a
// broker to connect to as an MQTT client (what NanoMQ's separate gateway process does).
// Needs the optional `zeromq` package (v6, prebuilt libzmq inside).
import { randomBytes } from 'node:crypto'
import mqtt, { type MqttClient } from 'mqtt'
import { type Counter, definePlugin, mqttClientOptions, type PluginHealth, type PluginHost } from '../../sdk/index.ts'
import { Options, parseConf } from './config.ts'

const PLUGIN_NAME = 'tapmq:zmq-gateway'

type Zmq = typeof import('zeromq')

/** Imports the zeromq binding, or fails with a message that says how to get it. */
export async function loadZeromq (specifier = 'zeromq'): Promise<Zmq> {
  try {
    return await import(specifier) as Zmq
  } catch (err) {
    throw new Error(`the zmq-gateway plugin needs the optional "zeromq" package (v6), which could not be loaded: ${(err as Error).message}. ` +
      'Install it with "npm install zeromq@6"; it ships libzmq prebuilt for Linux, macOS and Windows on x64 and arm64')
  }
}

export default definePlugin({
  name: PLUGIN_NAME,
  version: '1.0.0',
  description: 'Bridges a ZeroMQ PUB/SUB pair to MQTT topics (NanoMQ nanomq_gateway.conf)',
  tapmq: '>=0.1.0',
  options: Options,
  conf: { file: 'gateway.conf', aliases: ['nanomq_gateway.conf'], parse: parseConf },

  async setup (host, options: Options) {
    const zmq = await loadZeromq()
    const gateway = new Gateway(host, options, zmq)
    try {
      await gateway.start()
    } catch (err) {
      await gateway.close()
      throw err
    }
    return {
      health: () => gateway.health(),
      close: () => gateway.close()
    }
  }
})

interface ZmqPeer { connected: boolean }

/** The MQTT end: this broker in process, or an MQTT client to gateway.mqtt.address. */
interface MqttSide {
  readonly connected: boolean
  publish (payload: Buffer): Promise<void>
  close (): Promise<void>
}

class Gateway {
  readonly #sub
  readonly #pub
  readonly #subPeer: ZmqPeer = { connected: false }
  readonly #pubPeer: ZmqPeer = { connected: false }
  #mqtt?: MqttSide
  #closed = false
  #lastError = ''
  readonly #metrics: Record<'zmqReceived' | 'mqttPublished' | 'mqttReceived' | 'zmqSent' | 'dropped', Counter>

  constructor (private readonly host: PluginHost, private readonly options: Options, zmq: Zmq) {
    this.#sub = new zmq.Subscriber()
    this.#pub = new zmq.Publisher()
    const m = host.metrics
    this.#metrics = {
      zmqReceived: m.counter('zmq_received_total', 'ZeroMQ messages received on the SUB socket'),
      mqttPublished: m.counter('mqtt_published_total', 'ZeroMQ messages published to MQTT'),
      mqttReceived: m.counter('mqtt_received_total', 'MQTT messages received on the subscription'),
      zmqSent: m.counter('zmq_sent_total', 'MQTT messages sent on the ZeroMQ PUB socket'),
      dropped: m.counter('dropped_total', 'Messages lost: MQTT client offline, or a publish or send that failed')
    }
  }

  async start (): Promise<void> {
    const { options } = this
    for (const [socket, peer] of [[this.#sub, this.#subPeer], [this.#pub, this.#pubPeer]] as const) {
      socket.events.on('connect', () => { peer.connected = true })
      socket.events.on('disconnect', () => { peer.connected = false })
    }
    // a closed gateway must not hold the process open for unsent messages
    this.#sub.linger = 0
    this.#pub.linger = 0
    this.#sub.connect(options.zmq.subAddress)
    this.#sub.subscribe(options.zmq.subPrefix)
    this.#pub.connect(options.zmq.pubAddress)
    this.#mqtt = options.mqtt.address ? this.#client(options.mqtt.address) : await this.#inProcess()
    if (options.pubTopic) void this.#receiveZmq()
    this.host.log.info({
      zmqSub: options.zmq.subAddress, zmqPub: options.zmq.pubAddress, pubTopic: options.pubTopic, subTopic: options.subTopic,
      mqtt: options.mqtt.address ?? 'in process'
    }, 'zmq gateway started')
  }

  /** ZeroMQ → MQTT: one MQTT message per ZeroMQ message, its last frame as the payload. */
  async #receiveZmq (): Promise<void> {
    try {
      for await (const frames of this.#sub) {
        this.#metrics.zmqReceived.inc()
        const payload = frames[frames.length - 1] ?? Buffer.alloc(0)
        const mqttSide = this.#mqtt
        if (!mqttSide?.connected) {
          this.#metrics.dropped.inc()
          continue
        }
        mqttSide.publish(payload).then(() => this.#metrics.mqttPublished.inc(), (err: Error) => this.#failed('mqtt publish', err))
      }
    } catch (err) {
      if (!this.#closed) this.#failed('zmq receive', err as Error)
    }
  }

  /** MQTT → ZeroMQ: `[pub_pre] payload`, one or two frames. */
  #toZmq (payload: Buffer): void {
    this.#metrics.mqttReceived.inc()
    const prefix = this.options.zmq.pubPrefix
    this.#pub.send(prefix === undefined ? payload : [prefix, payload]).then(
      () => this.#metrics.zmqSent.inc(),
      (err: Error) => this.#failed('zmq send', err))
  }

  async #inProcess (): Promise<MqttSide> {
    const { host, options } = this
    const unsubscribe = options.subTopic
      ? await host.broker.subscribe(options.subTopic, (message) => this.#toZmq(message.payload))
      : undefined
    return {
      connected: true,
      publish: (payload) => host.broker.publish({ topic: options.pubTopic!, payload, qos: options.pubQos }),
      close: async () => { await unsubscribe?.() }
    }
  }

  #client (address: string): MqttSide {
    const { options } = this
    const client: MqttClient = mqtt.connect({
      ...mqttClientOptions({ ...options.mqtt, address }, options.mqtt.clientId ?? `tapmq-zmq-gateway-${randomBytes(4).toString('hex')}`),
      reconnectPeriod: options.mqtt.reconnectInterval,
      resubscribe: false,
      queueQoSZero: false
    })
    client.on('connect', () => {
      this.host.log.info({ address }, 'zmq gateway connected to the MQTT broker')
      if (options.subTopic) {
        client.subscribe(options.subTopic, { qos: options.subQos }, (err) => { if (err) this.#failed('mqtt subscribe', err) })
      }
    })
    client.on('message', (_topic, payload) => this.#toZmq(payload))
    client.on('error', (err) => { this.#lastError = `mqtt: ${err.message}` })
    return {
      get connected () { return client.connected },
      publish: async (payload) => { await client.publishAsync(options.pubTopic!, payload, { qos: options.pubQos }) },
      close: async () => { await client.endAsync(true).catch(() => {}) }
    }
  }

  #failed (what: string, err: Error): void {
    this.#metrics.dropped.inc()
    this.#lastError = `${what}: ${err.message}`
    this.host.log.warn({ err: err.message }, `zmq gateway ${what} failed`)
  }

  health (): PluginHealth {
    const mqttUp = this.#mqtt?.connected === true
    const detail = `mqtt ${mqttUp ? 'connected' : 'down'}, zmq sub ${this.#subPeer.connected ? 'connected' : 'connecting'}, ` +
      `zmq pub ${this.#pubPeer.connected ? 'connected' : 'connecting'}${this.#lastError ? `; last error: ${this.#lastError}` : ''}`
    if (!mqttUp) return { status: 'down', detail }
    if (!this.#subPeer.connected || !this.#pubPeer.connected) return { status: 'degraded', detail }
    return { status: 'ok', detail }
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#mqtt?.close()
    this.#sub.close()
    this.#pub.close()
  }
}
