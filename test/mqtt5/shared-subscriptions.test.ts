// Shared subscriptions, MQTT 5.0 §4.8.2 (`$share/{ShareName}/{filter}`), on a real broker
// with mqtt.js clients (protocolVersion 5 unless a test says otherwise) and raw packets
// for what mqtt.js refuses to send. See docs/mqtt5.md "### Shared subscriptions".
import test, { type ExecutionContext } from 'ava'
import type { IClientOptions, MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import type { AuthorizeRequest, DeliveredEvent, SessionSubscriptionEvent, SubscribeEvent } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { recordingPlugin } from '../helpers/hooks.ts'
import {
  RawClient, connectBeforeConnack, connectClient, nextMessage, once, settle, subackCodes, tmpDir, until
} from '../helpers/mqtt.ts'
import { startApi } from '../http-api/helpers.ts'
import { startTestBroker } from '../../sdk/testing.ts'

interface Got { topic: string, payload: string, qos: number, retain: boolean }

function collect (client: MqttClient): Got[] {
  const got: Got[] = []
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }))
  return got
}

function v5 (t: ExecutionContext, url: string, clientId: string, options: IClientOptions = {}): Promise<MqttClient> {
  return connectClient(t, url, { protocolVersion: 5, clientId, ...options })
}

/** members joined in this order; waits for each SUBACK so the join order is known */
async function members (t: ExecutionContext, url: string, filter: string, ids: string[], qos: 0 | 1 | 2 = 1): Promise<Array<{ client: MqttClient, got: Got[] }>> {
  const out = []
  for (const id of ids) {
    const client = await v5(t, url, id)
    const got = collect(client)
    t.deepEqual(await subackCodes(client, { [filter]: { qos } }), [qos], `${id} joins ${filter}`)
    out.push({ client, got })
  }
  return out
}

async function publishAll (publisher: MqttClient, topic: (i: number) => string, count: number, qos: 0 | 1 | 2 = 1): Promise<string[]> {
  const payloads: string[] = []
  for (let i = 0; i < count; i++) {
    payloads.push(`m${i}`)
    // one at a time: the broker routes them in this order, which makes the turns known
    await publisher.publishAsync(topic(i), `m${i}`, { qos })
  }
  return payloads
}

interface Group { group: string, filter: string, members: string[], offline: string[] }
// the broker's shared groups, from aedes' lib/shared.js (tapmq's patch 004); a path in a
// variable keeps TypeScript from looking for types of this untyped module
const sharedModule = '../../node_modules/aedes/lib/shared.js'
const shared = await import(sharedModule) as { sharedGroups (broker: unknown): Group[] }
function groupsOf (broker: { tapmq: { broker: unknown } }): Group[] {
  return shared.sharedGroups(broker.tapmq.broker)
}

test('CONNACK advertises Shared Subscription Available = 1 by default [MQTT-3.2.2-13]', async (t) => {
  const broker = await testBroker(t)
  const { connack } = connectBeforeConnack(t, broker.url, { protocolVersion: 5, clientId: 'c' })
  const packet = await connack as { properties?: { sharedSubscriptionAvailable?: boolean } }
  t.is(packet.properties?.sharedSubscriptionAvailable, true)
})

test('shared_subscription = false: CONNACK says 0 and $share/ gets SUBACK 0x9E (v5) / 0x80 (v3.1.1) [MQTT-3.2.2-13]', async (t) => {
  const broker = await testBroker(t, { config: { shared_subscription: 'false' } })
  const { client, connack } = connectBeforeConnack(t, broker.url, { protocolVersion: 5, clientId: 'c' })
  const packet = await connack as { properties?: { sharedSubscriptionAvailable?: boolean } }
  t.is(packet.properties?.sharedSubscriptionAvailable, false)
  t.deepEqual(await subackCodes(client, { '$share/g/a/+': { qos: 1 }, 'a/+': { qos: 1 } }), [0x9E, 1])
  const old = await connectClient(t, broker.url, { clientId: 'v4' })
  t.deepEqual(await subackCodes(old, { '$share/g/a/+': { qos: 1 } }), [0x80])
  // off, `$queue/` is an ordinary (literal) filter as in aedes
  t.deepEqual(await subackCodes(client, { '$queue/a': { qos: 0 } }), [0])
  t.deepEqual(broker.broker.subscriptions('c').map((s) => s.topic).sort(), ['$queue/a', 'a/+'])
})

