// An MQTT 5 bridge (proto_ver = 5) passes MQTT 5 user properties (§3.3.2.3.7) both ways:
// local messages on forwards go upstream with theirs (QoS 0 and the QoS 1/2 buffer, memory
// and durable), upstream messages come down with theirs. A 3.1.1 bridge cannot carry them.
import test from 'ava'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type { PublishEvent } from '../../sdk/index.ts'
import { BridgeQueue } from '../../plugins/bridge/queue.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { Recorder, tmpDir, WAIT_MS, within } from '../helpers/mqtt.ts'
import { bridgeConfig, edgeBroker, freePort, waitBridge, waitCounter, waitSubscribed } from './helpers.ts'

async function v5 (t: Parameters<typeof testBroker>[0], url: string, options: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options })
  t.teardown(() => client.endAsync(true).catch(() => {}))
  await within(new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject) }), 'MQTT 5 connect')
  return client
}

test('proto_ver 5: user properties go up with forwarded messages (QoS 0, 1, 2) and come down with subscribed ones', async (t) => {
  const published = new Recorder<PublishEvent>()
  const upstream = await testBroker(t, { plugins: [tapping('test:upstream', (hooks) => hooks.message.publish.tap('test:upstream', published.push))] })
  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${upstream.port}`, {
    protoVer: 5, forwards: ['up/#'], subscriptions: [{ topic: 'down/#', qos: 1 }]
  })])
  await waitBridge(edge, 'connected')
  await waitSubscribed(upstream, 1)

  const device = await v5(t, edge.url, { clientId: 'device' })
  for (const qos of [0, 1, 2] as const) {
    await device.publishAsync(`up/${qos}`, 'x', { qos, properties: { userProperties: { n: String(qos), many: ['a', 'b'] } } })
  }
  await device.publishAsync('up/plain', 'x', { qos: 1 })
  const up = await published.count(4, 10_000)
  for (const qos of [0, 1, 2]) {
    t.deepEqual(up.find((m) => m.topic === `up/${qos}`)?.properties?.userProperties, { n: String(qos), many: ['a', 'b'] }, `QoS ${qos}`)
  }
  t.is(up.find((m) => m.topic === 'up/plain')?.properties?.userProperties, undefined)

  const local = await v5(t, edge.url, { clientId: 'local' })
  await local.subscribeAsync('down/#', { qos: 1 })
  const got = new Recorder<[string, Record<string, unknown> | undefined]>()
  local.on('message', (topic, _payload, packet) => got.push([topic, packet.properties?.userProperties as Record<string, unknown> | undefined]))
  const cloud = await v5(t, upstream.url, { clientId: 'cloud' })
  await cloud.publishAsync('down/1', 'cmd', { qos: 1, properties: { userProperties: { from: 'cloud' } } })
  const [[topic, userProperties]] = await got.count(1)
  t.is(topic, 'down/1')
  t.deepEqual(userProperties, { from: 'cloud' })
})

test('proto_ver 4: the bridge forwards the message without its user properties', async (t) => {
  const published = new Recorder<PublishEvent>()
  const upstream = await testBroker(t, { plugins: [tapping('test:upstream', (hooks) => hooks.message.publish.tap('test:upstream', published.push))] })
  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${upstream.port}`, { protoVer: 4, forwards: ['up/#'] })])
  await waitBridge(edge, 'connected')
  const device = await v5(t, edge.url, { clientId: 'device' })
  await device.publishAsync('up/1', 'x', { qos: 1, properties: { userProperties: { n: '1' } } })
  const [message] = await published.count(1, 10_000)
  t.is(message!.topic, 'up/1')
  t.false('properties' in message!)
  await waitCounter(edge, 'default_forwarded_total', 1)
})

test('the durable buffer keeps user properties across a restart, and a file written before they were kept opens (column added)', async (t) => {
  const dir = await tmpDir(t)
  const limits = { maxMessages: 10, overflow: 'drop_oldest' } as const

  // a queue file in the old layout, with one message waiting
  const oldFile = join(dir, 'old.db')
  const db = new Database(oldFile)
  db.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL)')
  db.prepare('INSERT INTO messages (id, topic, payload, qos, retain) VALUES (1, ?, ?, 1, 0)').run('old/1', Buffer.from('kept'))
  db.close()
  const old = await BridgeQueue.durable(limits, oldFile)
  t.teardown(() => old.close())
  t.deepEqual(old.take(), { id: 1, topic: 'old/1', payload: Buffer.from('kept'), qos: 1, retain: false })
  old.push({ topic: 'new/1', payload: Buffer.from('p'), qos: 2, retain: true, userProperties: { k: 'v', list: ['1', '2'] } })
  old.close()

  const reopened = await BridgeQueue.durable(limits, oldFile)
  t.teardown(() => reopened.close())
  t.is(reopened.take()?.topic, 'old/1', 'not acknowledged: still there')
  t.deepEqual(reopened.take(), { id: 2, topic: 'new/1', payload: Buffer.from('p'), qos: 2, retain: true, userProperties: { k: 'v', list: ['1', '2'] } })
})

test('proto_ver 5 over a durable buffer: user properties of messages queued while the upstream is down arrive after it comes up', async (t) => {
  const dataDir = await tmpDir(t)
  const port = await freePort()
  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${port}`, { protoVer: 5, forwards: ['up/#'], queue: { durable: true } })], { config: { data_dir: dataDir } })
  const device = await v5(t, edge.url, { clientId: 'device' })
  await device.publishAsync('up/q', 'x', { qos: 1, properties: { userProperties: { queued: 'yes' } } })
  const published = new Recorder<PublishEvent>()
  await testBroker(t, {
    config: { url: `nmq-tcp://127.0.0.1:${port}` },
    plugins: [tapping('test:upstream', (hooks) => hooks.message.publish.tap('test:upstream', published.push))]
  })
  const [message] = await published.count(1, 15_000)
  t.deepEqual(message!.properties?.userProperties, { queued: 'yes' })
})
