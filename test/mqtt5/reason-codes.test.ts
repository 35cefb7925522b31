// MQTT 5 reason codes on every acknowledgement (MQTT 5.0 §3.4.2.1 PUBACK, §3.5.2.1 PUBREC,
// §3.6.2.1 PUBREL, §3.7.2.1 PUBCOMP, §3.9.3 SUBACK, §3.11.3 UNSUBACK) and Reason Strings
// on denials, which a client turns off with Request Problem Information = 0 [MQTT-3.1.2-29].
import test from 'ava'
import { tapping, testBroker } from '../helpers/broker.ts'
import { RawClient, connectBeforeConnack, settle, until } from '../helpers/mqtt.ts'
import { next5, raw5, send5, v5 } from './packet-helpers.ts'

test('PUBACK / PUBREC 0x00 when nobody subscribes, also when only an offline persistent session does, which then gets the message (§3.4.2.1: 0x10 is not sent for that)', async (t) => {
  const broker = await testBroker(t)
  const { client } = await raw5(t, broker.port, { clientId: 'pub' })
  send5(client, { cmd: 'publish', topic: 'nobody/here', payload: 'x', qos: 1, messageId: 1 })
  t.is((await next5(client, 'puback')).reasonCode ?? 0, 0x00)
  send5(client, { cmd: 'publish', topic: 'nobody/here', payload: 'x', qos: 2, messageId: 2 })
  t.is((await next5(client, 'pubrec')).reasonCode ?? 0, 0x00)
  send5(client, { cmd: 'pubrel', messageId: 2 })
  t.is((await next5(client, 'pubcomp')).reasonCode, 0x00)

  const away = await v5(t, broker.url, 'away', { clean: false, properties: { sessionExpiryInterval: 60 } })
  await away.subscribeAsync('later/+', { qos: 1 })
  await away.endAsync()
  send5(client, { cmd: 'publish', topic: 'later/x', payload: 'kept', qos: 1, messageId: 5 })
  t.is((await next5(client, 'puback')).reasonCode ?? 0, 0x00)
  // the queued message may come in the same read as the CONNACK: handler first
  const queued: string[] = []
  connectBeforeConnack(t, broker.url, { protocolVersion: 5, clientId: 'away', clean: false, properties: { sessionExpiryInterval: 60 } }, (_topic, payload) => queued.push(payload.toString()))
  await until(() => queued.length > 0, 'the queued message')
  t.deepEqual(queued, ['kept'])

  const sub = await v5(t, broker.url, 'sub')
  await sub.subscribeAsync('some/+', { qos: 1 })
  send5(client, { cmd: 'publish', topic: 'some/one', payload: 'y', qos: 1, messageId: 3 })
  const ack = await next5(client, 'puback')
  t.is(ack.reasonCode ?? 0, 0x00)
  const got = await until(() => sub.received.find((p) => p.cmd === 'publish'), 'the message')
  t.is(got.topic, 'some/one')
  // a shared subscription is a subscriber too
  const member = await v5(t, broker.url, 'member')
  await member.subscribeAsync('$share/g/shared/+', { qos: 1 })
  send5(client, { cmd: 'publish', topic: 'shared/x', payload: 'z', qos: 1, messageId: 4 })
  t.is((await next5(client, 'puback')).reasonCode ?? 0, 0x00)
})

test('PUBACK 0x91 Packet Identifier in use: a QoS 1 PUBLISH reusing the id of a QoS 2 flow awaiting PUBREL is not routed', async (t) => {
  const broker = await testBroker(t)
  const sub = await v5(t, broker.url, 'sub')
  await sub.subscribeAsync('id/#', { qos: 1 })
  const got: string[] = []
  sub.on('message', (_topic, payload) => got.push(payload.toString()))
  const { client } = await raw5(t, broker.port, { clientId: 'pub' })
  send5(client, { cmd: 'publish', topic: 'id/2', payload: 'qos2', qos: 2, messageId: 7 })
  t.is((await next5(client, 'pubrec')).reasonCode ?? 0, 0)
  send5(client, { cmd: 'publish', topic: 'id/1', payload: 'qos1', qos: 1, messageId: 7 })
  const ack = await next5(client, 'puback')
  t.is(ack.reasonCode, 0x91)
  t.is(typeof ack.properties?.reasonString, 'string')
  send5(client, { cmd: 'pubrel', messageId: 7 })
  t.is((await next5(client, 'pubcomp')).reasonCode ?? 0, 0)
  // after the QoS 2 flow ended, the id is free for QoS 1 again
  send5(client, { cmd: 'publish', topic: 'id/1', payload: 'again', qos: 1, messageId: 7 })
  t.is((await next5(client, 'puback')).reasonCode ?? 0, 0)
  await settle(100)
  t.deepEqual(got.sort(), ['again', 'qos2'])
})