test('[MQTT-4.8.2] round robin: 6 messages to a group of 3 give 2 each, in join order; another group and a plain subscriber each get all 6', async (t) => {
  const broker = await testBroker(t)
  const g = await members(t, broker.url, '$share/g/a/+', ['g1', 'g2', 'g3'])
  const [h] = await members(t, broker.url, '$share/h/a/+', ['h1'])
  const plain = await v5(t, broker.url, 'plain')
  const plainGot = collect(plain)
  await plain.subscribeAsync('a/+', { qos: 1 })
  const pub = await v5(t, broker.url, 'pub')
  const sent = await publishAll(pub, (i) => `a/${i}`, 6)

  await until(() => plainGot.length === 6 && h!.got.length === 6 && g.every((m) => m.got.length === 2), 'every copy')
  await pub.publishAsync('other', 'x', { qos: 1 }) // one more round trip, then nothing else may come
  await settle()
  t.deepEqual(g.map((m) => m.got.map((x) => x.payload)), [['m0', 'm3'], ['m1', 'm4'], ['m2', 'm5']])
  t.deepEqual(h!.got.map((x) => x.payload), sent)
  t.deepEqual(plainGot.map((x) => x.payload), sent)
  // the topic a member sees is the message's topic, not the shared filter
  t.deepEqual(g[0]!.got.map((x) => x.topic), ['a/0', 'a/3'])
  t.deepEqual(groupsOf(broker).sort((a, b) => a.group.localeCompare(b.group)), [
    { group: 'g', filter: 'a/+', members: ['g1', 'g2', 'g3'], offline: [] },
    { group: 'h', filter: 'a/+', members: ['h1'], offline: [] }
  ])
})

test('[MQTT-4.8.2-3] [MQTT-3.8.4-8] each member gets the lower of the message QoS and its own granted QoS; members of one group may hold different QoS', async (t) => {
  const broker = await testBroker(t)
  const [q0] = await members(t, broker.url, '$share/g/q/#', ['q0'], 0)
  const [q1] = await members(t, broker.url, '$share/g/q/#', ['q1'], 1)
  const [q2] = await members(t, broker.url, '$share/g/q/#', ['q2'], 2)
  const pub = await v5(t, broker.url, 'pub')
  await publishAll(pub, (i) => `q/${i}`, 6, 2)
  await until(() => [q0, q1, q2].every((m) => m!.got.length === 2), 'two messages each')
  t.deepEqual(q0!.got.map((x) => x.qos), [0, 0])
  t.deepEqual(q1!.got.map((x) => x.qos), [1, 1])
  t.deepEqual(q2!.got.map((x) => x.qos), [2, 2])
  // QoS 0 messages stay QoS 0 for the QoS 1 and 2 members (one each, in turn)
  for (let i = 0; i < 3; i++) await pub.publishAsync(`q/low${i}`, `low${i}`, { qos: 0 })
  await until(() => [q0, q1, q2].every((m) => m!.got.length === 3), 'one QoS 0 message each')
  t.deepEqual([q0, q1, q2].map((m) => [m!.got[2]!.payload, m!.got[2]!.qos]), [['low0', 0], ['low1', 0], ['low2', 0]])
})

