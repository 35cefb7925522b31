// Request bodies, one compact JSON object per event.
//
// The three events NanoMQ 0.8 fires (client.connack, client.disconnected, message.publish)
// keep NanoMQ's key order and its `"undefined"` for a missing user name, byte for byte
// (nanomq 0.8.0 webhook_post.c). The other events follow EMQX 4's emqx_web_hook field sets
// with `action` first and `null` for a missing user name (notes §1.7).
import type {
  AckedEvent, ConnackEvent, ConnectEvent, ConnectedEvent, DeliveredEvent, DisconnectEvent, DroppedEvent,
  PublishEvent, SessionEndReason, SessionSubscriptionEvent, SessionTerminatedEvent, SubscribeEvent, UnsubscribeEvent, UserProperties
} from '../../sdk/index.ts'
import { encodePayload, type PayloadEncoding } from './encoding.mjs'

/**
 * The SDK's disconnect reasons in EMQX 4's vocabulary: NanoMQ 0.8 always says "normal"
 * (quirk Q6); EMQX says tcp_closed and takeovered where the SDK says peer_closed and takeover.
 */
const EMQX_REASONS: Partial<Record<SessionEndReason, string>> = {
  peer_closed: 'tcp_closed',
  takeover: 'takeovered'
}

export function emqxReason (reason: SessionEndReason): string {
  return EMQX_REASONS[reason] ?? reason
}

/** NanoMQ 0.8 writes the text "undefined" when a client sent no user name. */
function nanomqUsername (username: string | undefined): string {
  return username ?? 'undefined'
}

/** A JSON string (or null) literal. */
const json: (value: string | null) => string = JSON.stringify

/** EMQX 4 writes null. */
function emqxUsername (username: string | undefined): string | null {
  return username ?? null
}

/**
 * MQTT 5 User Properties as a body field: `,"user_properties":{"name":"value",…}` (a name
 * sent more than once has the array of its values), or '' when there are none, so that
 * bodies of messages and clients without them (every MQTT 3.1.1 one) stay byte for byte
 * as they were. EMQX 4.3's web hook sends no MQTT 5 properties at all; the name follows
 * EMQX's `user_property` / mqtt.js' `userProperties`, in the body's snake case.
 */
export function userPropertiesField (userProperties: UserProperties | undefined): string {
  if (userProperties === undefined || Object.keys(userProperties).length === 0) return ''
  return ',"user_properties":' + JSON.stringify(userProperties)
}

/** `userPropertiesField` spliced in before the closing brace of a JSON object text. */
function withUserProperties (body: string, userProperties: UserProperties | undefined): string {
  const field = userPropertiesField(userProperties)
  return field === '' ? body : body.slice(0, -1) + field + '}'
}

// ---- NanoMQ 0.8 events -------------------------------------------------------------------

export function clientConnack (event: ConnackEvent): string {
  return JSON.stringify({
    proto_ver: event.protoVer,
    keepalive: event.keepalive,
    // NanoMQ says "fail" for every refusal (Q5); the EMQX 4 reason name says which one
    conn_ack: event.result,
    username: nanomqUsername(event.username),
    clientid: event.clientId,
    action: 'client_connack'
  })
}

export function clientDisconnected (event: DisconnectEvent): string {
  return JSON.stringify({
    reason: emqxReason(event.reason),
    username: nanomqUsername(event.username),
    clientid: event.clientId,
    action: 'client_disconnected'
  })
}

export function messagePublish (event: PublishEvent, encoding: PayloadEncoding): string {
  // concatenated rather than JSON.stringify of an object (half the cost); byte for byte what
  // JSON.stringify would give, tested. The worker writes the same bytes from a record
  // (records.mjs); this is the reference its tests compare against.
  return '{"ts":' + event.ts + // real milliseconds; NanoMQ 0.8 sends whole seconds times 1000 (Q8)
    ',"topic":' + json(event.topic) +
    ',"retain":' + event.retain +
    ',"qos":' + event.qos +
    ',"action":"message_publish","from_username":' + json(nanomqUsername(event.fromUsername)) +
    ',"from_client_id":' + json(event.from) +
    ',"payload":' + json(encodePayload(event.payload, encoding)) +
    userPropertiesField(event.properties?.userProperties) + '}'
}

// ---- EMQX 4 events (tapmq extensions to NanoMQ) -------------------------------------------

