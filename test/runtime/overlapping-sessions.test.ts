// A persistent session whose subscriptions overlap gets each QoS 1 message once, live, and
// nothing again after a reconnect once it acknowledged them. aedes queued one copy per
// matching subscription and cleared "the" copy by a message id the routed packet does not
// have, which removed another queued message: live delivery stopped after the first
// message, and acknowledged ones came back at the next CONNECT (aedes 1.2 too).
import test from 'ava'
import type { IClientOptions } from 'mqtt'
import { testBroker } from '../helpers/broker.ts'
import { connectBeforeConnack, connectClient, tmpDir, until } from '../helpers/mqtt.ts'

const CASES = [
  { name: 'plain filters t and #', filters: ['t', '#'] },
  { name: 'a plain filter and a shared one', filters: ['t', '$share/g/t'] }
]

for (const persistence of ['memory', 'embedded'] as const) {
  for (const version of [4, 5] as const) {
    for (const { name, filters } of CASES) {
      test(`${persistence} store, MQTT ${version === 5 ? '5' : '3.1.1'}, ${name}: each message once, nothing again after a reconnect`, async (t) => {
        const config: Record<string, string> = persistence === 'embedded' ? { persistence: 'embedded', data_dir: await tmpDir(t) } : {}
        const broker = await testBroker(t, { config })
        const session: IClientOptions = version === 5
          ? { protocolVersion: 5, clientId: 'dev', clean: false, properties: { sessionExpiryInterval: 600 } }
          : { clientId: 'dev', clean: false }
        const got: string[] = []
        const dev = await connectClient(t, broker.url, session)
        dev.on('message', (_topic, payload) => got.push(payload.toString()))
        await dev.subscribeAsync(Object.fromEntries(filters.map((filter) => [filter, { qos: 1 as const }])))
        const pub = await connectClient(t, broker.url, { clientId: 'pub' })
        for (const payload of ['m1', 'm2', 'm3']) pub.publish('t', payload, { qos: 1 })
        await until(() => got.length >= 3, 'three messages live')
        await pub.publishAsync('t', 'marker', { qos: 1 })
        await until(() => got.includes('marker'), 'the marker live')
        t.deepEqual(got, ['m1', 'm2', 'm3', 'marker'], 'once each, in order')
        await dev.endAsync()

        const again: string[] = []
        const back = connectBeforeConnack(t, broker.url, session, (_topic, payload) => again.push(payload.toString()))
        t.true((await back.connack).sessionPresent)
        // whatever the session still held arrives before this
        await pub.publishAsync('t', 'after', { qos: 1 })
        await until(() => again.includes('after'), 'the message after the reconnect')
        t.deepEqual(again, ['after'], 'nothing acknowledged comes back')
      })
    }
  }
}
