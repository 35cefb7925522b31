// PUBLISH from a client (or its will), before routing: `authorize.publish`, then
// `message.publish`, whose taps may drop or rewrite the message.
import type { Aedes, Client } from 'aedes'
import type { PublishPacket } from 'aedes'
import { isThenable } from '../../../sdk/decisions.ts'
import type { AuthorizeDecision, DropReason, Message, PublishControl, PublishEvent, QoS } from '../../../sdk/events.ts'
import { isValidTopicFilter } from '../../../sdk/topic.ts'
import { isTapped } from '../../hooks.ts'
import { runDecision, soleLiveTap } from '../../isolation.ts'
import { RememberedDecisions } from '../remembered.ts'
import { setAckReason } from '../aedes-internals.ts'
import { messageProperties } from '../client-state.ts'
import type { BridgeContext } from '../context.ts'

type Done = (error?: Error | null) => void

/** MQTT 5 reason codes of a PUBACK/PUBREC (§3.4.2.1) and DISCONNECT (§3.14.2.1). */
const NO_MATCHING_SUBSCRIBERS = 0x10
const NOT_AUTHORIZED = 0x87

/**
 * The error aedes gets for an MQTT 5 PUBLISH denied with `disconnect` (after tapmq sent the
 * DISCONNECT 0x87): onClientError (disconnect.ts) does not take it for the cause, which
 * is `not_authorized` already.
 */
export class PublishDenied extends Error {
  readonly tapmqDenial = true
}

class PublishVerdict implements PublishControl {
  dropped: string | undefined
  constructor (public current: Message) {}

  drop (reason: string): void {
    this.dropped ??= reason
  }

  rewrite (message: Partial<Omit<Message, 'qos'>>): void {
    this.current = { ...this.current, ...message }
  }
}

/**
 * Packets that were acknowledged but must not be routed. aedes has no "drop" answer for
 * authorizePublish (an error closes the connection), so broker.publish skips these.
 */
const dropped = new WeakSet<object>()

export function skipDroppedPackets (broker: Aedes): void {
  // the typings know only publish(packet, done); aedes' handlers call publish(packet, client, done)
  type Publish = (packet: PublishPacket, client: Client | null, done?: Done) => void
  const publish = broker.publish.bind(broker) as unknown as Publish
  const skipping: Publish = (packet, client, done) => {
    if (dropped.has(packet)) {
      dropped.delete(packet)
      return done?.()
    }
    publish(packet, client, done)
  }
  broker.publish = ((packet: PublishPacket, client: Client | null | Done, done?: Done) =>
    typeof client === 'function' ? skipping(packet, null, client) : skipping(packet, client, done)) as unknown as Aedes['publish']
}

/** aedes 2's server-side DISCONNECT (MQTT 5; closes the connection of an older client). */
interface ServerDisconnect {
  disconnect (options: { reasonCode: number, properties?: { reasonString?: string } }, done: () => void): void
}

/**
 * [MQTT-3.14.2-3] a DISCONNECT carries a Reason String only where it keeps the packet within
 * the client's Maximum Packet Size (and the string within UTF-8's 65535 bytes)
 */
function reasonStringFits (client: Client, reason: string): boolean {
  const bytes = Buffer.byteLength(reason)
  const max = (client as { maximumPacketSize?: number }).maximumPacketSize
  // fixed header 1 + remaining length <= 4, reason code 1, property length <= 4, identifier 1, length 2
  return bytes <= 65535 && (!max || 1 + 4 + 1 + 4 + 1 + 2 + bytes <= max)
}

/**
 * A topic no client may publish to: the broker's own, and with shared subscriptions on, their
 * prefixes (off, `$share/g/t` is an ordinary filter that matches only that topic, as in aedes 1.2).
 */
function reservedTopic (topic: string, shared: boolean): string | undefined {
  if (topic.charCodeAt(0) !== 0x24 /* $ */) return undefined
  if (topic.startsWith('$SYS/')) return '$SYS/ topic is reserved'
  // a filter prefix, never a topic name: nothing is shared under it, and a persistent
  // session's stored `$share/g/t` would otherwise match it literally (MQTT 5.0 §4.8.2)
  if (shared && (topic.startsWith('$share/') || topic.startsWith('$queue/'))) return `${topic.slice(0, topic.indexOf('/'))}/ is a shared-subscription prefix, not a topic name`
  return undefined
}

function isPublishableTopic (topic: string, shared: boolean): boolean {
  return isValidTopicFilter(topic) && !topic.includes('+') && !topic.includes('#') && !topic.startsWith('$SYS') && reservedTopic(topic, shared) === undefined
}

