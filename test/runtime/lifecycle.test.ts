// broker.started / broker.stopping, bounded lifecycle taps, and the hot path on a broker
// without plugins: no hook is tapped and none is even called.
import test from 'ava'
import { isTapped, listHooks } from '../../runtime/hooks.ts'
import type { BrokerInfo, DisconnectEvent } from '../../sdk/index.ts'
import { startTestBroker } from '../../sdk/testing.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { recordingPlugin } from '../helpers/hooks.ts'
import { connectClient, nextMessage, once, RawClient, Recorder, within } from '../helpers/mqtt.ts'

test('broker.started fires once with id, version and the real listener URLs; broker.stopping once at close', async (t) => {
  const rec = recordingPlugin()
  const broker = await startTestBroker({ plugins: [rec.plugin], websocket: true })
  t.teardown(() => broker.close())
  const [info, ...more] = rec.of<BrokerInfo>('broker.started').list
  t.is(more.length, 0)
  t.is(info!.id, broker.broker.id)
  t.regex(info!.version, /^\d+\.\d+\.\d+/)
  t.deepEqual(info!.listeners, [`nmq-tcp://127.0.0.1:${broker.port}`, `nmq-ws://127.0.0.1:${new URL(broker.wsUrl!).port}/mqtt`])
  t.is(rec.of('broker.stopping').list.length, 0)

  const client = await connectClient(t, broker.url, { clientId: 'c' })
  const closed = once(client, 'close')
  await within(broker.close(), 'close')
  await closed
  await broker.close() // idempotent
  t.is(rec.of('broker.stopping').list.length, 1)
  t.is(rec.of('broker.started').list.length, 1)
  // stopping comes after the clients' disconnect events, so queued events can be flushed
  const names = rec.sequence.map(([name]) => name)
  t.true(names.indexOf('client.disconnected') < names.indexOf('broker.stopping'))
  t.is(rec.of<DisconnectEvent>('client.disconnected').list[0]?.reason, 'shutdown')
})

test('a broker.stopping tap that never finishes is cut off after shutdown_timeout; a throwing started tap is survived', async (t) => {
  const closed = new Recorder<string>()
  const stubborn = tapping('stubborn', (hooks) => {
    hooks.broker.started.tap('stubborn', () => { throw new Error('cannot start my thing') })
    hooks.broker.stopping.tapPromise('stubborn', () => new Promise<void>(() => {}))
  })
  const watcher = tapping('watcher', (hooks) => hooks.broker.stopping.tap('watcher', () => { closed.push('watcher saw stopping') }))
  const broker = await startTestBroker({ plugins: [stubborn, watcher], config: { shutdown_timeout: '300ms' } })
  t.teardown(() => broker.close())
  const client = await connectClient(t, broker.url, { clientId: 'c' })
  t.true(client.connected, 'the broker runs although a started tap threw')
  await within(broker.close(), 'close despite a hanging stopping tap')
  t.deepEqual(closed.list, ['watcher saw stopping'], 'the next plugin still got stopping')
  const registry = broker.tapmq.metrics.registry
  t.regex(await registry.getSingleMetricAsString('tapmq_hook_errors_total'), /\{plugin="stubborn",hook="broker\.started"\} 1\b/)
  t.regex(await registry.getSingleMetricAsString('tapmq_hook_timeouts_total'), /\{plugin="stubborn",hook="broker\.stopping"\} 1\b/)
})

test('without plugins no hook is tapped, and the hot path calls none of them', async (t) => {
  const broker = await testBroker(t, { websocket: true })
  const hooks = listHooks(broker.hooks)
  t.true(hooks.length >= 18, `the whole table (${hooks.map(([name]) => name).join(', ')})`)
  for (const [name, hook] of hooks) t.false(isTapped(hook), `${name} has no taps`)

  const called: string[] = []
  for (const [name, hook] of hooks) {
    const callable = hook as unknown as Record<'call' | 'callAsync' | 'promise', ((...args: unknown[]) => unknown) | undefined>
    for (const method of ['call', 'callAsync', 'promise'] as const) {
      const original = callable[method]
      if (typeof original !== 'function') continue
      callable[method] = (...args: unknown[]) => {
        called.push(`${name}.${method}`)
        return original.apply(hook, args)
      }
    }
  }

  // everything the handlers do: connect, subscribe, QoS 0/1/2 both ways, will, unsubscribe, errors, disconnects
  const sub = await connectClient(t, broker.url, { clientId: 'sub', username: 'u', password: 'p' })
  await sub.subscribeAsync({ 'a/#': { qos: 2 }, '$SYS/#': { qos: 0 } })
  const ws = await connectClient(t, broker.wsUrl!, { clientId: 'ws', will: { topic: 'a/will', payload: Buffer.from('w'), qos: 1, retain: false } })
  for (const qos of [0, 1, 2] as const) {
    const received = nextMessage(sub)
    await ws.publishAsync(`a/${qos}`, 'x', { qos, retain: qos === 1 })
    await received
  }
  const will = nextMessage(sub)
  ws.stream.destroy()
  await will
  await sub.unsubscribeAsync('a/#')
  const { client: raw } = await RawClient.connect(t, broker.port, { clientId: 'raw' })
  raw.write(Buffer.from([0x00, 0x00]))
  await raw.waitClosed()
  const closed = once(sub, 'close')
  broker.broker.disconnect('sub')
  await closed
  await connectClient(t, broker.url, { clientId: 'dup' })
  await connectClient(t, broker.url, { clientId: 'dup' })

  t.deepEqual(called, [], 'no hook was called on the hot path')
})

test('with one tapped hook, only that hook is called', async (t) => {
  const seen = new Recorder<string>()
  const broker = await testBroker(t, { plugins: [tapping('one', (hooks) => hooks.client.connected.tap('one', (e) => seen.push(e.clientId)))] })
  const called = new Set<string>()
  for (const [name, hook] of listHooks(broker.hooks)) {
    const callable = hook as unknown as { call?: (...args: unknown[]) => unknown, promise?: (...args: unknown[]) => unknown }
    for (const method of ['call', 'promise'] as const) {
      const original = callable[method]
      if (typeof original === 'function') callable[method] = (...args: unknown[]) => { called.add(name); return original.apply(hook, args) }
    }
  }
  const client = await connectClient(t, broker.url, { clientId: 'c' })
  await seen.count(1)
  const received = nextMessage(client)
  await client.subscribeAsync('t')
  await client.publishAsync('t', 'x', { qos: 1 })
  await received
  t.deepEqual([...called], ['client.connected'])
})

test('a main url no listener can serve is a start error, not a broker without listeners', async (t) => {
  for (const [url, reason] of [['tls+nmq-tcp://127.0.0.1:0', /tls\.enable/], ['nmq-wss://127.0.0.1:0/mqtt', /wss is not supported/]] as const) {
    const err = await t.throwsAsync(startTestBroker({ config: { url } }))
    t.is((err as { code?: string }).code, 'TAPMQ_ERR_LISTEN', url)
    t.regex(err!.message, reason)
  }
})
