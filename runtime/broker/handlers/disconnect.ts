// Connection closed: classify why (aedes 1.2 gives no reason), then `client.disconnected`
// and, for a clean session, `session.terminated` (an MQTT 5 session with an expiry interval
// terminates when aedes expires it: onSessionExpired).
import type { Client } from 'aedes'
import type { DisconnectReason } from '../../../sdk/events.ts'
import { internals } from '../aedes-internals.ts'
import { isTapped } from '../../hooks.ts'
import type { BridgeContext } from '../context.ts'

/** aedes error texts that name a cause better than "protocol error". */
function reasonOfError (message: string): DisconnectReason {
  if (message === 'keep alive timeout') return 'keepalive_timeout'
  if (message === 'drain timeout') return 'slow_consumer'
  return 'protocol_error'
}

export function onKeepaliveTimeout (ctx: BridgeContext) {
  return (client: Client) => ctx.clients.markCause(client, 'keepalive_timeout')
}

export function onClientError (ctx: BridgeContext) {
  return (client: Client, error: Error) => {
    // the error aedes gets after tapmq sent an MQTT 5 publisher DISCONNECT 0x87 (publish.ts): no client error
    if ((error as { tapmqDenial?: boolean }).tapmqDenial === true) return
    ctx.clients.markCause(client, reasonOfError(error.message), error.message)
    ctx.log.debug({ clientId: client.id, err: error.message }, 'client error')
  }
}

/** An MQTT 5 session ended by its expiry interval, after its connection (or across a restart). */
export function onSessionExpired (ctx: BridgeContext) {
  return (client: Client) => {
    const { hooks } = ctx
    if (!isTapped(hooks.session.terminated)) return
    hooks.session.terminated.call(Object.freeze({ clientId: client.id, username: ctx.clients.get(client).info?.username, reason: 'expired', ts: Date.now() }))
  }
}

export function onClientDisconnect (ctx: BridgeContext) {
  return (client: Client) => {
    const state = ctx.clients.get(client)
    const reason: DisconnectReason = state.cause?.reason ??
      (internals(client)._disconnected || (client as { _disconnectReceived?: boolean })._disconnectReceived ? 'normal' : ctx.broker.closed ? 'shutdown' : 'peer_closed')
    const ts = Date.now()
    const { hooks } = ctx
    const username = state.info?.username
    if (isTapped(hooks.client.disconnected)) {
      hooks.client.disconnected.call(Object.freeze({
        clientId: client.id,
        username,
        protoVer: state.info?.protoVer ?? client.version,
        reason,
        detail: state.cause?.detail,
        // MQTT 5: the reason code of the DISCONNECT that ended it, the broker's or the client's
        ...(client.version === 5 && client.disconnectReasonCode !== null && client.disconnectReasonCode !== undefined
          ? { reasonCode: client.disconnectReasonCode }
          : {}),
        peer: state.peer,
        ts
      }))
    }
    // a taken-over session lives on in the new connection
    if (client.clean && reason !== 'takeover' && isTapped(hooks.session.terminated)) {
      hooks.session.terminated.call(Object.freeze({ clientId: client.id, username, reason, ts }))
    }
  }
}
