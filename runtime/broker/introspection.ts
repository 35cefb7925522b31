// The read side of the broker for plugins (BrokerView): clients, subscriptions, the
// subscription trie and counters, built from aedes' state on demand.
import type { Aedes, AedesPublishPacket, PublishPacket } from 'aedes'
import type { Message, QoS } from '../../sdk/events.ts'
import type { BrokerNode, BrokerView, ClientSummary, PublishRequest, SubscriptionInfo, TopicTreeNode } from '../../sdk/plugin.ts'
import { connectedClients, internals } from './aedes-internals.ts'
import type { BridgeContext } from './context.ts'

interface MutableNode { topic: string, clientIds: string[], children: Map<string, MutableNode> }

/** NanoMQ's child order: `+`, then `#`, then literal levels in byte order. */
function compareLevels (a: string, b: string): number {
  const rank = (level: string) => (level === '+' ? 0 : level === '#' ? 1 : 2)
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)
}

function freezeNode (node: MutableNode): TopicTreeNode {
  const children = [...node.children.values()].sort((a, b) => compareLevels(a.topic, b.topic)).map(freezeNode)
  return Object.freeze({ topic: node.topic, clientIds: Object.freeze([...node.clientIds]), children: Object.freeze(children) })
}

export function buildTopicTree (subscriptions: readonly SubscriptionInfo[]): TopicTreeNode {
  const root: MutableNode = { topic: '', clientIds: [], children: new Map() }
  for (const { clientId, topic } of subscriptions) {
    let node = root
    for (const level of topic.split('/')) {
      let child = node.children.get(level)
      if (!child) {
        child = { topic: level, clientIds: [], children: new Map() }
        node.children.set(level, child)
      }
      node = child
    }
    node.clientIds.push(clientId)
  }
  return freezeNode(root)
}

function countNodes (node: TopicTreeNode): number {
  return node.children.reduce((sum, child) => sum + 1 + countNodes(child), 0)
}

/** Ids of clients that left with clean session false: their sessions live on in the persistence. */
function trackOfflineSessions (broker: Aedes): Set<string> {
  const offline = new Set<string>()
  broker.on('client', (client) => offline.delete(client.id))
  broker.on('clientDisconnect', (client) => {
    const current = connectedClients(broker)[client.id]
    // after a takeover the id belongs to the newer connection
    if (!client.clean && (current === undefined || current === client)) offline.add(client.id)
  })
  return offline
}

function retainedTopics (broker: Aedes): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const topics = new Set<string>()
    const persistence = (broker as unknown as { persistence: { createRetainedStreamCombi (patterns: string[]): NodeJS.ReadableStream } }).persistence
    persistence.createRetainedStreamCombi(['#'])
      .on('data', (packet: { topic: string }) => topics.add(packet.topic))
      .on('error', reject)
      .on('end', () => resolve([...topics].sort()))
  })
}

/** `version` is tapmq's, which is what users and the HTTP API report. */
export function createBrokerView (ctx: BridgeContext, broker: Aedes, version: string, nodes?: () => BrokerNode[]): BrokerView {
  const live = () => Object.values(connectedClients(broker)).filter((client) => client !== undefined && client.connected)

  const subscriptionsOf = (clientId: string, client = connectedClients(broker)[clientId]) =>
    Object.entries(client ? internals(client).subscriptions ?? {} : {})
      .map(([topic, sub]) => ({ clientId, topic, qos: sub.qos as QoS }))

  const summary = (clientId: string): ClientSummary | undefined => {
    const client = connectedClients(broker)[clientId]
    const state = client && ctx.clients.get(client)
    if (!client || !state?.info) return undefined
    return Object.freeze({
      ...state.info,
      connectedAt: state.connectedAt,
      subscriptions: subscriptionsOf(clientId, client).map(({ topic, qos }) => ({ topic, qos }))
    })
  }

  const allSubscriptions = () => live().flatMap((client) => subscriptionsOf(client!.id, client))
  const offlineSessions = trackOfflineSessions(broker)
  const countOffline = () => {
    let count = 0
    for (const id of offlineSessions) if (!connectedClients(broker)[id]) count++
    return count
  }

  return Object.freeze({
    id: broker.id,
    version,
    clients: () => live().map((client) => summary(client!.id)).filter((c): c is ClientSummary => c !== undefined),
    client: summary,
    subscriptions: (clientId?: string) => (clientId === undefined ? allSubscriptions() : subscriptionsOf(clientId)),
    topicTree: () => buildTopicTree(allSubscriptions()),
    retainedTopics: () => retainedTopics(broker),
    stats: () => ({
      connections: broker.connectedClients,
      subscriptions: allSubscriptions().length,
      messagesReceived: ctx.counters.messagesReceived,
      messagesSent: ctx.counters.messagesSent,
      messagesDropped: ctx.counters.messagesDropped,
      uptimeMs: Date.now() - ctx.counters.startedAt,
      sessions: broker.connectedClients + countOffline(),
      topics: countNodes(buildTopicTree(allSubscriptions()))
    }),
    publish: (message: PublishRequest) => new Promise<void>((resolve, reject) => {
      const payload = typeof message.payload === 'string' ? Buffer.from(message.payload) : message.payload
      broker.publish({
        cmd: 'publish', topic: message.topic, payload, qos: message.qos ?? 0, retain: message.retain ?? false, dup: false,
        // MQTT 5 properties (a copy: aedes may write to them), only when given
        ...(message.properties === undefined ? {} : { properties: { ...message.properties } as PublishPacket['properties'] })
      }, (err?: Error | null) => (err ? reject(err) : resolve()))
    }),
    subscribe: (filter: string, handler: (message: Message) => void) => new Promise<() => Promise<void>>((resolve) => {
      const dollarSafe = filter.startsWith('+') || filter.startsWith('#')
      const deliver = (packet: AedesPublishPacket, done: () => void) => {
        // [MQTT-4.7.2-1] first-level wildcards never match topics starting with '$'
        if (!(dollarSafe && packet.topic.startsWith('$'))) {
          try {
            handler(Object.freeze({ topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos as QoS, retain: packet.retain }))
          } catch (err) {
            ctx.log.error({ err, filter }, 'in-process subscriber failed')
          }
        }
        done()
      }
      broker.subscribe(filter, deliver, () => resolve(() => new Promise<void>((unsubscribed) => broker.unsubscribe(filter, deliver, () => unsubscribed()))))
    }),
    disconnect: (clientId: string) => {
      const client = connectedClients(broker)[clientId]
      if (!client) return false
      ctx.clients.markCause(client, 'kicked')
      // MQTT 5: DISCONNECT 0x98 (Administrative action) first [MQTT-3.14.2-1]; 3.1.1: closed
      client.disconnect({ reasonCode: 0x98 }, () => {})
      return true
    },
    nodes: () => (nodes ? nodes() : [Object.freeze({ id: broker.id, name: broker.id, lastHeartbeat: Date.now(), self: true })])
  })
}