export function authorizePublish (ctx: BridgeContext) {
  const { hooks, counters } = ctx
  const shared = ctx.config.aedes.sharedSubscriptionAvailable

  const drop = (client: Client, packet: PublishPacket, isWill: boolean, reason: DropReason, detail: string | undefined, done: Done) => {
    counters.messagesDropped++
    if (isTapped(hooks.message.dropped)) {
      const properties = packet.properties == null ? undefined : messageProperties(packet.properties)
      const event = {
        topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, retain: packet.retain,
        from: client.id, fromUsername: ctx.clients.get(client).info?.username, reason, detail, ts: Date.now()
      }
      hooks.message.dropped.call(Object.freeze(properties === undefined ? event : { ...event, properties }))
    }
    // MQTT 5, QoS 1/2: the acknowledgement says what happened (MQTT 3.1.1 has no way to, a will no ack)
    if (client.version === 5 && packet.qos > 0 && !isWill) {
      // 0x87 Not authorized (§3.4.2.1): aedes answers with it and does not route the message;
      // the connection stays. A plugin's drop is no error to the publisher (as EMQX, where a
      // message a hook stopped gets 0x10 No matching subscribers). Either way the reason is
      // the Reason String (aedes leaves it out for Request Problem Information 0, [MQTT-3.1.2-29]).
      if (reason === 'not_authorized') setAckReason(packet, NOT_AUTHORIZED, detail ?? `publish to ${packet.topic} not authorized`)
      else setAckReason(packet, NO_MATCHING_SUBSCRIBERS, detail)
    }
    dropped.add(packet)
    done(null)
  }

  const observe = (client: Client, packet: PublishPacket, isWill: boolean, done: Done) => {
    if (!isTapped(hooks.message.publish)) return done(null)
    // MQTT 5 properties only when the packet has some: an MQTT 3.1.1 message allocates nothing more
    const properties = packet.properties == null ? undefined : messageProperties(packet.properties)
    const message: PublishEvent = Object.freeze(properties === undefined
      ? {
          topic: packet.topic,
          payload: packet.payload as Buffer,
          qos: packet.qos as QoS,
          retain: packet.retain,
          from: client.id,
          fromUsername: ctx.clients.get(client).info?.username,
          ts: Date.now(),
          isWill
        }
      : {
          topic: packet.topic,
          payload: packet.payload as Buffer,
          qos: packet.qos as QoS,
          retain: packet.retain,
          properties,
          from: client.id,
          fromUsername: ctx.clients.get(client).info?.username,
          ts: Date.now(),
          isWill
        })
    const verdict = new PublishVerdict(message)
    hooks.message.publish.call(message, verdict)
    if (verdict.dropped !== undefined) return drop(client, packet, isWill, 'dropped_by_plugin', verdict.dropped, done)
    const next = verdict.current
    if (next !== message) {
      if (!isPublishableTopic(next.topic, shared)) {
        return drop(client, packet, isWill, 'dropped_by_plugin', `rewritten to an invalid topic ${JSON.stringify(next.topic)}`, done)
      }
      packet.topic = next.topic
      packet.payload = next.payload
      packet.retain = next.retain
      // replaced whole; a copy, since aedes may write to the packet's properties (§3.3.2.3)
      if (next.properties !== message.properties) packet.properties = next.properties === undefined ? undefined : { ...next.properties } as PublishPacket['properties']
    }
    done(null)
  }

  const remembered = new RememberedDecisions()
  const decided = (client: Client, packet: PublishPacket, isWill: boolean, decision: AuthorizeDecision | undefined, done: Done) => {
    if (decision?.result !== 'deny') return observe(client, packet, isWill, done)
    if (decision.disconnect) {
      ctx.clients.markCause(client, 'not_authorized', decision.reason)
      if (client.version === 5 && !isWill) {
        // MQTT 5: a DISCONNECT 0x87 says why (§3.14.2.1; a Reason String is allowed on DISCONNECT
        // whatever Request Problem Information says, [MQTT-3.1.2-29]); the PUBLISH is not routed
        const properties = decision.reason && reasonStringFits(client, decision.reason) ? { reasonString: decision.reason } : undefined
        const denied = new PublishDenied(decision.reason ?? `publish to ${packet.topic} not authorized`)
        return (client as unknown as ServerDisconnect).disconnect({ reasonCode: NOT_AUTHORIZED, properties }, () => done(denied))
      }
      return done(new Error(`publish to ${packet.topic} not authorized`))
    }
    drop(client, packet, isWill, 'not_authorized', decision.reason, done)
  }

  return (client: Client | null, packet: PublishPacket, done: Done) => {
    // an orphan will of a dead broker in a cluster: nobody to attribute it to
    if (client === null) return done(null)
    const reserved = reservedTopic(packet.topic, shared)
    if (reserved !== undefined) return done(new Error(reserved))
    counters.messagesReceived++
    // read now: aedes clears client.will right after calling us, before an async answer
    const isWill = packet === (client as Client & { will?: unknown }).will
    const state = ctx.clients.get(client)
    if (state.superuser || !state.info || !isTapped(hooks.authorize.publish)) return observe(client, packet, isWill, done)
    // an answer the only ACL plugin let us remember: no plugin call at all
    const sole = soleLiveTap(hooks.authorize.publish)
    if (sole !== undefined) {
      const known = remembered.get(client, packet.qos, packet.topic, sole)
      if (known !== undefined) return decided(client, packet, isWill, known, done)
    }
    // synchronous when every ACL tap answers at once (a cache hit): no promise and no closure per PUBLISH
    const decision = runDecision(hooks.authorize.publish, Object.freeze({
      access: 'publish', topic: packet.topic, qos: packet.qos as QoS, client: state.info, superuser: false
    } as const))
    if (!isThenable(decision)) {
      if (sole !== undefined) remembered.remember(client, packet.qos, packet.topic, decision, sole)
      return decided(client, packet, isWill, decision, done)
    }
    decision.then((answer) => {
      if (sole !== undefined) remembered.remember(client, packet.qos, packet.topic, answer, sole)
      decided(client, packet, isWill, answer, done)
    }, (err: Error) => drop(client, packet, isWill, 'not_authorized', err.message, done))
  }
}
