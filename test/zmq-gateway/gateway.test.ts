// The ZeroMQ gateway with real ZeroMQ sockets on tcp://127.0.0.1: the test plays the ZeroMQ
// "server" that binds both endpoints, as NanoMQ's gateway expects.
import test, { type ExecutionContext } from 'ava'
import * as zmq from 'zeromq'
import gateway, { loadZeromq } from '../../plugins/zmq-gateway/index.ts'
import type { TestBroker } from '../../sdk/testing.ts'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, Recorder, settle, until, within } from '../helpers/mqtt.ts'

interface ZmqServer {
  /** the PUB socket the gateway's SUB connects to */
  readonly pub: zmq.Publisher
  /** the SUB socket the gateway's PUB connects to */
  readonly sub: zmq.Subscriber
  readonly options: { subAddress: string, pubAddress: string }
}

async function zmqServer (t: ExecutionContext): Promise<ZmqServer> {
  const pub = new zmq.Publisher({ linger: 0 })
  const sub = new zmq.Subscriber({ linger: 0 })
  t.teardown(() => { pub.close(); sub.close() })
  await pub.bind('tcp://127.0.0.1:*')
  await sub.bind('tcp://127.0.0.1:*')
  sub.subscribe()
  return { pub, sub, options: { subAddress: pub.lastEndpoint!, pubAddress: sub.lastEndpoint! } }
}

function status (broker: TestBroker) {
  return broker.tapmq.plugins.status('tapmq:zmq-gateway')
}

/**
 * ZeroMQ PUB/SUB drops what is sent before the subscription reached the publisher (the
 * "slow joiner"): send `probe` until `arrived()` says one got through.
 */
async function untilThrough (send: () => Promise<unknown>, arrived: () => boolean, what: string): Promise<void> {
  for (let i = 0; !arrived(); i++) {
    if (i > 100) throw new Error(`${what}: nothing got through`)
    await send()
    await settle(50)
  }
}

/** Collects the ZeroMQ messages the test's SUB socket receives, as arrays of strings. */
function collect (t: ExecutionContext, sub: zmq.Subscriber): Recorder<string[]> {
  const received = new Recorder<string[]>()
  let open = true
  t.teardown(() => { open = false })
  void (async () => {
    try {
      for await (const frames of sub) if (open) received.push(frames.map(String))
    } catch {}
  })()
  return received
}

type Mode = 'in process' | 'MQTT client'
const MODES: readonly Mode[] = ['in process', 'MQTT client']

/**
 * A ZeroMQ server, and a broker running the gateway: in process, its MQTT clients use that
 * broker; as an MQTT client, the gateway connects to a second broker (the hub) and the
 * MQTT clients use the hub.
 */
async function gatewaySetup (t: ExecutionContext, mode: Mode, extra: { pubTopic?: string, subTopic?: string, zmq?: object } = {}) {
  const server = await zmqServer(t)
  const hub = mode === 'MQTT client' ? await testBroker(t) : undefined
  const options = {
    ...extra,
    zmq: { ...server.options, ...extra.zmq },
    mqtt: hub ? { address: `mqtt-tcp://127.0.0.1:${hub.port}`, reconnectInterval: 100 } : {}
  }
  const host = await testBroker(t, { plugins: [{ plugin: gateway, options }] })
  if (hub) await until(() => status(host).health.detail?.startsWith('mqtt connected'), 'gateway connected to the hub')
  return { server, host, mqttUrl: hub?.url ?? host.url }
}

for (const mode of MODES) {
  test(`${mode}: ZeroMQ publisher → MQTT subscriber`, async (t) => {
    const { server, host, mqttUrl } = await gatewaySetup(t, mode, { pubTopic: 'zmq/in' })
    const subscriber = await connectClient(t, mqttUrl, { clientId: 'app' })
    await subscriber.subscribeAsync('zmq/#', { qos: 1 })
    const got = new Recorder<[string, string]>()
    // probes still on their way arrive late: they are left out of the record
    subscriber.on('message', (topic, payload) => { if (String(payload) !== 'probe') got.push([topic, payload.toString()]) })
    let probed = false
    subscriber.on('message', () => { probed = true })

    await untilThrough(() => server.pub.send('probe'), () => probed, 'a ZeroMQ probe')
    for (let i = 0; i < 10; i++) await server.pub.send(`reading ${i}`)
    await server.pub.send(['envelope', 'last frame is the payload'])
    await got.count(11)
    t.deepEqual(got.list, [...Array.from({ length: 10 }, (_, i) => ['zmq/in', `reading ${i}`]), ['zmq/in', 'last frame is the payload']])
    t.true(status(host).counters.mqtt_published_total! >= 11)
  })

  test(`${mode}: MQTT publisher → ZeroMQ subscriber, with the pub_pre frame`, async (t) => {
    const { server, host, mqttUrl } = await gatewaySetup(t, mode, { subTopic: 'to-zmq/#', zmq: { pubPrefix: 'mqtt' } })
    const received = collect(t, server.sub)
    const publisher = await connectClient(t, mqttUrl, { clientId: 'app' })
    await untilThrough(() => publisher.publishAsync('to-zmq/probe', 'probe'), () => received.list.length > 0, 'an MQTT probe')
    for (let i = 0; i < 10; i++) await publisher.publishAsync(`to-zmq/${i % 3}`, `cmd ${i}`, { qos: 1 })
    await publisher.publishAsync('elsewhere', 'not for zmq', { qos: 1 })
    const real = () => received.list.filter(([, payload]) => payload !== 'probe')
    await until(() => real().length >= 10, '10 messages on the ZeroMQ side')
    await settle()
    t.deepEqual(real(), Array.from({ length: 10 }, (_, i) => ['mqtt', `cmd ${i}`]))
    t.true(status(host).counters.zmq_sent_total! >= 10)
    t.is(status(host).health.status, 'ok')
  })
}

