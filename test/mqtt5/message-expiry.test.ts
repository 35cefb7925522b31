// MQTT 5 Message Expiry Interval (§3.3.2.3.3) and the MQTT 5 properties of stored messages: a
// queued or retained message that outlived its interval is not delivered; one delivered later
// carries what is left of the interval [MQTT-3.3.2-5] [MQTT-3.3.2-6]. With the embedded store
// every property survives a restart of the broker (offline queue, retained, inbound QoS 2, will).
import test from 'ava'
import type { IPublishPacket } from 'mqtt-packet'
import { SqliteStore, type StoredPacket } from '../../runtime/persistence/sqlite-store.ts'
import { testBroker } from '../helpers/broker.ts'
import { tmpDir, until } from '../helpers/mqtt.ts'
import { join } from 'node:path'
import { clientGone, connect5, roundTrip } from './session-helpers.ts'

type Broker = Awaited<ReturnType<typeof testBroker>>

/** every MQTT 5 PUBLISH property a message keeps on its way (not the topic alias or subscription id) */
const PROPERTIES = {
  payloadFormatIndicator: true,
  contentType: 'application/json',
  responseTopic: 'replies/here',
  correlationData: Buffer.from([0, 1, 2, 0xff]),
  userProperties: { origin: 'test', tag: ['a', 'b'] }
}

async function leave (t: Parameters<typeof connect5>[0], broker: Broker, clientId: string, topic: string): Promise<void> {
  const sub = await connect5(t, broker.url, { clientId, clean: false, properties: { sessionExpiryInterval: 3600 } })
  await sub.client.subscribeAsync(topic, { qos: 1 })
  const gone = clientGone(broker.tapmq.broker, clientId)
  await sub.client.endAsync()
  await gone
}

async function publish (t: Parameters<typeof connect5>[0], broker: Broker, topic: string, payload: string, properties: object, retain = false) {
  const pub = await connect5(t, broker.url, { clientId: `pub-${Math.random().toString(16).slice(2)}` })
  await pub.client.publishAsync(topic, payload, { qos: 1, retain, properties })
  await pub.client.endAsync()
}

const back = (t: Parameters<typeof connect5>[0], broker: Broker, clientId: string) =>
  connect5(t, broker.url, { clientId, clean: false, properties: { sessionExpiryInterval: 3600 } })

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

test('a QoS 1 message queued for an offline session expires there and is not delivered [MQTT-3.3.2-5]', async (t) => {
  const broker = await testBroker(t)
  await leave(t, broker, 'late', 'me/late')
  await publish(t, broker, 'me/late', 'expires', { messageExpiryInterval: 1 })
  await publish(t, broker, 'me/late', 'lasts', { messageExpiryInterval: 3600 })
  await pause(1100) // the first message's second passes while its subscriber is away
  const client = await back(t, broker, 'late')
  t.true(client.connack.sessionPresent)
  t.deepEqual((await roundTrip(client)).map((m) => m.payload.toString()), ['lasts'])
})

test('a queued message delivered before it expires carries the rest of its interval [MQTT-3.3.2-6]', async (t) => {
  const broker = await testBroker(t)
  await leave(t, broker, 'waiting', 'me/waiting')
  await publish(t, broker, 'me/waiting', 'with time left', { messageExpiryInterval: 60, ...PROPERTIES })
  await pause(1100)
  const client = await back(t, broker, 'waiting')
  await until(() => client.messages.length >= 1, 'the queued message')
  const [message] = client.messages as [IPublishPacket]
  const left = message.properties!.messageExpiryInterval!
  t.true(left >= 1 && left <= 59, `${left} s left of 60`)
  t.like(message.properties, PROPERTIES)
})

test('retained messages: an expired one is not sent, a live one carries the rest of its interval [MQTT-3.3.2-5] [MQTT-3.3.2-6]', async (t) => {
  const broker = await testBroker(t)
  await publish(t, broker, 'keep/short', 'gone soon', { messageExpiryInterval: 1 }, true)
  await publish(t, broker, 'keep/long', 'stays', { messageExpiryInterval: 60, ...PROPERTIES }, true)
  await pause(1100)
  const reader = await connect5(t, broker.url, { clientId: 'reader' })
  await reader.client.subscribeAsync('keep/#', { qos: 1 })
  const received = await roundTrip(reader)
  t.deepEqual(received.map((m) => m.topic), ['keep/long'])
  const left = received[0]!.properties!.messageExpiryInterval!
  t.true(left >= 1 && left <= 59, `${left} s left of 60`)
  t.like(received[0]!.properties, PROPERTIES)
})

