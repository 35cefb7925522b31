// client.disconnected carries the right reason for every way a connection ends, exactly
// once; session.terminated follows for clean sessions only (and not after a takeover).
import test from 'ava'
import type { DisconnectEvent, DisconnectReason, SessionTerminatedEvent } from '../../sdk/index.ts'
import type { TestBroker } from '../../sdk/testing.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { foreignPart, type HookRecording, recordingPlugin } from '../helpers/hooks.ts'
import { connectClient, type Emitter, once, RawClient, Recorder, settle, type Teardown, within } from '../helpers/mqtt.ts'

async function setup (t: Teardown, config: Record<string, string> = {}): Promise<{ broker: TestBroker, rec: HookRecording }> {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin], config })
  return { broker, rec }
}

/** Waits for the disconnect of `clientId`, then proves it came once: a later client's whole connect comes first. */
async function disconnectOf (t: Teardown, broker: TestBroker, rec: HookRecording, clientId: string): Promise<DisconnectEvent> {
  const event = await rec.of<DisconnectEvent>('client.disconnected').find((e) => e.clientId === clientId)
  if (!broker.tapmq.broker.closed) {
    const probe = await connectClient(t, broker.url, { clientId: `probe-${clientId}` })
    await probe.endAsync()
    await rec.of<DisconnectEvent>('client.disconnected').find((e) => e.clientId === `probe-${clientId}`)
  } else {
    await settle()
  }
  const all = rec.of<DisconnectEvent>('client.disconnected').list.filter((e) => e.clientId === clientId)
  if (all.length !== 1) throw new Error(`client.disconnected fired ${all.length} times for ${clientId}`)
  return event
}

function terminations (rec: HookRecording, clientId: string): SessionTerminatedEvent[] {
  return rec.of<SessionTerminatedEvent>('session.terminated').list.filter((e) => e.clientId === clientId)
}

function expectReason (t: { is (a: unknown, b: unknown, m?: string): void }, event: DisconnectEvent, reason: DisconnectReason): void {
  t.is(event.reason, reason, `reason ${event.reason} (detail: ${event.detail})`)
}

test('normal: the client sends DISCONNECT', async (t) => {
  const { broker, rec } = await setup(t)
  const client = await connectClient(t, broker.url, { clientId: 'n1', username: 'nora', clean: true })
  const localPort = (client.stream as unknown as { localPort: number }).localPort
  await client.endAsync()
  const event = await disconnectOf(t, broker, rec, 'n1')
  expectReason(t, event, 'normal')
  t.like(event, { clientId: 'n1', username: 'nora', protoVer: 4, detail: undefined })
  t.deepEqual(event.peer, { address: '127.0.0.1', port: localPort, listenerPort: broker.port, transport: 'tcp' })
  t.is(typeof event.ts, 'number')
  t.true(Object.isFrozen(event))
  t.is(foreignPart(event), undefined)
  const [terminated, ...more] = terminations(rec, 'n1')
  t.like(terminated, { clientId: 'n1', username: 'nora', reason: 'normal' })
  t.is(more.length, 0)
})

test('session.terminated is for clean sessions only', async (t) => {
  const { broker, rec } = await setup(t)
  const persistent = await connectClient(t, broker.url, { clientId: 'keep', clean: false })
  await persistent.endAsync()
  expectReason(t, await disconnectOf(t, broker, rec, 'keep'), 'normal')
  t.deepEqual(terminations(rec, 'keep'), [])
})

test('peer_closed: the socket closes without DISCONNECT', async (t) => {
  const { broker, rec } = await setup(t)
  const client = await connectClient(t, broker.url, { clientId: 'p1' })
  client.stream.destroy()
  const event = await disconnectOf(t, broker, rec, 'p1')
  expectReason(t, event, 'peer_closed')
  t.is(terminations(rec, 'p1')[0]?.reason, 'peer_closed')
})

