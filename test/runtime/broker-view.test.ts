// BrokerView (host.broker): clients, subscriptions, the topic tree in NanoMQ's order,
// stats, and publish() as the broker itself.
import test from 'ava'
import { definePlugin, type BrokerView, type PublishEvent, type TopicTreeNode } from '../../sdk/index.ts'
import { testBroker } from '../helpers/broker.ts'
import { recordingPlugin } from '../helpers/hooks.ts'
import { connectClient, nextMessage, once, until } from '../helpers/mqtt.ts'

/** The tree as nested [level, clientIds, children] for readable comparisons. */
function shape (node: TopicTreeNode): unknown {
  return [node.topic, [...node.clientIds].sort(), node.children.map(shape)]
}

test('clients() and client(id) describe the connected clients', async (t) => {
  const broker = await testBroker(t)
  const view = broker.broker
  t.deepEqual(view.clients(), [])
  const a = await connectClient(t, broker.url, { clientId: 'a', username: 'ann', keepalive: 20, clean: true })
  await connectClient(t, broker.url, { clientId: 'b', clean: false, protocolVersion: 3, protocolId: 'MQIsdp' })
  await a.subscribeAsync({ 'x/+': { qos: 1 }, 'y/#': { qos: 0 } })

  t.deepEqual(view.clients().map((c) => c.clientId).sort(), ['a', 'b'])
  const summary = view.client('a')!
  const localPort = (a.stream as unknown as { localPort: number }).localPort
  t.like(summary, {
    clientId: 'a', username: 'ann', protoVer: 4, protoName: 'MQTT', keepalive: 20, cleanSession: true,
    peer: { address: '127.0.0.1', port: localPort, listenerPort: broker.port, transport: 'tcp' }
  })
  t.true(summary.connectedAt > 0)
  t.deepEqual([...summary.subscriptions].sort((p, q) => p.topic.localeCompare(q.topic)), [{ topic: 'x/+', qos: 1 }, { topic: 'y/#', qos: 0 }])
  t.like(view.client('b'), { protoVer: 3, protoName: 'MQIsdp', cleanSession: false, username: undefined })
  t.is(view.client('nobody'), undefined)
  t.true(Object.isFrozen(summary))

  const closed = once(a, 'close')
  await a.endAsync()
  await closed
  await until(() => view.client('a') === undefined, 'a gone from the view')
  t.deepEqual(view.clients().map((c) => c.clientId), ['b'])
  t.is(view.client('a'), undefined)
})

test('subscriptions() lists every client filter; subscriptions(id) one client', async (t) => {
  const broker = await testBroker(t)
  const a = await connectClient(t, broker.url, { clientId: 'a' })
  const b = await connectClient(t, broker.url, { clientId: 'b' })
  await a.subscribeAsync({ 's/1': { qos: 2 } })
  await b.subscribeAsync({ 's/1': { qos: 0 }, 's/+': { qos: 1 } })
  const all = broker.broker.subscriptions().map((s) => [s.clientId, s.topic, s.qos]).sort()
  t.deepEqual(all, [['a', 's/1', 2], ['b', 's/+', 1], ['b', 's/1', 0]])
  t.deepEqual(broker.broker.subscriptions('a'), [{ clientId: 'a', topic: 's/1', qos: 2 }])
  t.deepEqual(broker.broker.subscriptions('nobody'), [])
  await b.unsubscribeAsync('s/+')
  t.deepEqual(broker.broker.subscriptions('b').map((s) => s.topic), ['s/1'])
})

test("topicTree() orders children like NanoMQ: '+', '#', then literal levels sorted", async (t) => {
  const broker = await testBroker(t)
  const a = await connectClient(t, broker.url, { clientId: 'a' })
  const b = await connectClient(t, broker.url, { clientId: 'b' })
  await a.subscribeAsync(['sensors/temp', 'sensors/+', 'b', '#'])
  await b.subscribeAsync(['sensors/#', 'sensors/Z', 'sensors/+', '+/status', 'a/b/c'])
  t.deepEqual(shape(broker.broker.topicTree()), ['', [], [
    ['+', [], [['status', ['b'], []]]],
    ['#', ['a'], []],
    ['a', [], [['b', [], [['c', ['b'], []]]]]],
    ['b', ['a'], []],
    ['sensors', [], [
      ['+', ['a', 'b'], []],
      ['#', ['b'], []],
      ['Z', ['b'], []],
      ['temp', ['a'], []]
    ]]
  ]])
  t.true(Object.isFrozen(broker.broker.topicTree().children))
})

test('stats() counts connections, subscriptions and messages', async (t) => {
  const dropper = definePlugin({
    name: 'dropper',
    version: '1.0.0',
    setup (host) { host.hooks.message.publish.tap('dropper', (m, control) => { if (m.topic === 'drop') control.drop('x') }) }
  })
  const broker = await testBroker(t, { plugins: [dropper] })
  const before = broker.broker.stats()
  t.like(before, { connections: 0, subscriptions: 0, messagesReceived: 0, messagesSent: 0, messagesDropped: 0 })
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  const other = await connectClient(t, broker.url, { clientId: 'other' })
  await sub.subscribeAsync(['t', 'u'])
  await other.subscribeAsync('t')
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  const received = Promise.all([nextMessage(other), nextMessage(sub)])
  await pub.publishAsync('t', 'x', { qos: 1 })
  await received
  await pub.publishAsync('drop', 'x', { qos: 1 })
  const stats = broker.broker.stats()
  t.like(stats, { connections: 3, subscriptions: 3, messagesReceived: 2, messagesSent: 2, messagesDropped: 1 })
  t.true(stats.uptimeMs >= 0)
})

test('publish() from a plugin reaches subscribers and does not fire message.publish', async (t) => {
  let view: BrokerView | undefined
  const announcer = definePlugin({ name: 'announcer', version: '1.0.0', setup (host) { view = host.broker } })
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin, announcer] })
  t.is(view!.id, broker.broker.id)
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('news/#', { qos: 1 })
  const received = once<[string, Buffer, { qos: number, retain: boolean }]>(sub, 'message')
  await view!.publish({ topic: 'news/plugin', payload: 'from a plugin', qos: 1 })
  const [topic, payload, packet] = await received
  t.is(topic, 'news/plugin')
  t.is(payload.toString(), 'from a plugin')
  t.is(packet.qos, 1)
  // retained, with a Buffer payload: a later subscriber gets it
  await view!.publish({ topic: 'news/retained', payload: Buffer.from([1, 2, 3]), retain: true })
  const late = await connectClient(t, broker.url, { clientId: 'late' })
  const lateReceived = once<[string, Buffer, { retain: boolean }]>(late, 'message')
  await late.subscribeAsync('news/retained')
  const [lateTopic, latePayload, latePacket] = await lateReceived
  t.is(lateTopic, 'news/retained')
  t.deepEqual(latePayload, Buffer.from([1, 2, 3]))
  t.true(latePacket.retain)

  t.deepEqual(rec.of<PublishEvent>('message.publish').list, [], 'the broker publishing is not a client message')
  t.deepEqual(rec.of('message.dropped').list, [])
  t.true(rec.of<{ topic: string }>('message.delivered').list.some((d) => d.topic === 'news/plugin'), 'it is delivered like any message')
})
