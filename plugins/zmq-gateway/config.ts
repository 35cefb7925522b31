// Options of the ZeroMQ gateway: the TypeBox schema and `parse`, which reads NanoMQ's
// nanomq_gateway.conf. NanoMQ 0.8.0 reads `gateway.zmq.sub.address`, `gateway.mqtt.forward`
// and `gateway.mqtt.subscription`; its later documentation spells them
// `gateway.zmq.sub_address`, `gateway.mqtt.pub_topic`/`forward` and `gateway.mqtt.sub_topic`.
// Both spellings are read here.
import { type Conf, isValidTopicFilter, mqttClientSchema, readMqttClient, type Static, Type } from '../../sdk/index.ts'

const MqttClient = mqttClientSchema()

const QoS = Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], { default: 0 })

export const Options = Type.Object({
  mqtt: Type.Object({
    /**
     * client mode's connection: protoVer (@default 4), clientId (default:
     * `tapmq-zmq-gateway-<random>`), keepalive (@default 60 s), cleanStart (@default true),
     * username, password
     */
    ...MqttClient,
    /**
     * the MQTT broker the gateway talks to, as a client (NanoMQ's gateway is a separate
     * process and always does so); absent: this broker itself, in process, without a connection
     */
    address: Type.Optional(MqttClient.address),
    /** @default 1000 — ms between reconnect attempts of the MQTT client */
    reconnectInterval: Type.Integer({ minimum: 1, default: 1000 })
  }, { default: {} }),
  /** MQTT topic that ZeroMQ messages are published to (NanoMQ `gateway.mqtt.forward`, the "pub topic") */
  pubTopic: Type.Optional(Type.String({ minLength: 1 })),
  /** @default 0 — QoS of those publishes (NanoMQ: always 0) */
  pubQos: QoS,
  /** MQTT topic filter whose messages are sent to ZeroMQ (NanoMQ `gateway.mqtt.subscription`, the "sub topic") */
  subTopic: Type.Optional(Type.String({ minLength: 1 })),
  /** @default 0 — QoS of that subscription (NanoMQ 0.8: always 0) */
  subQos: QoS,
  zmq: Type.Object({
    /** @default 'tcp://127.0.0.1:5560' — the ZeroMQ PUB endpoint the gateway's SUB socket connects to */
    subAddress: Type.String({ minLength: 1, default: 'tcp://127.0.0.1:5560' }),
    /** @default 'tcp://127.0.0.1:5559' — the ZeroMQ SUB endpoint the gateway's PUB socket connects to */
    pubAddress: Type.String({ minLength: 1, default: 'tcp://127.0.0.1:5559' }),
    /** @default '' — ZeroMQ subscription prefix; '' receives everything */
    subPrefix: Type.String({ default: '' }),
    /** sent as a first frame before each payload, when set */
    pubPrefix: Type.Optional(Type.String())
  }, { default: {} })
})
export type Options = Static<typeof Options>

/** The first of `keys` that is present, else the first one (NanoMQ 0.8's name, for errors). */
function pick (conf: Conf, ...keys: string[]): string {
  return keys.find((key) => conf.has(key)) ?? keys[0]!
}

const ZMQ_ENDPOINT = /^(tcp|ipc|inproc|pgm|epgm|ws|wss):\/\/.+/

/** nanomq_gateway.conf → Options. */
export function parseConf (conf: Conf): Options {
  const client = readMqttClient(conf, (name) => `gateway.mqtt.${name}`)
  const pubTopicKey = pick(conf, 'gateway.mqtt.forward', 'gateway.mqtt.pub_topic')
  const subTopicKey = pick(conf, 'gateway.mqtt.subscription', 'gateway.mqtt.sub_topic', 'gateway.mqtt.subscription.topic')
  // the shipped file has both `subscription.topic` and `subscription`; NanoMQ 0.8 reads only the latter
  for (const key of ['gateway.mqtt.subscription.topic', 'gateway.mqtt.sub_topic', 'gateway.mqtt.pub_topic', 'gateway.mqtt.forward', 'gateway.mqtt.subscription']) conf.entry(key)
  const pubTopic = conf.string(pubTopicKey) || undefined
  const subTopic = conf.string(subTopicKey) || undefined
  if (pubTopic !== undefined && (!isValidTopicFilter(pubTopic) || /[+#]/.test(pubTopic))) conf.invalid(pubTopicKey, 'a topic name without wildcards')
  if (subTopic !== undefined && !isValidTopicFilter(subTopic)) conf.invalid(subTopicKey, 'a topic filter')
  if (pubTopic === undefined && subTopic === undefined) conf.required(pubTopicKey)
  const endpoint = (keys: string[], fallback: string) => {
    const key = pick(conf, ...keys)
    const value = conf.string(key, fallback)
    if (!ZMQ_ENDPOINT.test(value)) conf.invalid(key, 'a ZeroMQ endpoint such as tcp://127.0.0.1:5560')
    return value
  }
  // NanoMQ's parallel sizes its pool of receive contexts; mqtt.js needs none
  conf.int('gateway.mqtt.parallel', 2, { min: 1 })
  return {
    mqtt: {
      ...client,
      reconnectInterval: conf.duration('gateway.mqtt.reconnect_interval', 1000)
    },
    pubTopic,
    pubQos: conf.int('gateway.mqtt.pub_qos', 0, { min: 0, max: 2 }) as 0 | 1 | 2,
    subTopic,
    subQos: conf.int('gateway.mqtt.sub_qos', 0, { min: 0, max: 2 }) as 0 | 1 | 2,
    zmq: {
      subAddress: endpoint(['gateway.zmq.sub.address', 'gateway.zmq.sub_address'], 'tcp://127.0.0.1:5560'),
      pubAddress: endpoint(['gateway.zmq.pub.address', 'gateway.zmq.pub_address'], 'tcp://127.0.0.1:5559'),
      subPrefix: conf.string('gateway.zmq.sub_pre', ''),
      pubPrefix: conf.string('gateway.zmq.pub_pre') || undefined
    }
  }
}
