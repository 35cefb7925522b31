// The broker's own keys (NanoMQ 0.8 `nanomq.conf` plus tapmq's additions) and their
// typed form. Reading a key marks it known; whatever is left over is warned about.
import { resolve } from 'node:path'
import type { Conf } from '../../sdk/conf.ts'
import type { LimitsConfig } from '../broker/limits.ts'
import { type PersistenceConfig, readPersistenceConfig, readSessionExpiryConfig, type SessionExpiryConfig } from '../persistence/config.ts'
import { type ClusterConfig, readClusterConfig } from '../cluster/config.ts'
import { type ListenAddress, parseListenUrl } from './listener-url.ts'

export interface TlsConfig {
  readonly address: ListenAddress
  readonly keyFile: string
  readonly certFile: string
  readonly caCertFile?: string
  readonly keyPassword?: string
  readonly verifyPeer: boolean
  readonly failIfNoPeerCert: boolean
}

export interface HttpServerConfig {
  readonly enable: boolean
  readonly port: number
  readonly bind: string
  readonly username: string
  readonly password: string
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

export interface BrokerConfig {
  readonly tcp: ListenAddress
  readonly websocket?: ListenAddress
  readonly tls?: TlsConfig
  readonly allowAnonymous: boolean
  /** bytes; NanoMQ's `max_packet_size` is in KB */
  readonly maxPacketSize: number
  readonly httpServer: HttpServerConfig
  readonly log: { readonly level: LogLevel, readonly format: 'json' | 'pretty' }
  /** the directory of the main config file: plugins.conf and plugin files default to it */
  readonly etcDir: string
  readonly dataDir: string
  readonly pidFile: string
  /** the session store: `persistence`, `persistence.sync` */
  readonly persistence: PersistenceConfig
  /** `cluster.enable`, `cluster.redis.url`, `cluster.node_name` (docs/cluster.md) */
  readonly cluster: ClusterConfig
  /** milliseconds a decision hook tap may take before its fail policy applies */
  readonly hookTimeout: number
  /** milliseconds plugins get to flush at shutdown */
  readonly shutdownTimeout: number
  /** coalesce each connection's writes per event-loop turn (runtime/broker/write-coalescing.ts) */
  readonly writeCoalescing: boolean
  readonly limits: LimitsConfig
  readonly aedes: {
    /** MQTT 5 §4.8.2 (docs/mqtt5.md): `shared_subscription`, `$share/{group}/{filter}` subscriptions, advertised in CONNACK */
    readonly sharedSubscriptionAvailable: boolean
    readonly connectTimeout: number
    readonly drainTimeout: number
    readonly maxInflightInbound: number
    readonly maxTopicLevels: number
    readonly heartbeatInterval: number
    /** MQTT 5 session expiry (docs/mqtt5.md): `max_session_expiry_interval`, `max_pending_sessions` */
    readonly sessionExpiryIntervalLimit: SessionExpiryConfig['sessionExpiryIntervalLimit']
    readonly pendingSessionsLimit: SessionExpiryConfig['pendingSessionsLimit']
    /** MQTT 5 (docs/mqtt5.md): `max_topic_alias`, inbound aliases a client may use, advertised in CONNACK */
    readonly topicAliasMaximum: number
    /** MQTT 5: `max_topic_alias_length`, characters of topic names one connection's aliases may hold (0 = no bound) */
    readonly topicAliasLengthLimit: number
    /** MQTT 5: `receive_maximum`, unacknowledged inbound QoS 1/2 PUBLISH per connection, advertised */
    readonly receiveMaximum: number
    /** MQTT 5: wire bytes of the largest packet accepted (max_packet_size), advertised */
    readonly maximumPacketSize: number
    /** MQTT 5: `outbound_topic_alias`, the broker uses topic aliases towards clients that allow them */
    readonly outboundTopicAlias: boolean
    /** MQTT 5: `max_outbound_queue`, QoS 1/2 messages waiting per connection beyond the client's Receive Maximum */
    readonly maxQueuedOutbound: number
    /** MQTT 5: `response_information`, returned in CONNACK to clients that ask for it (unset: never) */
    readonly responseInformation?: string
  }
}

/** Wire size of a packet whose remaining length is `remaining`: fixed header byte, its length field, the rest. */
export function wireSize (remaining: number): number {
  return 1 + (remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4) + remaining
}

/** NanoMQ keys that have no meaning in tapmq (thread pools, C buffers); accepted with a note. */
export const INERT_NANOMQ_KEYS = [
  'daemon', 'num_taskq_thread', 'max_taskq_thread', 'parallel', 'property_size', 'msq_len',
  'qos_duration', 'client_max_packet_size', 'http_server.parallel', 'http_server.auth_type',
  'http_server.jwt.public.keyfile', 'http_server.jwt.private.keyfile', 'websocket.tls_url'
]

function listenAddress (conf: Conf, key: string, fallback: string, allowed: ReadonlyArray<ListenAddress['transport']>): ListenAddress {
  const text = conf.string(key, fallback)
  const parsed = parseListenUrl(text)
  if (typeof parsed === 'string') return conf.invalid(key, parsed)
  if (!allowed.includes(parsed.transport)) return conf.invalid(key, `a ${allowed.join(' or ')} URL here`)
  return parsed
}

/** `baseDir` resolves relative paths: the directory of the main config file. */
export function readBrokerConfig (conf: Conf, baseDir: string): BrokerConfig {
  const path = (value: string) => resolve(baseDir, value)

  const tlsEnabled = conf.bool('tls.enable', false)
  const tlsAddress = listenAddress(conf, 'tls.url', 'tls+nmq-tcp://0.0.0.0:8883', ['tls'])
  const tlsFiles = {
    keyFile: conf.string('tls.keyfile', '/etc/certs/key.pem'),
    certFile: conf.string('tls.certfile', '/etc/certs/cert.pem'),
    caCertFile: conf.string('tls.cacertfile'),
    keyPassword: conf.string('tls.key_password'),
    verifyPeer: conf.bool('tls.verify_peer', false),
    failIfNoPeerCert: conf.bool('tls.fail_if_no_peer_cert', false)
  }
  const tcp = listenAddress(conf, 'url', 'nmq-tcp://0.0.0.0:1883', ['tcp', 'tls', 'ws', 'wss'])
  const wsEnabled = conf.bool('websocket.enable', false)
  const wsAddress = listenAddress(conf, 'websocket.url', 'nmq-ws://0.0.0.0:8083/mqtt', ['ws'])
  for (const key of INERT_NANOMQ_KEYS) conf.entry(key)
  const maxPacketSize = conf.int('max_packet_size', 1024, { min: 1, max: 262_144 }) * 1024
  const maxInflightInbound = conf.int('max_inflight_inbound', 1000, { min: 0 })
  const persistence = readPersistenceConfig(conf)
  const cluster = readClusterConfig(conf, tcp.port)

  return {
    tcp,
    websocket: wsEnabled ? wsAddress : undefined,
    tls: tlsEnabled
      ? {
          address: tlsAddress,
          ...tlsFiles,
          keyFile: path(tlsFiles.keyFile),
          certFile: path(tlsFiles.certFile),
          caCertFile: tlsFiles.caCertFile ? path(tlsFiles.caCertFile) : undefined
        }
      : undefined,
    allowAnonymous: conf.bool('allow_anonymous', true),
    maxPacketSize,
    httpServer: {
      enable: conf.bool('http_server.enable', false),
      port: conf.int('http_server.port', 8081, { min: 0, max: 65535 }),
      bind: conf.string('http_server.bind', '127.0.0.1'),
      username: conf.string('http_server.username', 'admin'),
      password: conf.string('http_server.password', 'public')
    },
    log: {
      level: conf.oneOf('log.level', LOG_LEVELS, 'info'),
      format: conf.oneOf('log.format', ['json', 'pretty'] as const, 'json')
    },
    etcDir: baseDir,
    dataDir: path(conf.string('data_dir', 'data')),
    pidFile: path(conf.string('pid_file', 'data/tapmq.pid')),
    persistence,
    cluster,
    hookTimeout: conf.duration('hook_timeout', 10_000),
    shutdownTimeout: conf.duration('shutdown_timeout', 10_000),
    writeCoalescing: conf.bool('write_coalescing', true),
    limits: {
      maxConnections: conf.int('max_connections', 0, { min: 0 }),
      maxConnectionRate: conf.int('max_connection_rate', 0, { min: 0 }),
      maxSubscriptions: conf.int('max_subscriptions', 0, { min: 0 }),
      maxKeepalive: conf.int('max_keepalive', 0, { min: 0, max: 65535 }),
      maxClientIdLength: conf.int('max_client_id_length', 0, { min: 0, max: 65535 })
    },
    aedes: {
      sharedSubscriptionAvailable: conf.bool('shared_subscription', true),
      connectTimeout: conf.duration('connect_timeout', 30_000),
      drainTimeout: conf.duration('drain_timeout', 60_000),
      maxInflightInbound,
      maxTopicLevels: conf.int('max_topic_levels', 100, { min: 1, max: 100 }),
      heartbeatInterval: conf.duration('heartbeat_interval', 60_000),
      // MQTT 5 session expiry: max_session_expiry_interval, max_pending_sessions (docs/mqtt5.md)
      ...readSessionExpiryConfig(conf),
      // Mosquitto's default: each alias pins a topic name for the connection's lifetime
      topicAliasMaximum: conf.int('max_topic_alias', 10, { min: 0, max: 65535 }),
      topicAliasLengthLimit: conf.int('max_topic_alias_length', 65536, { min: 0 }),
      // the inbound QoS 1/2 window: by default the window max_inflight_inbound already bounds
      // (0 = unlimited there, 65535 here: the largest a CONNACK can advertise)
      receiveMaximum: conf.int('receive_maximum', Math.min(maxInflightInbound || 65535, 65535), { min: 1, max: 65535 }),
      // max_packet_size bounds the remaining length (NanoMQ); MQTT 5 counts the whole packet
      maximumPacketSize: wireSize(maxPacketSize),
      outboundTopicAlias: conf.bool('outbound_topic_alias', false),
      maxQueuedOutbound: conf.int('max_outbound_queue', 10_000, { min: 1 }),
      responseInformation: conf.string('response_information') || undefined
    }
  }
}
