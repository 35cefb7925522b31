// NanoMQ 0.8 fixed a lock contention "caused by the frequent closing of bridge connection".
// Here the upstream drops the bridge's connection again and again while both brokers are
// under load: local traffic keeps flowing, and every QoS 1 message the edge acknowledged
// reaches the upstream once the upstream stops dropping it.
import test from 'ava'
import type { PublishEvent } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { connectClient, Recorder, until } from '../helpers/mqtt.ts'
import { bridgeConfig, bridgeStatus, edgeBroker, waitCounter } from './helpers.ts'

const FORWARDED = 600
const LOCAL = 600
const DROPS = 8
const DROP_EVERY = 40

test('an upstream that keeps dropping the bridge under load loses nothing acknowledged and does not slow local traffic to a stop', async (t) => {
  t.timeout(60_000)
  const published = new Recorder<PublishEvent>()
  let fromBridge = 0
  let drops = 0
  const upstream = await testBroker(t, {
    plugins: [tapping('test:flaky', (hooks, host) => hooks.message.publish.tap('test:flaky', (event) => {
      published.push(event)
      if (!event.from.startsWith('tapmq-bridge-')) return
      fromBridge++
      if (drops < DROPS && fromBridge % DROP_EVERY === 0) {
        drops++
        setImmediate(() => host.broker.disconnect(event.from))
      }
    }))]
  })
  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${upstream.port}`, {
    forwards: ['load/#'], parallel: 8, reconnect: { minInterval: 5, maxInterval: 50 }
  })])
  await waitCounter(edge, 'default_connects_total', 1)

  const producer = await connectClient(t, edge.url, { clientId: 'producer' })
  const localPub = await connectClient(t, edge.url, { clientId: 'local-pub' })
  const localSub = await connectClient(t, edge.url, { clientId: 'local-sub' })
  await localSub.subscribeAsync('local/#', { qos: 1 })
  const local = new Recorder<string>()
  localSub.on('message', (_topic, payload) => local.push(payload.toString()))

  // both loads at once: QoS 1 through the bridge, and QoS 1 between two local clients
  const forwarding = Promise.all(Array.from({ length: FORWARDED }, (_, i) => producer.publishAsync(`load/${i % 7}`, `f${i}`, { qos: 1 })))
  const localTraffic = (async () => {
    for (let i = 0; i < LOCAL; i++) await localPub.publishAsync('local/x', `l${i}`, { qos: 1 })
  })()
  await Promise.all([forwarding, localTraffic])

  // local traffic: every message delivered, in order, while the bridge was flapping
  await local.count(LOCAL, 20_000)
  t.deepEqual(local.list, Array.from({ length: LOCAL }, (_, i) => `l${i}`))

  // every forwarded message the edge acknowledged arrives upstream (at least once)
  await until(() => drops === DROPS, `${DROPS} drops (have ${drops})`, 20_000)
  const wanted = new Set(Array.from({ length: FORWARDED }, (_, i) => `f${i}`))
  await until(() => {
    for (const event of published.list) wanted.delete(event.payload.toString())
    return wanted.size === 0
  }, `all forwarded messages upstream (missing ${wanted.size})`, 30_000)
  await waitCounter(edge, 'default_forwarded_total', FORWARDED, 20_000)

  const counters = bridgeStatus(edge).counters
  t.true(counters.default_disconnects_total! >= DROPS, `disconnects ${counters.default_disconnects_total}`)
  t.true(counters.default_connects_total! >= DROPS + 1)
  t.is(counters.default_dropped_overflow_total, 0)
  t.is(counters.default_queued, 0)
  t.is(bridgeStatus(edge).health.status, 'ok')
  t.log(`drops ${drops}, resent ${counters.default_resent_total}, upstream received ${published.list.filter((e) => e.from.startsWith('tapmq-bridge-')).length} for ${FORWARDED}`)
})
