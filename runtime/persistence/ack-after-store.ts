// Acknowledge a PUBLISH only after it is on disk.
//
// aedes 1.2 (lib/handlers/publish.js) answers a QoS 1 PUBLISH by writing the PUBACK first
// and routing afterwards: broker.publish (retained store, offline queues, delivery) starts
// in the write callback, a setImmediate later. A broker killed in between has acknowledged
// a message that no store holds. For QoS 2 aedes stores the dedup entry, routes, then
// writes the PUBREC, but the store commits at the end of the turn (group commit), so the
// PUBREC must also wait for that commit.
//
// With a durable store tapmq therefore:
//   - routes a client's QoS 1 PUBLISH from inside authorizePublish, after the plugins
//     allowed it, and only then lets aedes continue to its PUBACK; aedes' own
//     broker.publish call for that packet is answered at once;
//   - ends every QoS > 0 broker.publish with store.flush(), so the PUBACK/PUBREC (and the
//     promise of BrokerView.publish) follow the COMMIT of the retained message, the
//     offline queues and the QoS 2 dedup entry.
// The price: a QoS 1 publisher's PUBACK also waits for the delivery to online subscribers,
// as aedes already does for QoS 2's PUBREC.
import type { Aedes, Client, PublishPacket } from 'aedes'

type Done = (error?: Error | null) => void
type Publish = (packet: PublishPacket, client: Client | null, done?: Done) => void
type AuthorizePublish = (client: Client | null, packet: PublishPacket, done: Done) => void

export interface Flushable {
  /** resolves once everything written so far is durable */
  flush (): Promise<void>
}

export function ackAfterStore (broker: Aedes, store: Flushable): void {
  // the typings know only publish(packet, done); aedes' handlers call publish(packet, client, done)
  const publish = broker.publish.bind(broker) as unknown as Publish
  const authorize = broker.authorizePublish.bind(broker) as unknown as AuthorizePublish
  /** client PUBLISHes already routed from authorizePublish */
  const routed = new WeakSet<object>()

  const durablePublish: Publish = (packet, client, done) => {
    if (packet.qos === 0) return publish(packet, client, done)
    publish(packet, client, (err) => {
      if (err) return done?.(err)
      store.flush().then(() => done?.(), (flushErr: Error) => done?.(flushErr))
    })
  }

  broker.authorizePublish = ((client: Client | null, packet: PublishPacket, done: Done) => {
    // wills and the broker's own messages have no PUBACK to hold back
    const isClientQoS1 = client !== null && packet.qos === 1 && packet !== (client as Client & { will?: unknown }).will
    authorize(client, packet, (err) => {
      if (err || !isClientQoS1) return done(err)
      durablePublish(packet, client, (publishErr) => {
        if (publishErr) return done(publishErr) // aedes closes the connection: no PUBACK, the client sends it again
        routed.add(packet)
        done(null)
      })
    })
  }) as Aedes['authorizePublish']

  broker.publish = ((packet: PublishPacket, client: Client | null | Done, done?: Done) => {
    if (typeof client === 'function') return durablePublish(packet, null, client)
    if (routed.has(packet)) {
      routed.delete(packet)
      return done?.()
    }
    durablePublish(packet, client ?? null, done)
  }) as unknown as Aedes['publish']
}
