// NanoMQ's client presence notices: a JSON message on `$SYS/brokers/connected` when a
// client's session opens and on `$SYS/brokers/disconnected` when its connection closes,
// published by the broker itself. `ts` is the UNIX epoch in milliseconds (NanoMQ 0.8 moved
// from a startup-relative timer to a UNIX timestamp). `$SYS/#` subscribers see them;
// `#` subscribers do not ([MQTT-4.7.2-1]).
import { type ConnectedEvent, definePlugin, type DisconnectEvent, type DisconnectReason, type PluginHost, STAGE, type Static, Type } from '../../sdk/index.ts'

const PLUGIN_NAME = 'tapmq:sys-presence'

export const CONNECTED_TOPIC = '$SYS/brokers/connected'
export const DISCONNECTED_TOPIC = '$SYS/brokers/disconnected'

const Options = Type.Object({
  /**
   * @default false — reproduce NanoMQ 0.8.0 exactly: `ts` with second resolution, no
   * `IPv4`/`reason` keys, `reason_code` always "0", and no notice when a kept session
   * (clean session false) disconnects or a connection is taken over (its quirks Q6-Q8).
   */
  strict: Type.Boolean({ default: false }),
  /** @default 0 — QoS of the notices */
  qos: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], { default: 0 }),
  /** @default true */
  connected: Type.Boolean({ default: true }),
  /** @default true */
  disconnected: Type.Boolean({ default: true })
})
type Options = Static<typeof Options>

export default definePlugin({
  name: PLUGIN_NAME,
  version: '1.0.0',
  description: 'Publishes client online/offline notices on $SYS/brokers/connected and $SYS/brokers/disconnected (NanoMQ)',
  tapmq: '>=0.1.0',
  options: Options,

  setup (host, options: Options) {
    const presence = new Presence(host, options)
    const tap = { name: PLUGIN_NAME, stage: STAGE.OBSERVE }
    if (options.connected) host.hooks.client.connected.tap(tap, (event) => presence.connected(event))
    if (options.disconnected) host.hooks.client.disconnected.tap(tap, (event) => presence.disconnected(event))
    return { health: () => presence.health() }
  }
})

/** MQTT 5 DISCONNECT reason codes (printed in hex, as NanoMQ does) for each reason. */
const REASON_CODES: Record<DisconnectReason, number> = {
  normal: 0x00,
  peer_closed: 0x80,
  keepalive_timeout: 0x8d,
  takeover: 0x8e,
  protocol_error: 0x82,
  shutdown: 0x8b,
  slow_consumer: 0x97,
  kicked: 0x98,
  not_authorized: 0x87
}

/** The EMQX 4 names of the reasons, as the webhook uses them. */
const REASON_NAMES: Record<DisconnectReason, string> = {
  normal: 'normal',
  peer_closed: 'tcp_closed',
  keepalive_timeout: 'keepalive_timeout',
  takeover: 'takeovered',
  protocol_error: 'protocol_error',
  shutdown: 'shutdown',
  slow_consumer: 'slow_consumer',
  kicked: 'kicked',
  not_authorized: 'not_authorized'
}

class Presence {
  readonly #metrics
  /** clean-session flag of each connected client, for strict mode's kept-session rule */
  readonly #clean = new Map<string, boolean>()
  #lastError = ''

  constructor (private readonly host: PluginHost, private readonly options: Options) {
    this.#metrics = {
      published: host.metrics.counter('published_total', 'Presence notices published'),
      suppressed: host.metrics.counter('suppressed_total', 'Disconnect notices not sent (strict mode: kept sessions and takeovers)'),
      failed: host.metrics.counter('failed_total', 'Presence notices the broker failed to publish')
    }
  }

  connected (event: ConnectedEvent): void {
    if (this.options.strict) this.#clean.set(event.clientId, event.cleanSession)
    const payload = connectedPayload(event, this.#ts(), this.options.strict)
    this.#publish(CONNECTED_TOPIC, payload)
  }

  disconnected (event: DisconnectEvent): void {
    if (this.options.strict) {
      const clean = this.#clean.get(event.clientId)
      // after a takeover the id belongs to the newer connection, whose flag stays
      if (event.reason !== 'takeover') this.#clean.delete(event.clientId)
      if (event.reason === 'takeover' || clean === false) {
        this.#metrics.suppressed.inc()
        return
      }
    }
    this.#publish(DISCONNECTED_TOPIC, disconnectedPayload(event, this.#ts(), this.options.strict))
  }

  /** UNIX epoch milliseconds; NanoMQ 0.8 computed `time(NULL) * 1000` (quirk Q8). */
  #ts (): number {
    const now = Date.now()
    return this.options.strict ? Math.floor(now / 1000) * 1000 : now
  }

  #publish (topic: string, payload: string): void {
    this.host.broker.publish({ topic, payload, qos: this.options.qos, retain: false }).then(
      () => this.#metrics.published.inc(),
      (err: Error) => {
        this.#metrics.failed.inc()
        this.#lastError = err.message
        this.host.log.warn({ topic, err: err.message }, 'presence notice not published')
      })
  }

  health () {
    return this.#lastError === ''
      ? { status: 'ok' as const }
      : { status: 'degraded' as const, detail: `last publish failed: ${this.#lastError}` }
  }
}

const str = (value: string | undefined) => JSON.stringify(value ?? 'undefined')

/**
 * NanoMQ's CONNECT_MSG, spaces included: `{"username":"u", "ts":…,"proto_name":"MQTT",
 * "keepalive":60,"return_code":"0","proto_ver":4,"client_id":"c", "clean_start":1}`, plus the
 * `"IPv4"` key that later NanoMQ releases append. A missing user name is "undefined", as in
 * the webhook events.
 */
export function connectedPayload (event: ConnectedEvent, ts: number, strict = false): string {
  const head = `{"username":${str(event.username)}, "ts":${ts},"proto_name":${str(event.protoName)},` +
    `"keepalive":${event.keepalive},"return_code":"0","proto_ver":${event.protoVer},` +
    `"client_id":${str(event.clientId)}, "clean_start":${event.cleanSession ? 1 : 0}`
  return strict ? `${head}}` : `${head}, "IPv4":${str(event.peer.address)}}`
}

/** NanoMQ's DISCONNECT_MSG plus later releases' `"IPv4"` and tapmq's `"reason"` (EMQX 4 names). */
export function disconnectedPayload (event: DisconnectEvent, ts: number, strict = false): string {
  const code = strict ? 0 : REASON_CODES[event.reason] ?? 0x80
  const head = `{"username":${str(event.username)},"ts":${ts},"reason_code":"${code.toString(16)}",` +
    `"client_id":${str(event.clientId)}`
  return strict ? `${head}}` : `${head},"IPv4":${str(event.peer.address)},"reason":${str(REASON_NAMES[event.reason] ?? event.reason)}}`
}
