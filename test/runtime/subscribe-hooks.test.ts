// SUBSCRIBE / UNSUBSCRIBE hooks: client.subscribe (deny, rewrite), authorize.subscribe,
// session.subscribed / unsubscribed, client.unsubscribe.
import test from 'ava'
import type {
  AuthorizeRequest, SessionSubscriptionEvent, SubscribeEvent, UnsubscribeEvent
} from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { foreignPart, recordingPlugin } from '../helpers/hooks.ts'
import { connectClient, nextMessage, settle, subackCodes } from '../helpers/mqtt.ts'

test('a granted SUBSCRIBE: client.subscribe, authorize.subscribe, session.subscribed once per filter', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const client = await connectClient(t, broker.url, { clientId: 's1', username: 'sam' })
  const granted = await client.subscribeAsync({ 'a/+': { qos: 1 }, 'b/#': { qos: 0 } })
  t.deepEqual(granted.map((g) => [g.topic, g.qos]), [['a/+', 1], ['b/#', 0]])
  await rec.of('session.subscribed').count(2)
  await client.publishAsync('noop', 'x', { qos: 1 }) // one more round trip
  await settle()

  const subscribe = rec.of<SubscribeEvent>('client.subscribe').list
  t.deepEqual(subscribe.map((e) => [e.topic, e.qos, e.clientId, e.username]), [['a/+', 1, 's1', 'sam'], ['b/#', 0, 's1', 'sam']])
  t.is(typeof subscribe[0]!.ts, 'number')
  const authorize = rec.of<AuthorizeRequest>('authorize.subscribe').list
  t.is(authorize.length, 2)
  t.like(authorize[0], { access: 'subscribe', topic: 'a/+', qos: 1, superuser: false, client: { clientId: 's1', username: 'sam', protoVer: 4 } })
  const subscribed = rec.of<SessionSubscriptionEvent>('session.subscribed').list
  t.deepEqual(subscribed.map((e) => [e.clientId, e.username, e.topic, e.qos]), [['s1', 'sam', 'a/+', 1], ['s1', 'sam', 'b/#', 0]])
  for (const [hook, payload] of rec.sequence) t.is(foreignPart(payload), undefined, `${hook} payload is plain data`)
  t.deepEqual(broker.broker.subscriptions('s1').map((s) => [s.topic, s.qos]).sort(), [['a/+', 1], ['b/#', 0]])
})

test('UNSUBSCRIBE: client.unsubscribe and session.unsubscribed once per filter', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const client = await connectClient(t, broker.url, { clientId: 'u1', username: 'uma' })
  await client.subscribeAsync(['x/1', 'x/2'])
  await client.unsubscribeAsync(['x/1', 'x/2'])
  const gone = await rec.of<SessionSubscriptionEvent>('session.unsubscribed').count(2)
  t.deepEqual(gone.map((e) => [e.clientId, e.username, e.topic]), [['u1', 'uma', 'x/1'], ['u1', 'uma', 'x/2']])
  t.deepEqual(rec.of<UnsubscribeEvent>('client.unsubscribe').list.map((e) => e.topic), ['x/1', 'x/2'])
  await client.publishAsync('noop', 'x', { qos: 1 })
  await settle()
  t.is(rec.of('session.unsubscribed').list.length, 2)
  t.deepEqual(broker.broker.subscriptions('u1'), [])
})

test('client.subscribe deny: SUBACK 128 for that filter only, the client stays connected', async (t) => {
  const rec = recordingPlugin()
  const guard = tapping('guard', (hooks) => hooks.client.subscribe.tap('guard', (event, control) => {
    if (event.topic.startsWith('private/')) control.deny('not yours')
  }))
  const broker = await testBroker(t, { plugins: [rec.plugin, guard] })
  const client = await connectClient(t, broker.url, { clientId: 'd1' })
  t.deepEqual(await subackCodes(client, { 'private/x': { qos: 1 }, 'public/x': { qos: 1 } }), [128, 1])
  t.true(client.connected)
  // the granted filter works, the denied one does not exist
  const received = nextMessage(client)
  await client.publishAsync('private/x', 'no', { qos: 1 })
  await client.publishAsync('public/x', 'yes', { qos: 1 })
  t.deepEqual((await received).map(String), ['public/x', 'yes'])
  t.deepEqual(rec.of<SessionSubscriptionEvent>('session.subscribed').list.map((e) => e.topic), ['public/x'])
  t.deepEqual(rec.of<AuthorizeRequest>('authorize.subscribe').list.map((e) => e.topic), ['public/x'], 'a denied filter is not authorized again')
  t.deepEqual(broker.broker.subscriptions('d1').map((s) => s.topic), ['public/x'])
})

test('client.subscribe rewrite: the subscription is made on the rewritten filter, everywhere', async (t) => {
  const rec = recordingPlugin()
  const prefixer = tapping('prefixer', (hooks) => hooks.client.subscribe.tap('prefixer', (event, control) => {
    control.rewrite({ topic: `tenant/${event.clientId}/${event.topic}` })
  }))
  const broker = await testBroker(t, { plugins: [rec.plugin, prefixer] })
  // a retained message on the filter as the client wrote it must not leak through
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  await pub.publishAsync('news', 'outside', { qos: 1, retain: true })
  await pub.publishAsync('tenant/r1/news', 'inside', { qos: 1, retain: true })

  const client = await connectClient(t, broker.url, { clientId: 'r1' })
  const firstMessage = nextMessage(client)
  const granted = await client.subscribeAsync('news', { qos: 1 })
  t.is(granted[0]!.qos, 1)
  t.deepEqual((await firstMessage).map(String), ['tenant/r1/news', 'inside'], 'the retained message of the rewritten filter, not the original')
  t.deepEqual(broker.broker.subscriptions('r1').map((s) => s.topic), ['tenant/r1/news'])
  t.deepEqual(rec.of<AuthorizeRequest>('authorize.subscribe').list.map((e) => e.topic), ['tenant/r1/news'], 'authorization judges the rewritten filter')
  t.deepEqual(rec.of<SessionSubscriptionEvent>('session.subscribed').list.map((e) => e.topic), ['tenant/r1/news'])

  const live = nextMessage(client)
  await pub.publishAsync('news', 'outside again', { qos: 1 })
  await pub.publishAsync('tenant/r1/news', 'inside again', { qos: 1 })
  t.deepEqual((await live).map(String), ['tenant/r1/news', 'inside again'])
})

