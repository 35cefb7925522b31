// MQTT 5 Maximum Packet Size (MQTT 5.0 §3.1.2.11.4, §3.2.2.3.6) both ways: inbound, a packet
// over tapmq's max_packet_size gets DISCONNECT 0x95; outbound, a PUBLISH larger than the
// client's Maximum Packet Size is not sent, and tapmq goes on as if it had been
// [MQTT-3.1.2-24/-25], on aedes' write path (QoS 1/2, write_coalescing = false) and on
// write coalescing's own encoder (QoS 0).
import test from 'ava'
import mqttPacket from 'mqtt-packet'
import { testBroker } from '../helpers/broker.ts'
import { RawClient, settle, until } from '../helpers/mqtt.ts'
import { type AnyPacket, next5, raw5, send5, v5 } from './packet-helpers.ts'

const publishes = (client: RawClient) => client.packets.filter((p) => p.cmd === 'publish') as AnyPacket[]

test('inbound: a PUBLISH over max_packet_size gets DISCONNECT 0x95 [MQTT-3.2.2-15]; one at the limit passes', async (t) => {
  const broker = await testBroker(t, { config: { max_packet_size: '1' } })
  const { client, connack } = await raw5(t, broker.port, { clientId: 'big' })
  const max = connack.properties?.maximumPacketSize as number
  t.is(max, 1024 + 3)
  // exactly the advertised size: topic 't' (3 bytes), properties length (1), payload
  const fits = { cmd: 'publish', topic: 't', qos: 0, payload: Buffer.alloc(1024 - 3 - 1) }
  t.is(mqttPacket.generate(fits as never, { protocolVersion: 5 }).length, max)
  send5(client, fits)
  send5(client, { cmd: 'pingreq' })
  await next5(client, 'pingresp')
  send5(client, { ...fits, payload: Buffer.alloc(1024 - 3) })
  t.is((await next5(client, 'disconnect')).reasonCode, 0x95)
  await client.waitClosed()
})

test('inbound: MQTT 3.1.1 over max_packet_size is closed as before, without DISCONNECT', async (t) => {
  const broker = await testBroker(t, { config: { max_packet_size: '1' } })
  const { client } = await RawClient.connect(t, broker.port, { clientId: 'v4' })
  client.send({ cmd: 'publish', topic: 't', qos: 0, payload: Buffer.alloc(2000), retain: false, dup: false })
  await client.waitClosed()
  t.false(client.packets.some((p) => p.cmd === 'disconnect'))
})

for (const [qos, coalescing] of [[0, 'true'], [0, 'false'], [1, 'true'], [2, 'true']] as const) {
  test(`outbound QoS ${qos} (write_coalescing = ${coalescing}): a PUBLISH over the client's Maximum Packet Size is discarded, the next ones arrive [MQTT-3.1.2-24/-25]`, async (t) => {
    const broker = await testBroker(t, { config: { write_coalescing: coalescing } })
    // Receive Maximum 1: a discarded QoS 1/2 message must not keep its slot
    const { client: sub } = await raw5(t, broker.port, { clientId: 'small', properties: { maximumPacketSize: 200, receiveMaximum: 1 } })
    sub.socket.on('data', () => {
      for (const p of publishes(sub)) {
        if (p.qos === 1 && !(p as { acked?: boolean }).acked) { (p as { acked?: boolean }).acked = true; send5(sub, { cmd: 'puback', messageId: p.messageId }) }
        if (p.qos === 2 && !(p as { acked?: boolean }).acked) { (p as { acked?: boolean }).acked = true; send5(sub, { cmd: 'pubrec', messageId: p.messageId }) }
      }
      for (const rel of sub.packets.filter((p) => p.cmd === 'pubrel')) {
        if (!(rel as { done?: boolean }).done) { (rel as { done?: boolean }).done = true; send5(sub, { cmd: 'pubcomp', messageId: (rel as AnyPacket).messageId }) }
      }
    })
    send5(sub, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'sz/#', qos }] })
    await next5(sub, 'suback')
    const pub = await v5(t, broker.url, 'pub')
    await pub.publishAsync('sz/a', 'small-1', { qos })
    await pub.publishAsync('sz/a', Buffer.alloc(300), { qos })
    // fits by payload, but not with its user properties
    await pub.publishAsync('sz/a', 'x', { qos, properties: { userProperties: { pad: 'p'.repeat(250) } } })
    await pub.publishAsync('sz/a', 'small-2', { qos, properties: { userProperties: { k: 'v' } } })
    await until(() => publishes(sub).length >= 2, 'the small messages')
    await settle(100)
    t.deepEqual(publishes(sub).map((p) => String(p.payload)), ['small-1', 'small-2'])
    t.false(sub.packets.some((p) => p.cmd === 'disconnect'))
  })
}

