// The bridge between two tapmq brokers in this process: `forwards` go up, subscriptions
// come down, nothing comes back round.
import test from 'ava'
import type { PublishEvent } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { connectClient, nextMessage, Recorder, settle, until } from '../helpers/mqtt.ts'
import { bridgeConfig, bridgeStatus, edgeBroker, waitBridge, waitCounter, waitSubscribed } from './helpers.ts'

/** An upstream tapmq that records every PUBLISH its clients send. */
async function upstreamBroker (t: Parameters<typeof testBroker>[0]) {
  const published = new Recorder<PublishEvent>()
  const broker = await testBroker(t, { plugins: [tapping('test:upstream', (hooks) => hooks.message.publish.tap('test:upstream', published.push))] })
  return { broker, published }
}

test('local messages on forwards go upstream with their QoS and retain flag; others stay local', async (t) => {
  const { broker: upstream } = await upstreamBroker(t)
  const cloud = await connectClient(t, upstream.url, { clientId: 'cloud' })
  await cloud.subscribeAsync('#', { qos: 2 })
  const received: Array<[string, string, number, boolean]> = []
  cloud.on('message', (topic, payload, packet) => received.push([topic, payload.toString(), packet.qos, packet.retain]))

  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${upstream.port}`, { forwards: ['topic1/#', 'topic2/+/x'] })])
  await waitBridge(edge, 'connected')
  const device = await connectClient(t, edge.url, { clientId: 'device' })
  await device.publishAsync('local/only', 'no', { qos: 1 })
  await device.publishAsync('topic1/a', 'q0', { qos: 0 })
  await device.publishAsync('topic1/a/b', 'q1', { qos: 1 })
  await device.publishAsync('topic2/k/x', 'q2', { qos: 2 })
  await device.publishAsync('topic2/k/y', 'no', { qos: 1 })
  await device.publishAsync('topic1', 'retained', { qos: 1, retain: true })

  await waitCounter(edge, 'default_forwarded_total', 4)
  await until(() => received.length >= 4, 'four messages upstream')
  await settle()
  t.deepEqual(received.sort(), [
    ['topic1', 'retained', 1, false],
    ['topic1/a', 'q0', 0, false],
    ['topic1/a/b', 'q1', 1, false],
    ['topic2/k/x', 'q2', 2, false]
  ].sort())
  // the retain flag reached the upstream: a late subscriber gets the retained message
  const late = await connectClient(t, upstream.url, { clientId: 'late' })
  const retained = nextMessage(late)
  await late.subscribeAsync('topic1')
  t.deepEqual((await retained).map(String), ['topic1', 'retained'])
})

test('upstream subscriptions are published locally', async (t) => {
  const { broker: upstream } = await upstreamBroker(t)
  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${upstream.port}`, {
    subscriptions: [{ topic: 'cmd/topic1', qos: 1 }, { topic: 'cmd/topic2/#', qos: 2 }]
  })])
  await waitBridge(edge, 'connected')
  await waitCounter(edge, 'default_connects_total', 1)
  const device = await connectClient(t, edge.url, { clientId: 'device' })
  await device.subscribeAsync('cmd/#', { qos: 2 })
  const got = new Recorder<[string, string, number]>()
  device.on('message', (topic, payload, packet) => got.push([topic, payload.toString(), packet.qos]))

  const cloud = await connectClient(t, upstream.url, { clientId: 'cloud' })
  // the bridge subscribes right after its CONNACK; wait until the upstream knows the subscriptions
  await waitSubscribed(upstream, 2)
  await cloud.publishAsync('cmd/topic1', 'one', { qos: 1 })
  await cloud.publishAsync('cmd/topic2/deep/er', 'two', { qos: 2 })
  await cloud.publishAsync('cmd/other', 'not subscribed', { qos: 1 })
  await got.count(2)
  await settle()
  t.deepEqual(got.list, [['cmd/topic1', 'one', 1], ['cmd/topic2/deep/er', 'two', 2]])
  t.is(bridgeStatus(edge).counters.default_received_total, 2)
})

