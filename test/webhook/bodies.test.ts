// The body of every event, as raw request strings: NanoMQ's three byte for byte, the EMQX 4
// ones in their documented field order; real disconnect reasons and CONNACK outcomes.
import test from 'ava'
import { definePlugin } from '../../sdk/index.ts'
import { startTestBroker } from '../../sdk/testing.ts'
import * as bodies from '../../plugins/webhook/bodies.ts'
import webhook from '../../plugins/webhook/index.ts'
import { connectClient, connectRefused, nextMessage, RawClient, until } from '../helpers/mqtt.ts'
import { baseConf, brokerWith, DELIVERY_MS, optionsFrom, Receiver } from './receiver.ts'

const ALL_EVENTS = [
  'client.connect', 'client.connack', 'client.connected', 'client.disconnected', 'client.subscribe', 'client.unsubscribe',
  'session.subscribed', 'session.unsubscribed', 'session.terminated', 'message.publish', 'message.delivered', 'message.acked',
  'message.dropped'
]
const allRules = ALL_EVENTS.map((event) => `web.hook.rule.${event}.1={"action": "on_${event.replace('.', '_')}"}`).join('\n')

/** drops every message published to drop/#, so message.dropped fires */
const dropper = definePlugin({
  name: 'test:dropper',
  version: '1.0.0',
  setup (host) {
    host.hooks.message.publish.tap('test:dropper', (message, control) => {
      if (message.topic.startsWith('drop/')) control.drop('test says no')
    })
  }
})

