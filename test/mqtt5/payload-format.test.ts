// MQTT 5 Payload Format Indicator (§3.3.2.3.2, §3.1.3.2.3): tapmq checks the payload is UTF-8
// only when the client says it is (indicator 1), as the NanoMQ 0.8 release notes put it for
// wills ("unless the client requests"). Without the indicator any bytes pass, as they do for
// MQTT 3.1.1 clients (test/will/will-payload.test.ts).
import test from 'ava'
import type { IPublishPacket } from 'mqtt-packet'
import { testBroker } from '../helpers/broker.ts'
import { RawClient, until } from '../helpers/mqtt.ts'
import { connect5, roundTrip, send5 } from './session-helpers.ts'

/** Not UTF-8: a lone continuation byte, an overlong NUL, a truncated sequence, 0xFF. */
const INVALID_UTF8 = Buffer.from([0x80, 0xc0, 0x80, 0xe2, 0x82, 0xff, 0x41])
const TEXT = Buffer.from('grüße, 日本, 🙂')

async function scene (t: Parameters<typeof testBroker>[0]) {
  const broker = await testBroker(t)
  const watch = await connect5(t, broker.url, { clientId: 'watch' })
  await watch.client.subscribeAsync('pfi/#', { qos: 1 })
  const { client } = await RawClient.connect(t, broker.port, { clientId: 'sender', protocolVersion: 5 })
  return { broker, watch, client }
}

const publish = (topic: string, payload: Buffer, qos: 0 | 1 | 2, payloadFormatIndicator?: boolean): IPublishPacket => ({
  cmd: 'publish', topic, payload, qos, retain: false, dup: false, ...(qos > 0 ? { messageId: 7 } : {}),
  ...(payloadFormatIndicator === undefined ? {} : { properties: { payloadFormatIndicator } })
})

for (const qos of [1, 2] as const) {
  test(`QoS ${qos}: indicator 1 with a payload that is not UTF-8 → ${qos === 1 ? 'PUBACK' : 'PUBREC'} 0x99, not delivered, the connection stays [§3.3.2.3.2]`, async (t) => {
    const { watch, client } = await scene(t)
    client.write(send5(publish(`pfi/bad${qos}`, INVALID_UTF8, qos, true)))
    const ack = await client.next(qos === 1 ? 'puback' : 'pubrec') as { reasonCode?: number, messageId?: number }
    t.is(ack.reasonCode, 0x99)
    t.is(ack.messageId, 7)
    t.deepEqual((await roundTrip(watch)).map((m) => m.topic), [])
    // still connected: a good message goes through
    client.write(send5(publish('pfi/good', TEXT, 1, true)))
    t.is((await client.next('puback') as { reasonCode?: number }).reasonCode ?? 0, 0)
    await until(() => watch.messages.some((m) => m.topic === 'pfi/good'), 'the good message')
  })
}

test('QoS 0: indicator 1 with a payload that is not UTF-8 → DISCONNECT 0x99 [§3.3.2.3.2]', async (t) => {
  const { watch, client } = await scene(t)
  client.write(send5(publish('pfi/bad0', INVALID_UTF8, 0, true)))
  const disconnect = await client.next('disconnect') as { reasonCode?: number }
  t.is(disconnect.reasonCode, 0x99)
  await client.waitClosed()
  t.deepEqual((await roundTrip(watch)).map((m) => m.topic), [])
})

test('indicator 1 with UTF-8: delivered, the indicator forwarded unaltered [MQTT-3.3.2-4]', async (t) => {
  const { watch, client } = await scene(t)
  client.write(send5(publish('pfi/text', TEXT, 1, true)))
  await client.next('puback')
  await until(() => watch.messages.some((m) => m.topic === 'pfi/text'), 'the message')
  const got = watch.messages.find((m) => m.topic === 'pfi/text')!
  t.deepEqual(got.payload, TEXT)
  t.is(got.properties?.payloadFormatIndicator, true)
})

test('no indicator, or indicator 0: any bytes pass, intact', async (t) => {
  const { watch, client } = await scene(t)
  client.write(send5(publish('pfi/none', INVALID_UTF8, 1)))
  client.write(send5({ ...publish('pfi/zero', INVALID_UTF8, 1, false), messageId: 8 }))
  await until(() => watch.messages.length >= 2, 'both messages')
  for (const topic of ['pfi/none', 'pfi/zero']) t.deepEqual(watch.messages.find((m) => m.topic === topic)?.payload, INVALID_UTF8)
})

test('a will with indicator 1 and a payload that is not UTF-8 → CONNACK 0x99 [§3.1.3.2.3]', async (t) => {
  const broker = await testBroker(t)
  const { client, connack } = await RawClient.connect(t, broker.port, {
    clientId: 'bad-will', protocolVersion: 5,
    will: { topic: 'pfi/will', payload: INVALID_UTF8, qos: 1, retain: false, properties: { payloadFormatIndicator: true } }
  })
  t.is((connack as { reasonCode?: number }).reasonCode, 0x99)
  await client.waitClosed()
})

test('a will without the indicator may be any bytes: accepted, and delivered intact', async (t) => {
  const broker = await testBroker(t)
  const watch = await connect5(t, broker.url, { clientId: 'watch' })
  await watch.client.subscribeAsync('pfi/#', { qos: 1 })
  const { client, connack } = await RawClient.connect(t, broker.port, {
    clientId: 'any-will', protocolVersion: 5,
    will: { topic: 'pfi/will', payload: INVALID_UTF8, qos: 1, retain: false }
  })
  t.is((connack as { reasonCode?: number }).reasonCode, 0)
  const text = await RawClient.connect(t, broker.port, {
    clientId: 'text-will', protocolVersion: 5,
    will: { topic: 'pfi/text-will', payload: TEXT, qos: 1, retain: false, properties: { payloadFormatIndicator: true } }
  })
  t.is((text.connack as { reasonCode?: number }).reasonCode, 0, 'a UTF-8 will with the indicator is accepted')
  client.socket.destroy()
  text.client.socket.destroy()
  await until(() => watch.messages.length >= 2, 'both wills')
  t.deepEqual(watch.messages.find((m) => m.topic === 'pfi/will')?.payload, INVALID_UTF8)
  t.is(watch.messages.find((m) => m.topic === 'pfi/text-will')?.properties?.payloadFormatIndicator, true)
})
