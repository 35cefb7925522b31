// MQTT 5 Will Delay Interval (§3.1.3.2.2) and the will on DISCONNECT (§3.14.2.1): the will
// goes out after its delay or at the end of the session, whichever is first; a reconnect within
// the delay cancels it; DISCONNECT 0x04 publishes it, 0x00 discards it. With the embedded store
// a pending delayed will survives a restart of the broker.
import test from 'ava'
import { testBroker } from '../helpers/broker.ts'
import { RawClient, tmpDir, until } from '../helpers/mqtt.ts'
import { clientGone, connect5, pending, roundTrip, sessionExpired } from './session-helpers.ts'

type Broker = Awaited<ReturnType<typeof testBroker>>

/** A v5 client with a will on `wills/<clientId>`; connected, returned with its socket to cut. */
async function dying (t: Parameters<typeof connect5>[0], broker: Broker, clientId: string, sessionExpiryInterval: number, willDelayInterval: number) {
  return connect5(t, broker.url, {
    clientId,
    clean: false,
    properties: { sessionExpiryInterval },
    will: { topic: `wills/${clientId}`, payload: Buffer.from(`will of ${clientId}`), qos: 1, retain: false, properties: { willDelayInterval } }
  })
}

async function watcher (t: Parameters<typeof connect5>[0], broker: Broker) {
  const watch = await connect5(t, broker.url, { clientId: `watch-${Math.random().toString(16).slice(2)}` })
  await watch.client.subscribeAsync('wills/#', { qos: 1 })
  return watch
}

const willsOf = (watch: Awaited<ReturnType<typeof watcher>>, clientId: string) => watch.messages.filter((m) => m.topic === `wills/${clientId}`)

test('the will goes out after its delay, not at the disconnect [§3.1.3.2.2]', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const client = await dying(t, broker, 'delayed', 60, 2)
  const gone = clientGone(broker.tapmq.broker, 'delayed')
  client.client.stream.destroy()
  await gone
  t.true(pending(broker.tapmq.broker).wills.has('delayed'), 'waiting for its delay')
  t.deepEqual(await roundTrip(watch), [], 'not at the disconnect')
  await until(() => willsOf(watch, 'delayed').length > 0, 'the delayed will')
  t.is(willsOf(watch, 'delayed')[0]!.payload.toString(), 'will of delayed')
  t.false(pending(broker.tapmq.broker).wills.has('delayed'))
})

test('a reconnect within the delay cancels the will [MQTT-3.1.3-9]', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const client = await dying(t, broker, 'returning', 60, 60)
  const gone = clientGone(broker.tapmq.broker, 'returning')
  client.client.stream.destroy()
  await gone
  t.true(pending(broker.tapmq.broker).wills.has('returning'))
  const back = await connect5(t, broker.url, { clientId: 'returning', clean: false, properties: { sessionExpiryInterval: 60 } })
  t.true(back.connack.sessionPresent)
  t.false(pending(broker.tapmq.broker).wills.has('returning'), 'cancelled')
  t.deepEqual(await roundTrip(watch), [])
})

test('a will delay longer than the session: the will goes out when the session ends [§3.1.3.2.2]', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const client = await dying(t, broker, 'outlived', 1, 3600)
  const expired = sessionExpired(broker.tapmq.broker, 'outlived')
  client.client.stream.destroy()
  await until(() => willsOf(watch, 'outlived').length > 0, 'the will at the end of the session')
  await expired
  t.is(willsOf(watch, 'outlived').length, 1)
})

test('DISCONNECT 0x04 (with will message) publishes the will; 0x00 discards it [MQTT-3.14.4-3] [§3.14.2.1]', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const withWill = await dying(t, broker, 'asks', 0, 0)
  await withWill.client.endAsync(false, { reasonCode: 0x04 })
  await until(() => willsOf(watch, 'asks').length > 0, 'the will after DISCONNECT 0x04')
  const normal = await dying(t, broker, 'polite', 0, 0)
  const gone = clientGone(broker.tapmq.broker, 'polite')
  await normal.client.endAsync(false, { reasonCode: 0x00 })
  await gone
  t.deepEqual((await roundTrip(watch)).filter((m) => m.topic === 'wills/polite'), [])
})

