// MQTT 5 Receive Maximum (MQTT 5.0 §3.1.2.11.3, §3.2.2.3.3, §4.9 Flow Control) both ways:
// inbound, a client over the window tapmq advertised (receive_maximum) is disconnected with
// 0x93; outbound, tapmq never has more unacknowledged QoS 1/2 PUBLISH towards a client than
// the client's own Receive Maximum [MQTT-3.3.4-9] and sends the rest as acks arrive.
import test from 'ava'
import mqttPacket from 'mqtt-packet'
import { tapping, testBroker } from '../helpers/broker.ts'
import { RawClient, settle, tmpDir, until } from '../helpers/mqtt.ts'
import { type AnyPacket, next5, raw5, send5, v5 } from './packet-helpers.ts'

const publishes = (client: RawClient) => client.packets.filter((p) => p.cmd === 'publish') as AnyPacket[]

test('inbound: one QoS 2 PUBLISH over receive_maximum while the others await PUBREL: DISCONNECT 0x93', async (t) => {
  const broker = await testBroker(t, { config: { receive_maximum: '2' } })
  const { client, connack } = await raw5(t, broker.port, { clientId: 'greedy' })
  t.is(connack.properties?.receiveMaximum, 2)
  send5(client, { cmd: 'publish', topic: 'w', payload: '1', qos: 2, messageId: 1 })
  send5(client, { cmd: 'publish', topic: 'w', payload: '2', qos: 2, messageId: 2 })
  await next5(client, 'pubrec')
  await next5(client, 'pubrec')
  // a resend of a held message does not count again
  send5(client, { cmd: 'publish', topic: 'w', payload: '2', qos: 2, messageId: 2, dup: true })
  await next5(client, 'pubrec')
  send5(client, { cmd: 'publish', topic: 'w', payload: '3', qos: 2, messageId: 3 })
  t.is((await next5(client, 'disconnect')).reasonCode, 0x93)
  await client.waitClosed()
})

for (const persistence of ['memory', 'embedded']) {
  test(`inbound: a burst of QoS 2 PUBLISH in one write past receive_maximum: DISCONNECT 0x93, once (persistence = ${persistence})`, async (t) => {
    const dir = await tmpDir(t)
    const broker = await testBroker(t, { config: { receive_maximum: '3', persistence, data_dir: dir } })
    const { client } = await raw5(t, broker.port, { clientId: 'burst2' })
    client.write(Buffer.concat([1, 2, 3, 4, 5, 6].map((id) => (
      mqttPacket.generate({ cmd: 'publish', topic: 'w', payload: 'x', qos: 2, messageId: id, dup: false, retain: false }, { protocolVersion: 5 })
    ))))
    t.is((await next5(client, 'disconnect')).reasonCode, 0x93)
    await client.waitClosed()
    t.is(client.packets.filter((p) => p.cmd === 'disconnect').length, 0, 'one DISCONNECT')
  })
}

test('inbound: a client that stays within the window is never disconnected (PUBCOMP frees a slot)', async (t) => {
  const broker = await testBroker(t, { config: { receive_maximum: '2' } })
  const { client } = await raw5(t, broker.port, { clientId: 'polite' })
  for (let id = 1; id <= 10; id++) {
    send5(client, { cmd: 'publish', topic: 'w', payload: String(id), qos: 2, messageId: id })
    if (id > 1) {
      send5(client, { cmd: 'pubrel', messageId: id - 1 })
      await next5(client, 'pubcomp')
    }
    await next5(client, 'pubrec')
  }
  send5(client, { cmd: 'pingreq' })
  await next5(client, 'pingresp')
  t.false(client.packets.some((p) => p.cmd === 'disconnect'))
})

test('inbound: QoS 1 PUBLISHes not yet acknowledged count too (a slow authorizer holds them): DISCONNECT 0x93', async (t) => {
  const broker = await testBroker(t, {
    config: { receive_maximum: '2' },
    plugins: [tapping('slow-acl', (hooks) => {
      hooks.authorize.publish.tapPromise('slow-acl', () => new Promise((resolve) => setTimeout(() => resolve(undefined), 50)))
    })]
  })
  const { client } = await raw5(t, broker.port, { clientId: 'burst' })
  // one write: three QoS 1 PUBLISH before any PUBACK could be sent
  client.write(Buffer.concat([1, 2, 3].map((id) => (
    mqttPacket.generate({ cmd: 'publish', topic: 'w', payload: 'x', qos: 1, messageId: id, dup: false, retain: false }, { protocolVersion: 5 })
  ))))
  t.is((await next5(client, 'disconnect')).reasonCode, 0x93)
})