test('malformed shared filters get SUBACK 0x8F Topic Filter invalid [MQTT-4.8.2-1] [MQTT-4.8.2-2]; the connection stays', async (t) => {
  const broker = await testBroker(t)
  const { client: raw, connack } = await RawClient.connect(t, broker.port, { clientId: 'raw5', protocolVersion: 5 })
  t.is((connack as { reasonCode?: number }).reasonCode, 0)
  const bad = ['$share/g', '$share//a', '$share/g+/a', '$share/g#/a', '$share/+/a', '$share/#/a', '$share/g/', '$share', '$share/g/a/#/b', '$queue/', '$share/g/$share/h/a', '$queue/$share/h/a']
  raw.write(mqttPacket.generate({
    cmd: 'subscribe',
    messageId: 7,
    subscriptions: [...bad, '$share/ok/a'].map((topic) => ({ topic, qos: 1 as const, nl: false, rap: false, rh: 0 }))
  }, { protocolVersion: 5 }))
  const suback = await raw.next('suback') as { messageId: number, granted: number[] }
  t.is(suback.messageId, 7)
  t.deepEqual(suback.granted, [...bad.map(() => 0x8F), 1])
  raw.send({ cmd: 'pingreq' })
  await raw.next('pingresp')
  t.deepEqual(broker.broker.subscriptions('raw5').map((s) => s.topic), ['$share/ok/a'])
})

test('MQTT 3.1.1: a malformed shared filter gets 0x80, the only failure code of a 3.1.1 SUBACK', async (t) => {
  const broker = await testBroker(t)
  const { client: raw } = await RawClient.connect(t, broker.port, { clientId: 'raw4' })
  raw.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: '$share/g+/a', qos: 1 }, { topic: '$share/g', qos: 1 }, { topic: '$share/g/a', qos: 1 }] } as never)
  const suback = await raw.next('suback') as { granted: number[] }
  t.deepEqual(suback.granted, [0x80, 0x80, 1])
})

test('No Local = 1 on a shared subscription is a Protocol Error: DISCONNECT 0x82 [MQTT-3.8.3-4]', async (t) => {
  const broker = await testBroker(t)
  const client = await v5(t, broker.url, 'nl')
  const disconnect = once<[{ reasonCode?: number }]>(client, 'disconnect')
  client.subscribe('$share/g/a', { qos: 1, nl: true }, () => {})
  const [packet] = await disconnect
  t.is(packet.reasonCode, 0x82)
  await until(() => !client.connected, 'the connection to close')
  t.deepEqual(groupsOf(broker), [])
  // No Local stays allowed on a plain subscription
  const other = await v5(t, broker.url, 'nl-plain')
  t.deepEqual(await subackCodes(other, { 'a/+': { qos: 1, nl: true } as never }), [1])
})

test('retained messages are not sent when a shared subscription is made [MQTT-4.8.2]', async (t) => {
  const broker = await testBroker(t)
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('r/1', 'kept', { qos: 1, retain: true })
  // a plain subscription does get it: the retained message is there
  const plain = await v5(t, broker.url, 'plain')
  const plainFirst = nextMessage(plain)
  await plain.subscribeAsync('r/+', { qos: 1 })
  t.deepEqual((await plainFirst).map(String), ['r/1', 'kept'])

  // Retain Handling 0 (send on subscribe) and 1 (send if new) do not apply either
  const joined: Got[][] = []
  for (const rh of [0, 1] as const) {
    const client = await v5(t, broker.url, `m-rh${rh}`)
    const got = collect(client)
    t.deepEqual(await subackCodes(client, { [`$share/g${rh}/r/+`]: { qos: 1, rh } as never }), [1])
    joined.push(got)
  }
  await pub.publishAsync('r/2', 'live', { qos: 1 })
  await until(() => joined.every((got) => got.length > 0), 'the live message')
  for (const got of joined) t.deepEqual(got.map((x) => x.payload), ['live'])
})

test('UNSUBSCRIBE takes out only that member; the last member takes the group with it [MQTT-4.8.2] [MQTT-3.11.3]', async (t) => {
  const broker = await testBroker(t)
  const [a, b] = await members(t, broker.url, '$share/g/u/#', ['a', 'b'])
  // UNSUBACK reason codes: 0x00 Success, then 0x11 No subscription existed [MQTT-3.11.3]
  const left = await a!.client.unsubscribeAsync('$share/g/u/#') as { granted?: number[] } | undefined
  t.deepEqual(left?.granted, [0])
  t.deepEqual(groupsOf(broker).map((g) => g.members), [['b']])
  const pub = await v5(t, broker.url, 'pub')
  await publishAll(pub, (i) => `u/${i}`, 4)
  await until(() => b!.got.length === 4, 'all four at b')
  await settle()
  t.is(a!.got.length, 0)
  const again = await a!.client.unsubscribeAsync('$share/g/u/#') as { granted?: number[] } | undefined
  t.deepEqual(again?.granted, [0x11])
  await b!.client.unsubscribeAsync('$share/g/u/#')
  t.deepEqual(groupsOf(broker), [])
  await pub.publishAsync('u/x', 'nobody', { qos: 1 })
  await settle()
  t.is(b!.got.length, 4)
})

