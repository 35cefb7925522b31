// Each configurable limit, driven past its bound by real clients: only the offender is
// refused, the refusal is counted, and everyone else carries on.
import test from 'ava'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, connectRefused, nextMessage, RawClient, until } from '../helpers/mqtt.ts'

function refusals (metrics: string, limit: string): number {
  const match = new RegExp(`^tapmq_limit_${limit}_refusals_total (\\d+)$`, 'm').exec(metrics)
  return match ? Number(match[1]) : NaN
}

test('max_connections closes sockets past the bound at accept; a freed slot is reusable', async (t) => {
  const broker = await testBroker(t, { config: { max_connections: '2' } })
  const first = await connectClient(t, broker.url, { clientId: 'one' })
  await connectClient(t, broker.url, { clientId: 'two' })
  const refused = await RawClient.open(t, broker.port)
  await refused.waitClosed()
  t.is(refusals(await broker.tapmq.metrics.registry.metrics(), 'max_connections'), 1)
  await first.endAsync()
  await until(() => broker.tapmq.broker.connectedClients === 1, 'the first client gone')
  await connectClient(t, broker.url, { clientId: 'three' })
})

test('max_connection_rate refuses a burst beyond the rate', async (t) => {
  const broker = await testBroker(t, { config: { max_connection_rate: '3' } })
  const sockets = await Promise.all(Array.from({ length: 6 }, () => RawClient.open(t, broker.port)))
  const outcomes = await Promise.all(sockets.map((socket) =>
    Promise.race([socket.closed.then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 300, 'open'))])))
  const closed = outcomes.filter((outcome) => outcome === 'closed').length
  t.true(closed >= 3, `at least 3 of 6 refused (got ${closed})`)
  t.is(refusals(await broker.tapmq.metrics.registry.metrics(), 'max_connection_rate'), closed)
})

test('max_subscriptions answers SUBACK 0x80 past the bound and keeps the client', async (t) => {
  const broker = await testBroker(t, { config: { max_subscriptions: '2' } })
  const client = await connectClient(t, broker.url)
  // mqtt.js rejects a SUBACK containing 0x80, carrying the packet
  const refused = await t.throwsAsync(client.subscribeAsync(['a', 'b', 'c'], { qos: 1 })) as Error & { packet: { granted: number[] } }
  t.deepEqual(refused.packet.granted, [1, 1, 128])
  const again = await client.subscribeAsync('a', { qos: 0 })
  t.is(again[0]!.qos, 0, 'resubscribing to a held filter is not a new subscription')
  await client.publishAsync('b', 'still connected')
  t.is(String((await nextMessage(client))[1]), 'still connected')
  t.is(refusals(await broker.tapmq.metrics.registry.metrics(), 'max_subscriptions'), 1)
})

test('max_keepalive refuses too long and absent keepalives with CONNACK 2', async (t) => {
  const broker = await testBroker(t, { config: { max_keepalive: '60' } })
  t.is((await connectRefused(t, broker.url, { keepalive: 120 })).code, 2)
  t.is((await connectRefused(t, broker.url, { keepalive: 0 })).code, 2)
  await connectClient(t, broker.url, { keepalive: 30 })
  t.is(refusals(await broker.tapmq.metrics.registry.metrics(), 'max_keepalive'), 2)
})

test('max_client_id_length refuses long client ids with CONNACK 2', async (t) => {
  const broker = await testBroker(t, { config: { max_client_id_length: '8' } })
  t.is((await connectRefused(t, broker.url, { clientId: 'much-too-long-id' })).code, 2)
  await connectClient(t, broker.url, { clientId: 'short' })
})

test('max_inflight_inbound: a client withholding PUBREL past the window is disconnected', async (t) => {
  const broker = await testBroker(t, { config: { max_inflight_inbound: '3' } })
  const other = await connectClient(t, broker.url, { clientId: 'bystander' })
  await other.subscribeAsync('x')
  const seen: string[] = []
  other.on('message', (_topic, payload) => seen.push(String(payload)))
  const { client } = await RawClient.connect(t, broker.port, { clientId: 'hoarder' })
  for (let id = 1; id <= 4; id++) {
    client.send({ cmd: 'publish', topic: 'x', payload: Buffer.from(String(id)), qos: 2, messageId: id, retain: false, dup: false })
  }
  await client.waitClosed()
  await other.publishAsync('x', 'fine')
  await until(() => seen.includes('fine'), 'the bystander\'s own message')
  t.deepEqual(seen.filter((payload) => payload !== 'fine'), ['1', '2', '3'], 'the three messages inside the window were routed, the fourth was not')
})

test('drain_timeout disconnects a subscriber that stops reading, and others keep up', async (t) => {
  const broker = await testBroker(t, { config: { drain_timeout: '300ms' } })
  const { client: stuck } = await RawClient.connect(t, broker.port, { clientId: 'stuck' })
  stuck.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood', qos: 0 }] })
  await stuck.next('suback')
  stuck.socket.pause()
  const healthy = await connectClient(t, broker.url, { clientId: 'healthy' })
  await healthy.subscribeAsync('flood')
  let received = 0
  healthy.on('message', () => received++)
  const publisher = await connectClient(t, broker.url, { clientId: 'publisher' })
  const payload = Buffer.alloc(64 * 1024, 1)
  // bounded: at most 400 × 64 KiB, stopping as soon as the stuck client is gone
  for (let i = 0; i < 400 && broker.broker.client('stuck'); i++) {
    publisher.publish('flood', payload)
    await new Promise((resolve) => setImmediate(resolve))
  }
  await until(() => !broker.broker.client('stuck'), 'the stuck subscriber disconnected')
  await until(() => received > 0, 'the healthy subscriber received')
  t.is(broker.broker.client('stuck'), undefined)
  t.truthy(broker.broker.client('healthy'), 'the healthy subscriber is still connected')
  t.true(received > 0)
})