test('PUBCOMP 0x92 Packet Identifier not found for a PUBREL of no stored PUBLISH (§3.7.2.1)', async (t) => {
  const broker = await testBroker(t)
  const { client } = await raw5(t, broker.port, { clientId: 'rel' })
  send5(client, { cmd: 'pubrel', messageId: 99 })
  t.is((await next5(client, 'pubcomp')).reasonCode, 0x92)
  // a duplicate PUBREL after the flow ended is unknown too
  send5(client, { cmd: 'publish', topic: 't', payload: 'x', qos: 2, messageId: 5 })
  await next5(client, 'pubrec')
  send5(client, { cmd: 'pubrel', messageId: 5 })
  t.is((await next5(client, 'pubcomp')).reasonCode ?? 0, 0)
  send5(client, { cmd: 'pubrel', messageId: 5 })
  t.is((await next5(client, 'pubcomp')).reasonCode, 0x92)
  // the connection stays up
  send5(client, { cmd: 'pingreq' })
  await next5(client, 'pingresp')
})

test('PUBREL 0x92 Packet Identifier not found for a PUBREC of no PUBLISH in flight (§3.6.2.1); a known one gets 0x00', async (t) => {
  const broker = await testBroker(t)
  const { client } = await raw5(t, broker.port, { clientId: 'rec' })
  send5(client, { cmd: 'pubrec', messageId: 77 })
  t.is((await next5(client, 'pubrel')).reasonCode, 0x92)

  send5(client, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q2', qos: 2 }] })
  await next5(client, 'suback')
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('q2', 'x', { qos: 2 })
  const delivered = await next5(client, 'publish')
  send5(client, { cmd: 'pubrec', messageId: delivered.messageId })
  t.is((await next5(client, 'pubrel')).reasonCode ?? 0, 0)
  send5(client, { cmd: 'pubcomp', messageId: delivered.messageId })
})

test('SUBACK per filter: granted QoS, 0x8F Topic Filter invalid, 0x87 Not authorized; the connection stays up (§3.9.3)', async (t) => {
  const broker = await testBroker(t, {
    plugins: [tapping('acl', (hooks) => {
      hooks.authorize.subscribe.tap('acl', (req) => req.topic.startsWith('secret') ? { result: 'deny', reason: 'no secrets' } : undefined)
    })]
  })
  const { client } = await raw5(t, broker.port, { clientId: 'sub' })
  send5(client, {
    cmd: 'subscribe',
    messageId: 3,
    subscriptions: [{ topic: 'ok/+', qos: 1 }, { topic: 'a/#/b', qos: 0 }, { topic: 'secret/x', qos: 1 }, { topic: 'a/b+', qos: 2 }, { topic: 'fine', qos: 2 }]
  })
  const suback = await next5(client, 'suback')
  t.deepEqual(suback.granted, [1, 0x8F, 0x87, 0x8F, 2])
  send5(client, { cmd: 'pingreq' })
  await next5(client, 'pingresp')
})

test('a wildcard must fill its whole level [MQTT-4.7.1-1] [MQTT-4.7.1-2]: x+, +x, a/+x, x#, a/x# get 0x8F; +, #, a/+, +/a, a/#, +/+/# are granted', async (t) => {
  const broker = await testBroker(t)
  const { client } = await raw5(t, broker.port, { clientId: 'wild' })
  const bad = ['x+', '+x', 'a/+x', 'x#', 'a/x#']
  const good = ['+', '#', 'a/+', '+/a', 'a/#', '+/+/#']
  send5(client, { cmd: 'subscribe', messageId: 4, subscriptions: [...bad, ...good].map((topic) => ({ topic, qos: 1 })) })
  const suback = await next5(client, 'suback')
  t.deepEqual(suback.granted, [...bad.map(() => 0x8F), ...good.map(() => 1)])
})

test('MQTT 3.1.1: an invalid filter still closes the connection (unchanged)', async (t) => {
  const broker = await testBroker(t)
  const { client } = await RawClient.connect(t, broker.port, { clientId: 'v4' })
  client.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'a/#/b', qos: 0 }] })
  await client.waitClosed()
  t.pass()
})

test('UNSUBACK: 0x00 for a subscription that existed, 0x11 No subscription existed (§3.11.3)', async (t) => {
  const broker = await testBroker(t)
  const { client } = await raw5(t, broker.port, { clientId: 'unsub' })
  send5(client, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'have', qos: 0 }] })
  await next5(client, 'suback')
  send5(client, { cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['have', 'never'] })
  const unsuback = await next5(client, 'unsuback')
  t.deepEqual(unsuback.granted, [0x00, 0x11])
})

