// While the upstream is away: QoS 1/2 messages wait in a bounded buffer (in a file when
// durable), QoS 0 messages are dropped and counted; everything buffered goes up, in order,
// once the upstream is back.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import bridgePlugin from '../../plugins/bridge/index.ts'
import type { PublishEvent } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { connectClient, Recorder, settle, tmpDir } from '../helpers/mqtt.ts'
import { bridgeConfig, bridgeStatus, brokerWithConfig, edgeBroker, freePort, waitBridge, waitCounter } from './helpers.ts'

/** A tapmq upstream on a given port that records what its clients publish. */
async function upstreamOn (t: Parameters<typeof testBroker>[0], port: number) {
  const published = new Recorder<PublishEvent>()
  const broker = await testBroker(t, {
    config: { url: `nmq-tcp://127.0.0.1:${port}` },
    plugins: [tapping('test:upstream', (hooks) => hooks.message.publish.tap('test:upstream', published.push))]
  })
  return { broker, published }
}

test('QoS 1/2 messages wait for the upstream and arrive in order; QoS 0 ones are dropped and counted', async (t) => {
  const port = await freePort()
  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${port}`, { forwards: ['up/#'] })])
  await waitCounter(edge, 'default_connect_failures_total', 1)
  const health = bridgeStatus(edge).health
  t.is(health.status, 'down')
  t.regex(health.detail ?? '', /^default: (down|connecting), 0 queued/)

  const device = await connectClient(t, edge.url, { clientId: 'device' })
  for (let i = 0; i < 20; i++) await device.publishAsync('up/n', String(i), { qos: i % 2 === 0 ? 1 : 2 })
  await device.publishAsync('up/zero', 'gone', { qos: 0 })
  await waitCounter(edge, 'default_dropped_offline_total', 1)
  t.regex(bridgeStatus(edge).health.detail ?? '', /20 queued/)
  t.is(bridgeStatus(edge).counters.default_queued, 20)

  const { published } = await upstreamOn(t, port)
  await waitBridge(edge, 'connected', 'default', 10_000)
  await published.count(20)
  await waitCounter(edge, 'default_forwarded_total', 20)
  await settle()
  t.deepEqual(published.list.map((event) => event.payload.toString()), Array.from({ length: 20 }, (_, i) => String(i)))
  t.deepEqual(published.list.map((event) => event.qos), Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 1 : 2)))
  t.is(bridgeStatus(edge).health.status, 'ok')
  t.is(bridgeStatus(edge).counters.default_queued, 0)
})

for (const [overflow, kept] of [['drop_oldest', ['3', '4', '5', '6', '7']], ['drop_newest', ['0', '1', '2', '3', '4']]] as const) {
  test(`a full buffer drops by ${overflow} and counts the drops`, async (t) => {
    const port = await freePort()
    const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${port}`, {
      forwards: ['up/#'], queue: { maxMessages: 5, overflow }
    })])
    const device = await connectClient(t, edge.url, { clientId: 'device' })
    for (let i = 0; i < 8; i++) await device.publishAsync('up/n', String(i), { qos: 1 })
    t.is(bridgeStatus(edge).counters.default_dropped_overflow_total, 3)

    const { published } = await upstreamOn(t, port)
    await published.count(5, 10_000)
    await waitCounter(edge, 'default_forwarded_total', 5)
    await settle()
    t.deepEqual(published.list.map((event) => event.payload.toString()), kept)
  })
}

test('a durable buffer survives a restart of the broker', async (t) => {
  const dataDir = await tmpDir(t)
  const port = await freePort()
  const bridges = [bridgeConfig(`mqtt-tcp://127.0.0.1:${port}`, { forwards: ['up/#'], queue: { durable: true } })]
  const first = await edgeBroker(t, bridges, { config: { data_dir: dataDir } })
  const device = await connectClient(t, first.url, { clientId: 'device' })
  for (let i = 0; i < 10; i++) await device.publishAsync('up/n', `m${i}`, { qos: 1, retain: i === 9 })
  t.is(bridgeStatus(first).counters.default_queued, 10)
  await device.endAsync()
  await first.close()

  const { published } = await upstreamOn(t, port)
  const second = await edgeBroker(t, bridges, { config: { data_dir: dataDir } })
  await published.count(10, 10_000)
  await waitCounter(second, 'default_forwarded_total', 10)
  await settle()
  t.deepEqual(published.list.map((event) => event.payload.toString()), Array.from({ length: 10 }, (_, i) => `m${i}`))
  t.deepEqual(published.list.map((event) => event.retain), Array.from({ length: 10 }, (_, i) => i === 9))
  await second.close()

  // acknowledged messages left the file: a third start has nothing to send
  const third = await edgeBroker(t, bridges, { config: { data_dir: dataDir } })
  t.is(bridgeStatus(third).counters.default_queued, 0)
})

test('a memory buffer is not kept across a restart', async (t) => {
  const dataDir = await tmpDir(t)
  const port = await freePort()
  const bridges = [bridgeConfig(`mqtt-tcp://127.0.0.1:${port}`, { forwards: ['up/#'], queue: { durable: false } })]
  const first = await edgeBroker(t, bridges, { config: { data_dir: dataDir } })
  const device = await connectClient(t, first.url, { clientId: 'device' })
  await device.publishAsync('up/n', 'lost', { qos: 1 })
  t.is(bridgeStatus(first).counters.default_queued, 1)
  await first.close()
  const second = await edgeBroker(t, bridges, { config: { data_dir: dataDir } })
  t.is(bridgeStatus(second).counters.default_queued, 0)
})

test('queue.durable = auto: a file under data_dir/bridge when the broker runs with persistence = embedded, memory otherwise', async (t) => {
  const port = await freePort()
  for (const persistence of ['embedded', 'memory'] as const) {
    const dataDir = await tmpDir(t)
    const tapmq = await brokerWithConfig(t, { data_dir: dataDir, persistence }, [{
      plugin: bridgePlugin, options: { bridges: [bridgeConfig(`mqtt-tcp://127.0.0.1:${port}`, { forwards: ['up/#'] })] }
    }])
    t.is(existsSync(join(dataDir, 'bridge', 'default.sqlite')), persistence === 'embedded', persistence)
    await tapmq.stop()
  }
})
