// Delivery to a subscriber (`message.delivered`) and its acknowledgement (`message.acked`).
import type { AedesPublishPacket, Client } from 'aedes'
import type { PublishPacket, PubrelPacket } from 'aedes'
import type { QoS } from '../../../sdk/events.ts'
import { connectedClients } from '../aedes-internals.ts'
import { isTapped } from '../../hooks.ts'
import type { BridgeContext } from '../context.ts'

type RoutedPacket = AedesPublishPacket & { clientId?: string }

export function authorizeForward (ctx: BridgeContext) {
  const { hooks, counters } = ctx
  return (client: Client, packet: AedesPublishPacket) => {
    counters.messagesSent++
    if (isTapped(hooks.message.delivered) && !packet.topic.startsWith('$SYS/')) {
      const from = (packet as RoutedPacket).clientId
      const publisher = from === undefined ? undefined : connectedClients(ctx.broker)[from]
      hooks.message.delivered.call({
        topic: packet.topic,
        payload: packet.payload as Buffer,
        qos: packet.qos as QoS,
        retain: packet.retain,
        clientId: client.id,
        username: ctx.clients.get(client).info?.username,
        from,
        fromUsername: publisher ? ctx.clients.get(publisher).info?.username : undefined,
        ts: Date.now()
      })
    }
    return packet
  }
}

export function onAck (ctx: BridgeContext) {
  return (packet: PublishPacket | PubrelPacket | undefined, client: Client) => {
    // aedes reports acks of retained QoS 1 messages to clean clients without a packet
    if (!packet || packet.cmd !== 'publish' || !isTapped(ctx.hooks.message.acked)) return
    if (packet.topic.startsWith('$SYS/')) return
    const from = (packet as RoutedPacket).clientId
    const publisher = from === undefined ? undefined : connectedClients(ctx.broker)[from]
    ctx.hooks.message.acked.call({
      clientId: client.id,
      username: ctx.clients.get(client).info?.username,
      topic: packet.topic,
      qos: packet.qos as QoS,
      messageId: packet.messageId ?? 0,
      ts: Date.now(),
      payload: packet.payload as Buffer | undefined,
      retain: packet.retain,
      from,
      fromUsername: publisher ? ctx.clients.get(publisher).info?.username : undefined
    })
  }
}
