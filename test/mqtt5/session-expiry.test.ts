// MQTT 5 Session Expiry Interval (§3.1.2.11.2, §3.14.2.2.2): a session outlives its
// connection for the interval and then ends; with the embedded store its deadline survives a
// restart of the broker. mqtt.js clients on protocol version 5 against a real broker.
import test from 'ava'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { loadConfig } from '../../runtime/config/load.ts'
import { SqliteStore } from '../../runtime/persistence/sqlite-store.ts'
import { testBroker } from '../helpers/broker.ts'
import { RawClient, tmpDir, until } from '../helpers/mqtt.ts'
import { startTapmq, workspace } from '../helpers/cli.ts'
import { clientGone, connect5, pending, roundTrip, send5, sessionExpired } from './session-helpers.ts'

const NEVER = 0xFFFFFFFF

/** A persistent subscriber to `topic` at QoS 1 that then goes away (DISCONNECT 0x00). */
async function leaveSession (t: Parameters<typeof connect5>[0], broker: Awaited<ReturnType<typeof testBroker>>, clientId: string,
  interval: number, topic = `s/${clientId}`): Promise<void> {
  const sub = await connect5(t, broker.url, { clientId, clean: false, properties: { sessionExpiryInterval: interval } })
  await sub.client.subscribeAsync(topic, { qos: 1 })
  const gone = clientGone(broker.tapmq.broker, clientId)
  await sub.client.endAsync()
  await gone
}

async function publish (t: Parameters<typeof connect5>[0], url: string, topic: string, payload: string, properties?: object): Promise<void> {
  const pub = await connect5(t, url, { clientId: `pub-${Math.random().toString(16).slice(2)}` })
  await pub.client.publishAsync(topic, payload, { qos: 1, properties })
  await pub.client.endAsync()
}

test('interval 0 (the default): the session ends with the connection: no session present, nothing queued [MQTT-3.1.2-23] [MQTT-3.2.2-3]', async (t) => {
  const broker = await testBroker(t)
  await leaveSession(t, broker, 'zero', 0)
  await publish(t, broker.url, 's/zero', 'lost')
  const back = await connect5(t, broker.url, { clientId: 'zero', clean: false })
  t.false(back.connack.sessionPresent)
  t.deepEqual(await roundTrip(back), [])
})

test('interval N: the session and its queued QoS 1 messages are kept while it runs, then gone [MQTT-3.1.2-23] [MQTT-3.2.2-2]', async (t) => {
  const broker = await testBroker(t)
  await leaveSession(t, broker, 'short', 5)
  await publish(t, broker.url, 's/short', 'kept')
  const back = await connect5(t, broker.url, { clientId: 'short', clean: false, properties: { sessionExpiryInterval: 1 } })
  t.true(back.connack.sessionPresent, 'resumed within the interval')
  await until(() => back.messages.length >= 1, 'the queued message')
  t.is(back.messages[0]!.payload.toString(), 'kept')
  // away again (now with 1 s), a message queued, and the session left to expire
  const gone = clientGone(broker.tapmq.broker, 'short')
  await back.client.endAsync()
  await gone
  const expired = sessionExpired(broker.tapmq.broker, 'short')
  await publish(t, broker.url, 's/short', 'expires with the session')
  await expired
  const late = await connect5(t, broker.url, { clientId: 'short', clean: false, properties: { sessionExpiryInterval: 60 } })
  t.false(late.connack.sessionPresent, 'expired [MQTT-3.2.2-3]')
  t.deepEqual(await roundTrip(late), [], 'its queue went with it')
})

test('a session without subscriptions is still a session: present while it waits to expire, and on a takeover [MQTT-3.2.2-2]', async (t) => {
  const broker = await testBroker(t)
  const first = await connect5(t, broker.url, { clientId: 'bare', clean: false, properties: { sessionExpiryInterval: 60 } })
  t.false(first.connack.sessionPresent, 'new')
  const gone = clientGone(broker.tapmq.broker, 'bare')
  await first.client.endAsync()
  await gone
  const back = await connect5(t, broker.url, { clientId: 'bare', clean: false, properties: { sessionExpiryInterval: 60 } })
  t.true(back.connack.sessionPresent, 'resumed')
  const takeover = await connect5(t, broker.url, { clientId: 'bare', clean: false, properties: { sessionExpiryInterval: 60 } })
  t.true(takeover.connack.sessionPresent, 'taken over')
  const fresh = await connect5(t, broker.url, { clientId: 'bare', clean: true, properties: { sessionExpiryInterval: 60 } })
  t.false(fresh.connack.sessionPresent, 'Clean Start 1 [MQTT-3.2.2-1]')
})

