// CONNACK written: `client.connack` (rejections included), then `client.connected`.
import type { Client } from 'aedes'
import type { ConnackPacket } from 'aedes'
import type { ConnackEvent, ConnackResult } from '../../../sdk/events.ts'
import { connectProperties } from '../client-state.ts'
import { isTapped } from '../../hooks.ts'
import type { BridgeContext } from '../context.ts'

const RESULTS: Record<number, ConnackResult> = {
  0: 'success',
  1: 'unsupported_protocol_version',
  2: 'client_identifier_not_valid',
  3: 'server_unavailable',
  4: 'bad_username_or_password',
  5: 'not_authorized'
}

/** MQTT 5 CONNACK reason codes (§3.2.2.2) by EMQX name (emqx_reason_codes:name/1). */
const REASON_NAMES: Record<number, ConnackResult> = {
  0x00: 'success',
  0x80: 'unspecified_error',
  0x81: 'malformed_packet',
  0x82: 'protocol_error',
  0x83: 'implementation_specific_error',
  0x84: 'unsupported_protocol_version',
  0x85: 'client_identifier_not_valid',
  0x86: 'bad_username_or_password',
  0x87: 'not_authorized',
  0x88: 'server_unavailable',
  0x89: 'server_busy',
  0x8A: 'banned',
  0x8C: 'bad_authentication_method',
  0x90: 'topic_name_invalid',
  0x95: 'packet_too_large',
  0x97: 'quota_exceeded',
  0x99: 'payload_format_invalid',
  0x9A: 'retain_not_supported',
  0x9B: 'qos_not_supported',
  0x9C: 'use_another_server',
  0x9D: 'server_moved',
  0x9F: 'connection_rate_exceeded'
}

/** The MQTT 3.1.1 return code nearest to an MQTT 5 CONNACK reason code, as EMQX's emqx_reason_codes:compat/2. */
export function compatReturnCode (reasonCode: number): number {
  if (reasonCode < 0x80) return 0
  if (reasonCode <= 0x84) return 1
  if (reasonCode === 0x85) return 2
  if (reasonCode === 0x86) return 4
  if (reasonCode === 0x87 || reasonCode === 0x8A || reasonCode === 0x8C) return 5
  return 3
}

export function onConnackSent (ctx: BridgeContext) {
  return (packet: ConnackPacket, client: Client) => {
    // aedes 2 writes an MQTT 5 CONNACK with a reason code instead of a return code
    const reasonCode = (packet as { reasonCode?: number }).reasonCode
    const returnCode = reasonCode === undefined ? packet.returnCode ?? 0 : compatReturnCode(reasonCode)
    if (returnCode === 0) ctx.counters.connectsAccepted++
    else ctx.counters.connectsRejected++
    if (!isTapped(ctx.hooks.client.connack)) return
    const state = ctx.clients.get(client)
    const connect = state.connect
    const event: { -readonly [K in keyof ConnackEvent]: ConnackEvent[K] } = {
      clientId: client.id ?? connect?.clientId ?? '',
      username: connect?.username,
      protoVer: connect?.protocolVersion ?? 4,
      keepalive: connect?.keepalive ?? 0,
      returnCode,
      result: (reasonCode === undefined ? RESULTS[returnCode] : REASON_NAMES[reasonCode]) ?? 'not_authorized',
      sessionPresent: packet.sessionPresent ?? false,
      peer: state.peer,
      ts: Date.now()
    }
    // MQTT 5 only, and only what is there: a 3.1.1 event keeps exactly its old keys
    if (reasonCode !== undefined) {
      event.reasonCode = reasonCode
      const properties = state.info?.properties ?? (connect?.protocolVersion === 5 ? connectProperties(connect.properties) : undefined)
      if (properties !== undefined) event.properties = properties
      if (properties?.userProperties !== undefined) event.userProperties = properties.userProperties
    }
    ctx.hooks.client.connack.call(Object.freeze(event))
  }
}

export function onClientReady (ctx: BridgeContext) {
  return (client: Client) => {
    const state = ctx.clients.get(client)
    state.connectedAt = Date.now()
    // aedes may report a client ready after it already closed (aedes-and-tapable notes §8)
    if (client.closed || !state.info || !isTapped(ctx.hooks.client.connected)) return
    ctx.hooks.client.connected.call(Object.freeze({ ...state.info, connectedAt: state.connectedAt }))
  }
}
