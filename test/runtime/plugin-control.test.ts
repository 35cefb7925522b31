// Runtime plugin control (broker.tapmq.plugins = host.plugins): disable makes a plugin's
// taps no-ops at once without touching connections, enable brings them back, reload
// calls the instance's reload or sets the plugin up again; status() reports hooks and
// counters.
import test from 'ava'
import { definePlugin, Type, type TapmqPlugin } from '../../sdk/index.ts'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, connectRefused, nextMessage, Recorder, within } from '../helpers/mqtt.ts'

/** Drops every message on `blocked/#` and counts what it saw; records its lifecycle. */
function blocker (life: Recorder<string>, withReload: boolean): TapmqPlugin {
  return definePlugin({
    name: 'blocker',
    version: '1.2.3',
    options: Type.Object({ prefix: Type.String({ default: 'blocked/' }) }),
    setup (host, options) {
      life.push('setup')
      const seen = host.metrics.counter('seen_total', 'messages looked at')
      host.hooks.message.publish.tap('blocker', (message, control) => {
        seen.inc()
        if (message.topic.startsWith(options.prefix)) control.drop('blocked')
      })
      host.hooks.client.connected.tap('blocker', () => {})
      return {
        close () { life.push('close') },
        health: () => ({ status: 'ok', detail: 'blocking' }),
        ...(withReload ? { reload (next: { prefix: string }) { life.push(`reload:${next.prefix}`) } } : {})
      }
    }
  })
}

async function setup (t: Parameters<typeof testBroker>[0], withReload = false) {
  const life = new Recorder<string>()
  const broker = await testBroker(t, { plugins: [{ plugin: blocker(life, withReload), options: { prefix: 'blocked/' } }] })
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('#', { qos: 1 })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  let closes = 0
  sub.on('close', () => closes++)
  pub.on('close', () => closes++)
  /** publishes `blocked/x` then `open/marker`; resolves with what `sub` received */
  const probe = async (): Promise<string[]> => {
    const seen: string[] = []
    const done = new Promise<void>((resolve) => {
      const onMessage = (topic: string) => {
        seen.push(topic)
        if (topic === 'open/marker') { sub.off('message', onMessage); resolve() }
      }
      sub.on('message', onMessage)
    })
    await pub.publishAsync('blocked/x', 'x', { qos: 1 })
    await pub.publishAsync('open/marker', 'm', { qos: 1 })
    await within(done, `open/marker (got ${seen.join(', ')})`)
    return seen
  }
  return { broker, life, sub, pub, probe, closes: () => closes }
}

test('status() lists the plugin with the hooks it tapped and its counters', async (t) => {
  const { broker, probe } = await setup(t)
  await probe()
  const status = broker.tapmq.plugins.status('blocker')
  t.like(status, { id: 'blocker', name: 'blocker', version: '1.2.3', state: 'running', health: { status: 'ok', detail: 'blocking' } })
  t.deepEqual([...status.hooks].sort(), ['client.connected', 'message.publish'])
  t.deepEqual(status.counters, { seen_total: 2 })
  t.deepEqual(broker.tapmq.plugins.list().map((p) => p.id), ['blocker'])
  t.throws(() => broker.tapmq.plugins.status('nope'), { message: /nope/ })
})

test('disable: the taps become no-ops at once, connections stay; enable: they are back', async (t) => {
  const { broker, life, sub, pub, probe, closes } = await setup(t)
  t.deepEqual(await probe(), ['open/marker'], 'running: blocked/x is dropped')

  await broker.tapmq.plugins.disable('blocker')
  t.deepEqual(life.list, ['setup', 'close'])
  t.deepEqual(await probe(), ['blocked/x', 'open/marker'], 'disabled: nothing is dropped')
  const disabled = broker.tapmq.plugins.status('blocker')
  t.like(disabled, { state: 'disabled', health: { status: 'down' } })
  t.deepEqual(disabled.hooks, [])
  t.deepEqual(disabled.counters, { seen_total: 2 }, 'a disabled tap does not even count')
  t.true(sub.connected && pub.connected)

  await broker.tapmq.plugins.enable('blocker')
  t.deepEqual(life.list, ['setup', 'close', 'setup'])
  t.deepEqual(await probe(), ['open/marker'], 'enabled again: dropped again')
  t.like(broker.tapmq.plugins.status('blocker'), { state: 'running' })
  t.deepEqual(broker.tapmq.plugins.status('blocker').counters, { seen_total: 4 }, 'once per message: the old taps stay off')
  t.is(closes(), 0, 'no client was disconnected along the way')
})

test('reload calls the instance reload with the options when it has one', async (t) => {
  const { broker, life, probe } = await setup(t, true)
  await broker.tapmq.plugins.reload('blocker')
  t.deepEqual(life.list, ['setup', 'reload:blocked/'])
  t.deepEqual(await probe(), ['open/marker'])
})

