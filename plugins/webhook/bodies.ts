// Request bodies, one compact JSON object per event.
//
// The three events NanoMQ 0.8 fires (client.connack, client.disconnected, message.publish)
// keep NanoMQ's key order and its `"undefined"` for a missing user name, byte for byte
// (nanomq 0.8.0 webhook_post.c). The other events follow EMQX 4's emqx_web_hook field sets
// with `action` first and `null` for a missing user name (notes §1.7).
import type {
  AckedEvent, ConnackEvent, ConnectEvent, ConnectedEvent, DeliveredEvent, DisconnectEvent, DisconnectReason, DroppedEvent,
  PublishEvent, SessionSubscriptionEvent, SessionTerminatedEvent, SubscribeEvent, UnsubscribeEvent
} from '../../sdk/index.ts'
import { encodePayload, type PayloadEncoding } from './encoding.mjs'

/**
 * The SDK's disconnect reasons in EMQX 4's vocabulary: NanoMQ 0.8 always says "normal"
 * (quirk Q6); EMQX says tcp_closed and takeovered where the SDK says peer_closed and takeover.
 */
const EMQX_REASONS: Partial<Record<DisconnectReason, string>> = {
  peer_closed: 'tcp_closed',
  takeover: 'takeovered'
}

export function emqxReason (reason: DisconnectReason): string {
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
    ',"payload":' + json(encodePayload(event.payload, encoding)) + '}'
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
  return JSON.stringify({
    action: 'client_connected',
    clientid: event.clientId,
    username: emqxUsername(event.username),
    ipaddress: event.peer.address,
    keepalive: event.keepalive,
    proto_ver: event.protoVer,
    connected_at: event.connectedAt
  })
}

export function clientSubscribe (event: SubscribeEvent): string {
  return JSON.stringify({
    action: 'client_subscribe',
    clientid: event.clientId,
    username: emqxUsername(event.username),
    topic: event.topic,
    opts: { qos: event.qos }
  })
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
    opts: { qos: event.qos ?? 0 }
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
    ',"ts":' + event.ts + '}'
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
    ',"reason":' + json(event.reason) + '}'
}