test('a member that disconnects stops receiving; the rest of the group gets everything; it rejoins at the end of the turn order', async (t) => {
  const broker = await testBroker(t)
  const [a, b, c] = await members(t, broker.url, '$share/g/d/#', ['a', 'b', 'c'])
  await b!.client.endAsync()
  await until(() => groupsOf(broker)[0]?.members.length === 2, 'b to leave the group')
  const pub = await v5(t, broker.url, 'pub')
  await publishAll(pub, (i) => `d/${i}`, 4)
  await until(() => a!.got.length + c!.got.length === 4, 'four messages')
  t.deepEqual([a!.got.map((x) => x.payload), c!.got.map((x) => x.payload)], [['m0', 'm2'], ['m1', 'm3']])
  t.is(b!.got.length, 0)
})

test('a persistent-session member (clean start 0, session expiry) keeps its place offline: skipped while a member is connected; with none connected, QoS 1/2 goes into its session', async (t) => {
  const broker = await testBroker(t)
  const session = { clean: false, properties: { sessionExpiryInterval: 300 } }
  const durable = await v5(t, broker.url, 'durable', session)
  const durableGot = collect(durable)
  t.deepEqual(await subackCodes(durable, { '$share/g/p/#': { qos: 1 } }), [1])
  const [other] = await members(t, broker.url, '$share/g/p/#', ['other'])
  const pub = await v5(t, broker.url, 'pub')
  await publishAll(pub, (i) => `p/${i}`, 4)
  await until(() => durableGot.length === 2 && other!.got.length === 2, 'two each')
  t.deepEqual(durableGot.map((x) => [x.payload, x.qos]), [['m0', 1], ['m2', 1]])
  t.true(durable.connected, 'the QoS 1 deliveries went through its session queue without error')

  await durable.endAsync()
  await until(() => groupsOf(broker)[0]?.offline.join() === 'durable', 'durable to go offline')
  t.deepEqual(groupsOf(broker), [{ group: 'g', filter: 'p/#', members: ['other'], offline: ['durable'] }])
  for (let i = 4; i < 8; i++) await pub.publishAsync(`p/${i}`, `m${i}`, { qos: 1 })
  await until(() => other!.got.length === 6, 'the connected member gets everything while durable is away')

  // the last connected member leaves (clean session: gone); QoS 1/2 now go into durable's session
  await other!.client.endAsync()
  await until(() => groupsOf(broker)[0]?.members.length === 0, 'other to leave')
  await pub.publishAsync('p/8', 'm8', { qos: 1 })
  await pub.publishAsync('p/9', 'm9', { qos: 0 })
  await pub.publishAsync('p/10', 'm10', { qos: 2 })

  const { client: back, connack } = connectBeforeConnack(t, broker.url, { protocolVersion: 5, clientId: 'durable', ...session })
  const backGot = collect(back)
  t.true((await connack).sessionPresent)
  await until(() => backGot.length === 2, 'the two queued messages')
  await pub.publishAsync('p/11', 'm11', { qos: 1 })
  await until(() => backGot.length === 3, 'a live one after them')
  t.deepEqual(backGot.map((x) => [x.payload, x.qos]), [['m8', 1], ['m10', 1], ['m11', 1]], 'QoS 0 is not queued; QoS 2 at the member\'s QoS 1')
  t.deepEqual(groupsOf(broker), [{ group: 'g', filter: 'p/#', members: ['durable'], offline: [] }])
  t.deepEqual(broker.broker.subscriptions('durable').map((s) => [s.topic, s.qos]), [['$share/g/p/#', 1]])
})

