// GHSA-p8r9-qf8w-p73r (fixed in aedes 1.2.0 with aedes-persistence 11's cleanIncoming),
// carried for aedes 2.0.0-beta.1 by
// patches/aedes+2.0.0-beta.1+003+GHSA-p8r9-qf8w-p73r-clean-incoming.patch.
//
// A QoS 2 PUBLISH awaiting PUBREL is kept in the store under its client id and packet
// identifier, so that a re-send is not routed twice. aedes never removed those entries when
// the session ended, so (a) they piled up for every client that left one behind, and (b) the
// next session of that client id had its fresh PUBLISH with a reused packet identifier taken
// for a re-send and silently dropped (acknowledged, never routed). The patch removes them
// when a session ends: at a CONNECT with Clean Start (CleanSession) 1, when the connection
// of a session that ends with it closes, and (MQTT 5) when a session expires.
//
// The test for each path: leave a PUBLISH with packet identifier 7 awaiting PUBREL, end the
// session that way, then publish a different message with packet identifier 7 in a new
// session: it must be routed. The durable store (persistence = embedded) is checked the same
// way across a broker restart, so the entry is shown gone from disk, not only from memory.
import test, { type ExecutionContext } from 'ava'
import type { EventEmitter } from 'node:events'
import type { MqttClient } from 'mqtt'
import mqttPacket, { type IConnackPacket, type IConnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, once, RawClient, settle, tmpDir, until } from '../helpers/mqtt.ts'
import type { TestBroker } from '../../sdk/testing.ts'

const TOPIC = 'incoming'
const ID = 'publisher'
/** the packet identifier every session here reuses */
const MESSAGE_ID = 7

type Version = 4 | 5

interface SessionOptions {
  readonly protocolVersion: Version
  /** CleanSession (3.1.1) / Clean Start (5) */
  readonly clean: boolean
  /** MQTT 5 Session Expiry Interval, seconds */
  readonly expiry?: number
}

function encode (packet: Packet, protocolVersion: Version): Buffer {
  return mqttPacket.generate(packet, { protocolVersion })
}

function publish (payload: string, dup = false): IPublishPacket {
  return { cmd: 'publish', topic: TOPIC, payload: Buffer.from(payload), qos: 2, messageId: MESSAGE_ID, retain: false, dup }
}

/** A raw session of client id ID; resolves with the socket and the CONNACK. */
async function session (t: ExecutionContext, broker: TestBroker, { protocolVersion, clean, expiry }: SessionOptions): Promise<{ raw: RawClient, connack: IConnackPacket }> {
  const connect: Partial<IConnectPacket> & { clientId: string } = {
    clientId: ID,
    protocolVersion,
    clean,
    ...(protocolVersion === 5 && expiry !== undefined ? { properties: { sessionExpiryInterval: expiry } } : {})
  }
  const { client, connack } = await RawClient.connect(t, broker.port, connect)
  t.like(connack, { cmd: 'connack' })
  const code = (connack as IConnackPacket).reasonCode ?? (connack as IConnackPacket).returnCode
  t.is(code, 0, 'connection accepted')
  return { raw: client, connack: connack as IConnackPacket }
}

/** Sends PUBLISH(MESSAGE_ID, payload) and takes its PUBREC, never sending the PUBREL. */
async function leaveAwaitingPubrel (t: ExecutionContext, raw: RawClient, protocolVersion: Version, payload: string, dup = false): Promise<void> {
  raw.write(encode(publish(payload, dup), protocolVersion))
  t.like(await raw.next('pubrec'), { messageId: MESSAGE_ID })
}

/** Drops the connection (no DISCONNECT) and waits until the broker has let the client go. */
async function drop (broker: TestBroker, raw: RawClient): Promise<void> {
  raw.socket.destroy()
  await until(() => !broker.broker.client(ID), 'the broker to see the client gone')
}

interface Watcher {
  readonly client: MqttClient
  readonly heard: string[]
}

/** An MQTT 3.1.1 subscriber to TOPIC. */
async function watcher (t: ExecutionContext, broker: TestBroker): Promise<Watcher> {
  const client = await connectClient(t, broker.url, { clientId: 'watcher' })
  await client.subscribeAsync([TOPIC, 'sentinel'], { qos: 2 })
  const heard: string[] = []
  client.on('message', (topic, payload) => heard.push(topic === TOPIC ? String(payload) : `sentinel ${String(payload)}`))
  return { client, heard }
}