test('denied PUBLISH: PUBACK/PUBREC 0x87 with the plugin\'s reason as Reason String; none when Request Problem Information = 0 [MQTT-3.1.2-29]', async (t) => {
  const broker = await testBroker(t, {
    plugins: [tapping('acl', (hooks) => {
      hooks.authorize.publish.tap('acl', (req) => req.topic.startsWith('secret') ? { result: 'deny', reason: 'secret topics are closed' } : undefined)
    })]
  })
  const { client } = await raw5(t, broker.port, { clientId: 'talks' })
  send5(client, { cmd: 'publish', topic: 'secret/a', payload: 'x', qos: 1, messageId: 1 })
  const puback = await next5(client, 'puback')
  t.is(puback.reasonCode, 0x87)
  t.is(puback.properties?.reasonString, 'secret topics are closed')
  send5(client, { cmd: 'publish', topic: 'secret/a', payload: 'x', qos: 2, messageId: 2 })
  const pubrec = await next5(client, 'pubrec')
  t.is(pubrec.reasonCode, 0x87)
  t.is(pubrec.properties?.reasonString, 'secret topics are closed')

  const { client: quiet } = await raw5(t, broker.port, { clientId: 'quiet', properties: { requestProblemInformation: false } })
  send5(quiet, { cmd: 'publish', topic: 'secret/a', payload: 'x', qos: 1, messageId: 1 })
  const bare = await next5(quiet, 'puback')
  t.is(bare.reasonCode, 0x87)
  t.is(bare.properties?.reasonString, undefined)
})

test('a Reason String that would make the PUBACK or SUBACK larger than the client\'s Maximum Packet Size is left out; the ack still goes [MQTT-3.4.2-2] [MQTT-3.9.2-1]', async (t) => {
  const broker = await testBroker(t, {
    plugins: [tapping('acl', (hooks) => {
      hooks.authorize.publish.tap('acl', (req) => req.topic.startsWith('locked/') ? { result: 'deny', reason: `no access to ${req.topic}` } : undefined)
      hooks.authorize.subscribe.tap('acl', (req) => req.topic.startsWith('locked/') ? { result: 'deny', reason: `no access to ${req.topic}` } : undefined)
    })]
  })
  const topic = 'locked/' + 'a'.repeat(200)
  for (const [maximumPacketSize, fits] of [[128, false], [4096, true]] as const) {
    const { client } = await raw5(t, broker.port, { clientId: `max${maximumPacketSize}`, properties: { maximumPacketSize } })
    send5(client, { cmd: 'publish', topic, qos: 1, messageId: 1, payload: 'p' })
    const puback = await next5(client, 'puback')
    t.is(puback.reasonCode, 0x87)
    t.is(puback.properties?.reasonString !== undefined, fits, `PUBACK reason string with Maximum Packet Size ${maximumPacketSize}`)
    send5(client, { cmd: 'subscribe', messageId: 2, subscriptions: [{ topic, qos: 1 }] })
    const suback = await next5(client, 'suback')
    t.deepEqual(suback.granted, [0x87])
    t.is(suback.properties?.reasonString !== undefined, fits, `SUBACK reason string with Maximum Packet Size ${maximumPacketSize}`)
    if (fits) t.true(suback.length! + 2 <= maximumPacketSize)
  }
})

test('a CONNECT with Maximum Packet Size 0 is a Protocol Error: CONNACK 0x82 (§3.1.2.11.4)', async (t) => {
  const broker = await testBroker(t)
  const { connack } = await raw5(t, broker.port, { clientId: 'zero-max', properties: { maximumPacketSize: 0 } })
  t.is((connack as { reasonCode?: number }).reasonCode, 0x82)
})

test('a PUBLISH topic with a wildcard: DISCONNECT 0x90 Topic Name invalid for MQTT 5 [MQTT-3.3.2-2]; 3.1.1 is closed as before', async (t) => {
  const broker = await testBroker(t)
  for (const topic of ['a/+', 'a/#']) {
    const { client } = await raw5(t, broker.port, { clientId: `wild-${topic.length}${topic.at(-1) === '#' ? 'h' : 'p'}` })
    send5(client, { cmd: 'publish', topic, payload: 'x', qos: 0 })
    t.is((await next5(client, 'disconnect')).reasonCode, 0x90, topic)
    await client.waitClosed()
  }
  const { client: old } = await RawClient.connect(t, broker.port, { clientId: 'v4' })
  old.send({ cmd: 'publish', topic: 'a/+', payload: Buffer.from('x'), qos: 0, retain: false, dup: false })
  await old.waitClosed()
  t.false(old.packets.some((p) => p.cmd === 'disconnect'))
})

test('enhanced authentication is not supported: a CONNECT with an Authentication Method gets CONNACK 0x8C; an AUTH packet is a Protocol Error, DISCONNECT 0x82 (§4.12)', async (t) => {
  const broker = await testBroker(t)
  const { connack } = await raw5(t, broker.port, { clientId: 'scram', properties: { authenticationMethod: 'SCRAM-SHA-1' } })
  t.is((connack as { reasonCode?: number }).reasonCode, 0x8C)
  const { client } = await raw5(t, broker.port, { clientId: 'plain' })
  send5(client, { cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-1' } })
  t.is((await next5(client, 'disconnect')).reasonCode, 0x82)
  await client.waitClosed()
})