test('outbound: no more than the client\'s Receive Maximum QoS 1 messages unacknowledged; the rest follow in order as PUBACKs arrive [MQTT-3.3.4-9]', async (t) => {
  const broker = await testBroker(t)
  const { client: sub } = await raw5(t, broker.port, { clientId: 'sub', properties: { receiveMaximum: 2 } })
  send5(sub, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flow', qos: 1 }] })
  await next5(sub, 'suback')
  const pub = await v5(t, broker.url, 'pub')
  for (let i = 1; i <= 6; i++) await pub.publishAsync('flow', String(i), { qos: 1 })
  await until(() => publishes(sub).length >= 2, 'two messages')
  await settle(100)
  t.is(publishes(sub).length, 2, 'two in flight, the others wait')
  let acked = 0
  while (acked < 6) {
    const inFlight = publishes(sub).length - acked
    t.true(inFlight <= 2, `${inFlight} unacknowledged`)
    send5(sub, { cmd: 'puback', messageId: publishes(sub)[acked].messageId })
    acked++
    if (acked <= 4) await until(() => publishes(sub).length >= acked + 2, `message ${acked + 2}`)
  }
  await settle(50)
  t.deepEqual(publishes(sub).map((p) => String(p.payload)), ['1', '2', '3', '4', '5', '6'])
})

test('outbound QoS 2: a message stays in flight until PUBCOMP; a PUBREC >= 0x80 ends it too', async (t) => {
  const broker = await testBroker(t)
  const { client: sub } = await raw5(t, broker.port, { clientId: 'sub2', properties: { receiveMaximum: 1 } })
  send5(sub, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flow2', qos: 2 }] })
  await next5(sub, 'suback')
  const pub = await v5(t, broker.url, 'pub')
  for (let i = 1; i <= 3; i++) await pub.publishAsync('flow2', String(i), { qos: 2 })
  const first = await next5(sub, 'publish')
  t.is(String(first.payload), '1')
  send5(sub, { cmd: 'pubrec', messageId: first.messageId })
  await next5(sub, 'pubrel')
  await settle(100)
  t.is(publishes(sub).length, 0, 'nothing new before PUBCOMP')
  send5(sub, { cmd: 'pubcomp', messageId: first.messageId })
  const second = await next5(sub, 'publish')
  t.is(String(second.payload), '2')
  // the receiver refuses it: the flow ends, the next one comes
  send5(sub, { cmd: 'pubrec', messageId: second.messageId, reasonCode: 0x80 })
  const third = await next5(sub, 'publish')
  t.is(String(third.payload), '3')
})

test('outbound: a persistent session\'s queued messages are sent within the Receive Maximum after reconnect', async (t) => {
  const broker = await testBroker(t)
  const session = { clientId: 'offline', clean: false, properties: { sessionExpiryInterval: 300, receiveMaximum: 2 } }
  const first = await raw5(t, broker.port, session)
  send5(first.client, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'queued', qos: 1 }] })
  await next5(first.client, 'suback')
  send5(first.client, { cmd: 'disconnect' })
  await first.client.waitClosed()
  const pub = await v5(t, broker.url, 'pub')
  for (let i = 1; i <= 5; i++) await pub.publishAsync('queued', String(i), { qos: 1 })
  const { client: sub } = await raw5(t, broker.port, session)
  await until(() => publishes(sub).length >= 2, 'two queued messages')
  await settle(100)
  t.is(publishes(sub).length, 2)
  for (let acked = 0; acked < 5; acked++) {
    await until(() => publishes(sub).length > acked, `message ${acked + 1}`)
    send5(sub, { cmd: 'puback', messageId: publishes(sub)[acked].messageId })
  }
  await until(() => publishes(sub).length >= 5, 'all five')
  t.deepEqual(publishes(sub).map((p) => String(p.payload)), ['1', '2', '3', '4', '5'])
})

test('outbound: without a Receive Maximum (65535) a client gets every message without acknowledging', async (t) => {
  const broker = await testBroker(t)
  const { client: sub } = await raw5(t, broker.port, { clientId: 'open' })
  send5(sub, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'many', qos: 1 }] })
  await next5(sub, 'suback')
  const pub = await v5(t, broker.url, 'pub')
  for (let i = 1; i <= 40; i++) await pub.publishAsync('many', String(i), { qos: 1 })
  await until(() => publishes(sub).length >= 40, 'forty unacknowledged messages')
  t.pass()
})

test('outbound: with the window and max_outbound_queue full, further QoS 1 messages are not queued: counted in tapmq_outbound_queue_dropped_total and logged once', async (t) => {
  const broker = await testBroker(t, { config: { max_outbound_queue: '3' } })
  const { client: sub } = await raw5(t, broker.port, { clientId: 'stall', properties: { receiveMaximum: 1 } })
  send5(sub, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q', qos: 1 }] })
  await next5(sub, 'suback')
  const pub = await v5(t, broker.url, 'pub')
  // 1 in flight, 3 waiting, 4 refused
  for (let i = 1; i <= 8; i++) await pub.publishAsync('q', String(i), { qos: 1 })
  const registry = broker.tapmq.metrics.registry
  const dropped = async () => Number(/ (\d+)$/m.exec(await registry.getSingleMetricAsString('tapmq_outbound_queue_dropped_total'))?.[1])
  for (let polls = 0; (await dropped()) < 4 && polls < 500; polls++) await settle(10)
  t.is(await dropped(), 4, 'four refused')
  t.is(broker.logs.filter((line) => String(line.msg).includes('outbound queue is full') && line.clientId === 'stall').length, 1)
  // the queued ones still come, in order, as the subscriber acknowledges
  for (let acked = 0; acked < 4; acked++) {
    await until(() => publishes(sub).length > acked, `message ${acked + 1}`)
    send5(sub, { cmd: 'puback', messageId: publishes(sub)[acked].messageId })
  }
  t.deepEqual(publishes(sub).map((p) => String(p.payload)), ['1', '2', '3', '4'])
})
