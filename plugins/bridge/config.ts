// Options of the bridge plugin: the TypeBox schema (every default documented) and `parse`,
// which reads NanoMQ's nanomq_bridge.conf keys through the typed Conf getters.
//
// NanoMQ 0.8 has one bridge, `bridge.mqtt.<key>`; tapmq also reads named bridges,
// `bridge.mqtt.<name>.<key>`, with the same keys. The unnamed form is the bridge `default`.
import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { type Conf, isValidTopicFilter, mqttClientSchema, readMqttClient, type Static, Type } from '../../sdk/index.ts'

const QoS = Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)])

export const Bridge = Type.Object({
  /** `default` for NanoMQ's unnamed `bridge.mqtt.*` keys, else the `<name>` of `bridge.mqtt.<name>.*` */
  name: Type.String({ pattern: '^[A-Za-z0-9_-]+$' }),
  /**
   * the upstream connection: address (required), protoVer (@default 4), clientId (default:
   * `tapmq-bridge-<name>-<hash of host name and data dir>`, stable across restarts),
   * keepalive (@default 60 s), cleanStart (@default true), username, password
   */
  ...mqttClientSchema(),
  /** local topic filters whose messages are published upstream */
  forwards: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  /** upstream subscriptions whose messages are published locally */
  subscriptions: Type.Array(Type.Object({ topic: Type.String({ minLength: 1 }), qos: QoS }), { default: [] }),
  /** @default 2 — QoS 1/2 messages in flight upstream at once (NanoMQ: outstanding requests) */
  parallel: Type.Integer({ minimum: 1, maximum: 65535, default: 2 }),
  /** @default 10000 — ms to wait for the CONNACK */
  connectTimeout: Type.Integer({ minimum: 1, default: 10_000 }),
  reconnect: Type.Object({
    /** @default 1000 — ms before the first retry; doubles per failed attempt */
    minInterval: Type.Integer({ minimum: 1, default: 1000 }),
    /** @default 30000 — ms, the cap of the backoff */
    maxInterval: Type.Integer({ minimum: 1, default: 30_000 })
  }, { default: {} }),
  queue: Type.Object({
    /** @default 10000 — QoS 1/2 messages buffered (waiting or in flight) for the upstream */
    maxMessages: Type.Integer({ minimum: 1, default: 10_000 }),
    /** @default 'drop_oldest' — which message goes when the buffer is full */
    overflow: Type.Union([Type.Literal('drop_oldest'), Type.Literal('drop_newest')], { default: 'drop_oldest' }),
    /**
     * @default 'auto' — keep the buffer in a file under the data directory: `auto` does so
     * when the broker runs with `persistence = embedded`
     */
    durable: Type.Union([Type.Literal('auto'), Type.Boolean()], { default: 'auto' })
  }, { default: {} }),
  /**
   * @default true — MQTT 3.1/3.1.1 have no no-local: drop a message from the upstream when it
   * is the echo of one this bridge just forwarded (same topic and payload). MQTT 5 bridges
   * subscribe with no-local instead.
   */
  suppressEcho: Type.Boolean({ default: true }),
  /** TLS towards a `tls+mqtt-tcp://` upstream */
  ssl: Type.Object({
    cacertfile: Type.Optional(Type.String()),
    certfile: Type.Optional(Type.String()),
    keyfile: Type.Optional(Type.String()),
    keyPassword: Type.Optional(Type.String()),
    /** @default true — verify the upstream's certificate */
    verifyPeer: Type.Boolean({ default: true }),
    /** SNI and expected certificate name; default: the address's host */
    serverName: Type.Optional(Type.String())
  }, { default: {} })
})
export type Bridge = Static<typeof Bridge>

export const Options = Type.Object({
  /** the bridges that are on (`bridge_mode = true`) */
  bridges: Type.Array(Bridge, { default: [] })
})
export type Options = Static<typeof Options>

/** Per-bridge keys; a first segment that is none of these names a bridge. */
const KEYS = new Set([
  'bridge_mode', 'address', 'proto_ver', 'clientid', 'keepalive', 'clean_start', 'username', 'password', 'forwards',
  'subscription', 'parallel', 'connect_timeout', 'reconnect', 'queue', 'suppress_echo', 'ssl'
])
const PREFIX = 'bridge.mqtt.'
export const DEFAULT_BRIDGE = 'default'
const NAME = /^[A-Za-z0-9_-]+$/

