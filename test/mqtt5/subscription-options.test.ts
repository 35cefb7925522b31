// MQTT 5 subscription options (MQTT 5.0 §3.8.3.1): No Local, Retain As Published, Retain
// Handling 0/1/2, and Subscription Identifiers (§3.8.2.1.2, §3.3.4). Includes NanoMQ's
// release-note crash "Retain As Published with empty properties".
import test from 'ava'
import { testBroker } from '../helpers/broker.ts'
import { RawClient, remainingLength, lengthPrefixed, settle, until } from '../helpers/mqtt.ts'
import { type AnyPacket, next5, raw5, send5, v5 } from './packet-helpers.ts'

const publishes = (client: RawClient) => client.packets.filter((p) => p.cmd === 'publish') as AnyPacket[]

for (const [qos, coalescing] of [[0, 'true'], [0, 'false'], [1, 'true']] as const) {
  test(`No Local: a client does not get its own messages on a no-local subscription, others' it does (QoS ${qos}, write_coalescing = ${coalescing}) [MQTT-3.8.3-3]`, async (t) => {
    const broker = await testBroker(t, { config: { write_coalescing: coalescing } })
    const self = await v5(t, broker.url, 'self')
    const other = await v5(t, broker.url, 'other')
    await self.subscribeAsync('nl/#', { qos, nl: true })
    await self.subscribeAsync('echo/#', { qos, nl: false })
    const got: string[] = []
    self.on('message', (topic, payload) => got.push(`${topic}:${payload}`))
    await self.publishAsync('nl/a', 'mine', { qos: 1 })
    await self.publishAsync('echo/a', 'mine', { qos: 1 })
    await other.publishAsync('nl/a', 'theirs', { qos: 1 })
    await until(() => got.length >= 2, 'two messages')
    await settle(100)
    t.deepEqual(got.sort(), ['echo/a:mine', 'nl/a:theirs'])
  })
}

