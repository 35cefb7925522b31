// MQTT 5 message properties forwarded unaltered (MQTT 5.0 §3.3.2.3): User Properties
// [MQTT-3.3.2-17/-18], Content Type, Response Topic, Correlation Data (binary), Payload
// Format Indicator [MQTT-3.3.2-4], over every delivery path: QoS 0 with and without write
// coalescing, QoS 1 and 2, retained, and a persistent session's queue (memory persistence);
// and across protocol versions.
import test from 'ava'
import { testBroker } from '../helpers/broker.ts'
import { RawClient, connectClient, nextMessage, until } from '../helpers/mqtt.ts'
import { type AnyPacket, next5, raw5, send5, v5 } from './packet-helpers.ts'

const correlation = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x01])
const properties = {
  payloadFormatIndicator: true,
  contentType: 'application/json; charset=utf-8',
  responseTopic: 'reply/to/me',
  correlationData: correlation,
  userProperties: { first: ['1', '2', '2'], second: 'x', 'ünïcode': 'välue' }
}

function assertProperties (t: import('ava').ExecutionContext, got: Record<string, any> | undefined, where: string): void {
  t.is(got?.payloadFormatIndicator, true, `${where}: payload format indicator`)
  t.is(got?.contentType, properties.contentType, `${where}: content type`)
  t.is(got?.responseTopic, properties.responseTopic, `${where}: response topic`)
  t.true(Buffer.isBuffer(got?.correlationData) && correlation.equals(got.correlationData), `${where}: correlation data`)
  // duplicates kept, in order; names in the order they came
  t.deepEqual(got?.userProperties, properties.userProperties, `${where}: user properties`)
  t.deepEqual(Object.keys(got?.userProperties ?? {}), Object.keys(properties.userProperties), `${where}: user property order`)
}

for (const [qos, coalescing] of [[0, 'true'], [0, 'false'], [1, 'true'], [2, 'true']] as const) {
  test(`live delivery, QoS ${qos}, write_coalescing = ${coalescing}: every property arrives unaltered`, async (t) => {
    const broker = await testBroker(t, { config: { write_coalescing: coalescing } })
    const sub = await v5(t, broker.url, 'sub')
    await sub.subscribeAsync('pt/#', { qos })
    const pub = await v5(t, broker.url, 'pub')
    await pub.publishAsync('pt/x', '{"a":1}', { qos, properties })
    const got = await until(() => sub.received.find((p) => p.cmd === 'publish'), 'the message')
    assertProperties(t, got.properties, 'subscriber')
    t.is(String(got.payload), '{"a":1}')
  })
}

test('retained and queued for an offline persistent session (memory persistence): the properties come along', async (t) => {
  const broker = await testBroker(t)
  const session = { clientId: 'away', clean: false, properties: { sessionExpiryInterval: 300 } }
  const first = await raw5(t, broker.port, session)
  send5(first.client, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q/#', qos: 1 }] })
  await next5(first.client, 'suback')
  send5(first.client, { cmd: 'disconnect' })
  await first.client.waitClosed()
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('q/queued', 'queued', { qos: 1, properties })
  await pub.publishAsync('r/retained', 'retained', { qos: 1, retain: true, properties })
  const { client } = await raw5(t, broker.port, session)
  const queued = await next5(client, 'publish')
  t.is(String(queued.payload), 'queued')
  assertProperties(t, queued.properties, 'queued')
  send5(client, { cmd: 'puback', messageId: queued.messageId })
  send5(client, { cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'r/#', qos: 1 }] })
  const retained = await next5(client, 'publish')
  t.is(String(retained.payload), 'retained')
  t.true(retained.retain)
  assertProperties(t, retained.properties, 'retained')
})

test('a Response Topic with a wildcard is a Protocol Error: DISCONNECT 0x82 [MQTT-3.3.2-14]', async (t) => {
  const broker = await testBroker(t)
  const { client } = await raw5(t, broker.port, { clientId: 'wild' })
  send5(client, { cmd: 'publish', topic: 'a', payload: 'x', qos: 1, messageId: 1, properties: { responseTopic: 'reply/+' } })
  t.is((await next5(client, 'disconnect')).reasonCode, 0x82)
  await client.waitClosed()
})

for (const coalescing of ['true', 'false']) {
  test(`MQTT 3.1.1 subscribers get MQTT 5 messages without properties, MQTT 5 subscribers get MQTT 3.1.1 messages (write_coalescing = ${coalescing})`, async (t) => {
    const broker = await testBroker(t, { config: { write_coalescing: coalescing } })
    const { client: oldSub } = await RawClient.connect(t, broker.port, { clientId: 'old-sub' })
    oldSub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'mix/#', qos: 1 }, { topic: 'mix0/#', qos: 0 }] })
    await oldSub.next('suback')
    const newSub = await v5(t, broker.url, 'new-sub')
    await newSub.subscribeAsync(['mix/#', 'mix0/#'], { qos: 1 })
    const newPub = await v5(t, broker.url, 'new-pub')
    const oldPub = await connectClient(t, broker.url, { clientId: 'old-pub' })
    await newPub.publishAsync('mix/v5', 'from5', { qos: 1, properties })
    await newPub.publishAsync('mix0/v5', 'from5-qos0', { qos: 0, properties })
    await oldPub.publishAsync('mix/v4', 'from4', { qos: 1 })
    const fromOld = await until(() => newSub.received.find((p) => p.cmd === 'publish' && p.topic === 'mix/v4'), 'the 3.1.1 message')
    t.is(String(fromOld.payload), 'from4')
    t.is(fromOld.properties?.userProperties, undefined)
    await until(() => oldSub.packets.filter((p) => p.cmd === 'publish').length >= 3, 'three messages at the 3.1.1 subscriber')
    const got = oldSub.packets.filter((p) => p.cmd === 'publish') as AnyPacket[]
    t.deepEqual(got.map((p) => String(p.payload)).sort(), ['from4', 'from5', 'from5-qos0'])
    // a 3.1.1 parser read each packet whole: its length is exactly topic, id and payload
    for (const p of got) t.is(p.length, 2 + Buffer.byteLength(p.topic!) + (p.qos ? 2 : 0) + p.payload!.length, `${p.topic} carries no properties`)
    const v4Sub = await connectClient(t, broker.url, { clientId: 'v4-mqttjs' })
    await v4Sub.subscribeAsync('mix/#')
    const message = nextMessage(v4Sub)
    await newPub.publishAsync('mix/again', 'again', { qos: 1, properties })
    t.deepEqual((await message).map(String), ['mix/again', 'again'])
  })
}
