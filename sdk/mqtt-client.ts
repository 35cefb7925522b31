// A plugin that is itself an MQTT client of some broker (NanoMQ's bridge, its ZeroMQ gateway)
// has the same seven connection keys under its own prefix: address, proto_ver, clientid,
// keepalive, clean_start, username, password. This module is those keys, once, in three steps:
//
//   mqttClientSchema()   the TypeBox properties, spread into the plugin's options schema
//   readMqttClient()     the .conf keys → those fields, with file:line errors from the Conf getters
//   mqttClientOptions()  the fields → mqtt.js connect options
//
//   const Options = Type.Object({ ...mqttClientSchema(), topic: Type.String() })
//   parse: (conf) => ({ ...readMqttClient(conf, (name) => `my.mqtt.${name}`), topic: ... })
//   mqtt.connect({ ...mqttClientOptions(options, clientId), reconnectPeriod: 1000 })
import type { IClientOptions } from 'mqtt'
import { Type } from '@sinclair/typebox'
import type { Conf } from './conf.ts'

/** The URL schemes of an MQTT broker's address: NanoMQ's, and mqtt.js's own. */
export const MQTT_ADDRESS_SCHEMES = ['mqtt-tcp', 'tls+mqtt-tcp', 'mqtt', 'mqtts'] as const

/** The keys `readMqttClient` reads, as NanoMQ spells them after the plugin's prefix. */
export type MqttClientKey = 'address' | 'proto_ver' | 'clientid' | 'keepalive' | 'clean_start' | 'username' | 'password'

export interface MqttClientDefaults {
  /** @default 4 — 3 (MQTT 3.1), 4 (3.1.1) or 5 */
  protoVer: 3 | 4 | 5
  /** @default 60 — seconds */
  keepalive: number
  /** @default true */
  cleanStart: boolean
}

export const MQTT_CLIENT_DEFAULTS: Readonly<MqttClientDefaults> = { protoVer: 4, keepalive: 60, cleanStart: true }

/** The connection fields, as `readMqttClient` returns them and the schema checks them. */
export interface MqttClientFields extends MqttClientDefaults {
  /** the broker's URL, e.g. `mqtt-tcp://host:1883`; absent when the key is unset or empty */
  address?: string
  /** absent when unset or empty: the plugin picks its own default */
  clientId?: string
  username?: string
  password?: string
}

/**
 * TypeBox properties of the connection fields, to spread into a plugin's `Type.Object`.
 * `address` is required here; a plugin for which it is optional overrides it with
 * `address: Type.Optional(fields.address)`.
 */
export function mqttClientSchema (defaults: Partial<MqttClientDefaults> = {}) {
  const d = { ...MQTT_CLIENT_DEFAULTS, ...defaults }
  return {
    /** `mqtt-tcp://host:port` or `tls+mqtt-tcp://host:port` (also mqtt://, mqtts://) */
    address: Type.String({ pattern: '^(mqtt-tcp|tls\\+mqtt-tcp|mqtt|mqtts)://' }),
    /** 3 (MQTT 3.1), 4 (3.1.1) or 5 */
    protoVer: Type.Union([Type.Literal(3), Type.Literal(4), Type.Literal(5)], { default: d.protoVer }),
    clientId: Type.Optional(Type.String({ minLength: 1 })),
    /** seconds */
    keepalive: Type.Integer({ minimum: 0, maximum: 65535, default: d.keepalive }),
    cleanStart: Type.Boolean({ default: d.cleanStart }),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String())
  }
}

/**
 * Reads the connection keys named by `key` (e.g. `(name) => 'bridge.mqtt.' + name`).
 * Every bad value throws the Conf getter's error, which names the file and line.
 * A missing address is not an error here: the plugin decides whether it needs one.
 */
export function readMqttClient (conf: Conf, key: (name: MqttClientKey) => string, defaults: Partial<MqttClientDefaults> = {}): MqttClientFields {
  const d = { ...MQTT_CLIENT_DEFAULTS, ...defaults }
  return {
    address: conf.url(key('address'), MQTT_ADDRESS_SCHEMES)?.href,
    protoVer: Number(conf.oneOf(key('proto_ver'), ['3', '4', '5'], String(d.protoVer) as '3' | '4' | '5')) as 3 | 4 | 5,
    clientId: conf.string(key('clientid')) || undefined,
    keepalive: seconds(conf, key('keepalive'), d.keepalive),
    cleanStart: conf.bool(key('clean_start'), d.cleanStart),
    username: conf.string(key('username')),
    password: conf.string(key('password'))
  }
}

/**
 * mqtt.js options for a connection to `fields.address`: where, which protocol version
 * (MQTT 3.1 says `MQIsdp` in its CONNECT), and who. Reconnecting, timeouts and TLS files
 * are the plugin's to add.
 */
export function mqttClientOptions (fields: Readonly<MqttClientFields> & { readonly address: string }, clientId = fields.clientId): IClientOptions {
  const url = new URL(fields.address)
  const tls = url.protocol === 'tls+mqtt-tcp:' || url.protocol === 'mqtts:'
  return {
    protocol: tls ? 'mqtts' : 'mqtt',
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : (tls ? 8883 : 1883),
    protocolVersion: fields.protoVer,
    protocolId: fields.protoVer === 3 ? 'MQIsdp' : 'MQTT',
    clientId,
    keepalive: fields.keepalive,
    clean: fields.cleanStart,
    username: fields.username,
    password: fields.password
  }
}

/** NanoMQ writes `keepalive = 60` (seconds); a duration such as `1m` is read too. */
function seconds (conf: Conf, key: string, fallback: number): number {
  const value = conf.string(key)
  if (value !== undefined && /^\d+$/.test(value)) return conf.int(key, fallback, { min: 0, max: 65535 })
  const ms = conf.duration(key, fallback * 1000)
  if (ms % 1000 !== 0 || ms / 1000 > 65535) conf.invalid(key, 'whole seconds from 0 to 65535, e.g. 60')
  return ms / 1000
}