test('sub_pre: only ZeroMQ messages with the prefix pass, published whole as NanoMQ does', async (t) => {
  const { server, mqttUrl } = await gatewaySetup(t, 'in process', { pubTopic: 'zmq/in', zmq: { subPrefix: 'sensor.' } })
  const subscriber = await connectClient(t, mqttUrl, { clientId: 'app' })
  await subscriber.subscribeAsync('zmq/in')
  const got = new Recorder<string>()
  let probed = false
  subscriber.on('message', (_topic, payload) => { if (String(payload) === 'sensor.probe') probed = true; else got.push(payload.toString()) })
  await untilThrough(() => server.pub.send('sensor.probe'), () => probed, 'a ZeroMQ probe')
  await server.pub.send('other.t=1')
  await server.pub.send('sensor.t=2')
  await server.pub.send(['sensor.', 't=3'])
  await got.count(2)
  await settle()
  t.deepEqual(got.list, ['sensor.t=2', 't=3'])
})

test('in process, the gateway also sees messages the broker publishes itself (a bridge, $SYS excluded)', async (t) => {
  const { server, host } = await gatewaySetup(t, 'in process', { subTopic: '#' })
  const received = collect(t, server.sub)
  await untilThrough(() => host.broker.publish({ topic: 'probe', payload: 'probe' }), () => received.list.length > 0, 'a broker probe')
  await host.broker.publish({ topic: '$SYS/brokers/connected', payload: 'sys' })
  await host.broker.publish({ topic: 'from/bridge', payload: 'down' })
  const real = () => received.list.filter(([payload]) => payload !== 'probe')
  await until(() => real().length >= 1, 'the bridge message on the ZeroMQ side')
  await settle()
  t.deepEqual(real(), [['down']])
})

test('health: degraded while no ZeroMQ peer listens; down while the MQTT broker of client mode is away', async (t) => {
  const nowhere = { subAddress: 'tcp://127.0.0.1:1', pubAddress: 'tcp://127.0.0.1:1' }
  const inProcess = await testBroker(t, { plugins: [{ plugin: gateway, options: { pubTopic: 'a', zmq: nowhere } }] })
  t.like(status(inProcess).health, { status: 'degraded', detail: 'mqtt connected, zmq sub connecting, zmq pub connecting' })

  const client = await testBroker(t, {
    plugins: [{ plugin: gateway, options: { pubTopic: 'a', mqtt: { address: 'mqtt-tcp://127.0.0.1:1', reconnectInterval: 100 }, zmq: nowhere } }]
  })
  await until(() => /last error: mqtt: connect ECONNREFUSED/.test(status(client).health.detail ?? ''), 'a connect error in the health detail')
  t.is(status(client).health.status, 'down')
  t.regex(status(client).health.detail ?? '', /^mqtt down, zmq sub connecting, zmq pub connecting; last error: mqtt: connect ECONNREFUSED/)
})

test('without the zeromq package the plugin says what to install', async (t) => {
  const err = await t.throwsAsync(loadZeromq('zeromq-that-is-not-installed'))
  t.regex(err!.message, /needs the optional "zeromq" package.*npm install zeromq@6/)
})

test('BrokerView.subscribe: an in-process subscription, removed by the function it resolves with', async (t) => {
  const broker = await testBroker(t)
  const seen = new Recorder<string>()
  const unsubscribe = await broker.broker.subscribe('a/+', (message) => seen.push(`${message.topic}=${message.payload}@${message.qos}`))
  const client = await connectClient(t, broker.url, { clientId: 'c' })
  await client.publishAsync('a/1', 'one', { qos: 1 })
  await broker.broker.publish({ topic: 'a/2', payload: 'two' })
  await client.publishAsync('b/1', 'other', { qos: 1 })
  await seen.count(2)
  await unsubscribe()
  await client.publishAsync('a/3', 'after', { qos: 1 })
  // a round trip through the broker after it: had the subscription lived on, a/3 came first
  const marker = await broker.broker.subscribe('m', (message) => seen.push(String(message.payload)))
  await client.publishAsync('m', 'marker', { qos: 1 })
  await within(seen.find((item) => item === 'marker'), 'marker')
  await marker()
  t.deepEqual(seen.list, ['a/1=one@1', 'a/2=two@0', 'marker'])
})
