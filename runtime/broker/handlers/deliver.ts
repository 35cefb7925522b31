// Delivery to a subscriber (`message.delivered`) and its acknowledgement (`message.acked`).
import type { AedesPublishPacket, Client } from 'aedes'
import type { AckedEvent } from '../../../sdk/events.ts'
import { connectedClients, internals, type OutgoingPublish, watchOutgoingPublishes } from '../aedes-internals.ts'
import { isTapped } from '../../hooks.ts'
import { messageProperties } from '../client-state.ts'
import type { BridgeContext } from '../context.ts'

/**
 * A QoS 1/2 delivery aedes did not queue: the MQTT 5 subscriber has its Receive Maximum of
 * messages unacknowledged and `max_outbound_queue` more waiting. A persistent session still
 * has it in its store; a clean session loses it. Counted, and logged once per connection.
 */
export function onOutboundDropped (ctx: BridgeContext) {
  return (client: Client) => {
    ctx.counters.outboundQueueDropped++
    const state = ctx.clients.get(client)
    if (state.outboundQueueFull) return
    state.outboundQueueFull = true
    ctx.log.warn({ clientId: client.id, limit: ctx.config.aedes.maxQueuedOutbound, clean: client.clean },
      'subscriber acknowledges too slowly: its outbound queue is full and further QoS 1/2 messages are not queued (counted in tapmq_outbound_queue_dropped_total)')
  }
}

export function authorizeForward (ctx: BridgeContext) {
  const { counters } = ctx
  return (_client: Client, packet: AedesPublishPacket) => {
    counters.messagesSent++
    return packet
  }
}

/**
 * Unacknowledged QoS 1/2 messages remembered per connection for `message.acked`. A client
 * that reads but never acknowledges must not make the broker hold its payloads: beyond
 * this, the oldest are forgotten (and their acks go unreported).
 */
export const MAX_AWAITING_ACK = 1024

/**
 * Per connection, from its CONNECT on: `message.delivered` for each PUBLISH written to it
 * (with the QoS it got), `message.acked` when the PUBACK (QoS 1) or PUBCOMP (QoS 2) for it
 * arrives. aedes' own `ack` event has no message for clean sessions and QoS 2.
 */
export function watchDeliveries (ctx: BridgeContext, client: Client): void {
  const { hooks } = ctx
  // created with the first QoS 1/2 delivery that message.acked wants: idle connections hold none
  let awaitingAck: Map<number, Omit<AckedEvent, 'clientId' | 'username' | 'messageId' | 'ts'>> | undefined
  // no named closures per connection here: under tsx (keepNames) each also costs a defineProperty
  watchOutgoingPublishes(client.conn, (packet: OutgoingPublish) => {
    if (packet.topic.startsWith('$SYS/')) return
    const delivered = isTapped(hooks.message.delivered)
    const acked = packet.qos > 0 && packet.messageId !== undefined && isTapped(hooks.message.acked)
    if (!delivered && !acked) return
    const from = packet.clientId
    // MQTT 5 properties only when the message has some (one shared copy per message, client-state.ts)
    const properties = packet.properties == null ? undefined : messageProperties(packet.properties)
    const message = properties === undefined
      ? { topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, retain: packet.retain, from, fromUsername: publisherName(ctx, from) }
      : { topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, retain: packet.retain, properties, from, fromUsername: publisherName(ctx, from) }
    if (acked) {
      if (awaitingAck === undefined) {
        awaitingAck = new Map()
        // the parser listener comes with the first message awaiting an ack: until then every
        // packet would pay for a second 'packet' listener (EventEmitter copies a listener array per emit)
        internals(client)._parser.on('packet', (ack) => {
          if ((ack.cmd !== 'puback' && ack.cmd !== 'pubcomp') || ack.messageId === undefined) return
          const sent = awaitingAck?.get(ack.messageId)
          if (!sent || sent.qos !== (ack.cmd === 'puback' ? 1 : 2)) return
          awaitingAck!.delete(ack.messageId)
          if (!isTapped(hooks.message.acked)) return
          hooks.message.acked.call(Object.freeze({
            ...sent, clientId: client.id, username: ctx.clients.get(client).info?.username, messageId: ack.messageId, ts: Date.now()
          }))
        })
      }
      awaitingAck.delete(packet.messageId!)
      if (awaitingAck.size >= MAX_AWAITING_ACK) awaitingAck.delete(awaitingAck.keys().next().value!)
      awaitingAck.set(packet.messageId!, message)
    }
    if (delivered) {
      hooks.message.delivered.call(Object.freeze({ ...message, clientId: client.id, username: ctx.clients.get(client).info?.username, ts: Date.now() }))
    }
  })
}

function publisherName (ctx: BridgeContext, from: string | undefined): string | undefined {
  const publisher = from === undefined ? undefined : connectedClients(ctx.broker)[from]
  return publisher ? ctx.clients.get(publisher).info?.username : undefined
}
