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
//     allowed it, and lets aedes go on to its PUBACK once the message's store steps (the
//     retained copy, then the offline queues: outgoingEnqueueCombi, aedes' last store step
//     for a message) are durable: the batch holding them committed (see
//     SqliteStore.whenEnqueued).
//     Delivery to online subscribers goes on meanwhile, as it did after aedes' early
//     PUBACK. aedes' own broker.publish call for that packet is then answered at once;
//   - ends every other QoS > 0 broker.publish with a commit, so a QoS 2 PUBREC (and the
//     promise of BrokerView.publish) follows the COMMIT of the retained message, the
//     offline queues and the QoS 2 dedup entry.
import type { Aedes, Client, PublishPacket } from 'aedes'

type Done = (error?: Error | null) => void
type Publish = (packet: PublishPacket, client: Client | null, done?: Done) => void
type AuthorizePublish = (client: Client | null, packet: PublishPacket, done: Done) => void

export interface AckStore {
  /** whether some writes still wait for a COMMIT */
  readonly pending: boolean
  /** resolves once everything written so far is durable */
  flush (): Promise<void>
  /** calls `fn` once the offline-queue step of the message with this broker counter is durable */
  whenEnqueued (brokerCounter: number, fn: Done): void
  /** whether the waiter was still registered (the queue step never came) */
  forgetEnqueued (brokerCounter: number): boolean
}

export function ackAfterStore (broker: Aedes, store: AckStore): void {
  // the typings know only publish(packet, done); aedes' handlers call publish(packet, client, done)
  const publish = broker.publish.bind(broker) as unknown as Publish
  const authorize = broker.authorizePublish.bind(broker) as unknown as AuthorizePublish
  /** aedes' counter, which gives every routed message its brokerCounter, synchronously in publish() */
  const counter = broker as unknown as { counter: number }
  /** client PUBLISHes already routed from authorizePublish */
  const routed = new WeakSet<object>()

  const afterCommit = (done: Done) => {
    if (!store.pending) return done()
    store.flush().then(() => done(), (err: Error) => done(err))
  }

  const durablePublish: Publish = (packet, client, done) => {
    if (packet.qos === 0) return publish(packet, client, done)
    publish(packet, client, (err) => (err ? done?.(err) : afterCommit((flushErr) => done?.(flushErr))))
  }

  /** routes a client's QoS 1 PUBLISH; `stored` runs once it is committed, or with the routing's error */
  const routeQoS1 = (packet: PublishPacket, client: Client, stored: Done) => {
    let answered = false
    const answer: Done = (err) => {
      if (answered) return
      answered = true
      stored(err)
    }
    const before = counter.counter
    let mine = -1
    let finished = false
    publish(packet, client, (err) => {
      finished = true
      // the routing ended (or failed) without the queue step: answer after the commit of what it wrote
      const unseen = mine < 0 || store.forgetEnqueued(mine)
      if (err) return answer(err)
      if (unseen) afterCommit(answer)
    })
    // aedes-packet took the next counter value for this message, synchronously
    if (!finished && counter.counter === before + 1) {
      mine = counter.counter
      // a retained copy is a write of its own, committed with the batch: wait for that too
      store.whenEnqueued(mine, (err) => (err ? answer(err) : packet.retain ? afterCommit(answer) : answer()))
    }
  }

  broker.authorizePublish = ((client: Client | null, packet: PublishPacket, done: Done) => {
    // wills and the broker's own messages have no PUBACK to hold back
    const isClientQoS1 = client !== null && packet.qos === 1 && packet !== (client as Client & { will?: unknown }).will
    authorize(client, packet, (err) => {
      if (err || !isClientQoS1) return done(err)
      routeQoS1(packet, client, (routeErr) => {
        if (routeErr) return done(routeErr) // aedes closes the connection: no PUBACK, the client sends it again
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
