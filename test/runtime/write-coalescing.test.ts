// write_coalescing (runtime/broker/write-coalescing.ts): QoS 0 deliveries queued per client
// and written once per event-loop turn, other writes corked per turn. It must keep per-
// subscriber order, lose nothing, keep aedes' checks (dedupe), keep back-pressure and keep
// what hooks see.
import test from 'ava'
import type { Client } from 'aedes'
import mqttPacket from 'mqtt-packet'
import type { DeliveredEvent, DisconnectEvent } from '../../sdk/index.ts'
import { connectedClients } from '../../runtime/broker/aedes-internals.ts'
import { MAX_BATCH } from '../../runtime/broker/write-coalescing.ts'
import { Conf, parseConf } from '../../sdk/conf.ts'
import { readBrokerConfig } from '../../runtime/config/broker-config.ts'
import { testBroker } from '../helpers/broker.ts'
import { recordingPlugin } from '../helpers/hooks.ts'
import { connectClient, RawClient, until, WAIT_MS } from '../helpers/mqtt.ts'

/** Collects `publisher:seq` payloads per subscriber and checks they are consecutive per publisher. */
function sequenceOf (messages: Buffer[]): Map<string, number[]> {
  const bySource = new Map<string, number[]>()
  for (const payload of messages) {
    const [source, seq] = payload.toString().split(':')
    const list = bySource.get(source) ?? []
    list.push(Number(seq))
    bySource.set(source, list)
  }
  return bySource
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

function aedesClient (broker: { tapmq: { broker: Parameters<typeof connectedClients>[0] } }, id: string): Client {
  const client = connectedClients(broker.tapmq.broker)[id]
  if (!client) throw new Error(`no aedes client ${id}`)
  return client
}

test('write_coalescing is on by default and can be switched off', (t) => {
  t.true(readBrokerConfig(new Conf([]), '/tmp').writeCoalescing)
  t.false(readBrokerConfig(new Conf(parseConf('write_coalescing = false\n', 'tapmq.conf')), '/tmp').writeCoalescing)
  const error = t.throws(() => readBrokerConfig(new Conf(parseConf('write_coalescing = maybe\n', 'tapmq.conf')), '/tmp'))
  t.regex(error?.message ?? '', /tapmq\.conf:1/)
})

test('QoS 0 from several publishers arrives complete and in order at every subscriber', async (t) => {
  const broker = await testBroker(t)
  const subscribers = await Promise.all(['s1', 's2'].map((id) => connectClient(t, broker.url, { clientId: id })))
  const received = subscribers.map(() => [] as Buffer[])
  subscribers.forEach((s, i) => s.on('message', (_topic, payload) => received[i].push(payload)))
  await subscribers[0].subscribeAsync('load/#', { qos: 0 })
  await subscribers[1].subscribeAsync('load/+', { qos: 0 })
  const publishers = await Promise.all(['p1', 'p2', 'p3'].map((id) => connectClient(t, broker.url, { clientId: id })))
  const count = 2000
  await Promise.all(publishers.map(async (p, k) => {
    for (const i of range(count)) p.publish(`load/${k}`, `p${k}:${i}`, { qos: 0 })
    // a QoS 1 publish after the QoS 0 ones: its PUBACK means the broker read them all
    await p.publishAsync(`ack/${k}`, 'done', { qos: 1 })
  }))
  await until(() => received.every((list) => list.length >= 3 * count), `all ${3 * count} messages at both subscribers`)
  for (const list of received) {
    t.is(list.length, 3 * count)
    const bySource = sequenceOf(list)
    for (const k of range(3)) t.deepEqual(bySource.get(`p${k}`), range(count), `publisher ${k} in order`)
  }
})

test('a message matching two subscriptions of one client goes out once (aedes dedupe kept)', async (t) => {
  const broker = await testBroker(t)
  const sub = await connectClient(t, broker.url, { clientId: 'overlap' })
  const received: string[] = []
  sub.on('message', (topic, payload) => received.push(`${topic}=${payload}`))
  await sub.subscribeAsync({ 'd/#': { qos: 0 }, 'd/x': { qos: 0 } })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  for (const i of range(50)) pub.publish('d/x', String(i), { qos: 0 })
  await pub.publishAsync('d/end', 'end', { qos: 1 })
  await until(() => received.includes('d/end=end'), 'the last message')
  t.deepEqual(received, [...range(50).map((i) => `d/x=${i}`), 'd/end=end'])
})

test(`more than MAX_BATCH (${MAX_BATCH}) deliveries queued in one turn take several turns, in order`, async (t) => {
  const broker = await testBroker(t)
  const sub = await connectClient(t, broker.url, { clientId: 'bulk' })
  const received: number[] = []
  sub.on('message', (_topic, payload) => received.push(Number(payload.toString())))
  const total = MAX_BATCH * 2 + 100
  let completed = 0
  // the broker's own client.publish queues straight into the client's delivery queue
  const client = aedesClient(broker, 'bulk')
  for (const i of range(total)) {
    client.publish({ cmd: 'publish', topic: 'bulk', payload: Buffer.from(String(i)), qos: 0, retain: false, dup: false }, () => { completed++ })
  }
  t.is(completed, 0, 'nothing completes synchronously')
  await until(() => received.length >= total, `${total} messages`, WAIT_MS * 2)
  t.deepEqual(received, range(total))
  t.is(completed, total, 'every delivery callback ran once')
})

test('retained messages keep the retain flag; live deliveries clear it', async (t) => {
  const broker = await testBroker(t)
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  await pub.publishAsync('r/kept', 'stored', { qos: 1, retain: true })
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  const flags: Array<[string, boolean]> = []
  sub.on('message', (_topic, payload, packet) => flags.push([payload.toString(), packet.retain]))
  await sub.subscribeAsync('r/#', { qos: 0 })
  await until(() => flags.length >= 1, 'the retained message')
  await pub.publishAsync('r/kept', 'live', { qos: 1, retain: true })
  await until(() => flags.length >= 2, 'the live message')
  t.deepEqual(flags, [['stored', true], ['live', false]])
})

test('message.delivered reports coalesced QoS 0 deliveries', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const sub = await connectClient(t, broker.url, { clientId: 'watcher', username: 'walt' })
  await sub.subscribeAsync('h/#', { qos: 0 })
  const pub = await connectClient(t, broker.url, { clientId: 'source', username: 'sam' })
  for (const i of range(20)) pub.publish('h/1', `m${i}`, { qos: 1 })
  const events = await rec.of<DeliveredEvent>('message.delivered').count(20)
  const mine = events.filter((e) => e.clientId === 'watcher')
  t.is(mine.length, 20)
  t.like(mine[0], { clientId: 'watcher', username: 'walt', topic: 'h/1', qos: 0, from: 'source', fromUsername: 'sam' })
  t.deepEqual(mine.map((e) => e.payload.toString()), range(20).map((i) => `m${i}`))
})