test('every event: the exact body of each', async (t) => {
  const receiver = await Receiver.start(t)
  const options = await optionsFrom(t, baseConf(receiver) + allRules)
  const broker = await startTestBroker({ plugins: [dropper, { plugin: webhook, options }] })
  t.teardown(() => broker.close())

  const sub = await connectClient(t, broker.url, { clientId: 'app-7', username: 'app', keepalive: 45 })
  await sub.subscribeAsync('t/#', { qos: 1 })
  const pub = await connectClient(t, broker.url, { clientId: 'sensor-1', keepalive: 60 })
  await pub.publishAsync('t/1', 'hello', { qos: 1 })
  await nextMessage(sub)
  await pub.publishAsync('drop/x', 'gone', { qos: 0 })
  await sub.unsubscribeAsync('t/#')
  await pub.endAsync()
  await sub.endAsync()

  const withField = (action: string, field: string, value: string) => until(() => receiver.bodies()
    .find((text) => text.includes(`"action":"${action}"`) && text.includes(`"${field}":"${value}"`)), `a ${action} body with ${field} ${value}`, DELIVERY_MS)

  t.is(await withField('client_connect', 'clientid', 'sensor-1'),
    '{"action":"client_connect","clientid":"sensor-1","username":null,"ipaddress":"127.0.0.1","keepalive":60,"proto_ver":4}')
  t.is(await withField('client_connect', 'clientid', 'app-7'),
    '{"action":"client_connect","clientid":"app-7","username":"app","ipaddress":"127.0.0.1","keepalive":45,"proto_ver":4}')
  t.is(await withField('client_connack', 'clientid', 'sensor-1'),
    '{"proto_ver":4,"keepalive":60,"conn_ack":"success","username":"undefined","clientid":"sensor-1","action":"client_connack"}')
  t.is(await withField('client_connack', 'clientid', 'app-7'),
    '{"proto_ver":4,"keepalive":45,"conn_ack":"success","username":"app","clientid":"app-7","action":"client_connack"}')
  const connected = await withField('client_connected', 'clientid', 'sensor-1')
  const connectedAt = (JSON.parse(connected) as { connected_at: number }).connected_at
  t.is(connected, `{"action":"client_connected","clientid":"sensor-1","username":null,"ipaddress":"127.0.0.1","keepalive":60,"proto_ver":4,"connected_at":${connectedAt}}`)
  t.true(Number.isInteger(connectedAt) && Math.abs(Date.now() - connectedAt) < 60_000)
  t.is(await withField('client_subscribe', 'clientid', 'app-7'),
    '{"action":"client_subscribe","clientid":"app-7","username":"app","topic":"t/#","opts":{"qos":1}}')
  t.is(await withField('session_subscribed', 'clientid', 'app-7'),
    '{"action":"session_subscribed","clientid":"app-7","username":"app","topic":"t/#","opts":{"qos":1}}')
  t.is(await withField('client_unsubscribe', 'clientid', 'app-7'),
    '{"action":"client_unsubscribe","clientid":"app-7","username":"app","topic":"t/#","opts":{}}')
  t.is(await withField('session_unsubscribed', 'clientid', 'app-7'),
    '{"action":"session_unsubscribed","clientid":"app-7","username":"app","topic":"t/#"}')

  const publish = await withField('message_publish', 'topic', 't/1')
  const ts = (JSON.parse(publish) as { ts: number }).ts
  t.is(publish, `{"ts":${ts},"topic":"t/1","retain":false,"qos":1,"action":"message_publish","from_username":"undefined","from_client_id":"sensor-1","payload":"hello"}`)
  const delivered = await withField('message_delivered', 'topic', 't/1')
  const deliveredTs = (JSON.parse(delivered) as { ts: number }).ts
  t.is(delivered, `{"action":"message_delivered","clientid":"app-7","username":"app","from_client_id":"sensor-1","from_username":null,"topic":"t/1","qos":1,"retain":false,"payload":"hello","ts":${deliveredTs}}`)
  const acked = await withField('message_acked', 'topic', 't/1')
  const ackedTs = (JSON.parse(acked) as { ts: number }).ts
  t.is(acked, `{"action":"message_acked","clientid":"app-7","username":"app","from_client_id":"sensor-1","from_username":null,"topic":"t/1","qos":1,"retain":false,"payload":"hello","ts":${ackedTs}}`)
  const dropped = await withField('message_dropped', 'topic', 'drop/x')
  const droppedTs = (JSON.parse(dropped) as { ts: number }).ts
  t.is(dropped, `{"action":"message_dropped","from_client_id":"sensor-1","from_username":null,"topic":"drop/x","qos":0,"retain":false,"payload":"gone","ts":${droppedTs},"reason":"dropped_by_plugin"}`)
  // the dropped message is still a publish (before routing), as in EMQX
  await withField('message_publish', 'topic', 'drop/x')

  t.is(await withField('client_disconnected', 'clientid', 'sensor-1'),
    '{"reason":"normal","username":"undefined","clientid":"sensor-1","action":"client_disconnected"}')
  t.is(await withField('session_terminated', 'clientid', 'sensor-1'),
    '{"action":"session_terminated","clientid":"sensor-1","username":null,"reason":"normal"}')
  t.is(await withField('client_disconnected', 'clientid', 'app-7'),
    '{"reason":"normal","username":"app","clientid":"app-7","action":"client_disconnected"}')
})

const disconnectRules = [
  'web.hook.rule.client.disconnected.1={"action": "on_client_disconnected"}',
  'web.hook.rule.session.terminated.1={"action": "on_session_terminated"}'
].join('\n')

test('disconnect reasons are real, in EMQX 4 words: tcp_closed, takeovered, keepalive_timeout, kicked', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + disconnectRules)
  const reasonOf = async (clientId: string) => {
    const event = await receiver.find((e) => e.action === 'client_disconnected' && e.clientid === clientId, `client_disconnected of ${clientId}`)
    return event.reason
  }

  const dropped = await connectClient(t, broker.url, { clientId: 'cut' })
  dropped.stream.destroy()
  t.is(await reasonOf('cut'), 'tcp_closed')
  t.like(await receiver.find((e) => e.action === 'session_terminated' && e.clientid === 'cut'), { reason: 'tcp_closed' })

  await connectClient(t, broker.url, { clientId: 'twin' })
  await connectClient(t, broker.url, { clientId: 'twin' })
  t.is(await reasonOf('twin'), 'takeovered')

  await RawClient.connect(t, broker.port, { clientId: 'silent', keepalive: 1 })
  t.is(await reasonOf('silent'), 'keepalive_timeout')

  await connectClient(t, broker.url, { clientId: 'victim' })
  t.true(broker.broker.disconnect('victim'))
  t.is(await reasonOf('victim'), 'kicked')
})