test('keepalive_timeout: CONNECT with keepalive 1, then silence', async (t) => {
  const { broker, rec } = await setup(t)
  const { client, connack } = await RawClient.connect(t, broker.port, { clientId: 'k1', keepalive: 1 })
  t.is((connack as { returnCode?: number }).returnCode, 0)
  await client.waitClosed()
  const event = await disconnectOf(t, broker, rec, 'k1')
  expectReason(t, event, 'keepalive_timeout')
  t.is(terminations(rec, 'k1')[0]?.reason, 'keepalive_timeout')
})

test('takeover: a second connection with the same client id; no session.terminated for the old one', async (t) => {
  const { broker, rec } = await setup(t)
  const first = await connectClient(t, broker.url, { clientId: 'dup', username: 'one' })
  const firstClosed = once(first, 'close')
  const second = await connectClient(t, broker.url, { clientId: 'dup', username: 'two' })
  await firstClosed
  const event = await rec.of<DisconnectEvent>('client.disconnected').find((e) => e.clientId === 'dup')
  expectReason(t, event, 'takeover')
  t.is(event.username, 'one', 'the event describes the old connection')
  t.deepEqual(terminations(rec, 'dup'), [])
  // the new connection is the live one
  t.true(second.connected)
  t.is(broker.broker.client('dup')?.username, 'two')
  await second.endAsync()
  const all = await rec.of<DisconnectEvent>('client.disconnected').count(2)
  t.deepEqual(all.filter((e) => e.clientId === 'dup').map((e) => [e.username, e.reason]), [['one', 'takeover'], ['two', 'normal']])
})

test('protocol_error: garbage bytes after CONNECT', async (t) => {
  const { broker, rec } = await setup(t)
  const { client } = await RawClient.connect(t, broker.port, { clientId: 'g1' })
  // 0x00 is a reserved packet type
  client.write(Buffer.from([0x00, 0x02, 0xde, 0xad]))
  await client.waitClosed()
  const event = await disconnectOf(t, broker, rec, 'g1')
  expectReason(t, event, 'protocol_error')
  t.truthy(event.detail)
  t.is(terminations(rec, 'g1')[0]?.reason, 'protocol_error')
})

test('protocol_error: a packet larger than max_packet_size (1 KB) closes the connection', async (t) => {
  const { broker, rec } = await setup(t, { max_packet_size: '1' })
  const sub = await connectClient(t, broker.url, { clientId: 'watcher' })
  await sub.subscribeAsync('big/#')
  const small = once<[string, Buffer]>(sub, 'message')
  const { client } = await RawClient.connect(t, broker.port, { clientId: 'big1' })
  client.send({ cmd: 'publish', topic: 'big/ok', payload: Buffer.alloc(900), qos: 0, retain: false, dup: false })
  t.is((await small)[0], 'big/ok', 'a packet under the limit is routed')
  let delivered = 0
  sub.on('message', () => delivered++)
  client.send({ cmd: 'publish', topic: 'big/too', payload: Buffer.alloc(1100), qos: 0, retain: false, dup: false })
  await client.waitClosed()
  const event = await disconnectOf(t, broker, rec, 'big1')
  expectReason(t, event, 'protocol_error')
  t.regex(event.detail ?? '', /max_packet_size/)
  t.is(delivered, 0, 'the oversized packet was not routed')
})

test('shutdown: broker.close() while clients are connected', async (t) => {
  const { broker, rec } = await setup(t)
  const a = await connectClient(t, broker.url, { clientId: 's1' })
  const b = await connectClient(t, broker.url, { clientId: 's2', clean: false })
  const closed = Promise.all([once(a, 'close'), once(b, 'close')])
  await within(broker.close(), 'broker.close()')
  await closed
  const events = rec.of<DisconnectEvent>('client.disconnected').list
  t.deepEqual(events.map((e) => [e.clientId, e.reason]).sort(), [['s1', 'shutdown'], ['s2', 'shutdown']])
  t.deepEqual(rec.of<SessionTerminatedEvent>('session.terminated').list.map((e) => [e.clientId, e.reason]), [['s1', 'shutdown']])
  // plugins still saw the disconnects before broker.stopping
  const names = rec.sequence.map(([name]) => name)
  t.true(names.lastIndexOf('client.disconnected') < names.indexOf('broker.stopping'))
})