test('an offline member keeps its place in the turn order when it comes back', async (t) => {
  const broker = await testBroker(t)
  const session = { clean: false, properties: { sessionExpiryInterval: 300 } }
  const first = await v5(t, broker.url, 'first', session)
  t.deepEqual(await subackCodes(first, { '$share/g/o/#': { qos: 1 } }), [1])
  await members(t, broker.url, '$share/g/o/#', ['second', 'third'])
  await first.endAsync()
  await until(() => groupsOf(broker)[0]?.offline.join() === 'first', 'first to go offline')
  const { connack } = connectBeforeConnack(t, broker.url, { protocolVersion: 5, clientId: 'first', ...session })
  t.true((await connack).sessionPresent)
  await until(() => groupsOf(broker)[0]?.offline.length === 0, 'first to be back')
  t.deepEqual(groupsOf(broker)[0]?.members, ['first', 'second', 'third'])
})

test('an offline member goes with its session: expiry (MQTT 5), a clean reconnect (3.1.1), Session Expiry 0 at once', async (t) => {
  const broker = await testBroker(t)
  const short = await v5(t, broker.url, 'short', { clean: false, properties: { sessionExpiryInterval: 1 } })
  const none = await v5(t, broker.url, 'none', { clean: false, properties: { sessionExpiryInterval: 0 } })
  const old = await connectClient(t, broker.url, { clientId: 'old', clean: false })
  const [stay] = await members(t, broker.url, '$share/g/x/#', ['stay'])
  for (const client of [short, none, old]) t.deepEqual(await subackCodes(client, { '$share/g/x/#': { qos: 1 } }), [1])
  t.truthy(stay)
  await none.endAsync()
  await old.endAsync()
  await short.endAsync()
  await until(() => groupsOf(broker)[0]?.members.join() === 'stay', 'three to go offline')
  t.deepEqual(groupsOf(broker)[0]?.offline.sort(), ['old', 'short'], 'Session Expiry Interval 0: the session ended with the connection')
  // 3.1.1 sessions never expire; a clean CONNECT with the same id ends it
  await connectClient(t, broker.url, { clientId: 'old', clean: true })
  // MQTT 5: the one-second session expires
  await until(() => groupsOf(broker)[0]?.offline.length === 0, 'both offline members to go')
  t.deepEqual(groupsOf(broker), [{ group: 'g', filter: 'x/#', members: ['stay'], offline: [] }])
})

test('[MQTT-4.8.2-4] a QoS 2 message sent to a member that drops before acknowledging is completed with that member when it reconnects, not given to another member', async (t) => {
  const broker = await testBroker(t)
  const connect = { clientId: 'r', protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } }
  const first = await RawClient.connect(t, broker.port, connect)
  first.client.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/k/#', qos: 2, nl: false, rap: false, rh: 0 }] }, { protocolVersion: 5 }))
  t.deepEqual((await first.client.next('suback') as { granted: number[] }).granted, [2])
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('k/1', 'once', { qos: 2 })
  const sent = await first.client.next('publish') as { topic: string, qos: number, messageId: number }
  t.like(sent, { topic: 'k/1', qos: 2 })
  // no PUBREC: the connection drops with the message in flight
  first.client.socket.destroy()
  await until(() => groupsOf(broker)[0]?.offline.join() === 'r', 'r to go offline')
  const [other] = await members(t, broker.url, '$share/g/k/#', ['other'], 2)

  const again = await RawClient.connect(t, broker.port, connect)
  t.true((again.connack as { sessionPresent: boolean }).sessionPresent)
  const resent = await again.client.next('publish') as { topic: string, payload: Buffer, qos: number, dup: boolean, messageId: number }
  t.like(resent, { topic: 'k/1', qos: 2, messageId: sent.messageId })
  t.is(resent.payload.toString(), 'once')
  again.client.write(mqttPacket.generate({ cmd: 'pubrec', messageId: resent.messageId }, { protocolVersion: 5 }))
  await again.client.next('pubrel')
  again.client.write(mqttPacket.generate({ cmd: 'pubcomp', messageId: resent.messageId }, { protocolVersion: 5 }))
  await pub.publishAsync('other/ping', 'x', { qos: 1 })
  await settle()
  t.deepEqual(other!.got, [], 'the other member never got it [MQTT-4.8.2-5]')
})

