// The JSON shapes NanoMQ's HTTP API answers with, built from the SDK's read-only views.
// Key order matters to clients that compare bodies, so every shape is an object literal.
import type { BrokerView, ClientSummary, ConfigView, SubscriptionInfo } from '../../sdk/index.ts'
import { ApiError, CODE } from './codes.ts'
import type { Settings } from './settings.ts'

/** NanoMQ's uptime text: `15 Hours, 1 minutes, 38 seconds`. */
export function uptimeText (ms: number): string {
  const total = Math.floor(ms / 1000)
  return `${Math.floor(total / 3600)} Hours, ${Math.floor(total / 60) % 60} minutes, ${total % 60} seconds`
}

/** `YYYY-MM-DD HH:mm:ss`, local time, as NanoMQ prints it. */
export function datetimeText (date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
}

export function brokerInfo (broker: BrokerView) {
  return {
    datetime: datetimeText(),
    node_status: 'Running',
    sysdescr: 'tapmq Broker',
    uptime: uptimeText(broker.stats().uptimeMs),
    version: broker.version
  }
}

export function nodeInfo (broker: BrokerView) {
  const stats = broker.stats()
  return { connections: stats.connections, node_status: 'Running', uptime: uptimeText(stats.uptimeMs), version: broker.version }
}

/** API v1 (req 5). NanoMQ gives `""` for a missing user name here, `"undefined"` in webhooks (Q29). */
export function v1Client (client: ClientSummary) {
  return {
    client_id: client.clientId,
    username: client.username ?? '',
    keepalive: client.keepalive,
    protocol: client.protoVer,
    connect_status: 1
  }
}

/** API v4 `/clients`: NanoMQ's keys, then tapmq's (`ip_address`, `port`, `connected_at`). */
export function v4Client (client: ClientSummary) {
  return {
    client_id: client.clientId,
    username: client.username ?? '',
    keepalive: client.keepalive,
    conn_state: 'connected',
    clean_start: client.cleanSession,
    proto_name: client.protoName,
    proto_ver: client.protoVer,
    ip_address: client.peer.address,
    port: client.peer.port,
    connected_at: client.connectedAt
  }
}

/** API v1 (req 4): subscriptions grouped by client; clients without any are left out. */
export function v1Subscriptions (broker: BrokerView) {
  return broker.clients()
    .filter((client) => client.subscriptions.length > 0)
    .map((client) => ({
      client_id: client.clientId,
      subscriptions: client.subscriptions.map(({ topic, qos }) => ({ topic, qos }))
    }))
}

export function v4Subscription (sub: SubscriptionInfo) {
  return { clientid: sub.clientId, topic: sub.topic, qos: sub.qos }
}

type Query = Record<string, string | undefined>

function booleanParam (query: Query, name: string): boolean | undefined {
  const value = query[name]
  if (value === undefined) return undefined
  if (value === 'true' || value === 'false') return value === 'true'
  throw new ApiError(400, CODE.PARAM_ERROR, `${name} must be true or false`)
}

function integerParam (query: Query, name: string): number | undefined {
  const value = query[name]
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value)) throw new ApiError(400, CODE.PARAM_ERROR, `${name} must be an integer`)
  return Number(value)
}

/** `/clients` filters: clientid, username, conn_state, clean_start, proto_name, proto_ver. */
export function clientFilter (query: Query): (client: ClientSummary) => boolean {
  const cleanStart = booleanParam(query, 'clean_start')
  const protoVer = integerParam(query, 'proto_ver')
  const state = query.conn_state
  if (state !== undefined && !['connected', 'idle', 'disconnected'].includes(state)) {
    throw new ApiError(400, CODE.PARAM_ERROR, 'conn_state must be connected, idle or disconnected')
  }
  return (client) =>
    (query.clientid === undefined || client.clientId === query.clientid) &&
    (query.username === undefined || client.username === query.username) &&
    // only connected clients are listed; tapmq has no idle state
    (state === undefined || state === 'connected') &&
    (cleanStart === undefined || client.cleanSession === cleanStart) &&
    (query.proto_name === undefined || client.protoName === query.proto_name) &&
    (protoVer === undefined || client.protoVer === protoVer)
}

/** `/subscriptions` filters: clientid, topic, qos, share (aedes 1.2 has no shared subscriptions). */
export function subscriptionFilter (query: Query): (sub: SubscriptionInfo) => boolean {
  const qos = integerParam(query, 'qos')
  return (sub) =>
    (query.clientid === undefined || sub.clientId === query.clientid) &&
    (query.topic === undefined || sub.topic === query.topic) &&
    (qos === undefined || sub.qos === qos) &&
    query.share === undefined
}

const REDACTED = '******'

/**
 * NanoMQ 0.8's configuration object (req 11, `/configuration`), read from the main config
 * with tapmq's defaults where a key is unset. Secrets are redacted; NanoMQ sends them in
 * clear. tapmq has no bridge, so there is no `bridge` section. The thread and queue keys
 * have no effect in tapmq and are shown as configured.
 */
export function nanomqConfiguration (config: ConfigView, settings: Settings) {
  const text = (key: string, fallback: string) => config.get(key) ?? fallback
  const nullable = (key: string) => config.get(key) ?? null
  const number = (key: string, fallback: number) => {
    const value = config.get(key)
    return value === undefined ? fallback : Number.isFinite(Number(value)) ? Number(value) : value
  }
  const bool = (key: string, fallback: boolean) => {
    const value = config.get(key)
    return value === undefined ? fallback : value.toLowerCase() === 'true'
  }
  return {
    url: text('url', 'nmq-tcp://0.0.0.0:1883'),
    num_taskq_thread: number('num_taskq_thread', 4),
    max_taskq_thread: number('max_taskq_thread', 4),
    parallel: number('parallel', 32),
    property_size: number('property_size', 32),
    msq_len: number('msq_len', 256),
    allow_anonymous: bool('allow_anonymous', true),
    daemon: bool('daemon', false),
    tls: {
      enable: bool('tls.enable', false),
      url: text('tls.url', 'tls+nmq-tcp://0.0.0.0:8883'),
      key_password: nullable('tls.key_password'),
      key: text('tls.keyfile', '/etc/certs/key.pem'),
      cert: text('tls.certfile', '/etc/certs/cert.pem'),
      cacert: nullable('tls.cacertfile'),
      verify_peer: bool('tls.verify_peer', false),
      fail_if_no_peer_cert: bool('tls.fail_if_no_peer_cert', false)
    },
    websocket: {
      enable: bool('websocket.enable', false),
      url: text('websocket.url', 'nmq-ws://0.0.0.0:8083/mqtt'),
      tls_url: text('websocket.tls_url', 'nmq-wss://0.0.0.0:8084/mqtt')
    },
    http_server: {
      enable: settings.enable,
      port: settings.port,
      bind: settings.bind,
      username: settings.username,
      password: REDACTED,
      auth_type: 'basic'
    }
  }
}

/** CPU use of this process since the previous call (first call: since start), `0.00%`. */
export class CpuSampler {
  #last = { at: performance.timeOrigin, usage: { user: 0, system: 0 } }

  percent (): number {
    const now = performance.timeOrigin + performance.now()
    const usage = process.cpuUsage()
    const elapsedUs = (now - this.#last.at) * 1000
    const usedUs = usage.user + usage.system - this.#last.usage.user - this.#last.usage.system
    this.#last = { at: now, usage }
    return elapsedUs > 0 ? Math.round((usedUs / elapsedUs) * 10_000) / 100 : 0
  }
}
