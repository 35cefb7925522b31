// Rule semantics: standard MQTT matching, OR-ed rules, one request per event, topic filters
// on every event that has a topic, and none on events that have none.
import test from 'ava'
import { compileRules } from '../../plugins/webhook/rules.ts'
import { connectClient, nextMessage } from '../helpers/mqtt.ts'
import { baseConf, brokerWith, counterReaches, counters, Receiver } from './receiver.ts'

test('compiled rules: wildcards, OR, catch-all, standard MQTT matching (not NanoMQ Q9/Q10)', (t) => {
  const table = compileRules([
    { event: 'message.publish', topic: 'a/+/c' },
    { event: 'message.publish', topic: 'foo/#' },
    { event: 'message.delivered' },
    { event: 'message.delivered', topic: 'x' },
    { event: 'client.connack', topic: 'ignored' }
  ])
  const publish = table['message.publish']!
  t.true(publish('a/b/c'))
  t.true(publish('foo'))
  t.true(publish('foo/bar/baz'))
  t.false(publish('a/b'))
  t.false(publish('a'))
  t.false(publish('a/b/c/d'))
  t.false(publish('fo'))
  t.true(table['message.delivered']!('anything/at/all'))
  t.true(table['client.connack']!(''))
  t.is(table['message.acked'], undefined)
  const hash = compileRules([{ event: 'message.publish', topic: '#' }])['message.publish']!
  t.true(hash('x/y'))
  t.false(hash('$SYS/brokers'))
})

test('publish rules with wildcards: matching topics only, one request per message however many rules match', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + [
    'web.hook.rule.message.publish.1={"action": "on_message_publish", "topic": "a/b/c"}',
    'web.hook.rule.message.publish.2={"action": "on_message_publish", "topic": "foo/#"}',
    'web.hook.rule.message.publish.3={"action": "on_message_publish", "topic": "sensors/+/temp"}',
    'web.hook.rule.message.publish.10={"action": "on_message_publish", "topic": "foo/bar"}'
  ].join('\n'))
  const client = await connectClient(t, broker.url, { clientId: 'p' })
  const topics = ['a/b/c', 'a/b', 'foo', 'foo/bar', 'foo/bar/baz', 'sensors/1/temp', 'sensors/1/hum', 'sensors/temp', 'other']
  for (const topic of topics) await client.publishAsync(topic, topic)
  const expected = ['a/b/c', 'foo', 'foo/bar', 'foo/bar/baz', 'sensors/1/temp']
  await counterReaches(broker, 'sent_total', expected.length)
  t.is(counters(broker).matched_total, expected.length)
  t.deepEqual(receiver.events().map((event) => event.topic).sort(), expected.sort())
})

test('subscribe events filter on the subscription\'s topic filter; delivered/acked on the message topic', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + [
    'web.hook.rule.client.subscribe.1={"action": "on_client_subscribe", "topic": "cmd/#"}',
    'web.hook.rule.session.subscribed.1={"action": "on_session_subscribed", "topic": "cmd/#"}',
    'web.hook.rule.message.delivered.1={"action": "on_message_delivered", "topic": "cmd/reboot"}',
    'web.hook.rule.message.acked.1={"action": "on_message_acked", "topic": "cmd/+"}'
  ].join('\n'))
  const device = await connectClient(t, broker.url, { clientId: 'device' })
  await device.subscribeAsync({ 'cmd/#': { qos: 1 }, 'telemetry/#': { qos: 0 } })
  const app = await connectClient(t, broker.url, { clientId: 'app' })
  await app.publishAsync('cmd/reboot', 'now', { qos: 1 })
  await nextMessage(device)
  await app.publishAsync('cmd/update', 'later', { qos: 1 })
  await nextMessage(device)
  // subscribe + subscribed for cmd/#, delivered for cmd/reboot, acked for both
  await counterReaches(broker, 'sent_total', 5)
  const events = receiver.events().map((event) => `${event.action} ${event.topic}`).sort()
  t.deepEqual(events, [
    'client_subscribe cmd/#', 'message_acked cmd/reboot', 'message_acked cmd/update', 'message_delivered cmd/reboot', 'session_subscribed cmd/#'
  ])
  t.is(counters(broker).matched_total, 5)
})

test('events without rules are not tapped at all', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + 'web.hook.rule.client.connack.1={"action": "on_client_connack"}\n')
  t.deepEqual(broker.tapmq.plugins.status('tapmq:webhook').hooks, ['client.connack'])
})