for (const coalescing of ['true', 'false']) {
  test(`Retain As Published: 0 clears the retain flag on live forwards [MQTT-3.3.1-12], 1 keeps it [MQTT-3.3.1-13] (write_coalescing = ${coalescing})`, async (t) => {
    const broker = await testBroker(t, { config: { write_coalescing: coalescing } })
    const { client: keep } = await raw5(t, broker.port, { clientId: 'keep' })
    const { client: clear } = await raw5(t, broker.port, { clientId: 'clear' })
    send5(keep, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rap/#', qos: 0, rap: true }, { topic: 'rap1/#', qos: 1, rap: true }] })
    send5(clear, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rap/#', qos: 0, rap: false }, { topic: 'rap1/#', qos: 1, rap: false }] })
    await next5(keep, 'suback')
    await next5(clear, 'suback')
    const pub = await v5(t, broker.url, 'pub')
    // one at a time: a retained message is routed only once stored, so the next one could
    // overtake it, and this test checks flags per message, not order
    let n = 0
    for (const [topic, payload, qos, retain] of [['rap/x', 'retained', 0, true], ['rap/x', 'plain', 0, false], ['rap1/x', 'retained1', 1, true]] as const) {
      await pub.publishAsync(topic, payload, { qos, retain })
      n++
      await until(() => publishes(keep).length >= n && publishes(clear).length >= n, `${n} messages each`)
    }
    const flags = (c: RawClient) => Object.fromEntries(publishes(c).map((p) => [String(p.payload), p.retain]))
    t.deepEqual(flags(keep), { retained: true, plain: false, retained1: true })
    t.deepEqual(flags(clear), { retained: false, plain: false, retained1: false })
  })
}

test('Retain As Published with an empty property block (NanoMQ 0.8 release note): SUBSCRIBE and PUBLISH with zero-length properties, nothing crashes, the message arrives', async (t) => {
  const broker = await testBroker(t)
  const { client: sub } = await raw5(t, broker.port, { clientId: 'rap-empty' })
  // SUBSCRIBE by hand: message id, property length 0, one filter with options QoS 1 + RAP
  const topic = Buffer.from('empty/props')
  const body = Buffer.concat([Buffer.from([0x00, 0x09, 0x00]), lengthPrefixed(topic), Buffer.from([0x01 | 0x08])])
  sub.write(Buffer.concat([Buffer.from([0x82]), remainingLength(body.length), body]))
  const suback = await next5(sub, 'suback')
  t.deepEqual(suback.granted, [1])
  // PUBLISH by hand from another client: retain, QoS 1, property length 0
  const { client: pub } = await raw5(t, broker.port, { clientId: 'pub-empty' })
  const pubBody = Buffer.concat([lengthPrefixed(topic), Buffer.from([0x00, 0x05, 0x00]), Buffer.from('hello')])
  pub.write(Buffer.concat([Buffer.from([0x33]), remainingLength(pubBody.length), pubBody]))
  await next5(pub, 'puback')
  const got = await next5(sub, 'publish')
  t.is(String(got.payload), 'hello')
  t.true(got.retain)
  // both connections and the broker are fine
  send5(sub, { cmd: 'pingreq' })
  await next5(sub, 'pingresp')
  // and a fresh RAP subscriber gets it as a retained message
  const { client: late } = await raw5(t, broker.port, { clientId: 'late' })
  late.write(Buffer.concat([Buffer.from([0x82]), remainingLength(body.length), body]))
  const retained = await next5(late, 'publish')
  t.is(String(retained.payload), 'hello')
  t.true(retained.retain)
})

test('Retain Handling 0: retained messages at every SUBSCRIBE [MQTT-3.3.1-9]; 1: only when the subscription is new [MQTT-3.3.1-10]; 2: never [MQTT-3.3.1-11]', async (t) => {
  const broker = await testBroker(t)
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('rh/x', 'kept', { qos: 1, retain: true })
  const count = async (rh: 0 | 1 | 2) => {
    const { client } = await raw5(t, broker.port, { clientId: `rh${rh}` })
    const seen: number[] = []
    for (let round = 0; round < 2; round++) {
      send5(client, { cmd: 'subscribe', messageId: round + 1, subscriptions: [{ topic: 'rh/#', qos: 1, rh }] })
      await next5(client, 'suback')
      // a live message after the SUBACK marks the end of what the SUBSCRIBE brought
      await pub.publishAsync('rh/marker', String(round), { qos: 1 })
      await until(() => publishes(client).some((p) => p.topic === 'rh/marker' && String(p.payload) === String(round)), 'the marker')
      seen.push(publishes(client).filter((p) => p.topic === 'rh/x').length)
      for (const p of publishes(client)) if (p.qos) send5(client, { cmd: 'puback', messageId: p.messageId })
    }
    return seen
  }
  t.deepEqual(await count(0), [1, 2])
  t.deepEqual(await count(1), [1, 1])
  t.deepEqual(await count(2), [0, 0])
})

test('Subscription Identifier: delivered on live and retained messages, each subscriber its own [MQTT-3.3.4-3]; an MQTT 3.1.1 subscriber of the same filter gets the message', async (t) => {
  const broker = await testBroker(t)
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('si/old', 'retained', { qos: 1, retain: true })
  const a = await v5(t, broker.url, 'a')
  const b = await v5(t, broker.url, 'b')
  await a.subscribeAsync('si/#', { qos: 1, properties: { subscriptionIdentifier: 42 } })
  await b.subscribeAsync('si/#', { qos: 0, properties: { subscriptionIdentifier: 7 } })
  const v4 = await (await import('../helpers/mqtt.ts')).connectClient(t, broker.url, { clientId: 'v4' })
  await v4.subscribeAsync('si/#', { qos: 1 })
  const toV4: string[] = []
  v4.on('message', (_topic, payload) => toV4.push(String(payload)))
  await pub.publishAsync('si/new', 'live', { qos: 1, properties: { userProperties: { k: 'v' } } })
  const isMsg = (p: AnyPacket, payload: string) => p.cmd === 'publish' && String(p.payload) === payload
  await until(() => a.received.some((p) => isMsg(p, 'live')) && b.received.some((p) => isMsg(p, 'live')), 'live messages')
  t.is(a.received.find((p) => isMsg(p, 'retained'))?.properties?.subscriptionIdentifier, 42)
  t.is(a.received.find((p) => isMsg(p, 'live'))?.properties?.subscriptionIdentifier, 42)
  t.is(b.received.find((p) => isMsg(p, 'live'))?.properties?.subscriptionIdentifier, 7)
  t.deepEqual(b.received.find((p) => isMsg(p, 'live'))?.properties?.userProperties, { k: 'v' })
  await until(() => toV4.includes('live'), 'the message at the MQTT 3.1.1 subscriber')
  t.pass()
})

for (const [qos, coalescing] of [[0, 'true'], [0, 'false'], [1, 'true']] as const) {
  test(`overlapping subscriptions: the one copy carries every matching Subscription Identifier, whichever subscription delivered it (QoS ${qos}, write_coalescing = ${coalescing}) [MQTT-3.3.4-4]`, async (t) => {
    const broker = await testBroker(t, { config: { write_coalescing: coalescing } })
    const { client: sub } = await raw5(t, broker.port, { clientId: 'overlap' })
    send5(sub, { cmd: 'subscribe', messageId: 1, properties: { subscriptionIdentifier: 11 }, subscriptions: [{ topic: 'ov/#', qos }] })
    await next5(sub, 'suback')
    send5(sub, { cmd: 'subscribe', messageId: 2, properties: { subscriptionIdentifier: 22 }, subscriptions: [{ topic: 'ov/+/x', qos }] })
    await next5(sub, 'suback')
    // and one without an identifier, which must not take the others' away [MQTT-3.3.4-3]
    send5(sub, { cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'ov/a/+', qos }] })
    await next5(sub, 'suback')
    const pub = await v5(t, broker.url, 'pub')
    await pub.publishAsync('ov/a/x', 'all', { qos })
    await pub.publishAsync('ov/b', 'one', { qos })
    await pub.publishAsync('ov/a/y', 'one-of-two', { qos })
    await until(() => publishes(sub).length >= 3, 'three messages')
    const ids = Object.fromEntries(publishes(sub).map((p) => {
      const si = p.properties?.subscriptionIdentifier
      return [String(p.payload), Array.isArray(si) ? [...si].sort((a, b) => a - b) : si]
    }))
    t.deepEqual(ids, { all: [11, 22], one: 11, 'one-of-two': 11 })
    // after UNSUBSCRIBE only the remaining one
    send5(sub, { cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['ov/#'] })
    await next5(sub, 'unsuback')
    await pub.publishAsync('ov/a/x', 'after', { qos })
    await until(() => publishes(sub).length >= 4, 'the fourth message')
    t.is(publishes(sub)[3].properties?.subscriptionIdentifier, 22)
  })
}