test('with the durable store, a persistent session\'s shared subscription survives a broker restart and is restored', async (t) => {
  const dir = await tmpDir(t)
  const config = { persistence: 'embedded', data_dir: dir }
  const session = { protocolVersion: 5 as const, clientId: 'keeper', clean: false, properties: { sessionExpiryInterval: 3600 } }
  const first = await startTestBroker({ config })
  try {
    const client = await connectClient(t, first.url, session)
    t.deepEqual(await subackCodes(client, { '$share/g/s/#': { qos: 1 } }), [1])
    await client.endAsync()
  } finally {
    await first.close()
  }
  const second = await testBroker(t, { config })
  const { client, connack } = connectBeforeConnack(t, second.url, session)
  const got = collect(client)
  t.true((await connack).sessionPresent)
  await until(() => groupsOf(second).length === 1, 'the restored group')
  t.deepEqual(groupsOf(second), [{ group: 'g', filter: 's/#', members: ['keeper'], offline: [] }])
  const pub = await v5(t, second.url, 'pub')
  await publishAll(pub, (i) => `s/${i}`, 2)
  await until(() => got.length === 2, 'both messages')
  t.deepEqual(got.map((x) => [x.topic, x.qos]), [['s/0', 1], ['s/1', 1]])
})

test('MQTT 3.1.1 clients may be members too, next to MQTT 5 ones', async (t) => {
  const broker = await testBroker(t)
  const old = await connectClient(t, broker.url, { clientId: 'v4' })
  const oldGot = collect(old)
  t.deepEqual(await subackCodes(old, { '$share/mixed/m/+': { qos: 1 } }), [1])
  const [young] = await members(t, broker.url, '$share/mixed/m/+', ['v5'])
  const pub = await connectClient(t, broker.url, { clientId: 'pub4' })
  await publishAll(pub, (i) => `m/${i}`, 4)
  await until(() => oldGot.length === 2 && young!.got.length === 2, 'two each')
  t.deepEqual(oldGot.map((x) => x.payload), ['m0', 'm2'])
  t.deepEqual(young!.got.map((x) => x.payload), ['m1', 'm3'])
})

test('$queue/t is the group-less form (EMQX): $share/$queue/t', async (t) => {
  const broker = await testBroker(t)
  const [a] = await members(t, broker.url, '$queue/w/#', ['a'])
  const [b] = await members(t, broker.url, '$share/$queue/w/#', ['b'])
  t.deepEqual(groupsOf(broker), [{ group: '$queue', filter: 'w/#', members: ['a', 'b'], offline: [] }])
  const pub = await v5(t, broker.url, 'pub')
  await publishAll(pub, (i) => `w/${i}`, 2)
  await until(() => a!.got.length === 1 && b!.got.length === 1, 'one each')
  t.deepEqual(broker.broker.subscriptions('a').map((s) => s.topic), ['$queue/w/#'])
})

test('a filter starting with a wildcard does not match $ topics in a group either [MQTT-4.7.2-1]', async (t) => {
  const broker = await testBroker(t)
  const [m] = await members(t, broker.url, '$share/g/#', ['m'])
  const pub = await v5(t, broker.url, 'pub')
  await pub.publishAsync('$own/x', 'hidden', { qos: 1 })
  await pub.publishAsync('plain', 'shown', { qos: 1 })
  await until(() => m!.got.length > 0, 'the plain message')
  await settle()
  t.deepEqual(m!.got.map((x) => x.payload), ['shown'])
})

