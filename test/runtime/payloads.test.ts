// Every hook payload is plain, read-only data: frozen, no aedes object inside. One
// scenario makes every hook of the table fire.
import test from 'ava'
import { listHooks } from '../../runtime/hooks.ts'
import { startTestBroker } from '../../sdk/testing.ts'
import { tapping } from '../helpers/broker.ts'
import { foreignPart, recordingPlugin } from '../helpers/hooks.ts'
import { connectClient, nextMessage, within } from '../helpers/mqtt.ts'

test('every hook fires in a full session, and every payload is frozen plain data', async (t) => {
  const rec = recordingPlugin()
  const dropper = tapping('dropper', (hooks) => hooks.message.publish.tap('dropper', (message, control) => {
    if (message.topic === 'drop/me') control.drop('test')
  }))
  const broker = await startTestBroker({ plugins: [rec.plugin, dropper] })
  t.teardown(() => broker.close())

  const sub = await connectClient(t, broker.url, { clientId: 'sub', username: 'u', password: 'p' })
  await sub.subscribeAsync('t/#', { qos: 1 })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  const received = nextMessage(sub)
  await pub.publishAsync('t/1', 'x', { qos: 1 })
  await received
  await rec.of('message.acked').count(1)
  await pub.publishAsync('drop/me', 'x', { qos: 1 })
  await sub.unsubscribeAsync('t/#')
  await sub.endAsync()
  await rec.of('session.terminated').count(1)
  await within(broker.close(), 'close')

  const all = listHooks(broker.hooks).map(([name]) => name)
  t.deepEqual(all.filter((name) => !rec.fired().includes(name)), [], 'every hook fired')
  for (const [hook, payload] of rec.sequence) {
    if (hook === 'broker.stopping') continue // it has no argument
    t.true(Object.isFrozen(payload), `${hook} payload is frozen`)
    t.is(foreignPart(payload), undefined, `${hook} payload is plain data`)
  }
})