test('0xFFFFFFFF never expires: it outlives a session with an interval that did [§3.1.2.11.2]', async (t) => {
  const broker = await testBroker(t)
  await leaveSession(t, broker, 'forever', NEVER)
  await leaveSession(t, broker, 'brief', 1)
  t.false(pending(broker.tapmq.broker).sessions.get('forever') === undefined, 'tracked, against max_pending_sessions')
  await publish(t, broker.url, 's/forever', 'still here')
  await sessionExpired(broker.tapmq.broker, 'brief')
  const back = await connect5(t, broker.url, { clientId: 'forever', clean: false, properties: { sessionExpiryInterval: NEVER } })
  t.true(back.connack.sessionPresent)
  await until(() => back.messages.length >= 1, 'the queued message')
  t.is(back.messages[0]!.payload.toString(), 'still here')
})

test('DISCONNECT may change the interval: to 0 ends the session at once, to a shorter one expires it then [§3.14.2.2.2]', async (t) => {
  const broker = await testBroker(t)
  const a = await connect5(t, broker.url, { clientId: 'to-zero', clean: false, properties: { sessionExpiryInterval: 3600 } })
  await a.client.subscribeAsync('s/to-zero', { qos: 1 })
  let gone = clientGone(broker.tapmq.broker, 'to-zero')
  await a.client.endAsync(false, { properties: { sessionExpiryInterval: 0 } })
  await gone
  await publish(t, broker.url, 's/to-zero', 'lost')
  const a2 = await connect5(t, broker.url, { clientId: 'to-zero', clean: false, properties: { sessionExpiryInterval: 3600 } })
  t.false(a2.connack.sessionPresent)
  t.deepEqual(await roundTrip(a2), [])

  const b = await connect5(t, broker.url, { clientId: 'to-one', clean: false, properties: { sessionExpiryInterval: 3600 } })
  await b.client.subscribeAsync('s/to-one', { qos: 1 })
  const expired = sessionExpired(broker.tapmq.broker, 'to-one')
  gone = clientGone(broker.tapmq.broker, 'to-one')
  await b.client.endAsync(false, { properties: { sessionExpiryInterval: 1 } })
  await gone
  await expired
  const b2 = await connect5(t, broker.url, { clientId: 'to-one', clean: false, properties: { sessionExpiryInterval: 3600 } })
  t.false(b2.connack.sessionPresent)
})

test('a non-zero interval on DISCONNECT after 0 on CONNECT is a Protocol Error: DISCONNECT 0x82, the session stays ephemeral [§3.14.2.2.2]', async (t) => {
  const broker = await testBroker(t)
  const { client, connack } = await RawClient.connect(t, broker.port, { clientId: 'sneaky', protocolVersion: 5, clean: false })
  t.is((connack as { reasonCode?: number }).reasonCode, 0)
  client.write(send5({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 's/sneaky', qos: 1 }] }))
  await client.next('suback')
  client.write(send5({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 600 } }))
  const disconnect = await client.next('disconnect') as { reasonCode?: number, properties?: { sessionExpiryInterval?: number } }
  t.is(disconnect.reasonCode, 0x82)
  // [MQTT-3.14.2-2] the Server never sends a Session Expiry Interval on DISCONNECT
  t.is(disconnect.properties?.sessionExpiryInterval, undefined)
  await client.waitClosed()
  await publish(t, broker.url, 's/sneaky', 'lost')
  const back = await connect5(t, broker.url, { clientId: 'sneaky', clean: false })
  t.false(back.connack.sessionPresent)
  t.deepEqual(await roundTrip(back), [])
})

test('Clean Start 1 discards the old session and its queue, even with a new interval [MQTT-3.1.2-4] [MQTT-3.2.2-2]', async (t) => {
  const broker = await testBroker(t)
  await leaveSession(t, broker, 'fresh', 3600)
  await publish(t, broker.url, 's/fresh', 'old session')
  const back = await connect5(t, broker.url, { clientId: 'fresh', clean: true, properties: { sessionExpiryInterval: 3600 } })
  t.false(back.connack.sessionPresent)
  t.deepEqual(await roundTrip(back), [])
  // and the old subscription is gone: a new message is not delivered
  await publish(t, broker.url, 's/fresh', 'new')
  t.deepEqual(await roundTrip(back), [])
})

