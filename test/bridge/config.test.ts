// nanomq_bridge.conf as NanoMQ 0.8 ships it, named bridges, and errors that name file:line.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import bridgePlugin from '../../plugins/bridge/index.ts'
import { Conf } from '../../sdk/index.ts'
import { pluginEntries } from '../../runtime/plugins/plugins-file.ts'
import { startTestBroker } from '../../sdk/testing.ts'
import { Tapmq } from '../../runtime/tapmq.ts'
import { connectClient, Recorder, tmpDir } from '../helpers/mqtt.ts'
import { testBroker } from '../helpers/broker.ts'
import { waitBridge, waitSubscribed } from './helpers.ts'

const parse = (conf: Conf) => bridgePlugin.conf!.parse!(conf)

async function confFile (t: Parameters<typeof tmpDir>[0], text: string): Promise<string> {
  const file = join(await tmpDir(t), 'nanomq_bridge.conf')
  await writeFile(file, text)
  return file
}

/** NanoMQ 0.8.0's etc/nanomq_bridge.conf, with bridge_mode switched on. */
const NANOMQ_08 = `##====================================================================
## MQTT Broker Bridge
##====================================================================
bridge.mqtt.bridge_mode=true
bridge.mqtt.address=mqtt-tcp://broker.emqx.io:1883
bridge.mqtt.proto_ver=4
## bridge.mqtt.clientid=bridge_client
bridge.mqtt.keepalive=60
bridge.mqtt.clean_start=true
bridge.mqtt.username=username
bridge.mqtt.password=passwd
bridge.mqtt.forwards=topic1/#,topic2/#
bridge.mqtt.subscription.1.topic=cmd/topic1
bridge.mqtt.subscription.1.qos=1
bridge.mqtt.subscription.2.topic=cmd/topic2
bridge.mqtt.subscription.2.qos=2
bridge.mqtt.parallel=2
`

test('NanoMQ 0.8 keys work unchanged and make the default bridge', async (t) => {
  const options = parse(Conf.fromFile(await confFile(t, NANOMQ_08)))
  t.is(options.bridges.length, 1)
  t.like(options.bridges[0], {
    name: 'default',
    address: 'mqtt-tcp://broker.emqx.io:1883',
    protoVer: 4,
    clientId: undefined,
    keepalive: 60,
    cleanStart: true,
    username: 'username',
    password: 'passwd',
    forwards: ['topic1/#', 'topic2/#'],
    subscriptions: [{ topic: 'cmd/topic1', qos: 1 }, { topic: 'cmd/topic2', qos: 2 }],
    parallel: 2
  })
})

test('bridge_mode=false (the shipped value) leaves the bridge off', async (t) => {
  const options = parse(Conf.fromFile(await confFile(t, NANOMQ_08.replace('bridge_mode=true', 'bridge_mode=false'))))
  t.deepEqual(options.bridges, [])
})

test('named bridges sit beside the unnamed one, each with the same keys', async (t) => {
  const options = parse(Conf.fromFile(await confFile(t, `${NANOMQ_08}
bridge.mqtt.cloud.bridge_mode = true
bridge.mqtt.cloud.address = tls+mqtt-tcp://cloud.example:8883
bridge.mqtt.cloud.proto_ver = 5
bridge.mqtt.cloud.clientid = edge-7
bridge.mqtt.cloud.forwards = telemetry/#
bridge.mqtt.cloud.subscription.10.topic = ota/#
bridge.mqtt.cloud.subscription.2.topic = cmd/#
bridge.mqtt.cloud.subscription.2.qos = 1
bridge.mqtt.cloud.queue.max_messages = 50
bridge.mqtt.cloud.queue.overflow = drop_newest
bridge.mqtt.cloud.reconnect.max_interval = 2m
bridge.mqtt.spare.bridge_mode = false
bridge.mqtt.spare.address = mqtt-tcp://spare:1883
`)))
  t.deepEqual(options.bridges.map((bridge) => bridge.name), ['default', 'cloud'])
  t.like(options.bridges[1], {
    address: 'tls+mqtt-tcp://cloud.example:8883',
    protoVer: 5,
    clientId: 'edge-7',
    forwards: ['telemetry/#'],
    // ordered by <n>; an unset qos is 0
    subscriptions: [{ topic: 'cmd/#', qos: 1 }, { topic: 'ota/#', qos: 0 }],
    queue: { maxMessages: 50, overflow: 'drop_newest', durable: 'auto' },
    reconnect: { minInterval: 1000, maxInterval: 120_000 }
  })
})