test('DISCONNECT 0x04 with a will delay: the delay still applies [§3.1.3.2.2]', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const client = await dying(t, broker, 'slow', 60, 1)
  const gone = clientGone(broker.tapmq.broker, 'slow')
  await client.client.endAsync(false, { reasonCode: 0x04 })
  await gone
  t.true(pending(broker.tapmq.broker).wills.has('slow'))
  await until(() => willsOf(watch, 'slow').length > 0, 'the delayed will')
})

test('MQTT 3.1.1: the will still goes out at once on an unclean close (no delay exists)', async (t) => {
  const broker = await testBroker(t)
  const watch = await watcher(t, broker)
  const { client } = await RawClient.connect(t, broker.port, {
    clientId: 'legacy', clean: false, will: { topic: 'wills/legacy', payload: Buffer.from('bye'), qos: 1, retain: false }
  })
  client.socket.destroy()
  await until(() => willsOf(watch, 'legacy').length > 0, 'the will')
  t.false(pending(broker.tapmq.broker).wills.has('legacy'))
})

// ---- across a restart (embedded store) -------------------------------------------------------

test('embedded store: a delayed will pending at shutdown is re-armed at start and goes out after the rest of its delay', async (t) => {
  const config = { persistence: 'embedded', data_dir: await tmpDir(t) }
  const first = await testBroker(t, { config })
  const a = await dying(t, first, 'pending-a', 3600, 3)
  const b = await dying(t, first, 'pending-b', 3600, 3600)
  let gone = clientGone(first.tapmq.broker, 'pending-a')
  a.client.stream.destroy()
  await gone
  gone = clientGone(first.tapmq.broker, 'pending-b')
  b.client.stream.destroy()
  await gone
  await first.close()

  const second = await testBroker(t, { config })
  t.like(second.logs.find((line) => String(line.msg).startsWith('MQTT 5 sessions restored')), { willsArmed: 2, willsPublished: 0 })
  t.false(second.logs.some((line) => String(line.msg).startsWith('published the wills')), 'not published as orphans')
  const watch = await watcher(t, second)
  t.true(pending(second.tapmq.broker).wills.has('pending-a'))
  await until(() => willsOf(watch, 'pending-a').length > 0, 'the re-armed will')
  // the other client comes back within its delay: its will is cancelled
  const back = await connect5(t, second.url, { clientId: 'pending-b', clean: false, properties: { sessionExpiryInterval: 3600 } })
  t.true(back.connack.sessionPresent)
  t.false(pending(second.tapmq.broker).wills.has('pending-b'))
  t.deepEqual((await roundTrip(watch)).filter((m) => m.topic === 'wills/pending-b'), [])
})

test('embedded store: a delayed will whose time came while the broker was down goes out at start', async (t) => {
  const config = { persistence: 'embedded', data_dir: await tmpDir(t) }
  const first = await testBroker(t, { config })
  // a persistent subscriber keeps the will for us across the restart
  const sub = await connect5(t, first.url, { clientId: 'heir', clean: false, properties: { sessionExpiryInterval: 3600 } })
  await sub.client.subscribeAsync('wills/#', { qos: 1 })
  let gone = clientGone(first.tapmq.broker, 'heir')
  await sub.client.endAsync()
  await gone
  const a = await dying(t, first, 'due', 3600, 1)
  gone = clientGone(first.tapmq.broker, 'due')
  a.client.stream.destroy()
  await gone
  await first.close()
  await new Promise((resolve) => setTimeout(resolve, 1100)) // the will's second passes while the broker is down

  const second = await testBroker(t, { config })
  t.like(second.logs.find((line) => String(line.msg).startsWith('MQTT 5 sessions restored')), { willsPublished: 1, willsArmed: 0 })
  const heir = await connect5(t, second.url, { clientId: 'heir', clean: false, properties: { sessionExpiryInterval: 3600 } })
  t.true(heir.connack.sessionPresent)
  await until(() => heir.messages.some((m) => m.topic === 'wills/due'), 'the will, queued at start')
  t.is(heir.messages.filter((m) => m.topic === 'wills/due').length, 1, 'once')
})
