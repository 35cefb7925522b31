// MQTT 5 Topic Aliases (MQTT 5.0 §3.3.2.3.4): inbound (max_topic_alias) and outbound
// (outbound_topic_alias, towards clients whose CONNECT allows aliases).
import test from 'ava'
import type { DeliveredEvent } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { Recorder, settle, until } from '../helpers/mqtt.ts'
import { type AnyPacket, next5, raw5, send5, v5 } from './packet-helpers.ts'

test('inbound: an alias set with a topic resolves later PUBLISHes with an empty topic; subscribers get the topic and no alias', async (t) => {
  const broker = await testBroker(t, { config: { max_topic_alias: '3' } })
  const sub = await v5(t, broker.url, 'sub')
  await sub.subscribeAsync('al/#', { qos: 1 })
  const { client } = await raw5(t, broker.port, { clientId: 'pub' })
  send5(client, { cmd: 'publish', topic: 'al/one', payload: '1', qos: 1, messageId: 1, properties: { topicAlias: 3 } })
  await next5(client, 'puback')
  send5(client, { cmd: 'publish', topic: '', payload: '2', qos: 1, messageId: 2, properties: { topicAlias: 3 } })
  await next5(client, 'puback')
  // [MQTT-3.3.2-12] any value 1..max is accepted; a set alias may be remapped
  send5(client, { cmd: 'publish', topic: 'al/two', payload: '3', qos: 1, messageId: 3, properties: { topicAlias: 3 } })
  await next5(client, 'puback')
  send5(client, { cmd: 'publish', topic: '', payload: '4', qos: 1, messageId: 4, properties: { topicAlias: 3 } })
  await next5(client, 'puback')
  await until(() => sub.received.filter((p) => p.cmd === 'publish').length >= 4, 'four messages')
  const got = sub.received.filter((p) => p.cmd === 'publish')
  t.deepEqual(got.map((p) => [p.topic, String(p.payload)]), [['al/one', '1'], ['al/one', '2'], ['al/two', '3'], ['al/two', '4']])
  for (const p of got) t.is(p.properties?.topicAlias, undefined, 'the publisher\'s alias is not forwarded')
})

test('inbound: Topic Alias 0 is a protocol error: DISCONNECT 0x94 [MQTT-3.3.2-8]', async (t) => {
  const broker = await testBroker(t)
  const { client } = await raw5(t, broker.port, { clientId: 'zero' })
  send5(client, { cmd: 'publish', topic: 'a', payload: 'x', qos: 0, properties: { topicAlias: 0 } })
  t.is((await next5(client, 'disconnect')).reasonCode, 0x94)
  await client.waitClosed()
})

test('inbound: an alias above the advertised Topic Alias Maximum: DISCONNECT 0x94 [MQTT-3.3.2-9]; the maximum itself is accepted [MQTT-3.3.2-12]', async (t) => {
  const broker = await testBroker(t, { config: { max_topic_alias: '4' } })
  const { client: ok } = await raw5(t, broker.port, { clientId: 'max' })
  send5(ok, { cmd: 'publish', topic: 'a', payload: 'x', qos: 1, messageId: 1, properties: { topicAlias: 4 } })
  await next5(ok, 'puback')
  const { client } = await raw5(t, broker.port, { clientId: 'over' })
  send5(client, { cmd: 'publish', topic: 'a', payload: 'x', qos: 1, messageId: 1, properties: { topicAlias: 5 } })
  t.is((await next5(client, 'disconnect')).reasonCode, 0x94)
  await client.waitClosed()
})

test('inbound: an empty topic with an alias never set is a Protocol Error (DISCONNECT 0x82); so is an empty topic without alias', async (t) => {
  const broker = await testBroker(t)
  const { client } = await raw5(t, broker.port, { clientId: 'unknown' })
  send5(client, { cmd: 'publish', topic: '', payload: 'x', qos: 0, properties: { topicAlias: 2 } })
  t.is((await next5(client, 'disconnect')).reasonCode, 0x82)
  await client.waitClosed()
  const { client: bare } = await raw5(t, broker.port, { clientId: 'bare' })
  send5(bare, { cmd: 'publish', topic: '', payload: 'x', qos: 0 })
  t.is((await next5(bare, 'disconnect')).reasonCode, 0x82)
})

test('inbound: the topic names one connection\'s aliases hold are bounded by max_topic_alias_length: remapping an alias frees its old name; going over is DISCONNECT 0x97 Quota exceeded', async (t) => {
  const broker = await testBroker(t, { config: { max_topic_alias: '100', max_topic_alias_length: '100' } })
  const { client } = await raw5(t, broker.port, { clientId: 'long' })
  const name = (c: string) => 't/' + c.repeat(38) // 40 characters
  send5(client, { cmd: 'publish', topic: name('a'), payload: 'x', qos: 1, messageId: 1, properties: { topicAlias: 1 } })
  await next5(client, 'puback')
  send5(client, { cmd: 'publish', topic: name('b'), payload: 'x', qos: 1, messageId: 2, properties: { topicAlias: 2 } })
  await next5(client, 'puback')
  // alias 2 remapped: 80 characters held, not 120
  send5(client, { cmd: 'publish', topic: name('c'), payload: 'x', qos: 1, messageId: 3, properties: { topicAlias: 2 } })
  await next5(client, 'puback')
  // a third name would hold 120
  send5(client, { cmd: 'publish', topic: name('d'), payload: 'x', qos: 1, messageId: 4, properties: { topicAlias: 3 } })
  t.is((await next5(client, 'disconnect')).reasonCode, 0x97)
  await client.waitClosed()
})

