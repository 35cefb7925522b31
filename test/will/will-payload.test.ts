// Will messages: no UTF-8 check on the will payload unless the client asks for one through
// the payload format indicator, which only MQTT 5 has. MQTT 3.1 and 3.1.1 clients cannot
// ask, so their will payloads are opaque bytes and are delivered exactly as sent.
import test from 'ava'
import type { PublishEvent } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { connectClient, nextMessage, RawClient, Recorder } from '../helpers/mqtt.ts'

/** Not UTF-8: a lone continuation byte, an overlong NUL, a truncated sequence, 0xFF, a NUL. */
const INVALID_UTF8 = Buffer.from([0x80, 0xc0, 0x80, 0xe2, 0x82, 0xff, 0xfe, 0x00, 0x41])

test('sanity: the payload really is invalid UTF-8', (t) => {
  t.false(Buffer.from(INVALID_UTF8.toString('utf8'), 'utf8').equals(INVALID_UTF8))
})

for (const [protocolVersion, protocolId] of [[4, 'MQTT'], [3, 'MQIsdp']] as const) {
  test(`MQTT ${protocolVersion === 4 ? '3.1.1' : '3.1'}: a will with invalid UTF-8 is delivered intact on an unclean disconnect`, async (t) => {
    const published = new Recorder<PublishEvent>()
    const broker = await testBroker(t, { plugins: [tapping('test:will', (hooks) => hooks.message.publish.tap('test:will', published.push))] })
    const watcher = await connectClient(t, broker.url, { clientId: 'watcher' })
    await watcher.subscribeAsync('wills/#', { qos: 1 })

    for (const qos of [0, 1, 2] as const) {
      const { client, connack } = await RawClient.connect(t, broker.port, {
        clientId: `dying-${qos}`,
        protocolId,
        protocolVersion,
        will: { topic: `wills/q${qos}`, payload: INVALID_UTF8, qos, retain: false }
      })
      t.is((connack as { returnCode?: number }).returnCode, 0)
      const message = nextMessage(watcher)
      client.socket.destroy()
      const [topic, payload] = await message
      t.is(topic, `wills/q${qos}`)
      t.deepEqual(payload, INVALID_UTF8, `QoS ${qos} will payload changed`)
    }

    const wills = published.list.filter((event) => event.isWill)
    t.is(wills.length, 3)
    for (const will of wills) t.deepEqual(will.payload, INVALID_UTF8)
  })
}

test('a clean DISCONNECT discards the will, whatever its bytes', async (t) => {
  const broker = await testBroker(t)
  const watcher = await connectClient(t, broker.url, { clientId: 'watcher' })
  await watcher.subscribeAsync('wills/#', { qos: 1 })
  const { client } = await RawClient.connect(t, broker.port, {
    clientId: 'polite', will: { topic: 'wills/polite', payload: INVALID_UTF8, qos: 1, retain: false }
  })
  client.send({ cmd: 'disconnect' })
  await client.waitClosed()
  // a round trip through the broker after the close: had the will gone out, it came first
  const marker = nextMessage(watcher)
  await watcher.publishAsync('wills/marker', 'after', { qos: 1 })
  const [topic] = await marker
  t.is(topic, 'wills/marker')
})
