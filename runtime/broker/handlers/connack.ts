// CONNACK written: `client.connack` (rejections included), then `client.connected`.
import type { Client } from 'aedes'
import type { ConnackPacket } from 'aedes'
import type { ConnackResult } from '../../../sdk/events.ts'
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

export function onConnackSent (ctx: BridgeContext) {
  return (packet: ConnackPacket, client: Client) => {
    const returnCode = packet.returnCode ?? 0
    if (returnCode === 0) ctx.counters.connectsAccepted++
    else ctx.counters.connectsRejected++
    if (!isTapped(ctx.hooks.client.connack)) return
    const state = ctx.clients.get(client)
    const connect = state.connect
    ctx.hooks.client.connack.call(Object.freeze({
      clientId: client.id ?? connect?.clientId ?? '',
      username: connect?.username,
      protoVer: connect?.protocolVersion ?? 4,
      keepalive: connect?.keepalive ?? 0,
      returnCode,
      result: RESULTS[returnCode] ?? 'not_authorized',
      sessionPresent: packet.sessionPresent ?? false,
      peer: state.peer,
      ts: Date.now()
    }))
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
