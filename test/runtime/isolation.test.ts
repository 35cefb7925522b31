// Plugin isolation: a tap that throws, rejects or hangs is logged, counted per plugin and
// hook, and answered by the hook's fail policy; the broker and other clients carry on.
// Also the decision chain: `ignore` passes on, stages order the taps.
import test from 'ava'
import type { AuthDecision } from '../../sdk/index.ts'
import type { TestBroker } from '../../sdk/testing.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { connectClient, connectRefused, nextMessage, Recorder, subackCodes, until } from '../helpers/mqtt.ts'

function metric (broker: TestBroker, name: string): Promise<string> {
  return broker.tapmq.metrics.registry.getSingleMetricAsString(name)
}

function logsOf (broker: TestBroker, plugin: string): Array<Record<string, unknown>> {
  return broker.logs.filter((entry) => entry.plugin === plugin)
}

test('a sync tap that throws: the message is still routed, the error is counted and logged with the plugin', async (t) => {
  const thrower = tapping('thrower', (hooks) => {
    hooks.message.publish.tap('thrower', () => { throw new Error('boom in publish') })
    hooks.client.connected.tap('thrower', () => { throw new Error('boom in connected') })
  })
  const broker = await testBroker(t, { plugins: [thrower] })
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('t')
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  for (const n of [1, 2]) {
    const received = nextMessage(sub)
    await pub.publishAsync('t', `m${n}`, { qos: 1 })
    t.is((await received)[1].toString(), `m${n}`)
  }
  const errors = await metric(broker, 'tapmq_hook_errors_total')
  t.regex(errors, /tapmq_hook_errors_total\{plugin="thrower",hook="message\.publish"\} 2\b/)
  t.regex(errors, /tapmq_hook_errors_total\{plugin="thrower",hook="client\.connected"\} 2\b/)
  const logged = logsOf(broker, 'thrower')
  t.true(logged.some((entry) => entry.hook === 'message.publish' && entry.level === 50 && JSON.stringify(entry.err).includes('boom in publish')))
  t.true(sub.connected && pub.connected)
})

test('an auth tapPromise that rejects fails closed with CONNACK 3; connected clients carry on', async (t) => {
  const rejecter = tapping('rejecter', (hooks) => hooks.auth.tapPromise('rejecter', async (request) => {
    if (request.username === 'victim') throw new Error('auth backend exploded')
    return undefined
  }))
  const broker = await testBroker(t, { plugins: [rejecter] })
  const sub = await connectClient(t, broker.url, { clientId: 'sub', username: 'ok' })
  await sub.subscribeAsync('t')
  const pub = await connectClient(t, broker.url, { clientId: 'pub', username: 'ok' })

  const refused = await connectRefused(t, broker.url, { clientId: 'v', username: 'victim', password: 'x' })
  t.is(refused.code, 3)
  const received = nextMessage(sub)
  await pub.publishAsync('t', 'after', { qos: 1 })
  t.is((await received)[1].toString(), 'after')

  t.regex(await metric(broker, 'tapmq_hook_errors_total'), /\{plugin="rejecter",hook="auth"\} 1\b/)
  const entry = logsOf(broker, 'rejecter').find((e) => e.hook === 'auth')
  t.like(entry, { msg: 'plugin hook failed', level: 50 })
  t.regex(JSON.stringify(entry?.err), /auth backend exploded/)
})

test('an auth tap that never answers times out after hook_timeout: CONNACK 3, nobody else waits', async (t) => {
  const started = new Recorder<string>()
  const hanger = tapping('hanger', (hooks) => hooks.auth.tapPromise('hanger', (request) => {
    if (request.username !== 'stuck') return Promise.resolve(undefined)
    started.push(request.clientId)
    return new Promise<AuthDecision | undefined>(() => {}) // never settles
  }))
  const broker = await testBroker(t, { plugins: [hanger], config: { hook_timeout: '300ms' } })
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('t')
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })

  const stuck = connectRefused(t, broker.url, { clientId: 'stuck', username: 'stuck', password: 'x' })
  await started.count(1)
  // while that auth hangs: existing clients publish and receive, new clients connect
  const received = nextMessage(sub)
  await pub.publishAsync('t', 'during', { qos: 1 })
  t.is((await received)[1].toString(), 'during')
  const fresh = await connectClient(t, broker.url, { clientId: 'fresh', username: 'someone' })
  t.true(fresh.connected)

  t.is((await stuck).code, 3)
  t.regex(await metric(broker, 'tapmq_hook_timeouts_total'), /\{plugin="hanger",hook="auth"\} 1\b/)
  t.like(logsOf(broker, 'hanger').find((e) => e.hook === 'auth'), { msg: 'plugin hook timed out', level: 50 })
  t.true(sub.connected && pub.connected)
})