test('max_session_expiry_interval caps the interval and the CONNACK tells the client [§3.2.2.3.2]', async (t) => {
  const broker = await testBroker(t, { config: { max_session_expiry_interval: '1s' } })
  const capped = await connect5(t, broker.url, { clientId: 'greedy', clean: false, properties: { sessionExpiryInterval: NEVER } })
  t.is(capped.connack.properties?.sessionExpiryInterval, 1)
  const modest = await connect5(t, broker.url, { clientId: 'modest', properties: { sessionExpiryInterval: 1 } })
  t.is(modest.connack.properties?.sessionExpiryInterval, undefined, 'not lowered: not sent')
  await capped.client.subscribeAsync('s/greedy', { qos: 1 })
  const expired = sessionExpired(broker.tapmq.broker, 'greedy')
  await capped.client.endAsync()
  await expired
  const back = await connect5(t, broker.url, { clientId: 'greedy', clean: false, properties: { sessionExpiryInterval: 1 } })
  t.false(back.connack.sessionPresent, 'expired after the cap, not never')
})

test('max_pending_sessions: beyond it a leaving session ends at once', async (t) => {
  const broker = await testBroker(t, { config: { max_pending_sessions: '1' } })
  await leaveSession(t, broker, 'first', 3600)
  await leaveSession(t, broker, 'second', 3600)
  const first = await connect5(t, broker.url, { clientId: 'first', clean: false, properties: { sessionExpiryInterval: 3600 } })
  t.true(first.connack.sessionPresent)
  const second = await connect5(t, broker.url, { clientId: 'second', clean: false, properties: { sessionExpiryInterval: 3600 } })
  t.false(second.connack.sessionPresent)
})

test('config: max_session_expiry_interval is a duration in whole seconds up to 0xFFFFFFFF s, max_pending_sessions an integer', (t) => {
  const read = (entries: Record<string, string>) => loadConfig({
    env: {}, cli: Object.entries(entries).map(([key, value]) => ({ key, value, flag: 'test' }))
  }).broker.aedes
  t.like(read({}), { sessionExpiryIntervalLimit: 0, pendingSessionsLimit: 0 })
  t.like(read({ max_session_expiry_interval: '2h', max_pending_sessions: '1000' }), { sessionExpiryIntervalLimit: 7200, pendingSessionsLimit: 1000 })
  t.throws(() => read({ max_session_expiry_interval: '1500ms' }), { message: /max_session_expiry_interval/ })
  t.throws(() => read({ max_session_expiry_interval: 'soon' }), { message: /max_session_expiry_interval/ })
  t.throws(() => read({ max_pending_sessions: '-1' }), { message: /max_pending_sessions/ })
})

// ---- persisted with the embedded store ------------------------------------------------------

test('embedded store: a session whose deadline passed while the broker was down is gone after the restart, its queue too', async (t) => {
  const dir = await tmpDir(t)
  const config = { persistence: 'embedded', data_dir: dir }
  const first = await testBroker(t, { config })
  await leaveSession(t, first, 'lapsed', 1)
  await publish(t, first.url, 's/lapsed', 'queued')
  await first.close()
  // the store holds the deadline; wait until it has passed (the broker is down meanwhile)
  const store = new Database(join(dir, 'tapmq.db'), { readonly: true })
  const { expires_at: deadline } = store.prepare('SELECT expires_at FROM sessions WHERE client_id = ?').get('lapsed') as { expires_at: number }
  store.close()
  t.true(deadline > 0)
  await until(() => Date.now() > deadline + 50, 'the deadline to pass')

  const second = await testBroker(t, { config })
  t.like(second.logs.find((line) => String(line.msg).startsWith('MQTT 5 sessions restored')), { expired: 1, kept: 0 })
  t.like(second.logs.find((line) => line.msg === 'message store opened'), { queued: 1 }, 'the queue was in the file until the wipe')
  const back = await connect5(t, second.url, { clientId: 'lapsed', clean: false, properties: { sessionExpiryInterval: 60 } })
  t.false(back.connack.sessionPresent)
  t.deepEqual(await roundTrip(back), [])
})