export function clientConnect (event: ConnectEvent): string {
  return JSON.stringify({
    action: 'client_connect',
    clientid: event.clientId,
    username: emqxUsername(event.username),
    ipaddress: event.peer.address,
    keepalive: event.keepalive,
    proto_ver: event.protoVer
  })
}

export function clientConnected (event: ConnectedEvent): string {
  return withUserProperties(JSON.stringify({
    action: 'client_connected',
    clientid: event.clientId,
    username: emqxUsername(event.username),
    ipaddress: event.peer.address,
    keepalive: event.keepalive,
    proto_ver: event.protoVer,
    connected_at: event.connectedAt
  }), event.userProperties)
}

export function clientSubscribe (event: SubscribeEvent): string {
  return JSON.stringify({
    action: 'client_subscribe',
    clientid: event.clientId,
    username: emqxUsername(event.username),
    topic: event.topic,
    opts: subscriptionOptions(event.qos, event)
  })
}

/** `opts`: MQTT 5 subscription options as EMQX 4 writes them (0/1, rh 0..2); MQTT 3.1.1: qos only. */
function subscriptionOptions (qos: number, options: { readonly nl?: boolean, readonly rap?: boolean, readonly rh?: 0 | 1 | 2 }) {
  return options.rh === undefined ? { qos } : { qos, nl: options.nl ? 1 : 0, rap: options.rap ? 1 : 0, rh: options.rh }
}

export function clientUnsubscribe (event: UnsubscribeEvent): string {
  return JSON.stringify({
    action: 'client_unsubscribe',
    clientid: event.clientId,
    username: emqxUsername(event.username),
    topic: event.topic,
    opts: {}
  })
}

export function sessionSubscribed (event: SessionSubscriptionEvent): string {
  return JSON.stringify({
    action: 'session_subscribed',
    clientid: event.clientId,
    username: emqxUsername(event.username),
    topic: event.topic,
    opts: subscriptionOptions(event.qos ?? 0, event)
  })
}

export function sessionUnsubscribed (event: SessionSubscriptionEvent): string {
  return JSON.stringify({
    action: 'session_unsubscribed',
    clientid: event.clientId,
    username: emqxUsername(event.username),
    topic: event.topic
  })
}

export function sessionTerminated (event: SessionTerminatedEvent): string {
  return JSON.stringify({
    action: 'session_terminated',
    clientid: event.clientId,
    username: emqxUsername(event.username),
    reason: emqxReason(event.reason)
  })
}

export function messageDelivered (event: DeliveredEvent, encoding: PayloadEncoding): string {
  return deliveryBody('message_delivered', event, encoding)
}

export function messageAcked (event: AckedEvent, encoding: PayloadEncoding): string {
  return deliveryBody('message_acked', event, encoding)
}

/** EMQX 4's message_delivered and message_acked share their fields; an ack may lack the message's payload and retain flag. */
function deliveryBody (action: string, event: DeliveredEvent | AckedEvent, encoding: PayloadEncoding): string {
  return '{"action":"' + action + '","clientid":' + json(event.clientId) +
    ',"username":' + json(emqxUsername(event.username)) +
    ',"from_client_id":' + json(event.from ?? null) +
    ',"from_username":' + json(emqxUsername(event.fromUsername)) +
    ',"topic":' + json(event.topic) +
    ',"qos":' + event.qos +
    ',"retain":' + (event.retain ?? false) +
    ',"payload":' + json(event.payload === undefined ? '' : encodePayload(event.payload, encoding)) +
    ',"ts":' + event.ts + userPropertiesField(event.properties?.userProperties) + '}'
}

/** Not an EMQX 4 webhook event; EMQX 5 has it, with a reason. */
export function messageDropped (event: DroppedEvent, encoding: PayloadEncoding): string {
  return '{"action":"message_dropped","from_client_id":' + json(event.from) +
    ',"from_username":' + json(emqxUsername(event.fromUsername)) +
    ',"topic":' + json(event.topic) +
    ',"qos":' + event.qos +
    ',"retain":' + event.retain +
    ',"payload":' + json(encodePayload(event.payload, encoding)) +
    ',"ts":' + event.ts +
    ',"reason":' + json(event.reason) + userPropertiesField(event.properties?.userProperties) + '}'
}