test('kicked: BrokerView.disconnect(id)', async (t) => {
  const { broker, rec } = await setup(t)
  const client = await connectClient(t, broker.url, { clientId: 'kick-me' })
  const closed = once(client, 'close')
  t.true(broker.broker.disconnect('kick-me'))
  t.false(broker.broker.disconnect('nobody'))
  await closed
  const event = await disconnectOf(t, broker, rec, 'kick-me')
  expectReason(t, event, 'kicked')
  t.is(terminations(rec, 'kick-me')[0]?.reason, 'kicked')
})

test('slow_consumer: a subscriber that never reads is dropped after drain_timeout', async (t) => {
  const { broker, rec } = await setup(t, { drain_timeout: '200ms' })
  const { client: slow } = await RawClient.connect(t, broker.port, { clientId: 'slow' })
  slow.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood', qos: 0 }] })
  await slow.next('suback')
  slow.socket.pause()
  const publisher = await connectClient(t, broker.url, { clientId: 'flooder' })
  const payload = Buffer.alloc(256 * 1024, 0x61)
  const gone = () => rec.of<DisconnectEvent>('client.disconnected').list.some((e) => e.clientId === 'slow')
  // bounded: at most 400 × 256 KB, far more than the socket buffers hold
  for (let i = 0; i < 400 && !gone(); i++) {
    await publisher.publishAsync('flood', payload, { qos: 0 })
    if (i % 20 === 19) await settle(10)
  }
  const event = await rec.of<DisconnectEvent>('client.disconnected').find((e) => e.clientId === 'slow')
  expectReason(t, event, 'slow_consumer')
  t.is(event.detail, 'drain timeout')
  t.true(publisher.connected, 'the publisher is not affected')
  t.is(broker.broker.client('slow'), undefined)
})

test('protocol_error: over WebSocket too, a packet larger than max_packet_size closes the connection', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin], config: { max_packet_size: '1' }, websocket: true })
  const client = await connectClient(t, broker.wsUrl!, { clientId: 'ws-big' })
  const closed = once(client, 'close')
  client.publish('big', Buffer.alloc(4096), { qos: 0 })
  await closed
  const event = await disconnectOf(t, broker, rec, 'ws-big')
  expectReason(t, event, 'protocol_error')
})

test('a second connection with the same id that dies during auth does not mark the first as taken over', async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const asked = new Recorder<string>()
  const slowAuth = tapping('slow-auth', (hooks) => hooks.auth.tapPromise('slow-auth', async (request) => {
    if (request.username !== 'second') return undefined
    asked.push(request.clientId)
    await gate
    return { result: 'allow' }
  }))
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin, slowAuth] })
  const first = await connectClient(t, broker.url, { clientId: 'same', username: 'first' })
  const raw = await RawClient.open(t, broker.port)
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'same', username: 'second' })
  await asked.count(1)
  // the second connection dies while its auth is pending; the broker sees it as an error
  const died = once<[{ id: string }]>(broker.tapmq.broker as unknown as Emitter, 'clientError')
  raw.socket.resetAndDestroy()
  t.is((await died)[0].id, 'same')
  release()
  // its late `allow` changes nothing: the first connection lives on, and ends normally
  const probe = await connectClient(t, broker.url, { clientId: 'probe' })
  await probe.endAsync()
  t.true(first.connected)
  await first.endAsync()
  const event = await rec.of<DisconnectEvent>('client.disconnected').find((e) => e.clientId === 'same')
  expectReason(t, event, 'normal')
  t.is(event.username, 'first')
  t.is(terminations(rec, 'same')[0]?.reason, 'normal')
})
