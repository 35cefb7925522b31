// Webhook bodies of MQTT 5 clients: `"user_properties"` on message_publish / delivered /
// acked / dropped and client_connected when the message or CONNECT carried any, MQTT 5
// subscription options in client_subscribe's opts, and nothing new otherwise (MQTT 3.1.1
// and MQTT 5 without user properties: the bodies are byte for byte the old ones).
import test from 'ava'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { definePlugin } from '../../sdk/index.ts'
import { startTestBroker } from '../../sdk/testing.ts'
import * as bodies from '../../plugins/webhook/bodies.ts'
import webhook from '../../plugins/webhook/index.ts'
import { connectClient, nextMessage, WAIT_MS, within } from '../helpers/mqtt.ts'
import { baseConf, optionsFrom, Receiver } from './receiver.ts'

const EVENTS = ['client.connected', 'client.subscribe', 'session.subscribed', 'message.publish', 'message.delivered', 'message.acked', 'message.dropped']
const rules = EVENTS.map((event) => `web.hook.rule.${event}.1={"action": "on_${event.replace('.', '_')}"}`).join('\n')

const dropper = definePlugin({
  name: 'test:dropper',
  version: '1.0.0',
  setup (host) {
    host.hooks.message.publish.tap('test:dropper', (message, control) => { if (message.topic.startsWith('drop/')) control.drop('no') })
  }
})

async function v5 (t: Parameters<typeof Receiver.start>[0], url: string, options: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options })
  t.teardown(() => client.endAsync(true).catch(() => {}))
  await within(new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject) }), 'MQTT 5 connect')
  return client
}

test('user properties of an MQTT 5 message and CONNECT reach the bodies (binary record path and JSON path alike); bodies without them are unchanged', async (t) => {
  const receiver = await Receiver.start(t)
  const options = await optionsFrom(t, baseConf(receiver) + rules)
  const broker = await startTestBroker({ plugins: [dropper, { plugin: webhook, options }] })
  t.teardown(() => broker.close())

  const sub = await v5(t, broker.url, { clientId: 'sub5', properties: { userProperties: { site: 'plant-1' } } })
  await sub.subscribeAsync('t/#', { qos: 1, nl: true, rap: true, rh: 1 })
  const pub = await v5(t, broker.url, { clientId: 'pub5' })
  const got = nextMessage(sub)
  await pub.publishAsync('t/1', 'hello', { qos: 1, properties: { userProperties: { trace: 'abc', 'two"x': ['1', '2'] } } })
  await got
  await pub.publishAsync('drop/1', 'gone', { qos: 1, properties: { userProperties: { why: 'test' } } })
  // no user properties, MQTT 5: the old bodies
  const got2 = nextMessage(sub)
  await pub.publishAsync('t/2', 'plain', { qos: 1, properties: { contentType: 'text/plain' } })
  await got2

  const user = ',"user_properties":{"trace":"abc","two\\"x":["1","2"]}'
  const publish = await receiver.body('"topic":"t/1"')
  const ts = (JSON.parse(publish) as { ts: number }).ts
  t.is(publish, `{"ts":${ts},"topic":"t/1","retain":false,"qos":1,"action":"message_publish","from_username":"undefined","from_client_id":"pub5","payload":"hello"${user}}`)
  const delivered = await receiver.find((e) => e.action === 'message_delivered' && e.topic === 't/1')
  t.deepEqual(delivered.user_properties, { trace: 'abc', 'two"x': ['1', '2'] })
  const acked = await receiver.find((e) => e.action === 'message_acked' && e.topic === 't/1')
  t.deepEqual(acked.user_properties, { trace: 'abc', 'two"x': ['1', '2'] })
  const dropped = await receiver.find((e) => e.action === 'message_dropped')
  t.deepEqual(dropped.user_properties, { why: 'test' })
  const connected = await receiver.find((e) => e.action === 'client_connected' && e.clientid === 'sub5')
  t.deepEqual(connected.user_properties, { site: 'plant-1' })
  t.is(connected.proto_ver, 5)
  const pubConnected = await receiver.find((e) => e.action === 'client_connected' && e.clientid === 'pub5')
  t.false('user_properties' in pubConnected)
  const subscribe = await receiver.find((e) => e.action === 'client_subscribe')
  t.deepEqual(subscribe.opts, { qos: 1, nl: 1, rap: 1, rh: 1 })
  const subscribed = await receiver.find((e) => e.action === 'session_subscribed')
  t.deepEqual(subscribed.opts, { qos: 1, nl: 1, rap: 1, rh: 1 })

  // t/2 carried properties but no user properties: exactly the MQTT 3.1.1 bodies
  const plain = await receiver.body('"topic":"t/2"')
  const ts2 = (JSON.parse(plain) as { ts: number }).ts
  t.is(plain, `{"ts":${ts2},"topic":"t/2","retain":false,"qos":1,"action":"message_publish","from_username":"undefined","from_client_id":"pub5","payload":"plain"}`)
  const plainDelivered = await receiver.find((e) => e.action === 'message_delivered' && e.topic === 't/2')
  t.false('user_properties' in plainDelivered)
})

test('MQTT 3.1.1 bodies carry no MQTT 5 fields', async (t) => {
  const receiver = await Receiver.start(t)
  const options = await optionsFrom(t, baseConf(receiver) + rules)
  const broker = await startTestBroker({ plugins: [{ plugin: webhook, options }] })
  t.teardown(() => broker.close())
  const sub = await connectClient(t, broker.url, { clientId: 'old-sub' })
  await sub.subscribeAsync('o/#', { qos: 1 })
  const got = nextMessage(sub)
  await sub.publishAsync('o/1', 'x', { qos: 1 })
  await got
  await receiver.find((e) => e.action === 'message_acked')
  for (const event of receiver.events()) t.false('user_properties' in event, String(event.action))
  t.deepEqual((await receiver.find((e) => e.action === 'client_subscribe')).opts, { qos: 1 })
  t.deepEqual((await receiver.find((e) => e.action === 'session_subscribed')).opts, { qos: 1 })
})

test('bodies.userPropertiesField: nothing for none or an empty set, JSON otherwise', (t) => {
  t.is(bodies.userPropertiesField(undefined), '')
  t.is(bodies.userPropertiesField({}), '')
  t.is(bodies.userPropertiesField({ a: 'b', c: ['d', 'e'] }), ',"user_properties":{"a":"b","c":["d","e"]}')
})