test('inbound: aliases do not survive a reconnect, even of a persistent session [MQTT-3.3.2-7]', async (t) => {
  const broker = await testBroker(t)
  const first = await raw5(t, broker.port, { clientId: 'again', clean: false, properties: { sessionExpiryInterval: 60 } })
  send5(first.client, { cmd: 'publish', topic: 'kept/topic', payload: 'x', qos: 1, messageId: 1, properties: { topicAlias: 1 } })
  await next5(first.client, 'puback')
  send5(first.client, { cmd: 'disconnect' })
  await first.client.waitClosed()
  const second = await raw5(t, broker.port, { clientId: 'again', clean: false, properties: { sessionExpiryInterval: 60 } })
  t.true(second.connack.sessionPresent)
  send5(second.client, { cmd: 'publish', topic: '', payload: 'y', qos: 1, messageId: 2, properties: { topicAlias: 1 } })
  t.is((await next5(second.client, 'disconnect')).reasonCode, 0x82)
})

const publishes = (client: { packets: unknown[] }) => client.packets.filter((p) => (p as AnyPacket).cmd === 'publish') as AnyPacket[]

for (const qos of [0, 1] as const) {
  test(`outbound (QoS ${qos}${qos === 0 ? ', write coalescing' : ''}): topic and alias first, then only the alias; never above the client's Topic Alias Maximum [MQTT-3.3.2-11]`, async (t) => {
    const broker = await testBroker(t, { config: { outbound_topic_alias: 'true' } })
    const { client: sub } = await raw5(t, broker.port, { clientId: 'sub', properties: { topicAliasMaximum: 2 } })
    send5(sub, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'out/#', qos }] })
    await next5(sub, 'suback')
    const pub = await v5(t, broker.url, 'pub')
    const topics = ['out/a', 'out/a', 'out/b', 'out/b', 'out/c', 'out/a', 'out/c']
    for (const topic of topics) await pub.publishAsync(topic, topic, { qos: 1 })
    await until(() => publishes(sub).length >= topics.length, 'every message')
    const got = publishes(sub)
    if (qos === 1) for (const p of got) send5(sub, { cmd: 'puback', messageId: p.messageId })
    // what a receiver's alias table makes of them
    const table = new Map<number, string>()
    const resolved = got.map((p) => {
      const alias = p.properties?.topicAlias as number | undefined
      t.truthy(alias, 'every message carries an alias')
      t.true(alias! >= 1 && alias! <= 2, `alias ${alias} within 1..2`)
      if (p.topic) table.set(alias!, p.topic)
      else t.true(table.has(alias!), 'an empty topic only for an alias already sent')
      return table.get(alias!)
    })
    t.deepEqual(resolved, topics)
    t.deepEqual(got.map((p) => String(p.payload)), topics)
    // the second message on a topic goes without the topic
    t.is(got[1].topic, '')
    t.is(got[3].topic, '')
  })
}

test('outbound: mqtt.js with a Topic Alias Maximum gets every topic right; clients without one, and MQTT 3.1.1, get no aliases', async (t) => {
  const delivered = new Recorder<DeliveredEvent>()
  const broker = await testBroker(t, {
    config: { outbound_topic_alias: 'true' },
    plugins: [tapping('rec', (hooks) => { hooks.message.delivered.tap('rec', delivered.push) })]
  })
  const aliased = await v5(t, broker.url, 'aliased', { properties: { topicAliasMaximum: 10 } })
  const plain = await v5(t, broker.url, 'plain')
  const { client: rawPlain } = await raw5(t, broker.port, { clientId: 'raw-plain' })
  send5(rawPlain, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'm/#', qos: 0 }] })
  await next5(rawPlain, 'suback')
  const v4 = await (await import('../helpers/mqtt.ts')).connectClient(t, broker.url, { clientId: 'v4' })
  const seen: Record<string, string[]> = { aliased: [], plain: [], v4: [] }
  aliased.on('message', (topic) => seen.aliased.push(topic))
  plain.on('message', (topic) => seen.plain.push(topic))
  v4.on('message', (topic) => seen.v4.push(topic))
  await aliased.subscribeAsync('m/#', { qos: 1 })
  await plain.subscribeAsync('m/#', { qos: 1 })
  await v4.subscribeAsync('m/#', { qos: 1 })
  const pub = await v5(t, broker.url, 'pub')
  const topics = Array.from({ length: 30 }, (_, i) => `m/${i % 4}`)
  for (const [i, topic] of topics.entries()) await pub.publishAsync(topic, String(i), { qos: (i % 2) as 0 | 1 })
  await until(() => seen.aliased.length >= 30 && seen.plain.length >= 30 && seen.v4.length >= 30 && publishes(rawPlain).length >= 30, 'every message everywhere')
  t.deepEqual(seen.aliased, topics)
  t.deepEqual(seen.plain, topics)
  t.deepEqual(seen.v4, topics)
  for (const p of publishes(rawPlain)) {
    t.is(p.properties?.topicAlias, undefined)
    t.truthy(p.topic)
  }
  // plugins see the real topic of an aliased delivery
  await settle(50)
  const toAliased = delivered.list.filter((e) => e.clientId === 'aliased')
  t.deepEqual(toAliased.map((e) => e.topic), topics)
})

test('outbound: off by default (outbound_topic_alias = false)', async (t) => {
  const broker = await testBroker(t)
  const { client: sub } = await raw5(t, broker.port, { clientId: 'sub', properties: { topicAliasMaximum: 5 } })
  send5(sub, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'd/#', qos: 0 }] })
  await next5(sub, 'suback')
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('d/x', 'a')
  await pub.publishAsync('d/x', 'b')
  await until(() => publishes(sub).length >= 2, 'two messages')
  for (const p of publishes(sub)) {
    t.is(p.topic, 'd/x')
    t.is(p.properties?.topicAlias, undefined)
  }
})