let sentinels = 0
/**
 * What the watcher heard on TOPIC up to now: a sentinel is published after the last PUBREC
 * and awaited, and a PUBLISH that aedes routes is routed before its PUBREC is sent.
 */
async function routed (t: ExecutionContext, broker: TestBroker, { client, heard }: Watcher): Promise<string[]> {
  const mark = `sentinel ${++sentinels}`
  const arrived = until(() => heard.includes(mark), 'the sentinel')
  await client.publishAsync('sentinel', String(sentinels), { qos: 1 })
  await arrived
  return heard.filter((entry) => !entry.startsWith('sentinel '))
}

/** aedes' own event, used only to know when to reconnect: reconnecting earlier would resume the session */
function sessionExpired (broker: TestBroker): Promise<unknown> {
  return once(broker.tapmq.broker as unknown as EventEmitter, 'sessionExpired')
}

test('MQTT 3.1.1: a clean session\'s QoS 2 PUBLISH awaiting PUBREL ends with its connection [MQTT-3.1.2-6]: the same packet identifier in the next (persistent) session is a new message', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const first = await session(t, broker, { protocolVersion: 4, clean: true })
  await leaveAwaitingPubrel(t, first.raw, 4, 'first')
  await drop(broker, first.raw)

  const second = await session(t, broker, { protocolVersion: 4, clean: false })
  await leaveAwaitingPubrel(t, second.raw, 4, 'second')
  t.deepEqual(await routed(t, broker, watch), ['first', 'second'])
})

test('MQTT 3.1.1: CleanSession 1 discards a persistent session\'s QoS 2 PUBLISH awaiting PUBREL [MQTT-3.1.2-6]; resumed with CleanSession 0 a re-send is not routed twice [MQTT-4.3.3-2]', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const first = await session(t, broker, { protocolVersion: 4, clean: false })
  await leaveAwaitingPubrel(t, first.raw, 4, 'first')
  await drop(broker, first.raw)

  const resumed = await session(t, broker, { protocolVersion: 4, clean: false })
  await leaveAwaitingPubrel(t, resumed.raw, 4, 'first', true)
  t.deepEqual(await routed(t, broker, watch), ['first'], 'the re-send in the resumed session is not routed again')
  await drop(broker, resumed.raw)

  const fresh = await session(t, broker, { protocolVersion: 4, clean: true })
  await leaveAwaitingPubrel(t, fresh.raw, 4, 'second')
  t.deepEqual(await routed(t, broker, watch), ['first', 'second'])
})

test('MQTT 5: with Session Expiry Interval 0 the session ends with its connection (§3.1.2.11.2): its QoS 2 PUBLISH awaiting PUBREL goes too, and the same packet identifier later is a new message', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const first = await session(t, broker, { protocolVersion: 5, clean: true })
  await leaveAwaitingPubrel(t, first.raw, 5, 'first')
  await drop(broker, first.raw)

  const second = await session(t, broker, { protocolVersion: 5, clean: false, expiry: 60 })
  await leaveAwaitingPubrel(t, second.raw, 5, 'second')
  t.deepEqual(await routed(t, broker, watch), ['first', 'second'])
})

test('MQTT 5: Clean Start 1 discards the existing session\'s QoS 2 PUBLISH awaiting PUBREL [MQTT-3.1.2-4]; resumed with Clean Start 0 a re-send is not routed twice [MQTT-4.3.3-9]', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const first = await session(t, broker, { protocolVersion: 5, clean: false, expiry: 60 })
  await leaveAwaitingPubrel(t, first.raw, 5, 'first')
  await drop(broker, first.raw)

  const resumed = await session(t, broker, { protocolVersion: 5, clean: false, expiry: 60 })
  await leaveAwaitingPubrel(t, resumed.raw, 5, 'first', true)
  t.deepEqual(await routed(t, broker, watch), ['first'], 'the re-send in the resumed session is not routed again')
  await drop(broker, resumed.raw)

  const fresh = await session(t, broker, { protocolVersion: 5, clean: true, expiry: 60 })
  await leaveAwaitingPubrel(t, fresh.raw, 5, 'second')
  t.deepEqual(await routed(t, broker, watch), ['first', 'second'])
})

