// Decision taps that answer synchronously (`tapDecision`) and `runDecision`, the host's way of
// running a decision chain: synchronous while every tap answers at once, with the same order,
// bail, ignore, timeout and fail-closed semantics as `hook.promise()`.
import test from 'ava'
import { type AuthorizeDecision, type AuthorizeRequest, type ClientInfo, isThenable, STAGE, tapDecision } from '../../sdk/index.ts'
import type { TestBroker } from '../../sdk/testing.ts'
import { runDecision } from '../../runtime/isolation.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { connectClient, connectRefused, nextMessage, subackCodes } from '../helpers/mqtt.ts'

const CLIENT: ClientInfo = Object.freeze({
  clientId: 'c1', username: 'u1', protoVer: 4, protoName: 'MQTT', keepalive: 60, cleanSession: true,
  peer: { address: '127.0.0.1', port: 50000, listenerPort: 1883, transport: 'tcp' as const }
})

const publishing = (topic: string): AuthorizeRequest => Object.freeze({ access: 'publish', topic, qos: 0, client: CLIENT, superuser: false })

function metric (broker: TestBroker, name: string): Promise<string> {
  return broker.tapmq.metrics.registry.getSingleMetricAsString(name)
}

/** Allows everything but `denied/#` (publish) and `secret` (subscribe), always synchronously. */
const syncAcl = tapping('sync-acl', (hooks) => {
  tapDecision(hooks.authorize.publish, { name: 'sync-acl', stage: STAGE.AUTH }, (request) =>
    request.topic.startsWith('denied/') ? { result: 'deny', reason: 'not here' } : { result: 'allow' })
  tapDecision(hooks.authorize.subscribe, 'sync-acl', (request) => (request.topic === 'secret' ? { result: 'deny' } : { result: 'allow' }))
})

test('a synchronous answer decides on the same tick: runDecision returns the decision itself, not a promise', async (t) => {
  const broker = await testBroker(t, { plugins: [syncAcl] })
  const allowed = runDecision(broker.hooks.authorize.publish, publishing('open/1'))
  t.false(isThenable(allowed))
  t.deepEqual(allowed, { result: 'allow' })
  const denied = runDecision(broker.hooks.authorize.publish, publishing('denied/1'))
  t.false(isThenable(denied))
  t.deepEqual(denied, { result: 'deny', reason: 'not here' })
  // the tapable way still works with the same taps
  t.deepEqual(await broker.hooks.authorize.publish.promise(publishing('denied/2')), { result: 'deny', reason: 'not here' })
})

test('synchronous ACL answers are applied to real publishes and subscriptions', async (t) => {
  const broker = await testBroker(t, { plugins: [syncAcl] })
  const client = await connectClient(t, broker.url, { clientId: 'c' })
  t.deepEqual(await subackCodes(client, { secret: { qos: 0 }, '#': { qos: 0 } }), [128, 0])
  const received = nextMessage(client)
  await client.publishAsync('denied/x', 'dropped', { qos: 1 })
  await client.publishAsync('open/x', 'routed', { qos: 1 })
  t.deepEqual(await received, ['open/x', Buffer.from('routed')])
  t.is(broker.broker.stats().messagesDropped, 1)
  t.true(client.connected)
})

test('a synchronous ignore passes on to an asynchronous tap, which keeps its timeout', async (t) => {
  const asked: string[] = []
  const first = tapping('first', (hooks) => tapDecision(hooks.authorize.publish, { name: 'first', stage: STAGE.AUTH }, (request) => {
    asked.push(`first:${request.topic}`)
    return { result: 'ignore' }
  }))
  const second = tapping('second', (hooks) => hooks.authorize.publish.tapPromise({ name: 'second', timeout: 200 }, async (request) => {
    asked.push(`second:${request.topic}`)
    if (request.topic === 'hang') return new Promise<undefined>(() => {})
    return { result: 'deny', reason: 'second says no' }
  }))
  const broker = await testBroker(t, { plugins: [second, first], config: { hook_timeout: '60s' } })
  const answer = runDecision(broker.hooks.authorize.publish, publishing('t'))
  t.true(isThenable(answer))
  t.deepEqual(await answer, { result: 'deny', reason: 'second says no' })
  const hung = await runDecision(broker.hooks.authorize.publish, publishing('hang')) as AuthorizeDecision
  t.is(hung.result, 'deny')
  t.deepEqual(asked, ['first:t', 'second:t', 'first:hang', 'second:hang'])
  t.regex(await metric(broker, 'tapmq_hook_timeouts_total'), /\{plugin="second",hook="authorize\.publish"\} 1\b/)
})

test('a synchronous allow bails: later taps are not asked', async (t) => {
  const asked: string[] = []
  const early = tapping('early', (hooks) => tapDecision(hooks.authorize.publish, { name: 'early', stage: STAGE.AUTH }, (request) => {
    asked.push('early')
    return request.topic === 'vip' ? { result: 'allow' } : undefined
  }))
  const late = tapping('late', (hooks) => tapDecision(hooks.authorize.publish, 'late', () => {
    asked.push('late')
    return { result: 'deny' }
  }))
  const broker = await testBroker(t, { plugins: [late, early] })
  t.deepEqual(runDecision(broker.hooks.authorize.publish, publishing('vip')), { result: 'allow' })
  t.deepEqual(runDecision(broker.hooks.authorize.publish, publishing('other')), { result: 'deny' })
  t.deepEqual(asked, ['early', 'early', 'late'])
})

test('a tapDecision that throws fails closed at once, and is counted', async (t) => {
  const thrower = tapping('thrower', (hooks) => tapDecision(hooks.authorize.publish, 'thrower', () => { throw new Error('acl exploded') }))
  const broker = await testBroker(t, { plugins: [thrower] })
  const answer = runDecision(broker.hooks.authorize.publish, publishing('t'))
  t.false(isThenable(answer))
  t.is((answer as AuthorizeDecision).result, 'deny')
  t.regex(await metric(broker, 'tapmq_hook_errors_total'), /\{plugin="thrower",hook="authorize\.publish"\} 1\b/)
})

test('auth with tapDecision: synchronous answers give the right CONNACKs', async (t) => {
  const auth = tapping('sync-auth', (hooks) => tapDecision(hooks.auth, 'sync-auth', (request) => {
    if (request.username === 'good') return { result: 'allow' }
    if (request.username === 'later') return Promise.resolve({ result: 'allow' as const })
    return { result: 'deny', code: 4 }
  }))
  const broker = await testBroker(t, { plugins: [auth], config: { allow_anonymous: 'false' } })
  t.true((await connectClient(t, broker.url, { clientId: 'g', username: 'good', password: 'x' })).connected)
  t.true((await connectClient(t, broker.url, { clientId: 'l', username: 'later', password: 'x' })).connected)
  t.is((await connectRefused(t, broker.url, { clientId: 'b', username: 'bad', password: 'x' })).code, 4)
})
