// $SYS client presence: NanoMQ's connected/disconnected notices with UNIX-epoch `ts`.
import test from 'ava'
import sysPresence, { CONNECTED_TOPIC, DISCONNECTED_TOPIC } from '../../plugins/sys-presence/index.ts'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, nextMessage, RawClient, Recorder, settle, until } from '../helpers/mqtt.ts'
import type { MqttClient } from 'mqtt'

/**
 * Collects [topic, parsed JSON] of the messages a client receives, leaving out aedes' own
 * `$SYS/<broker id>/...` announcements.
 */
function record (client: MqttClient): Recorder<[string, Record<string, unknown>]> {
  const recorder = new Recorder<[string, Record<string, unknown>]>()
  client.on('message', (topic, payload) => {
    if (topic.startsWith('$SYS/') && !topic.startsWith('$SYS/brokers/')) return
    recorder.push([topic, topic.startsWith('$SYS/brokers/') ? JSON.parse(payload.toString()) : { text: payload.toString() }])
  })
  return recorder
}

test('connected and disconnected notices carry NanoMQ fields, an epoch-ms ts and the peer', async (t) => {
  const broker = await testBroker(t, { plugins: [sysPresence] })
  const watcher = await connectClient(t, broker.url, { clientId: 'watcher' })
  await watcher.subscribeAsync('$SYS/#')
  const notices = record(watcher)

  const before = Date.now()
  const device = await connectClient(t, broker.url, { clientId: 'dev-1', username: 'alice', keepalive: 42 })
  const [[topic, connected]] = await notices.count(1)
  const after = Date.now()
  t.is(topic, CONNECTED_TOPIC)
  t.deepEqual(Object.keys(connected), ['username', 'ts', 'proto_name', 'keepalive', 'return_code', 'proto_ver', 'client_id', 'clean_start', 'IPv4'])
  t.like(connected, {
    username: 'alice', proto_name: 'MQTT', keepalive: 42, return_code: '0', proto_ver: 4, client_id: 'dev-1', clean_start: 1, IPv4: '127.0.0.1'
  })
  // a UNIX timestamp in ms, not a startup-relative timer
  t.true((connected.ts as number) >= before && (connected.ts as number) <= after, `ts ${connected.ts} not in [${before}, ${after}]`)

  await device.endAsync()
  const [, [topic2, disconnected]] = await notices.count(2)
  t.is(topic2, DISCONNECTED_TOPIC)
  t.deepEqual(Object.keys(disconnected), ['username', 'ts', 'reason_code', 'client_id', 'IPv4', 'reason'])
  t.like(disconnected, { username: 'alice', reason_code: '0', client_id: 'dev-1', IPv4: '127.0.0.1', reason: 'normal' })
  t.true((disconnected.ts as number) >= (connected.ts as number) && (disconnected.ts as number) <= Date.now())
})

test('the wire format keeps NanoMQ spacing and a missing user name is "undefined"', async (t) => {
  const broker = await testBroker(t, { plugins: [sysPresence] })
  const watcher = await connectClient(t, broker.url, { clientId: 'watcher' })
  await watcher.subscribeAsync(CONNECTED_TOPIC)
  const message = nextMessage(watcher)
  await connectClient(t, broker.url, { clientId: 'anon', keepalive: 0, clean: true })
  const [, payload] = await message
  t.regex(payload.toString(),
    /^\{"username":"undefined", "ts":\d{13},"proto_name":"MQTT","keepalive":0,"return_code":"0","proto_ver":4,"client_id":"anon", "clean_start":1, "IPv4":"127\.0\.0\.1"\}$/)
})

test('a dropped connection reports tcp_closed, a kick reports kicked, with their reason codes', async (t) => {
  const broker = await testBroker(t, { plugins: [sysPresence] })
  const watcher = await connectClient(t, broker.url, { clientId: 'watcher' })
  await watcher.subscribeAsync(DISCONNECTED_TOPIC)
  const notices = record(watcher)

  const { client: raw } = await RawClient.connect(t, broker.port, { clientId: 'dropper' })
  raw.socket.destroy()
  const [[, dropped]] = await notices.count(1)
  t.like(dropped, { client_id: 'dropper', reason: 'tcp_closed', reason_code: '80' })

  await connectClient(t, broker.url, { clientId: 'victim' })
  t.true(broker.broker.disconnect('victim'))
  const [, [, kicked]] = await notices.count(2)
  t.like(kicked, { client_id: 'victim', reason: 'kicked', reason_code: '98' })
})