test('client.subscribe rewrite on a persistent session survives a reconnect', async (t) => {
  const prefixer = tapping('prefixer', (hooks) => hooks.client.subscribe.tap('prefixer', (event, control) => {
    control.rewrite({ topic: `tenant/${event.topic}` })
  }))
  const broker = await testBroker(t, { plugins: [prefixer] })
  const first = await connectClient(t, broker.url, { clientId: 'p1', clean: false })
  await first.subscribeAsync('news', { qos: 1 })
  await first.endAsync()
  const again = await connectClient(t, broker.url, { clientId: 'p1', clean: false })
  t.deepEqual(broker.broker.subscriptions('p1').map((s) => s.topic), ['tenant/news'], 'the restored session has the rewritten filter')
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  const received = nextMessage(again)
  await pub.publishAsync('news', 'outside', { qos: 1 })
  await pub.publishAsync('tenant/news', 'inside', { qos: 1 })
  t.deepEqual((await received).map(String), ['tenant/news', 'inside'])
})

test('authorize.subscribe deny: SUBACK 128, client stays; a superuser is not asked', async (t) => {
  const rec = recordingPlugin()
  const acl = tapping('acl', (hooks) => {
    hooks.auth.tap('acl', (request) => (request.username === 'root' ? { result: 'allow', superuser: true } : undefined))
    hooks.authorize.subscribe.tapPromise('acl', async (request) =>
      request.topic === 'secret' ? { result: 'deny', reason: 'no' } : undefined)
  })
  const broker = await testBroker(t, { plugins: [rec.plugin, acl] })
  const client = await connectClient(t, broker.url, { clientId: 'plain' })
  t.deepEqual(await subackCodes(client, { secret: { qos: 0 }, open: { qos: 0 } }), [128, 0])
  t.true(client.connected)
  await client.publishAsync('x', 'still talking', { qos: 1 })

  const root = await connectClient(t, broker.url, { clientId: 'root', username: 'root' })
  const rootGranted = await root.subscribeAsync('secret')
  t.is(rootGranted[0]!.qos, 0)
  t.deepEqual(rec.of<AuthorizeRequest>('authorize.subscribe').list.map((e) => [e.client.clientId, e.topic]), [['plain', 'secret'], ['plain', 'open']])
  t.deepEqual(rec.of<SessionSubscriptionEvent>('session.subscribed').list.map((e) => [e.clientId, e.topic]), [['plain', 'open'], ['root', 'secret']])
})

test('client.subscribe rewrite to an invalid filter is refused with SUBACK 128', async (t) => {
  const rec = recordingPlugin()
  const broken = tapping('broken', (hooks) => hooks.client.subscribe.tap('broken', (event, control) => {
    if (event.topic === 'bad') control.rewrite({ topic: 'a/#/b' })
  }))
  const broker = await testBroker(t, { plugins: [rec.plugin, broken] })
  const client = await connectClient(t, broker.url, { clientId: 'b1' })
  t.deepEqual(await subackCodes(client, { bad: { qos: 0 }, good: { qos: 0 } }), [128, 0])
  t.true(client.connected)
  t.deepEqual(broker.broker.subscriptions('b1').map((s) => s.topic), ['good'])
  t.deepEqual(rec.of<SessionSubscriptionEvent>('session.subscribed').list.map((e) => e.topic), ['good'])
})

// Known gaps, kept visible: ava reports these as failing-as-expected until they are fixed.

test.failing('known gap: UNSUBSCRIBE with the filter the client used removes its rewritten subscription', async (t) => {
  const prefixer = tapping('prefixer', (hooks) => hooks.client.subscribe.tap('prefixer', (event, control) => {
    control.rewrite({ topic: `tenant/${event.topic}` })
  }))
  const broker = await testBroker(t, { plugins: [prefixer] })
  const client = await connectClient(t, broker.url, { clientId: 'u' })
  await client.subscribeAsync('news')
  await client.unsubscribeAsync('news')
  // aedes has no unsubscribe hook: the rewritten filter stays
  t.deepEqual(broker.broker.subscriptions('u'), [])
})

test.failing('known gap: SUBACK reports the QoS a client.subscribe tap rewrote', async (t) => {
  const downgrader = tapping('downgrader', (hooks) => hooks.client.subscribe.tap('downgrader', (_event, control) => {
    control.rewrite({ qos: 0 })
  }))
  const broker = await testBroker(t, { plugins: [downgrader] })
  const client = await connectClient(t, broker.url, { clientId: 'q' })
  t.deepEqual(broker.broker.subscriptions('q'), [])
  t.deepEqual(await subackCodes(client, { t: { qos: 2 } }), [0], 'aedes answers with the QoS requested')
})
