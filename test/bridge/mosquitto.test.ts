// The bridge against a different broker: the Debian mosquitto (MQTT 3.1, 3.1.1 and 5).
// Skipped, saying how to install it, when /usr/sbin/mosquitto is missing.
import { existsSync } from 'node:fs'
import test, { type ExecutionContext } from 'ava'
import mqtt from 'mqtt'
import { connectClient, Recorder, settle, tmpDir } from '../helpers/mqtt.ts'
import { bridgeConfig, bridgeStatus, edgeBroker, freePort, MOSQUITTO, SKIP_MOSQUITTO, startMosquitto, waitBridge, waitCounter } from './helpers.ts'

const installed = existsSync(MOSQUITTO)
function mosquittoTest (title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  if (installed) test(title, fn)
  else test.skip(`${title} (${SKIP_MOSQUITTO})`, () => {})
}
if (!installed) test('mosquitto bridge tests are skipped', (t) => { t.log(SKIP_MOSQUITTO); t.pass() })

for (const protoVer of [3, 4, 5] as const) {
  mosquittoTest(`MQTT ${protoVer === 3 ? '3.1' : protoVer === 4 ? '3.1.1' : '5'} bridge to mosquitto: forwards go up, subscriptions come down, echoes never reach local subscribers`, async (t) => {
    const mosquitto = (await startMosquitto(t))!
    const cloud = await connectClient(t, mosquitto.url, { clientId: 'cloud' })
    await cloud.subscribeAsync('edge/#', { qos: 1 })
    const upstream = new Recorder<string>()
    cloud.on('message', (topic, payload) => upstream.push(`${topic}=${payload}`))

    const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${mosquitto.port}`, {
      protoVer,
      forwards: ['edge/#', 'both/#'],
      subscriptions: [{ topic: 'cmd/#', qos: 1 }, { topic: 'both/#', qos: 1 }]
    })])
    await waitBridge(edge, 'connected')
    const device = await connectClient(t, edge.url, { clientId: 'device' })
    await device.subscribeAsync('cmd/#', { qos: 1 })
    await device.subscribeAsync('both/#', { qos: 1 })
    const local = new Recorder<string>()
    device.on('message', (topic, payload) => local.push(`${topic}=${payload}`))

    await device.publishAsync('edge/temp', '21.5', { qos: 1 })
    await upstream.find((item) => item === 'edge/temp=21.5')

    // mosquitto has no "subscribed" event; retry a command until the bridge's subscription is in place
    for (let i = 0; !local.list.includes('cmd/reboot=now'); i++) {
      await cloud.publishAsync('cmd/reboot', 'now', { qos: 1 })
      await local.find((item) => item === 'cmd/reboot=now', 500).catch(() => {})
      if (i > 20) t.fail('the bridge never received a command from mosquitto')
    }
    local.list.length = 0

    // forwarded and subscribed at once: up once, and the local subscriber sees it once
    await device.publishAsync('both/x', 'once', { qos: 1 })
    await waitCounter(edge, 'default_forwarded_total', 2)
    // a command after it comes down the same connection: the echo, if any, came first
    await cloud.publishAsync('cmd/after', 'marker', { qos: 1 })
    await local.find((item) => item === 'cmd/after=marker')
    await settle()
    // a retried command may still arrive late; it is not what this checks
    t.deepEqual(local.list.filter((item) => item !== 'cmd/reboot=now'), ['both/x=once', 'cmd/after=marker'])
    const counters = bridgeStatus(edge).counters
    // MQTT 5 subscribes with no-local, so mosquitto sends no echo; 3.x drops the echo itself
    t.is(counters.default_echo_suppressed_total, protoVer === 5 ? 0 : 1)
  })
}

mosquittoTest('a mosquitto restart: QoS 1 messages wait in the buffer and reach the persistent subscriber', async (t) => {
  const persistDir = await tmpDir(t, 'tapmq-mosquitto-db-')
  const port = await freePort()
  const first = (await startMosquitto(t, { port, persistDir }))!
  const subscriber = await connectClient(t, first.url, { clientId: 'cloud-app', clean: false })
  await subscriber.subscribeAsync('edge/#', { qos: 1 })
  await subscriber.endAsync()

  const edge = await edgeBroker(t, [bridgeConfig(`mqtt-tcp://127.0.0.1:${port}`, { forwards: ['edge/#'] })])
  await waitBridge(edge, 'connected')
  await first.stop()
  await waitBridge(edge, 'down')
  const device = await connectClient(t, edge.url, { clientId: 'device' })
  for (let i = 0; i < 30; i++) await device.publishAsync('edge/n', String(i), { qos: 1 })
  t.is(bridgeStatus(edge).counters.default_queued, 30)

  await startMosquitto(t, { port, persistDir })
  await waitCounter(edge, 'default_forwarded_total', 30, 15_000)
  // the queued messages follow the CONNACK at once: listen before connecting
  const again = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: 'cloud-app', clean: false, reconnectPeriod: 0 })
  t.teardown(() => again.endAsync(true))
  const got = new Recorder<string>()
  again.on('message', (_topic, payload) => got.push(payload.toString()))
  await got.count(30)
  t.deepEqual(got.list, Array.from({ length: 30 }, (_, i) => String(i)))
})