test('plugins see the full $share/g/filter in client.subscribe, authorize.subscribe and session.subscribed; message.delivered names the member that got it', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const [a, b] = await members(t, broker.url, '$share/g/h/+', ['a', 'b'])
  t.deepEqual(rec.of<SubscribeEvent>('client.subscribe').list.map((e) => [e.clientId, e.topic]), [['a', '$share/g/h/+'], ['b', '$share/g/h/+']])
  t.deepEqual(rec.of<AuthorizeRequest>('authorize.subscribe').list.map((e) => [e.client.clientId, e.topic]), [['a', '$share/g/h/+'], ['b', '$share/g/h/+']])
  t.deepEqual((await rec.of<SessionSubscriptionEvent>('session.subscribed').count(2)).map((e) => [e.clientId, e.topic, e.qos]), [['a', '$share/g/h/+', 1], ['b', '$share/g/h/+', 1]])
  const pub = await v5(t, broker.url, 'pub')
  await publishAll(pub, (i) => `h/${i}`, 3)
  await until(() => a!.got.length + b!.got.length === 3, 'three deliveries')
  const delivered = await rec.of<DeliveredEvent>('message.delivered').count(3)
  t.deepEqual(delivered.map((e) => [e.clientId, e.topic, e.payload.toString()]), [['a', 'h/0', 'm0'], ['b', 'h/1', 'm1'], ['a', 'h/2', 'm2']])
})

test('an ACL plugin is asked about the full filter and can refuse it: SUBACK 0x87 (v5)', async (t) => {
  const acl = tapping('acl', (hooks) => hooks.authorize.subscribe.tap('acl', (request) =>
    request.topic.startsWith('$share/') && !request.topic.startsWith('$share/workers/') ? { result: 'deny', reason: 'only the workers group' } : undefined))
  const broker = await testBroker(t, { plugins: [acl] })
  const client = await v5(t, broker.url, 'c')
  t.deepEqual(await subackCodes(client, { '$share/workers/jobs/#': { qos: 1 }, '$share/other/jobs/#': { qos: 1 } }), [1, 0x87])
  t.deepEqual(groupsOf(broker), [{ group: 'workers', filter: 'jobs/#', members: ['c'], offline: [] }])
})

test('the HTTP API lists a shared subscription under its full filter', async (t) => {
  const api = await startApi(t)
  const [m] = await members(t, api.broker.url, '$share/g/api/#', ['m'])
  t.truthy(m)
  const reply = await api.get('/api/v4/subscriptions/')
  t.is(reply.status, 200)
  t.deepEqual(reply.json.data, [{ clientid: 'm', topic: '$share/g/api/#', qos: 1 }])
})

test('$share/ and $queue/ are filter prefixes, not topic names: a PUBLISH there is refused (v5: PUBACK 0x87; 3.1.1: closed) and reaches no offline member', async (t) => {
  const broker = await testBroker(t)
  const offline = await v5(t, broker.url, 'offline', { clean: false, properties: { sessionExpiryInterval: 60 } })
  t.deepEqual(await subackCodes(offline, { '$share/g/t': { qos: 1 } }), [1])
  offline.end(true)
  await once(offline, 'close')

  const pub = await v5(t, broker.url, 'pub')
  for (const topic of ['$share/g/t', '$queue/t']) {
    const err = await pub.publishAsync(topic, 'x', { qos: 1 }).then(() => undefined, (error: Error & { code?: number }) => error)
    t.is(err?.code, 0x87, topic)
  }
  const old = await connectClient(t, broker.url, { clientId: 'old' })
  old.publish('$share/g/t', 'y', { qos: 1 })
  await once(old, 'close')

  const back = connectBeforeConnack(t, broker.url, { protocolVersion: 5, clientId: 'offline', clean: false, properties: { sessionExpiryInterval: 60 } })
  const got = collect(back.client)
  t.true((await back.connack).sessionPresent)
  // anything queued would arrive before this one
  await pub.publishAsync('t', 'after', { qos: 1 })
  await until(() => got.length > 0, 'the message to t')
  t.deepEqual(got.map((m) => m.topic + ' ' + m.payload), ['t after'], 'nothing was queued for the member')
})

test('shared_subscription = false: $queue/ is an ordinary topic again, as in aedes 1.2: a PUBLISH there reaches a subscriber of that literal filter', async (t) => {
  const broker = await testBroker(t, { config: { shared_subscription: 'false' } })
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  const got = collect(sub)
  await sub.subscribeAsync({ '$queue/jobs': { qos: 1 } })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  await pub.publishAsync('$queue/jobs', 'job', { qos: 1 })
  await until(() => got.length >= 1, 'the message')
  t.deepEqual(got.map((m) => `${m.topic} ${m.payload}`), ['$queue/jobs job'])
})