const BAD: Array<[string, string, RegExp]> = [
  ['bridge.mqtt.proto_ver=6', 'proto_ver', /proto_ver: "6" \(allowed: 3 \| 4 \| 5\)/],
  ['bridge.mqtt.address=mqtt-quic://h:14567', 'address', /address.*scheme mqtt-tcp, tls\+mqtt-tcp/],
  ['bridge.mqtt.forwards=a/#,b/#/c', 'forwards', /forwards.*"b\/#\/c" is not one/],
  ['bridge.mqtt.subscription.1.qos=3\nbridge.mqtt.subscription.1.topic=a/b', 'qos', /subscription\.1\.qos/],
  ['bridge.mqtt.clean_start=yes', 'clean_start', /clean_start: "yes" \(allowed: true \| false\)/],
  ['bridge.mqtt.keepalive=70000', 'keepalive', /keepalive/]
]
for (const [line, what, message] of BAD) {
  test(`a bad ${what} is an error naming file and line`, async (t) => {
    const file = await confFile(t, `bridge.mqtt.bridge_mode=true\nbridge.mqtt.address=mqtt-tcp://127.0.0.1:1883\n${line}\n`)
    const err = t.throws(() => parse(Conf.fromFile(file)))
    t.is((err as { code?: string }).code, 'TAPMQ_ERR_CONF_VALUE')
    t.true(err!.message.startsWith(`${file}:3: `), err!.message)
    t.regex(err!.message, message)
  })
}

test('an enabled bridge needs an address', async (t) => {
  const file = await confFile(t, 'bridge.mqtt.bridge_mode=true\n')
  t.throws(() => parse(Conf.fromFile(file)), { code: 'TAPMQ_ERR_CONF_MISSING', message: /bridge\.mqtt\.address is required/ })
})

test('from plugins.conf: the bridge reads its file and connects two named bridges', async (t) => {
  const upstreamA = await testBroker(t)
  const upstreamB = await testBroker(t)
  const dir = await tmpDir(t)
  await writeFile(join(dir, 'bridge.conf'), [
    'bridge.mqtt.a.bridge_mode = true',
    `bridge.mqtt.a.address = mqtt-tcp://127.0.0.1:${upstreamA.port}`,
    'bridge.mqtt.a.forwards = to-a/#',
    'bridge.mqtt.a.subscription.1.topic = from-a/#',
    'bridge.mqtt.a.subscription.1.qos = 1',
    'bridge.mqtt.b.bridge_mode = true',
    `bridge.mqtt.b.address = mqtt-tcp://127.0.0.1:${upstreamB.port}`,
    'bridge.mqtt.b.forwards = to-b/#',
    'bridge.mqtt.b.reconnect.min_interval = 50ms',
    ''
  ].join('\n'))
  await writeFile(join(dir, 'plugins.conf'), 'plugin.bridge = on\n')
  const entries = pluginEntries(Conf.fromFile(join(dir, 'plugins.conf')).entries(), dir, join(dir, 'plugins.conf'))
  const base = await startTestBroker()
  await base.close()
  const edge = new Tapmq({ config: { ...base.tapmq.config, dataDir: dir }, plugins: entries, log: base.tapmq.log })
  await edge.start()
  t.teardown(() => edge.stop())
  const wrapped = { tapmq: edge }
  t.is(edge.plugins.status('bridge').state, 'running')
  await waitBridge(wrapped, 'connected', 'a')
  await waitBridge(wrapped, 'connected', 'b')
  t.regex(edge.plugins.status('bridge').health.detail ?? '', /^a: connected, 0 queued; b: connected, 0 queued$/)
  await waitSubscribed(upstreamA, 1)

  const edgeUrl = `mqtt://127.0.0.1:${edge.listeners[0]!.port}`
  const device = await connectClient(t, edgeUrl, { clientId: 'device' })
  await device.subscribeAsync('from-a/#', { qos: 1 })
  const got = new Recorder<string>()
  device.on('message', (topic) => got.push(topic))
  const a = await connectClient(t, upstreamA.url, { clientId: 'a-sub' })
  await a.subscribeAsync('#', { qos: 1 })
  const b = await connectClient(t, upstreamB.url, { clientId: 'b-sub' })
  await b.subscribeAsync('#', { qos: 1 })
  const atA = new Recorder<string>()
  const atB = new Recorder<string>()
  a.on('message', (topic) => atA.push(topic))
  b.on('message', (topic) => atB.push(topic))

  await device.publishAsync('to-a/1', 'x', { qos: 1 })
  await device.publishAsync('to-b/1', 'x', { qos: 1 })
  await a.publishAsync('from-a/cmd', 'x', { qos: 1 })
  await got.find((topic) => topic === 'from-a/cmd')
  await atA.find((topic) => topic === 'to-a/1')
  await atB.find((topic) => topic === 'to-b/1')
  t.false(atA.list.includes('to-b/1'))
  t.false(atB.list.includes('to-a/1'))
  t.true(edge.plugins.status('bridge').counters.a_forwarded_total! >= 1)
  t.true(edge.plugins.status('bridge').counters.b_forwarded_total! >= 1)
})

test('the stock etc/bridge.conf parses, with its bridge off', (t) => {
  const file = new URL('../../etc/bridge.conf', import.meta.url).pathname
  t.deepEqual(parse(Conf.fromFile(file)), { bridges: [] })
  const on = Conf.fromFile(file).with([{ key: 'bridge.mqtt.bridge_mode', value: 'true', location: { file: 'test', line: 0 } }])
  t.like(parse(on).bridges[0], { name: 'default', forwards: ['topic1/#', 'topic2/#'], parallel: 2 })
})