test('MQTT 5: an expired session (Session Expiry Interval 1) takes its QoS 2 PUBLISH awaiting PUBREL with it: reconnecting with Clean Start 0 and the same packet identifier publishes anew', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const first = await session(t, broker, { protocolVersion: 5, clean: false, expiry: 1 })
  await leaveAwaitingPubrel(t, first.raw, 5, 'first')
  const expired = sessionExpired(broker)
  await drop(broker, first.raw)
  await expired

  const second = await session(t, broker, { protocolVersion: 5, clean: false, expiry: 60 })
  await leaveAwaitingPubrel(t, second.raw, 5, 'second')
  t.deepEqual(await routed(t, broker, watch), ['first', 'second'])
})

// ---- the durable store: the entry must be gone from disk, shown across a restart ----------

async function durable (t: ExecutionContext): Promise<() => Promise<TestBroker>> {
  const config = { persistence: 'embedded', data_dir: await tmpDir(t) }
  return () => testBroker(t, { config })
}

test('embedded store, MQTT 3.1.1: a clean session\'s QoS 2 PUBLISH awaiting PUBREL is not in the store after a restart', async (t) => {
  const start = await durable(t)
  const before = await start()
  const first = await session(t, before, { protocolVersion: 4, clean: true })
  await leaveAwaitingPubrel(t, first.raw, 4, 'first')
  await drop(before, first.raw)
  await before.close()

  const after = await start()
  const watch = await watcher(t, after)
  const second = await session(t, after, { protocolVersion: 4, clean: false })
  await leaveAwaitingPubrel(t, second.raw, 4, 'second')
  t.deepEqual(await routed(t, after, watch), ['second'])
})

test('embedded store, MQTT 3.1.1: after a restart, CleanSession 1 discards the persistent session\'s QoS 2 PUBLISH awaiting PUBREL that the store kept', async (t) => {
  const start = await durable(t)
  const before = await start()
  const first = await session(t, before, { protocolVersion: 4, clean: false })
  await leaveAwaitingPubrel(t, first.raw, 4, 'first')
  await drop(before, first.raw)
  await before.close()

  const after = await start()
  const watch = await watcher(t, after)
  const resumed = await session(t, after, { protocolVersion: 4, clean: false })
  await leaveAwaitingPubrel(t, resumed.raw, 4, 'first', true)
  t.deepEqual(await routed(t, after, watch), [], 'the store kept the entry: the re-send is not routed again')
  await drop(after, resumed.raw)

  const fresh = await session(t, after, { protocolVersion: 4, clean: true })
  await leaveAwaitingPubrel(t, fresh.raw, 4, 'second')
  t.deepEqual(await routed(t, after, watch), ['second'])
})

test('embedded store, MQTT 5: an expired session\'s QoS 2 PUBLISH awaiting PUBREL is not in the store after a restart', async (t) => {
  const start = await durable(t)
  const before = await start()
  const first = await session(t, before, { protocolVersion: 5, clean: false, expiry: 1 })
  await leaveAwaitingPubrel(t, first.raw, 5, 'first')
  const expired = sessionExpired(before)
  await drop(before, first.raw)
  await expired
  await before.close()

  const after = await start()
  const watch = await watcher(t, after)
  const second = await session(t, after, { protocolVersion: 5, clean: false, expiry: 60 })
  await leaveAwaitingPubrel(t, second.raw, 5, 'second')
  t.deepEqual(await routed(t, after, watch), ['second'])
})

test('embedded store, MQTT 5: a session that expires while the broker is stopped takes its QoS 2 PUBLISH awaiting PUBREL with it at the next start', async (t) => {
  const start = await durable(t)
  const before = await start()
  const first = await session(t, before, { protocolVersion: 5, clean: false, expiry: 2 })
  await leaveAwaitingPubrel(t, first.raw, 5, 'first')
  await drop(before, first.raw)
  await before.close()
  // the session's deadline (2 s after the connection closed) passes while nothing runs;
  // 1.5 s of room, as a loaded machine stretches the stop (one run failed with 0.5 s)
  await settle(3500)

  const after = await start()
  const watch = await watcher(t, after)
  const second = await session(t, after, { protocolVersion: 5, clean: false, expiry: 60 })
  await leaveAwaitingPubrel(t, second.raw, 5, 'second')
  t.deepEqual(await routed(t, after, watch), ['second'])
})
