// A message routed after a later one (a retained PUBLISH waits for the store; the next
// PUBLISH of the same read does not) still reaches every subscriber. aedes' per-client
// dedupe used to take the older counter for a duplicate and drop it, acknowledged QoS 1 too.
import test from 'ava'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, tmpDir, until } from '../helpers/mqtt.ts'

for (const persistence of ['memory', 'embedded'] as const) {
  for (const qos of [0, 1] as const) {
    for (const coalescing of [true, false]) {
      test(`${persistence} store, QoS ${qos}, write_coalescing ${coalescing}: a retained message overtaken by the next one is delivered`, async (t) => {
        const config: Record<string, string> = { write_coalescing: String(coalescing) }
        if (persistence === 'embedded') Object.assign(config, { persistence: 'embedded', data_dir: await tmpDir(t) })
        const broker = await testBroker(t, { config })
        const got: string[] = []
        const sub = await connectClient(t, broker.url, { clientId: 'sub' })
        sub.on('message', (_topic, payload) => got.push(payload.toString()))
        await sub.subscribeAsync('r/#', { qos: 1 })
        const pub = await connectClient(t, broker.url, { clientId: 'pub' })
        // one write: the broker reads both in one chunk
        pub.publish('r/1', 'retained', { qos, retain: true })
        pub.publish('r/1', 'plain', { qos })
        await until(() => got.length >= 2, 'both messages', 5000).catch(() => {})
        t.deepEqual([...got].sort(), ['plain', 'retained'])
      })
    }
  }
}

test('overlapping subscriptions still get one copy of each message', async (t) => {
  const broker = await testBroker(t)
  const got: string[] = []
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  sub.on('message', (_topic, payload) => got.push(payload.toString()))
  await sub.subscribeAsync({ 'o/#': { qos: 1 }, 'o/+': { qos: 1 }, 'o/1': { qos: 0 } })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  for (const payload of ['a', 'b', 'c']) pub.publish('o/1', payload, { qos: 1 })
  await pub.publishAsync('o/2', 'end', { qos: 1 })
  await until(() => got.includes('end'), 'the last message')
  t.deepEqual(got, ['a', 'b', 'c', 'end'])
})
