// NanoMQ's `--bridge <file>` flag (and $NANOMQ_BRIDGE_CONF_PATH) on the real tapmq command.
import test from 'ava'
import { tapmq, workspace } from '../helpers/cli.ts'
import { connectClient, Recorder } from '../helpers/mqtt.ts'
import { testBroker } from '../helpers/broker.ts'

for (const how of ['--bridge', 'NANOMQ_BRIDGE_CONF_PATH'] as const) {
  test(`${how} enables the bridge with a nanomq_bridge.conf`, async (t) => {
    const upstream = await testBroker(t)
    const cloud = await connectClient(t, upstream.url, { clientId: 'cloud' })
    await cloud.subscribeAsync('topic1/#', { qos: 1 })
    const got = new Recorder<string>()
    cloud.on('message', (topic, payload) => got.push(`${topic}=${payload}`))

    const ws = await workspace()
    t.teardown(() => ws.remove())
    const file = await ws.write('nanomq_bridge.conf', [
      'bridge.mqtt.bridge_mode=true',
      `bridge.mqtt.address=mqtt-tcp://127.0.0.1:${upstream.port}`,
      'bridge.mqtt.proto_ver=4',
      'bridge.mqtt.clientid=cli_bridge',
      'bridge.mqtt.forwards=topic1/#,topic2/#',
      ''
    ].join('\n'))
    const broker = how === '--bridge'
      ? tapmq(['start', '--conf', ws.conf, '--bridge', file])
      : tapmq(['start', '--conf', ws.conf], { NANOMQ_BRIDGE_CONF_PATH: file })
    t.teardown(() => broker.child.kill('SIGKILL'))
    await broker.waitFor(/"msg":"bridge connected"/)

    const device = await connectClient(t, `mqtt://127.0.0.1:${ws.port}`, { clientId: 'device' })
    await device.publishAsync('topic1/temp', '20', { qos: 1 })
    await got.count(1)
    t.deepEqual(got.list, ['topic1/temp=20'])
    t.truthy(upstream.broker.client('cli_bridge'))
    broker.child.kill('SIGTERM')
    t.is(await broker.exited(), 0)
  })
}
