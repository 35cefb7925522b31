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
import type { BridgeContext } from '../context.ts'

type Done = (error?: Error | null) => void

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

function isPublishableTopic (topic: string): boolean {
  return isValidTopicFilter(topic) && !topic.includes('+') && !topic.includes('#') && !topic.startsWith('$SYS')
}

export function authorizePublish (ctx: BridgeContext) {
  const { hooks, counters } = ctx

  const drop = (client: Client, packet: PublishPacket, reason: DropReason, detail: string | undefined, done: Done) => {
    counters.messagesDropped++
    dropped.add(packet)
    if (isTapped(hooks.message.dropped)) {
      hooks.message.dropped.call(Object.freeze({
        topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, retain: packet.retain,
        from: client.id, fromUsername: ctx.clients.get(client).info?.username, reason, detail, ts: Date.now()
      }))
    }
    done(null)
  }

  const observe = (client: Client, packet: PublishPacket, isWill: boolean, done: Done) => {
    if (!isTapped(hooks.message.publish)) return done(null)
    const message: PublishEvent = Object.freeze({
      topic: packet.topic,
      payload: packet.payload as Buffer,
      qos: packet.qos as QoS,
      retain: packet.retain,
      from: client.id,
      fromUsername: ctx.clients.get(client).info?.username,
      ts: Date.now(),
      isWill
    })
    const verdict = new PublishVerdict(message)
    hooks.message.publish.call(message, verdict)
    if (verdict.dropped !== undefined) return drop(client, packet, 'dropped_by_plugin', verdict.dropped, done)
    const next = verdict.current
    if (next !== message) {
      if (!isPublishableTopic(next.topic)) {
        return drop(client, packet, 'dropped_by_plugin', `rewritten to an invalid topic ${JSON.stringify(next.topic)}`, done)
      }
      packet.topic = next.topic
      packet.payload = next.payload
      packet.retain = next.retain
    }
    done(null)
  }

  const remembered = new RememberedDecisions()
  const decided = (client: Client, packet: PublishPacket, isWill: boolean, decision: AuthorizeDecision | undefined, done: Done) => {
    if (decision?.result !== 'deny') return observe(client, packet, isWill, done)
    if (decision.disconnect) {
      ctx.clients.markCause(client, 'not_authorized', decision.reason)
      return done(new Error(`publish to ${packet.topic} not authorized`))
    }
    drop(client, packet, 'not_authorized', decision.reason, done)
  }

  return (client: Client | null, packet: PublishPacket, done: Done) => {
    // an orphan will of a dead broker in a cluster: nobody to attribute it to
    if (client === null) return done(null)
    if (packet.topic.startsWith('$SYS/')) return done(new Error('$SYS/ topic is reserved'))
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
    }, (err: Error) => drop(client, packet, 'not_authorized', err.message, done))
  }
}