test('$SYS/# subscribers see the notices, # subscribers do not', async (t) => {
  const broker = await testBroker(t, { plugins: [sysPresence] })
  const sys = await connectClient(t, broker.url, { clientId: 'sys' })
  await sys.subscribeAsync('$SYS/#')
  const everything = await connectClient(t, broker.url, { clientId: 'everything' })
  await everything.subscribeAsync('#')
  const plusFirst = await connectClient(t, broker.url, { clientId: 'plus-first' })
  await plusFirst.subscribeAsync('+/brokers/+')
  const sysNotices = record(sys)
  const hashNotices = record(everything)
  const plusNotices = record(plusFirst)

  const device = await connectClient(t, broker.url, { clientId: 'device' })
  await device.endAsync()
  // notices of the watchers' own connects may still arrive after the recorders start
  const ofDevice = () => sysNotices.list.filter(([, body]) => body.client_id === 'device')
  await until(() => ofDevice().length >= 2, 'both notices of device')
  t.deepEqual(ofDevice().map(([topic, body]) => [topic, body.client_id]), [[CONNECTED_TOPIC, 'device'], [DISCONNECTED_TOPIC, 'device']])

  // a marker through the same broker after the notices: had '#' matched them, they came first
  await sys.publishAsync('x/brokers/marker', 'after', { qos: 1 })
  await hashNotices.count(1)
  await plusNotices.count(1)
  t.deepEqual(hashNotices.list.map(([topic]) => topic), ['x/brokers/marker'])
  t.deepEqual(plusNotices.list.map(([topic]) => topic), ['x/brokers/marker'])
})

test('clients cannot publish fake notices on $SYS topics', async (t) => {
  const broker = await testBroker(t, { plugins: [sysPresence] })
  const sys = await connectClient(t, broker.url, { clientId: 'sys' })
  await sys.subscribeAsync('$SYS/brokers/+')
  const notices = record(sys)
  const faker = await connectClient(t, broker.url, { clientId: 'faker' })
  faker.publish(CONNECTED_TOPIC, '{"client_id":"fake"}', { qos: 0 })
  await faker.endAsync(true).catch(() => {})
  // the faker's own disconnect notice is the next thing the subscriber sees
  const list = await notices.count(2)
  await settle()
  t.deepEqual(notices.list.map(([, body]) => body.client_id), ['faker', 'faker'])
  t.is(list[1]![0], DISCONNECTED_TOPIC)
})

test('strict mode: NanoMQ 0.8 bytes, second-resolution ts, no notice for kept sessions or takeovers', async (t) => {
  const broker = await testBroker(t, { plugins: [{ plugin: sysPresence, options: { strict: true } }] })
  const watcher = await connectClient(t, broker.url, { clientId: 'watcher' })
  await watcher.subscribeAsync('$SYS/#')
  const notices = record(watcher)
  const raw: string[] = []
  watcher.on('message', (topic, payload) => { if (topic.startsWith('$SYS/brokers/')) raw.push(payload.toString()) })

  const kept = await connectClient(t, broker.url, { clientId: 'kept', clean: false, username: 'bob' })
  await notices.count(1)
  t.regex(raw[0]!, /^\{"username":"bob", "ts":\d+000,"proto_name":"MQTT","keepalive":60,"return_code":"0","proto_ver":4,"client_id":"kept", "clean_start":0\}$/)
  await kept.endAsync()

  // takeover: the first connection's close is suppressed, the second's connect is not
  await connectClient(t, broker.url, { clientId: 'twin' })
  await notices.count(2)
  const second = await connectClient(t, broker.url, { clientId: 'twin' })
  await notices.count(3)
  await second.endAsync()
  const all = await notices.count(4)
  t.deepEqual(all.map(([topic, body]) => [topic.split('/').pop(), body.client_id]),
    [['connected', 'kept'], ['connected', 'twin'], ['connected', 'twin'], ['disconnected', 'twin']])
  t.regex(raw[3]!, /^\{"username":"undefined","ts":\d+000,"reason_code":"0","client_id":"twin"\}$/)
  t.is(broker.broker.client('watcher')?.clientId, 'watcher')
})