test('a refused CONNACK names the EMQX 4 reason instead of NanoMQ\'s "fail"', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + 'web.hook.rule.client.connack.1={"action": "on_client_connack"}\n', { allow_anonymous: 'false' })
  await connectRefused(t, broker.url, { clientId: 'intruder', keepalive: 10 })
  t.is(await receiver.body('"clientid":"intruder"'),
    '{"proto_ver":4,"keepalive":10,"conn_ack":"bad_username_or_password","username":"undefined","clientid":"intruder","action":"client_connack"}')
})

test('plain payloads: UTF-8 decoded (bad bytes become U+FFFD, NUL kept), empty is ""', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + 'web.hook.rule.message.publish.1={"action": "on_message_publish"}\n')
  const client = await connectClient(t, broker.url, { clientId: 'bytes' })
  await client.publishAsync('bin/1', Buffer.from([0xff, 0x00, 0x41, 0xc3, 0xa9]))
  await client.publishAsync('empty/1', Buffer.alloc(0))
  const binary = await receiver.body('"topic":"bin/1"')
  t.true(binary.endsWith('"payload":"\ufffd\\u0000Aé"}'), binary)
  t.is((JSON.parse(binary) as { payload: string }).payload, '\ufffd\u0000Aé')
  const empty = await receiver.body('"topic":"empty/1"')
  t.true(empty.endsWith('"payload":""}'), empty)
})

test('hot-path bodies are built by concatenation: the same bytes as JSON.stringify of the fields in order', (t) => {
  const tricky = ['plain', 'quo"te\\back', 'new\nline\u0000nul', 'ünï©ødé 🚀', '\u2028\u2029', '</script>']
  for (const text of tricky) {
    const payload = Buffer.from(text)
    const publish = { topic: `t/${text}`, payload, qos: 2 as const, retain: true, from: text, fromUsername: text, ts: 1654070400123, isWill: false }
    t.is(bodies.messagePublish(publish, 'plain'), JSON.stringify({
      ts: publish.ts, topic: publish.topic, retain: true, qos: 2, action: 'message_publish', from_username: text, from_client_id: text, payload: text
    }))
    const delivered = { topic: publish.topic, payload, qos: 1 as const, retain: false, clientId: text, username: undefined, from: undefined, fromUsername: text, ts: 7 }
    t.is(bodies.messageDelivered(delivered, 'base64'), JSON.stringify({
      action: 'message_delivered', clientid: text, username: null, from_client_id: null, from_username: text, topic: publish.topic, qos: 1, retain: false, payload: payload.toString('base64'), ts: 7
    }))
    const acked = { clientId: text, username: text, topic: publish.topic, qos: 1 as const, messageId: 3, ts: 8 }
    t.is(bodies.messageAcked(acked, 'plain'), JSON.stringify({
      action: 'message_acked', clientid: text, username: text, from_client_id: null, from_username: null, topic: publish.topic, qos: 1, retain: false, payload: '', ts: 8
    }))
    const dropped = { topic: publish.topic, payload, qos: 0 as const, retain: false, from: text, fromUsername: undefined, reason: 'not_authorized' as const, ts: 9 }
    t.is(bodies.messageDropped(dropped, 'plain'), JSON.stringify({
      action: 'message_dropped', from_client_id: text, from_username: null, topic: publish.topic, qos: 0, retain: false, payload: text, ts: 9, reason: 'not_authorized'
    }))
  }
})
