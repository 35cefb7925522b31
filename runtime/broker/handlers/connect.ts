// CONNECT: `client.connect`, then the `auth` chain, then the built-in anonymous policy.
import { randomBytes } from 'node:crypto'
import type { AuthenticateError, Client } from 'aedes'
import type { ConnectPacket } from 'aedes'
import type { AuthDecision, ConnackRejectCode } from '../../../sdk/events.ts'
import { connectedClients, markAssignedClientId, setServerKeepAlive } from '../aedes-internals.ts'
import { clientInfo } from '../client-state.ts'
import { isThenable } from '../../../sdk/decisions.ts'
import { isTapped } from '../../hooks.ts'
import { runDecision } from '../../isolation.ts'
import type { BridgeContext } from '../context.ts'
import { installConnackWriter, skipUnwatchedClientNotices } from './connect-fastpath.ts'
import { watchDeliveries } from './deliver.ts'

export function preConnect (ctx: BridgeContext) {
  installConnackWriter()
  skipUnwatchedClientNotices(ctx.broker, ctx.config.persistence.type === 'redis' || ctx.config.cluster.enable)
  return (client: Client, packet: ConnectPacket, done: (error: Error | null, success: boolean) => void) => {
    // NanoMQ assigns `nanomq-<8 hex>`; aedes would assign `aedes_<uuid>`. Either is legal.
    if (!packet.clientId) {
      packet.clientId = 'tapmq-' + randomBytes(4).toString('hex')
      // MQTT 5: the CONNACK names it (Assigned Client Identifier, [MQTT-3.2.2-16])
      markAssignedClientId(packet)
    }
    const state = ctx.clients.get(client)
    state.connect = packet
    watchDeliveries(ctx, client)
    if (isTapped(ctx.hooks.client.connect)) {
      ctx.hooks.client.connect.call(Object.freeze({ ...clientInfo(client, packet, state.peer), ts: Date.now() }))
    }
    done(null, true)
  }
}

/**
 * A refused CONNECT. aedes turns the return code into the MQTT 5 reason code (4 → 0x86 bad
 * user name or password, 5 → 0x87 not authorized, 3 → 0x88, 2 → 0x85) and, patched, sends
 * `reasonString` as the CONNACK's Reason String (§3.2.2.3.9) unless the client set Request
 * Problem Information to 0 (node_modules/aedes/lib/handlers/connect.js, `tapmq:`).
 */
function rejection (code: ConnackRejectCode, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code, reasonString: message }) as AuthenticateError
}

type AuthDone = (error: AuthenticateError | null, success: boolean | null) => void

export function authenticate (ctx: BridgeContext) {
  return (client: Client, username: string | undefined, password: Buffer | undefined, done: AuthDone) => {
    const state = ctx.clients.get(client)
    const info = clientInfo(client, state.connect ?? { cmd: 'connect', clientId: client.id, username } as ConnectPacket, state.peer)
    state.info = info

    const limited = ctx.limits.checkConnect({ keepalive: info.keepalive, clientId: info.clientId, protocolVersion: info.protoVer as 3 | 4 | 5 })
    if (limited) return done(rejection(limited.code, limited.reason), false)
    // MQTT 5: max_keepalive is imposed through CONNACK Server Keep Alive instead of a refusal
    if (info.protoVer === 5) setServerKeepAlive(client, ctx.limits.serverKeepAlive(info.keepalive))

    if (!isTapped(ctx.hooks.auth)) return decide(ctx, client, username, undefined, done)
    // a tap that answers synchronously (a cached decision) settles without a promise
    const decision = runDecision(ctx.hooks.auth, Object.freeze({ ...info, password }))
    if (!isThenable(decision)) return decide(ctx, client, username, decision, done)
    decision.then((answer) => decide(ctx, client, username, answer, done), (err: Error) => {
      // the isolation layer turns tap failures into denials; reaching here is a host bug
      ctx.log.error({ err }, 'auth hook failed')
      done(rejection(3, 'authentication is unavailable'), false)
    })
  }
}

// decide and accept are module functions, not closures per CONNECT: under tsx (keepNames)
// every named closure also costs a defineProperty of its name
function decide (ctx: BridgeContext, client: Client, username: string | undefined, decision: AuthDecision | undefined, done: AuthDone): void {
  if (decision?.result === 'allow') {
    ctx.clients.get(client).superuser = decision.superuser === true
    return accept(ctx, client, done)
  }
  if (decision?.result === 'deny') {
    ctx.log.info({ clientId: ctx.clients.get(client).info?.clientId, reason: decision.reason }, 'connect denied')
    return done(rejection(decision.code ?? 5, decision.reason ?? 'not authorized'), false)
  }
  // no plugin decided: the built-in policy
  if (ctx.config.allowAnonymous) return accept(ctx, client, done)
  if (username === undefined) return done(rejection(4, 'anonymous clients are not allowed (allow_anonymous = false)'), false)
  return done(rejection(5, 'no auth plugin accepted this client (allow_anonymous = false)'), false)
}

function accept (ctx: BridgeContext, client: Client, done: AuthDone): void {
  // the old connection with this id is about to be closed by aedes: say why. Not if this
  // one closed while auth ran: aedes then drops the answer and the old one stays.
  const clientId = ctx.clients.get(client).info!.clientId
  const previous = connectedClients(ctx.broker)[clientId]
  if (previous && previous !== client && !client.closed) ctx.clients.markCause(previous, 'takeover')
  done(null, true)
}