test('embedded store: a session still in its interval is kept across a restart and expires on time (re-armed at start)', async (t) => {
  const dir = await tmpDir(t)
  const config = { persistence: 'embedded', data_dir: dir }
  const first = await testBroker(t, { config })
  await leaveSession(t, first, 'keeper', 3600)
  await leaveSession(t, first, 'brief', 3)
  // connected at the shutdown: its interval starts when the broker closes the connection
  const online = await connect5(t, first.url, { clientId: 'online', clean: false, properties: { sessionExpiryInterval: 3 } })
  await online.client.subscribeAsync('s/online', { qos: 1 })
  await publish(t, first.url, 's/keeper', 'for keeper')
  await publish(t, first.url, 's/brief', 'for brief')
  await first.close()

  const second = await testBroker(t, { config })
  const aedes = second.tapmq.broker
  t.like(second.logs.find((line) => String(line.msg).startsWith('MQTT 5 sessions restored')), { kept: 3, expired: 0 })
  t.true(pending(aedes).sessions.has('brief') && pending(aedes).sessions.has('online'), 're-armed')
  await Promise.all([sessionExpired(aedes, 'brief'), sessionExpired(aedes, 'online')])
  const brief = await connect5(t, second.url, { clientId: 'brief', clean: false, properties: { sessionExpiryInterval: 60 } })
  t.false(brief.connack.sessionPresent, 'expired on time after the restart')
  t.deepEqual(await roundTrip(brief), [])
  const onlineBack = await connect5(t, second.url, { clientId: 'online', clean: false, properties: { sessionExpiryInterval: 60 } })
  t.false(onlineBack.connack.sessionPresent)
  const keeper = await connect5(t, second.url, { clientId: 'keeper', clean: false, properties: { sessionExpiryInterval: 3600 } })
  t.true(keeper.connack.sessionPresent)
  await until(() => keeper.messages.length >= 1, 'the queued message')
  t.is(keeper.messages[0]!.payload.toString(), 'for keeper')
  t.false(pending(aedes).sessions.has('keeper'), 'the reconnect cancelled the re-armed expiry')
})

test('embedded store: a version 1 file gets the sessions table (store version 2) and keeps its data', async (t) => {
  const dir = await tmpDir(t)
  const file = join(dir, 'tapmq.db')
  const old = new SqliteStore({ file })
  await old.setup({ id: 'b1' })
  await old.storeRetained({ topic: 'r', payload: Buffer.from('x'), qos: 0, retain: true })
  await old.flush()
  await old.destroy()
  const raw = new Database(file)
  raw.exec('DROP TABLE sessions')
  raw.pragma('user_version = 1')
  raw.close()

  const store = new SqliteStore({ file })
  await store.setup({ id: 'b2' })
  t.teardown(() => store.destroy())
  t.is(store.stats().retained, 1)
  await store.setSessionExpiry('c', 60, 1234)
  await store.setWillDelay('c', 1000)
  t.deepEqual(await store.sessionExpiries(), [{ clientId: 'c', interval: 60, expiresAt: 1234, willAt: 1000 }])
  // a connect (no deadline) forgets the will's due time
  await store.setSessionExpiry('c', 60, null)
  t.deepEqual(await store.sessionExpiries(), [{ clientId: 'c', interval: 60, expiresAt: null, willAt: null }])
  await store.delSessionExpiry('c')
  t.deepEqual(await store.sessionExpiries(), [])
  await store.destroy()
  const check = new Database(file, { readonly: true, fileMustExist: true })
  t.teardown(() => check.close())
  t.is(check.pragma('user_version', { simple: true }), 2)
})

test('embedded store, after a crash (SIGKILL): a session whose client was connected gets its interval from the restart, and its delayed will is re-armed', async (t) => {
  const ws = await workspace('persistence = embedded')
  t.teardown(() => ws.remove())
  const url = `mqtt://127.0.0.1:${ws.port}`
  const first = await startTapmq(t, ws, 20_000)
  const heir = await connect5(t, url, { clientId: 'heir', clean: false, properties: { sessionExpiryInterval: 3600 } })
  await heir.client.subscribeAsync('wills/#', { qos: 1 })
  await heir.client.endAsync()
  const victim = await connect5(t, url, {
    clientId: 'victim',
    clean: false,
    properties: { sessionExpiryInterval: 2 },
    will: { topic: 'wills/victim', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: 1 } }
  })
  await victim.client.subscribeAsync('s/victim', { qos: 1 })
  first.child.kill('SIGKILL')
  await first.exited(20_000)
  victim.client.end(true)

  const second = await startTapmq(t, ws, 20_000)
  const restarted = Date.now()
  const restored = second.output().split('\n').find((line) => line.includes('MQTT 5 sessions restored'))
  t.like(JSON.parse(restored ?? '{}'), { kept: 2, willsArmed: 1, willsPublished: 0 })
  t.false(second.output().includes('published the wills of clients'), 'not published at once as an orphan')
  const back = await connect5(t, url, { clientId: 'heir', clean: false, properties: { sessionExpiryInterval: 3600 } })
  await until(() => back.messages.some((m) => m.topic === 'wills/victim'), 'the will, after its delay', 10_000)
  // the victim's session: its 2 s count from the restart
  await until(() => Date.now() > restarted + 2500, 'its interval to pass', 10_000)
  const victimBack = await connect5(t, url, { clientId: 'victim', clean: false, properties: { sessionExpiryInterval: 2 } })
  t.false(victimBack.connack.sessionPresent)
})