test('QoS 1 both ways still flows in order with corked writes', async (t) => {
  const broker = await testBroker(t)
  const sub = await connectClient(t, broker.url, { clientId: 'q1sub' })
  const received: number[] = []
  sub.on('message', (_topic, payload) => received.push(Number(payload.toString())))
  await sub.subscribeAsync('q1', { qos: 1 })
  const pub = await connectClient(t, broker.url, { clientId: 'q1pub' })
  const count = 1000
  await Promise.all(range(count).map((i) => pub.publishAsync('q1', String(i), { qos: 1 })))
  await until(() => received.length >= count, `${count} QoS 1 messages`)
  t.deepEqual(received, range(count))
})

test('over WebSocket, coalesced deliveries arrive complete and in order', async (t) => {
  const broker = await testBroker(t, { websocket: true })
  const sub = await connectClient(t, broker.wsUrl!, { clientId: 'ws-sub' })
  const received: number[] = []
  sub.on('message', (_topic, payload) => received.push(Number(payload.toString())))
  await sub.subscribeAsync('ws/#', { qos: 0 })
  const pub = await connectClient(t, broker.url, { clientId: 'tcp-pub' })
  for (const i of range(1000)) pub.publish('ws/a', String(i), { qos: 0 })
  await until(() => received.length >= 1000, '1000 messages over WebSocket')
  t.deepEqual(received, range(1000))
})

test('a stalled subscriber is still dropped by drain_timeout, and the others get everything', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin], config: { drain_timeout: '300ms' } })
  const { client: stalled } = await RawClient.connect(t, broker.port, { clientId: 'stalled' })
  stalled.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'big', qos: 0 }] })
  await stalled.next('suback')
  stalled.socket.pause()
  const healthy = await connectClient(t, broker.url, { clientId: 'healthy' })
  const received: number[] = []
  healthy.on('message', (_topic, payload) => received.push(payload.readUInt32BE(0)))
  await healthy.subscribeAsync('big', { qos: 0 })
  const gone = rec.of<DisconnectEvent>('client.disconnected').find((e) => e.clientId === 'stalled', WAIT_MS * 2)
  const pub = await connectClient(t, broker.url, { clientId: 'bigpub' })
  // 200 × 128 KB: far more than the socket buffers of the stalled subscriber hold
  const count = 200
  for (const i of range(count)) {
    const payload = Buffer.alloc(128 * 1024)
    payload.writeUInt32BE(i, 0)
    pub.publish('big', payload, { qos: 0 })
  }
  const event = await gone
  t.is(event.reason, 'slow_consumer', `reason ${event.reason} (${event.detail})`)
  await until(() => received.length >= count, `${count} messages at the healthy subscriber`, WAIT_MS * 2)
  t.deepEqual(received, range(count))
})

test('bytes written just before the stream is destroyed still reach the peer', async (t) => {
  const broker = await testBroker(t)
  const { client: raw } = await RawClient.connect(t, broker.port, { clientId: 'last-words' })
  const conn = aedesClient(broker, 'last-words').conn as unknown as { write (b: Buffer): boolean, destroy (): void }
  const pingresp = mqttPacket.generate({ cmd: 'pingresp' })
  // two writes from two callbacks of one turn: the second corks the stream until the turn ends
  conn.write(pingresp)
  await new Promise<void>((resolve) => process.nextTick(resolve))
  conn.write(pingresp)
  // destroyed before the turn ends
  conn.destroy()
  await raw.next('pingresp')
  await raw.next('pingresp')
  await raw.waitClosed()
  t.pass()
})

test('write_coalescing = false keeps aedes\' own delivery', async (t) => {
  const broker = await testBroker(t, { config: { write_coalescing: 'false' } })
  const sub = await connectClient(t, broker.url, { clientId: 'plain' })
  t.is((aedesClient(broker, 'plain') as unknown as { deliver0: { name: string } }).deliver0.name, 'deliverQoS0')
  const received: number[] = []
  sub.on('message', (_topic, payload) => received.push(Number(payload.toString())))
  await sub.subscribeAsync('p', { qos: 0 })
  const pub = await connectClient(t, broker.url, { clientId: 'pp' })
  for (const i of range(100)) pub.publish('p', String(i), { qos: 0 })
  await until(() => received.length >= 100, '100 messages')
  t.deepEqual(received, range(100))
  const on = await testBroker(t)
  await connectClient(t, on.url, { clientId: 'coalesced' })
  t.not((aedesClient(on, 'coalesced') as unknown as { deliver0: { name: string } }).deliver0.name, 'deliverQoS0')
})