test('embedded store: a queued and a retained MQTT 5 message keep every property across a restart; expiry still counts', async (t) => {
  const config = { persistence: 'embedded', data_dir: await tmpDir(t) }
  const first = await testBroker(t, { config })
  await leave(t, first, 'durable', 'me/durable')
  await publish(t, first, 'me/durable', 'queued', { messageExpiryInterval: 3600, ...PROPERTIES })
  await publish(t, first, 'me/durable', 'queued, expiring', { messageExpiryInterval: 1 })
  await publish(t, first, 'keep/durable', 'retained', { messageExpiryInterval: 3600, ...PROPERTIES }, true)
  await publish(t, first, 'keep/expiring', 'retained, expiring', { messageExpiryInterval: 1 }, true)
  await first.close()
  await pause(1100)

  const second = await testBroker(t, { config })
  const client = await back(t, second, 'durable')
  t.true(client.connack.sessionPresent)
  const queued = await roundTrip(client)
  t.deepEqual(queued.map((m) => m.payload.toString()), ['queued'])
  t.like(queued[0]!.properties, PROPERTIES)
  t.true(Buffer.isBuffer(queued[0]!.properties!.correlationData))
  const left = queued[0]!.properties!.messageExpiryInterval!
  t.true(left > 0 && left < 3600, `${left} s left of 3600`)

  const reader = await connect5(t, second.url, { clientId: 'reader' })
  await reader.client.subscribeAsync('keep/#', { qos: 1 })
  const retained = await roundTrip(reader)
  t.deepEqual(retained.map((m) => m.topic), ['keep/durable'])
  t.like(retained[0]!.properties, PROPERTIES)
  t.true(retained[0]!.retain)
})

test('SqliteStore: an MQTT 5 packet round-trips through the file in the offline queue, the retained store, inbound QoS 2 and wills', async (t) => {
  const file = join(await tmpDir(t), 'tapmq.db')
  const packet: StoredPacket = {
    cmd: 'publish', topic: 'v5/all', payload: Buffer.from('body'), qos: 2, retain: false, dup: false,
    brokerId: 'b1', brokerCounter: 1, messageId: 9,
    properties: { ...PROPERTIES, messageExpiryInterval: 600 },
    messageExpiry: Date.now() + 600_000
  }
  const store = new SqliteStore({ file })
  await store.setup({ id: 'b1' })
  await store.addSubscriptions({ id: 'sub' }, [{ topic: 'v5/all', qos: 2 }])
  await store.outgoingEnqueueCombi([{ clientId: 'sub' }], packet)
  await store.storeRetained({ ...packet, retain: true })
  await store.incomingStorePacket({ id: 'pub' }, packet)
  await store.putWill({ id: 'pub' }, { ...packet, cmd: 'publish' })
  await store.flush()
  await store.destroy()

  const reopened = new SqliteStore({ file })
  await reopened.setup({ id: 'b2' })
  t.teardown(() => reopened.destroy())
  const expected = { properties: packet.properties, messageExpiry: packet.messageExpiry, payload: packet.payload, topic: 'v5/all' }
  const queued: StoredPacket[] = []
  for await (const p of reopened.outgoingStream({ id: 'sub' })) queued.push(p)
  t.is(queued.length, 1)
  t.like(queued[0], expected)
  const retained: StoredPacket[] = []
  for await (const p of reopened.createRetainedStreamCombi(['v5/#'])) retained.push(p)
  t.like(retained[0], { ...expected, retain: true })
  t.like(await reopened.incomingGetPacket({ id: 'pub' }, { messageId: 9 }), expected)
  t.like(await reopened.getWill({ id: 'pub' }), expected)
  t.true(Buffer.isBuffer((queued[0]!.properties as { correlationData: unknown }).correlationData))
})
