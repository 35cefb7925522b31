// `rememberMs` on an authorize.publish decision: the broker gives the same answer to the same
// connection's PUBLISHes (same topic and QoS) without asking the plugin again, until it
// expires, and only while that plugin is the hook's only live tap.
import test from 'ava'
import { definePlugin, tapDecision, Type } from '../../sdk/index.ts'
import { REMEMBERED_PER_CONNECTION } from '../../runtime/broker/remembered.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { connectClient, nextMessage, until } from '../helpers/mqtt.ts'

/** An ACL plugin that denies `denied/#`, allows the rest, and records every question it is asked. */
function rememberingAcl (asked: string[], rememberMs: number) {
  return tapping('remembering-acl', (hooks) => tapDecision(hooks.authorize.publish, 'remembering-acl', (request) => {
    asked.push(`${request.client.clientId} ${request.qos} ${request.topic}`)
    return request.topic.startsWith('denied/') ? { result: 'deny', reason: 'no', rememberMs } : { result: 'allow', rememberMs }
  }))
}

test('a remembered answer is reused for the same connection, topic and QoS; others are asked', async (t) => {
  const asked: string[] = []
  const broker = await testBroker(t, { plugins: [rememberingAcl(asked, 60_000)] })
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('#', { qos: 1 })
  const received: string[] = []
  sub.on('message', (_topic, payload) => received.push(payload.toString()))
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  for (let i = 0; i < 3; i++) {
    await pub.publishAsync('open/a', `a${i}`, { qos: 1 })
    await pub.publishAsync('denied/a', `d${i}`, { qos: 1 })
  }
  await pub.publishAsync('open/a', 'q0', { qos: 0 })
  const other = await connectClient(t, broker.url, { clientId: 'other' })
  await other.publishAsync('open/a', 'o', { qos: 1 })
  await until(() => received.includes('o'), 'the last message')
  t.deepEqual(received.sort(), ['a0', 'a1', 'a2', 'o', 'q0'])
  t.deepEqual(asked, ['pub 1 open/a', 'pub 1 denied/a', 'pub 0 open/a', 'other 1 open/a'])
  t.is(broker.broker.stats().messagesDropped, 3)
})

test('a remembered answer expires after rememberMs', async (t) => {
  const asked: string[] = []
  const broker = await testBroker(t, { plugins: [rememberingAcl(asked, 200)] })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  await pub.publishAsync('open/a', 'x', { qos: 1 })
  await new Promise((resolve) => setTimeout(resolve, 400))
  await pub.publishAsync('open/a', 'y', { qos: 1 })
  t.deepEqual(asked, ['pub 1 open/a', 'pub 1 open/a'])
})

test('with two live ACL taps nothing is remembered: every PUBLISH asks the chain', async (t) => {
  const asked: string[] = []
  const second: string[] = []
  const other = tapping('second-acl', (hooks) => tapDecision(hooks.authorize.publish, 'second-acl', (request) => {
    second.push(request.topic)
    return undefined
  }))
  const broker = await testBroker(t, { plugins: [rememberingAcl(asked, 60_000), other] })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  for (let i = 0; i < 3; i++) await pub.publishAsync('open/a', 'x', { qos: 1 })
  t.is(asked.length, 3)
  // the first tap allowed: the chain stopped there
  t.deepEqual(second, [])
})

test('a disabled plugin\'s remembered answers are not used', async (t) => {
  const asked: string[] = []
  const broker = await testBroker(t, { plugins: [rememberingAcl(asked, 60_000)] })
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('#', { qos: 1 })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  await pub.publishAsync('denied/a', 'x', { qos: 1 })
  await pub.publishAsync('denied/a', 'x', { qos: 1 })
  t.is(asked.length, 1)
  t.is(broker.broker.stats().messagesDropped, 2)
  await broker.tapmq.plugins.disable('remembering-acl')
  const received = nextMessage(sub)
  await pub.publishAsync('denied/a', 'through', { qos: 1 })
  t.deepEqual(await received, ['denied/a', Buffer.from('through')])
  t.is(asked.length, 1)
})

test('at most REMEMBERED_PER_CONNECTION topics per connection and QoS: the oldest is asked again', async (t) => {
  const asked: string[] = []
  const broker = await testBroker(t, { plugins: [rememberingAcl(asked, 60_000)] })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  for (let i = 0; i <= REMEMBERED_PER_CONNECTION; i++) pub.publish(`open/${i}`, 'x', { qos: 0 })
  await pub.publishAsync('open/0', 'x', { qos: 0 })
  await pub.publishAsync(`open/${REMEMBERED_PER_CONNECTION}`, 'x', { qos: 0 })
  await until(() => asked.length >= REMEMBERED_PER_CONNECTION + 2, 'the questions')
  // open/0 was forgotten (the oldest) and asked again; the newest one was not
  t.is(asked.length, REMEMBERED_PER_CONNECTION + 2)
  t.is(asked.at(-1), 'pub 0 open/0')
})

test('answers remembered before a plugin reconfigured in place are not used after its reload', async (t) => {
  const asked: string[] = []
  // denies `denied/#` until reloaded with { open: true }
  const acl = definePlugin({
    name: 'reconfigurable-acl',
    version: '1.0.0',
    options: Type.Object({ open: Type.Boolean({ default: false }) }),
    setup (host, options) {
      let open = options.open
      tapDecision(host.hooks.authorize.publish, 'reconfigurable-acl', (request) => {
        asked.push(request.topic)
        return !open && request.topic.startsWith('denied/') ? { result: 'deny', reason: 'closed', rememberMs: 60_000 } : { result: 'allow', rememberMs: 60_000 }
      })
      return { reload (next: { open: boolean }) { open = next.open } }
    }
  })
  let open = false
  const broker = await testBroker(t, { plugins: [{ plugin: acl, options: { get open () { return open } } }] })
  const sub = await connectClient(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('#', { qos: 1 })
  const pub = await connectClient(t, broker.url, { clientId: 'pub' })
  await pub.publishAsync('denied/a', 'x', { qos: 1 })
  await pub.publishAsync('denied/a', 'x', { qos: 1 })
  t.deepEqual(asked, ['denied/a'], 'the second answer was remembered')
  open = true
  await broker.tapmq.plugins.reload('reconfigurable-acl')
  const received = nextMessage(sub)
  await pub.publishAsync('denied/a', 'through', { qos: 1 })
  t.deepEqual(await received, ['denied/a', Buffer.from('through')])
  t.deepEqual(asked, ['denied/a', 'denied/a'])
})