test('messages pulled from upstream are never forwarded back up, even when they match forwards', async (t) => {
  const { broker: upstream, published } = await upstreamBroker(t)
  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${upstream.port}`, {
    forwards: ['shared/#'], subscriptions: [{ topic: 'shared/#', qos: 1 }]
  })])
  await waitBridge(edge, 'connected')
  await waitSubscribed(upstream, 1)
  const device = await connectClient(t, edge.url, { clientId: 'device' })
  await device.subscribeAsync('shared/#', { qos: 1 })
  const local = new Recorder<string>()
  device.on('message', (_topic, payload) => local.push(payload.toString()))

  const cloud = await connectClient(t, upstream.url, { clientId: 'cloud' })
  await cloud.publishAsync('shared/down', 'from-cloud', { qos: 1 })
  await local.count(1)
  // a message through the bridge's forward path after it: had the first gone back up, it came first
  await device.publishAsync('shared/up', 'from-edge', { qos: 1 })
  await published.find((event) => event.payload.toString() === 'from-edge')
  await local.count(2)
  await settle()
  t.deepEqual(published.list.map((event) => [event.from, event.payload.toString()]),
    [['cloud', 'from-cloud'], [published.list[1]!.from, 'from-edge']])
  t.true(published.list[1]!.from.startsWith('tapmq-bridge-default-'))
  // MQTT 3.1.1 has no no-local: the upstream echoed 'from-edge', and the bridge dropped the echo
  t.deepEqual(local.list, ['from-cloud', 'from-edge'])
  await waitCounter(edge, 'default_echo_suppressed_total', 1)
})

test('an echo is only dropped once per forward: the same payload published upstream by someone else still arrives', async (t) => {
  const { broker: upstream } = await upstreamBroker(t)
  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${upstream.port}`, {
    forwards: ['room/#'], subscriptions: [{ topic: 'room/#', qos: 1 }]
  })])
  await waitBridge(edge, 'connected')
  await waitSubscribed(upstream, 1)
  const device = await connectClient(t, edge.url, { clientId: 'device' })
  await device.subscribeAsync('room/#', { qos: 1 })
  const local = new Recorder<string>()
  device.on('message', (topic, payload) => local.push(`${topic}=${payload}`))

  await device.publishAsync('room/light', 'on', { qos: 1 })
  await waitCounter(edge, 'default_echo_suppressed_total', 1)
  const cloud = await connectClient(t, upstream.url, { clientId: 'cloud' })
  await cloud.publishAsync('room/light', 'on', { qos: 1 })
  await local.count(2)
  await settle()
  t.deepEqual(local.list, ['room/light=on', 'room/light=on'])
})

test('a message dropped by an earlier plugin is not forwarded; a rewritten one is forwarded as rewritten', async (t) => {
  const { broker: upstream, published } = await upstreamBroker(t)
  const rewriter = tapping('test:rewriter', (hooks) => hooks.message.publish.tap({ name: 'test:rewriter', stage: -200 }, (event, control) => {
    if (event.topic === 'f/secret') control.drop('secret')
    if (event.topic === 'f/raw') control.rewrite({ topic: 'f/cooked', payload: Buffer.from('cooked') })
  }))
  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${upstream.port}`, { forwards: ['f/#'] })], { plugins: [rewriter] })
  await waitBridge(edge, 'connected')
  const device = await connectClient(t, edge.url, { clientId: 'device' })
  await device.publishAsync('f/secret', 'x', { qos: 1 })
  await device.publishAsync('f/raw', 'raw', { qos: 1 })
  await device.publishAsync('f/plain', 'plain', { qos: 1 })
  await waitCounter(edge, 'default_forwarded_total', 2)
  await settle()
  t.deepEqual(published.list.map((event) => [event.topic, event.payload.toString()]), [['f/cooked', 'cooked'], ['f/plain', 'plain']])
})