/** nanomq_bridge.conf → Options; bridges with `bridge_mode = false` are left out. */
export function parseConf (conf: Conf): Options {
  const names = new Set<string>()
  let unnamed = false
  for (const { key } of conf.entries()) {
    if (!key.startsWith(PREFIX)) continue
    const first = key.slice(PREFIX.length).split('.')[0]!
    if (KEYS.has(first)) unnamed = true
    else if (NAME.test(first) && key.length > PREFIX.length + first.length) names.add(first)
  }
  const bridges: Bridge[] = []
  if (unnamed) {
    const bridge = readBridge(conf, PREFIX, DEFAULT_BRIDGE)
    if (bridge) bridges.push(bridge)
  }
  for (const name of [...names].sort()) {
    if (name === DEFAULT_BRIDGE && unnamed) conf.invalid(`${PREFIX}${name}.address`, `another name: "${DEFAULT_BRIDGE}" is the bridge of the unnamed ${PREFIX}* keys`)
    const bridge = readBridge(conf, `${PREFIX}${name}.`, name)
    if (bridge) bridges.push(bridge)
  }
  return { bridges }
}

function readBridge (conf: Conf, prefix: string, name: string): Bridge | undefined {
  const key = (suffix: string) => prefix + suffix
  const on = conf.bool(key('bridge_mode'), false)
  // read every key even when off, so that typos are reported either way
  const { address, ...client } = readMqttClient(conf, key)
  const forwards = topicList(conf, key('forwards'))
  const subscriptions = readSubscriptions(conf, key('subscription'))
  const parallel = conf.int(key('parallel'), 2, { min: 1, max: 65535 })
  const connectTimeout = conf.duration(key('connect_timeout'), 10_000)
  const minInterval = conf.duration(key('reconnect.min_interval'), 1000)
  const maxInterval = conf.duration(key('reconnect.max_interval'), 30_000)
  if (minInterval < 1) conf.invalid(key('reconnect.min_interval'), 'a duration above zero, e.g. 1s')
  if (maxInterval < minInterval) conf.invalid(key('reconnect.max_interval'), `a duration not below reconnect.min_interval (${minInterval} ms)`)
  const maxMessages = conf.int(key('queue.max_messages'), 10_000, { min: 1 })
  const overflow = conf.oneOf(key('queue.overflow'), ['drop_oldest', 'drop_newest'] as const, 'drop_oldest')
  const durable = conf.oneOf(key('queue.durable'), ['auto', 'true', 'false'] as const, 'auto')
  const suppressEcho = conf.bool(key('suppress_echo'), true)
  const ssl = {
    cacertfile: conf.readableFile(key('ssl.cacertfile')),
    certfile: conf.readableFile(key('ssl.certfile')),
    keyfile: conf.readableFile(key('ssl.keyfile')),
    keyPassword: conf.string(key('ssl.key_password')),
    verifyPeer: conf.bool(key('ssl.verify_peer'), true),
    serverName: conf.string(key('ssl.server_name'))
  }
  if (!on) return undefined
  if (!address) conf.required(key('address'))
  return {
    name,
    address: address!,
    ...client,
    forwards,
    subscriptions,
    parallel,
    connectTimeout: Math.max(1, connectTimeout),
    reconnect: { minInterval, maxInterval },
    queue: { maxMessages, overflow, durable: durable === 'auto' ? 'auto' : durable === 'true' },
    suppressEcho,
    ssl
  }
}

/** `topic1/#,topic2/#`: comma separated topic filters, blanks around each trimmed. */
function topicList (conf: Conf, key: string): string[] {
  const value = conf.string(key, '')
  const filters = value.split(',').map((item) => item.trim()).filter((item) => item !== '')
  for (const filter of filters) {
    if (!isValidTopicFilter(filter)) conf.invalid(key, `a comma-separated list of topic filters (${JSON.stringify(filter)} is not one)`)
  }
  return filters
}

/** `subscription.<n>.topic` / `subscription.<n>.qos`, in the order of `<n>`. */
function readSubscriptions (conf: Conf, prefix: string): Bridge['subscriptions'] {
  const numbers = new Set<number>()
  for (const { key } of conf.entries()) {
    const match = key.startsWith(`${prefix}.`) ? /^(\d+)\.(topic|qos)$/.exec(key.slice(prefix.length + 1)) : null
    if (match) numbers.add(Number(match[1]))
  }
  return [...numbers].sort((a, b) => a - b).map((n) => {
    const topicKey = `${prefix}.${n}.topic`
    const topic = conf.required(topicKey)
    if (!isValidTopicFilter(topic)) conf.invalid(topicKey, 'a topic filter')
    const qos = conf.int(`${prefix}.${n}.qos`, 0, { min: 0, max: 2 }) as 0 | 1 | 2
    return { topic, qos }
  })
}

/** A client id that stays the same across restarts of one installation, so kept sessions work. */
export function defaultClientId (name: string, dataDir: string): string {
  const digest = createHash('sha256').update(`${hostname()}\0${dataDir}`).digest('hex').slice(0, 8)
  return `tapmq-bridge-${name}-${digest}`
}