test('outbound: an MQTT 5 client without Maximum Packet Size, and MQTT 3.1.1, get large messages', async (t) => {
  const broker = await testBroker(t)
  const open = await v5(t, broker.url, 'open')
  await open.subscribeAsync('large', { qos: 1 })
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('large', Buffer.alloc(100_000), { qos: 1 })
  await until(() => open.received.some((p) => p.cmd === 'publish'), 'the large message')
  t.is(open.received.find((p) => p.cmd === 'publish')?.payload?.length, 100_000)
})

test('outbound: a discarded QoS 1 message of a persistent session is not sent again after reconnect', async (t) => {
  const broker = await testBroker(t)
  const session = { clientId: 'keeps', clean: false, properties: { sessionExpiryInterval: 300, maximumPacketSize: 200 } }
  const first = await raw5(t, broker.port, session)
  send5(first.client, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'p', qos: 1 }] })
  await next5(first.client, 'suback')
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('p', Buffer.alloc(300), { qos: 1 })
  await pub.publishAsync('p', 'marker', { qos: 1 })
  const marker = await next5(first.client, 'publish')
  t.is(String(marker.payload), 'marker')
  send5(first.client, { cmd: 'puback', messageId: marker.messageId })
  await settle(50)
  send5(first.client, { cmd: 'disconnect' })
  await first.client.waitClosed()
  // now without a limit: a message still stored would come now
  const second = await raw5(t, broker.port, { ...session, properties: { sessionExpiryInterval: 300 } })
  t.true(second.connack.sessionPresent)
  await settle(200)
  t.deepEqual(publishes(second.client).map((p) => p.payload?.length), [])
})

test('outbound with topic aliases: a QoS 1 message that fits only without its alias is discarded without keeping its Receive Maximum slot', async (t) => {
  const broker = await testBroker(t, { config: { outbound_topic_alias: 'true' } })
  const { client: sub } = await raw5(t, broker.port, { clientId: 'tight', properties: { maximumPacketSize: 200, receiveMaximum: 1, topicAliasMaximum: 5 } })
  send5(sub, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'sz/#', qos: 1 }] })
  await next5(sub, 'suback')
  // the largest payload that fits as published; the alias it would get as the first message on
  // its topic adds 3 bytes
  const size = (properties?: object) => (n: number) => mqttPacket.generate({ cmd: 'publish', topic: 'sz/edge', qos: 1, messageId: 1, payload: Buffer.alloc(n), properties } as never, { protocolVersion: 5 }).length
  let n = 0
  while (size()(n + 1) <= 200) n++
  const payload = Buffer.alloc(n)
  t.true(size()(n) <= 200)
  t.true(size({ topicAlias: 1 })(n) > 200)
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('sz/edge', payload, { qos: 1 })
  await pub.publishAsync('sz/next', 'after', { qos: 1 })
  const got = await next5(sub, 'publish')
  t.is(String(got.payload), 'after')
  t.is(got.topic, 'sz/next')
})