test('failing authorize taps fail closed: the message is dropped, the subscription refused, the client stays', async (t) => {
  const broken = tapping('broken-acl', (hooks) => {
    hooks.authorize.publish.tapPromise('broken-acl', async (request) => {
      if (request.topic === 'guarded') throw new Error('acl down')
      return undefined
    })
    hooks.authorize.subscribe.tap('broken-acl', (request) => {
      if (request.topic === 'guarded') throw new Error('acl down')
      return undefined
    })
  })
  const broker = await testBroker(t, { plugins: [broken] })
  const client = await connectClient(t, broker.url, { clientId: 'c' })
  t.deepEqual(await subackCodes(client, { guarded: { qos: 0 }, '#': { qos: 0 } }), [128, 0])
  const received = nextMessage(client)
  await client.publishAsync('guarded', 'dropped', { qos: 1 })
  await client.publishAsync('open', 'routed', { qos: 1 })
  t.deepEqual(await received, ['open', Buffer.from('routed')])
  const errors = await metric(broker, 'tapmq_hook_errors_total')
  t.regex(errors, /\{plugin="broken-acl",hook="authorize\.publish"\} 1\b/)
  t.regex(errors, /\{plugin="broken-acl",hook="authorize\.subscribe"\} 1\b/)
  t.is(broker.broker.stats().messagesDropped, 1)
  t.true(client.connected)
})

test("{ result: 'ignore' } from the first auth tap passes the decision to the second", async (t) => {
  const asked: string[] = []
  const first = tapping('first', (hooks) => hooks.auth.tap('first', (request) => {
    asked.push(`first:${request.clientId}`)
    return { result: 'ignore' }
  }))
  const second = tapping('second', (hooks) => hooks.auth.tap('second', (request) => {
    asked.push(`second:${request.clientId}`)
    return request.username === 'good' ? { result: 'allow' } : { result: 'deny', code: 4 }
  }))
  const broker = await testBroker(t, { plugins: [first, second], config: { allow_anonymous: 'false' } })
  await connectClient(t, broker.url, { clientId: 'g', username: 'good', password: 'x' })
  t.is((await connectRefused(t, broker.url, { clientId: 'b', username: 'bad', password: 'x' })).code, 4)
  t.deepEqual(asked, ['first:g', 'second:g', 'first:b', 'second:b'])
})

test('an ignore from every tap falls back to allow_anonymous', async (t) => {
  const ignorer = tapping('ignorer', (hooks) => hooks.auth.tap('ignorer', () => ({ result: 'ignore' })))
  const open = await testBroker(t, { plugins: [ignorer] })
  await connectClient(t, open.url, { clientId: 'anyone' })
  const closed = await testBroker(t, { plugins: [ignorer], config: { allow_anonymous: 'false' } })
  t.is((await connectRefused(t, closed.url, { clientId: 'anyone' })).code, 4)
})

test('stage orders taps across plugins: stage -100 runs before stage 0 whatever the load order', async (t) => {
  const order: string[] = []
  const late = tapping('default-stage', (hooks) => {
    hooks.auth.tap('default-stage', () => { order.push('auth:0'); return { result: 'deny', code: 5 } })
    hooks.message.publish.tap('default-stage', () => { order.push('publish:0') })
  })
  const early = tapping('auth-stage', (hooks) => {
    hooks.auth.tap({ name: 'auth-stage', stage: -100 }, (request) => {
      order.push('auth:-100')
      return request.username === 'vip' ? { result: 'allow' } : undefined
    })
    hooks.message.publish.tap({ name: 'auth-stage', stage: -100 }, () => { order.push('publish:-100') })
  })
  const broker = await testBroker(t, { plugins: [late, early] })
  const vip = await connectClient(t, broker.url, { clientId: 'vip', username: 'vip' })
  t.deepEqual(order, ['auth:-100'], 'the stage -100 allow bailed out before the stage 0 deny')
  t.is((await connectRefused(t, broker.url, { clientId: 'other', username: 'other' })).code, 5)
  t.deepEqual(order, ['auth:-100', 'auth:-100', 'auth:0'])
  order.length = 0
  await vip.publishAsync('x', 'y', { qos: 1 })
  await until(() => order.length >= 2, 'both publish taps')
  t.deepEqual(order, ['publish:-100', 'publish:0'])
})

test('a throwing tap in one plugin does not stop the next plugin tapping the same hook', async (t) => {
  const seen = new Recorder<string>()
  const thrower = tapping('thrower', (hooks) => hooks.client.connected.tap('thrower', () => { throw new Error('x') }))
  const watcher = tapping('watcher', (hooks) => hooks.client.connected.tap('watcher', (event) => seen.push(event.clientId)))
  const broker = await testBroker(t, { plugins: [thrower, watcher] })
  await connectClient(t, broker.url, { clientId: 'c1' })
  t.deepEqual(await seen.count(1), ['c1'])
})

test('a per-tap timeout overrides hook_timeout for that tap', async (t) => {
  const slow = tapping('slow-auth', (hooks) => hooks.auth.tapPromise({ name: 'slow-auth', timeout: 200 }, () => new Promise<undefined>(() => {})))
  // hook_timeout is long: only the tap's own 200 ms can answer within the 5 s wait
  const broker = await testBroker(t, { plugins: [slow], config: { hook_timeout: '60s' } })
  t.is((await connectRefused(t, broker.url, { clientId: 'c' })).code, 3)
  t.regex(await metric(broker, 'tapmq_hook_timeouts_total'), /\{plugin="slow-auth",hook="auth"\} 1\b/)
})
