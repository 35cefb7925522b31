// `tapmq reload` with an edited bridge file: unchanged bridges keep their connection, a
// changed bridge reconnects with its buffer intact, a removed bridge goes away.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import bridgePlugin from '../../plugins/bridge/index.ts'
import type { PublishEvent } from '../../sdk/index.ts'
import { Conf } from '../../sdk/index.ts'
import { pluginEntries } from '../../runtime/plugins/plugins-file.ts'
import { Tapmq } from '../../runtime/tapmq.ts'
import { startTestBroker } from '../../sdk/testing.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { connectClient, Recorder, tmpDir, until } from '../helpers/mqtt.ts'
import { freePort, waitBridge, waitCounter } from './helpers.ts'

test('reload: a changed bridge keeps its buffered messages, an unchanged one its connection, a removed one stops', async (t) => {
  const stable = await testBroker(t)
  const laterPort = await freePort()
  const dir = await tmpDir(t)
  const write = (lines: string[]) => writeFile(join(dir, 'bridge.conf'), lines.join('\n') + '\n')
  const stableLines = [
    'bridge.mqtt.stable.bridge_mode = true',
    `bridge.mqtt.stable.address = mqtt-tcp://127.0.0.1:${stable.port}`,
    'bridge.mqtt.stable.forwards = s/#'
  ]
  const laterLines = (forwards: string) => [
    'bridge.mqtt.later.bridge_mode = true',
    `bridge.mqtt.later.address = mqtt-tcp://127.0.0.1:${laterPort}`,
    `bridge.mqtt.later.forwards = ${forwards}`,
    'bridge.mqtt.later.reconnect.min_interval = 20ms',
    'bridge.mqtt.later.reconnect.max_interval = 100ms'
  ]
  await write([...stableLines, ...laterLines('a/#')])
  await writeFile(join(dir, 'plugins.conf'), 'plugin.bridge = on\n')
  const entries = pluginEntries(Conf.fromFile(join(dir, 'plugins.conf')).entries(), dir, join(dir, 'plugins.conf'))
  const base = await startTestBroker()
  await base.close()
  const edge = new Tapmq({ config: { ...base.tapmq.config, dataDir: dir }, plugins: entries, log: base.tapmq.log })
  await edge.start()
  t.teardown(() => edge.stop())
  const wrapped = { tapmq: edge }
  await waitBridge(wrapped, 'connected', 'stable')

  const device = await connectClient(t, `mqtt://127.0.0.1:${edge.listeners[0]!.port}`, { clientId: 'device' })
  for (let i = 0; i < 5; i++) await device.publishAsync('a/x', `old${i}`, { qos: 1 })
  const counters = () => edge.plugins.status('bridge').counters
  t.is(counters().later_queued, 5)
  const stableConnects = counters().stable_connects_total

  // `later` changes (forwards b/# too); `stable` is dropped
  await write(laterLines('a/#,b/#'))
  await edge.plugins.reload('bridge')
  t.is(counters().later_queued, 5, 'the buffer survived the reload')
  t.regex(edge.plugins.status('bridge').health.detail ?? '', /^later: (down|connecting), 5 queued/)
  await until(() => stable.broker.clients().every((client) => !client.clientId.startsWith('tapmq-bridge-stable')), 'stable bridge gone upstream')
  await device.publishAsync('b/y', 'new', { qos: 1 })

  const published = new Recorder<PublishEvent>()
  await testBroker(t, {
    config: { url: `nmq-tcp://127.0.0.1:${laterPort}` },
    plugins: [tapping('test:later', (hooks) => hooks.message.publish.tap('test:later', published.push))]
  })
  await published.count(6, 10_000)
  t.deepEqual(published.list.map((event) => event.payload.toString()), ['old0', 'old1', 'old2', 'old3', 'old4', 'new'])
  await waitCounter(wrapped, 'later_forwarded_total', 6)
  t.is(counters().stable_connects_total, stableConnects)

  // reloading the same file again changes nothing: the connection stays
  const connects = counters().later_connects_total
  await edge.plugins.reload('bridge')
  t.is(counters().later_connects_total, connects)
  t.regex(edge.plugins.status('bridge').health.detail ?? '', /^later: connected, 0 queued$/)
})

test('an idle bridge leaves the publish path untapped; a reload that switches a bridge on starts forwarding', async (t) => {
  const idle = await startTestBroker({ plugins: [{ plugin: bridgePlugin, options: { bridges: [] } }] })
  t.teardown(() => idle.close())
  t.is(idle.hooks.message.publish.taps.length, 0)

  const upstream = await testBroker(t)
  const cloud = await connectClient(t, upstream.url, { clientId: 'cloud' })
  await cloud.subscribeAsync('on/#', { qos: 1 })
  const got = new Recorder<string>()
  cloud.on('message', (topic) => got.push(topic))

  const dir = await tmpDir(t)
  const lines = (mode: boolean) => [
    `bridge.mqtt.bridge_mode = ${mode}`, `bridge.mqtt.address = mqtt-tcp://127.0.0.1:${upstream.port}`, 'bridge.mqtt.forwards = on/#', ''
  ].join('\n')
  await writeFile(join(dir, 'bridge.conf'), lines(false))
  await writeFile(join(dir, 'plugins.conf'), 'plugin.bridge = on\n')
  const entries = pluginEntries(Conf.fromFile(join(dir, 'plugins.conf')).entries(), dir, join(dir, 'plugins.conf'))
  const edge = new Tapmq({ config: { ...idle.tapmq.config, dataDir: dir }, plugins: entries, log: idle.tapmq.log })
  await edge.start()
  t.teardown(() => edge.stop())
  t.is(edge.hooks.message.publish.taps.length, 0)

  await writeFile(join(dir, 'bridge.conf'), lines(true))
  await edge.plugins.reload('bridge')
  await waitBridge({ tapmq: edge }, 'connected')
  const device = await connectClient(t, `mqtt://127.0.0.1:${edge.listeners[0]!.port}`, { clientId: 'device' })
  await device.publishAsync('on/1', 'x', { qos: 1 })
  await got.count(1)
  t.deepEqual(got.list, ['on/1'])
})
