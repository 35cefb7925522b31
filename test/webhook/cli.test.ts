// End to end through the real command line: tapmq start --webhook <file>, as a NanoMQ
// user runs it, then SIGTERM.
import test from 'ava'
import mqtt from 'mqtt'
import { tapmq, workspace } from '../helpers/cli.ts'
import { DELIVERY_MS, Receiver } from './receiver.ts'

test('tapmq start --webhook web_hook.conf: bodies reach the receiver; SIGTERM drains and exits 0', async (t) => {
  const receiver = await Receiver.start(t)
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const webhook = await ws.write('web_hook.conf', [
    'web.hook.enable=true',
    `web.hook.url=http://127.0.0.1:${receiver.port}/nanomq`,
    'web.hook.headers.content-type=application/json',
    'web.hook.body.encoding_of_payload_field=plain',
    'web.hook.pool_size=32',
    'web.hook.rule.client.connack.1={"action": "on_client_connack"}',
    'web.hook.rule.client.disconnected.1={"action": "on_client_disconnected"}',
    'web.hook.rule.message.publish.1={"action": "on_message_publish", "topic": "webhook/msg/#"}'
  ].join('\n'))
  const broker = tapmq(['start', '--conf', ws.conf, '--plugins', `${ws.dir}/plugins.conf`, '--webhook', webhook])
  t.teardown(() => broker.child.kill('SIGKILL'))
  await broker.waitFor(/"msg":"tapmq started"/, DELIVERY_MS)
  t.regex(broker.output(), /"plugin":"tapmq:webhook".*"msg":"webhook ready"/)

  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${ws.port}`, { clientId: 'cli-1', reconnectPeriod: 0 })
  t.teardown(() => client.endAsync(true))
  await client.publishAsync('webhook/msg/123', 'hello', { qos: 1 })
  const publish = await receiver.body('"action":"message_publish"')
  const { ts } = JSON.parse(publish) as { ts: number }
  t.is(publish, `{"ts":${ts},"topic":"webhook/msg/123","retain":false,"qos":1,"action":"message_publish","from_username":"undefined","from_client_id":"cli-1","payload":"hello"}`)
  t.is(await receiver.body('"action":"client_connack"'),
    '{"proto_ver":4,"keepalive":60,"conn_ack":"success","username":"undefined","clientid":"cli-1","action":"client_connack"}')
  t.true(receiver.requests.every((request) => request.url === '/nanomq'))

  // the client is still connected: its disconnect (reason shutdown) goes out in the drain
  broker.child.kill('SIGTERM')
  t.is(await broker.exited(DELIVERY_MS), 0)
  t.is(await receiver.body('"action":"client_disconnected"', 1000),
    '{"reason":"shutdown","username":"undefined","clientid":"cli-1","action":"client_disconnected"}')
  t.regex(broker.output(), /"msg":"webhook stopped; every queued event was sent"/)
  t.regex(broker.output(), /"msg":"tapmq stopped"/)
})