test('reload without an instance reload closes and sets up again; taps fire once per event afterwards', async (t) => {
  const { broker, life, probe, closes } = await setup(t, false)
  await broker.tapmq.plugins.reload('blocker')
  t.deepEqual(life.list, ['setup', 'close', 'setup'])
  t.deepEqual(await probe(), ['open/marker'])
  t.deepEqual(broker.tapmq.plugins.status('blocker').counters, { seen_total: 2 }, 'not 4: the first setup taps are off')
  t.is(closes(), 0)
})

test('a disabled plugin lets its hooks go quiet for connects too', async (t) => {
  const seen = new Recorder<string>()
  const watcher = definePlugin({
    name: 'watcher',
    version: '1.0.0',
    setup (host) { host.hooks.client.connected.tap('watcher', (event) => seen.push(event.clientId)) }
  })
  const broker = await testBroker(t, { plugins: [watcher] })
  await connectClient(t, broker.url, { clientId: 'one' })
  await seen.count(1)
  await broker.tapmq.plugins.disable('watcher')
  const two = await connectClient(t, broker.url, { clientId: 'two' })
  const received = nextMessage(two)
  await two.subscribeAsync('x')
  await two.publishAsync('x', 'round trip')
  await received
  t.deepEqual(seen.list, ['one'])
})

test('taps made after an await in an async setup belong to the plugin and are disabled with it', async (t) => {
  const seen = new Recorder<string>()
  const lazy = definePlugin({
    name: 'lazy',
    version: '1.0.0',
    async setup (host) {
      await new Promise((resolve) => setTimeout(resolve, 5))
      host.hooks.client.connected.tap('lazy', (event) => seen.push(event.clientId))
    }
  })
  const broker = await testBroker(t, { plugins: [lazy] })
  t.deepEqual(broker.tapmq.plugins.status('lazy').hooks, ['client.connected'])
  await connectClient(t, broker.url, { clientId: 'one' })
  await seen.count(1)
  await broker.tapmq.plugins.disable('lazy')
  const two = await connectClient(t, broker.url, { clientId: 'two' })
  const received = nextMessage(two)
  await two.subscribeAsync('x')
  await two.publishAsync('x', 'round trip')
  await received
  t.deepEqual(seen.list, ['one'])
})

/** Refuses `mallory` (CONNACK 5); its close waits for `release`, as one with checks in flight does. */
function gatekeeper (life: Recorder<string>, options: { release: Promise<void>, failSecondSetup?: boolean }): TapmqPlugin {
  let setups = 0
  return definePlugin({
    name: 'gatekeeper',
    version: '1.0.0',
    setup (host) {
      life.push('setup')
      if (options.failSecondSetup && ++setups === 2) throw new Error('the new configuration is broken')
      host.hooks.auth.tap('gatekeeper', (request) => (request.username === 'mallory'
        ? { result: 'deny', code: 5, reason: 'not mallory' }
        : { result: 'allow' }))
      return { close: () => options.release.then(() => { life.push('closed') }) }
    }
  })
}

test('while a reload replaces an auth plugin, its taps deny with CONNACK 3 instead of letting every client in', async (t) => {
  const life = new Recorder<string>()
  let release!: () => void
  const broker = await testBroker(t, { plugins: [gatekeeper(life, { release: new Promise((resolve) => { release = resolve }) })] })
  t.is((await connectRefused(t, broker.url, { clientId: 'm1', username: 'mallory' })).code, 5)

  const reloaded = broker.tapmq.plugins.reload('gatekeeper')
  t.is((await connectRefused(t, broker.url, { clientId: 'm2', username: 'mallory' })).code, 3, 'not accepted during the gap')
  t.is((await connectRefused(t, broker.url, { clientId: 'a2', username: 'alice' })).code, 3)
  release()
  await reloaded
  t.deepEqual(life.list, ['setup', 'closed', 'setup'])
  t.is((await connectRefused(t, broker.url, { clientId: 'm3', username: 'mallory' })).code, 5, 'the new instance decides')
  await connectClient(t, broker.url, { clientId: 'a3', username: 'alice' })
})

test('an auth plugin whose new instance fails to start keeps denying (CONNACK 3) until it is disabled', async (t) => {
  const life = new Recorder<string>()
  const broker = await testBroker(t, { plugins: [gatekeeper(life, { release: Promise.resolve(), failSecondSetup: true })] })
  await t.throwsAsync(broker.tapmq.plugins.reload('gatekeeper'), { message: /the new configuration is broken/ })
  t.is(broker.tapmq.plugins.status('gatekeeper').state, 'failed')
  t.is((await connectRefused(t, broker.url, { clientId: 'a1', username: 'alice' })).code, 3)
  t.is((await connectRefused(t, broker.url, { clientId: 'm1', username: 'mallory' })).code, 3)
  // switched off on purpose: the built-in policy (allow_anonymous = true in the test broker) applies
  await broker.tapmq.plugins.disable('gatekeeper')
  await connectClient(t, broker.url, { clientId: 'm2', username: 'mallory' })
})
