// The configuration block of the NanoMQ 0.8.0 release notes, verbatim except for the port,
// and the three bodies it promises, byte for byte.
import { readFile } from 'node:fs/promises'
import test from 'ava'
import { connectClient } from '../helpers/mqtt.ts'
import { brokerWith, counterReaches, counters, Receiver } from './receiver.ts'

/** The "Rule Configuration" block of the NanoMQ 0.8.0 release notes, copied as printed there. */
const BLOCK = new URL('../fixtures/release-notes-webhook.conf', import.meta.url)

function releaseNotesBlock (): Promise<string> {
  return readFile(BLOCK, 'utf8')
}

test('the release-notes block works verbatim: connack, publish to webhook/msg/123, disconnected', async (t) => {
  const receiver = await Receiver.start(t)
  const block = await releaseNotesBlock()
  t.true(block.includes('web.hook.url=http://127.0.0.1:8888\n'))
  const broker = await brokerWith(t, block.replace('127.0.0.1:8888', `127.0.0.1:${receiver.port}`))

  const client = await connectClient(t, broker.url, { clientId: 'sensor-1', keepalive: 60 })
  const before = Date.now()
  await client.publishAsync('webhook/other', 'not matched')
  await client.publishAsync('webhook/msg/123', 'hello')
  const publish = await receiver.body('"action":"message_publish"')
  const after = Date.now()
  await client.endAsync()
  const disconnected = await receiver.body('"action":"client_disconnected"')
  const connack = await receiver.body('"action":"client_connack"')

  t.is(connack, '{"proto_ver":4,"keepalive":60,"conn_ack":"success","username":"undefined","clientid":"sensor-1","action":"client_connack"}')
  const { ts } = JSON.parse(publish) as { ts: number }
  t.is(publish, `{"ts":${ts},"topic":"webhook/msg/123","retain":false,"qos":0,"action":"message_publish","from_username":"undefined","from_client_id":"sensor-1","payload":"hello"}`)
  // epoch milliseconds with millisecond resolution: NanoMQ's seconds × 1000 would fall before `before`
  t.true(Number.isInteger(ts) && ts >= before && ts <= after, `ts ${ts} not within [${before}, ${after}]`)
  t.is(disconnected, '{"reason":"normal","username":"undefined","clientid":"sensor-1","action":"client_disconnected"}')

  // webhook/other matched no rule: exactly three events went out
  await counterReaches(broker, 'sent_total', 3)
  t.is(counters(broker).matched_total, 3)
  t.is(receiver.requests.length, 3)
  for (const request of receiver.requests) {
    t.is(request.method, 'POST')
    t.is(request.url, '/')
    t.is(request.headers['content-type'], 'application/json')
  }
})

test('a client without an id gets the assigned one in every body; QoS and retain as published', async (t) => {
  const receiver = await Receiver.start(t)
  const block = await releaseNotesBlock()
  const broker = await brokerWith(t, block.replace('127.0.0.1:8888', `127.0.0.1:${receiver.port}`))

  const client = await connectClient(t, broker.url, { clientId: '', clean: true, keepalive: 30, username: 'alice', password: 'pw' })
  await client.publishAsync('webhook/msg/9', 'retained', { qos: 1, retain: true })
  const publish = JSON.parse(await receiver.body('"action":"message_publish"')) as Record<string, unknown>
  await client.endAsync()
  await receiver.body('"action":"client_disconnected"')
  const connack = JSON.parse(await receiver.body('"action":"client_connack"')) as Record<string, unknown>
  const clientId = connack.clientid as string
  t.regex(clientId, /^tapmq-[0-9a-f]{8}$/)
  t.deepEqual(connack, { proto_ver: 4, keepalive: 30, conn_ack: 'success', username: 'alice', clientid: clientId, action: 'client_connack' })
  t.deepEqual(Object.keys(publish), ['ts', 'topic', 'retain', 'qos', 'action', 'from_username', 'from_client_id', 'payload'])
  t.like(publish, { topic: 'webhook/msg/9', retain: true, qos: 1, from_username: 'alice', from_client_id: clientId, payload: 'retained' })
})
