// The decision cache on the ACL path: one request per client and question (access, QoS,
// topic), answered from the cache afterwards (synchronously, with no request built), deny
// answers cached too, and keys that separate exactly what the server would see.
import test from 'ava'
import type { AuthorizeRequest, ClientInfo } from '../../sdk/index.ts'
import { isThenable } from '../../sdk/index.ts'
import { runDecision } from '../../runtime/isolation.ts'
import { Endpoint } from '../../plugins/http-auth/http.ts'
import { AuthServer, brokerWith, connack, counters, nextEvent, type Seen, subscribeGranted, until } from './helpers.ts'

/** auth: everyone; ACL: topics under `allowed/` */
async function aclServer (t: Parameters<typeof AuthServer.start>[0]): Promise<AuthServer> {
  return AuthServer.start(t, (req: Seen, res) => {
    if (req.path === '/mqtt/auth') return void res.writeHead(200).end()
    res.writeHead(req.fields.topic?.startsWith('allowed/') ? 200 : 403).end()
  })
}

function cachedAcl (server: AuthServer, aclParams = 'access=%A,username=%u,clientid=%c,topic=%t', extra: Record<string, unknown> = {}) {
  return {
    authReq: { url: server.url('/mqtt/auth'), params: 'username=%u' },
    aclReq: { url: server.url('/mqtt/acl'), params: aclParams },
    cache: { enable: true },
    ...extra
  }
}

const aclRequests = (server: AuthServer) => server.seen.filter((seen) => seen.path === '/mqtt/acl')
  .map((seen) => `${seen.fields.clientid ?? '-'} ${seen.fields.access ?? '-'} ${seen.fields.topic ?? '-'}`)

test('repeated publishes to one topic cost one ACL request; allow and deny answers are both cached', async (t) => {
  const server = await aclServer(t)
  const broker = await brokerWith(t, cachedAcl(server))
  const { client } = await connack(t, broker.url, { clientId: 'c1', username: 'bob' })
  t.deepEqual(await subscribeGranted(client!, 'allowed/#', 1), [1])
  const received: string[] = []
  client!.on('message', (_topic, payload) => received.push(payload.toString()))
  for (let i = 0; i < 5; i++) {
    await client!.publishAsync('allowed/a', `a${i}`, { qos: 1 })
    await client!.publishAsync('denied/a', `d${i}`, { qos: 1 })
  }
  await client!.publishAsync('allowed/b', 'b', { qos: 1 })
  await until(() => received.includes('b'), 'the last message')
  t.deepEqual(received, ['a0', 'a1', 'a2', 'a3', 'a4', 'b'])
  t.deepEqual(aclRequests(server), ['c1 1 allowed/#', 'c1 2 allowed/a', 'c1 2 denied/a', 'c1 2 allowed/b'])
  t.is(broker.broker.stats().messagesDropped, 5)
  // the repeats were answered by the broker (rememberMs) or the plugin's cache: never by the server
  t.like(counters(broker), { requests_total: 5 })
  t.true(client!.connected)
})

test('a cached ACL answer is given synchronously, without a request', async (t) => {
  const server = await aclServer(t)
  const broker = await brokerWith(t, cachedAcl(server))
  const { client } = await connack(t, broker.url, { clientId: 'c2', username: 'bob' })
  await client!.publishAsync('allowed/x', 'x', { qos: 1 })
  await until(() => aclRequests(server).length === 1, 'the first ACL request')
  // the same question as the client's publish (the parameters use only its id and user name), asked as the broker does
  const request = ask(clientInfo('c2', 'bob'), 'allowed/x', 'publish', 1)
  const answer = runDecision(broker.hooks.authorize.publish, request)
  t.false(isThenable(answer))
  t.like(answer, { result: 'allow' })
  // the broker may remember it for as long as the cache keeps it (allow_ttl, 60 s by default)
  const rememberMs = (answer as { rememberMs?: number }).rememberMs ?? 0
  t.true(rememberMs > 0 && rememberMs <= 60_000 && Number.isInteger(rememberMs), String(rememberMs))
  t.is(aclRequests(server).length, 1)
  t.like(counters(broker), { cache_hits_total: 1 })
})

test('a cached deny still disconnects with acl_deny_action = disconnect', async (t) => {
  const server = await aclServer(t)
  const broker = await brokerWith(t, cachedAcl(server, undefined, { aclDenyAction: 'disconnect' }))
  for (const clientId of ['d1', 'd1']) {
    const { client } = await connack(t, broker.url, { clientId, username: 'bob' })
    const closed = nextEvent(client!, 'close')
    client!.publish('denied/x', 'x', { qos: 0 })
    await closed
    t.false(client!.connected)
  }
  // the second connection of d1 asked the same question: answered from the cache
  t.deepEqual(aclRequests(server), ['d1 2 denied/x'])
})

test('clients are told apart by the values the parameters use, and only by those', async (t) => {
  const server = await aclServer(t)
  // the parameters name the user, not the client: clients of one user share answers
  const broker = await brokerWith(t, cachedAcl(server, 'username=%u,topic=%t'))
  for (const [clientId, username] of [['a', 'alice'], ['b', 'alice'], ['c', 'carol']]) {
    const { client } = await connack(t, broker.url, { clientId, username })
    await client!.publishAsync('allowed/t', 'x', { qos: 1 })
  }
  await until(() => aclRequests(server).length >= 2, 'two ACL requests')
  t.deepEqual(server.seen.filter((seen) => seen.path === '/mqtt/acl').map((seen) => seen.fields.username), ['alice', 'carol'])
})

const clientInfo = (clientId: string, username: string | undefined, port = 50000): ClientInfo => ({
  clientId, username, protoVer: 4, protoName: 'MQTT', keepalive: 60, cleanSession: true,
  peer: { address: '127.0.0.1', port, listenerPort: 1883, transport: 'tcp' }
})
const ask = (info: ClientInfo, topic = 't', access: AuthorizeRequest['access'] = 'publish', qos: 0 | 1 | 2 = 0): AuthorizeRequest =>
  ({ access, topic, qos, client: info, superuser: false })

test('ACL cache keys: same question, same key; any difference the request would show, another key', (t) => {
  const endpoint = new Endpoint('acl', { url: 'http://127.0.0.1:1/acl', method: 'POST', headers: {}, params: 'who=${clientid}${username},topic=%t' })
  const ab = clientInfo('a', 'bc')
  t.is(endpoint.aclKey(ask(ab)), endpoint.aclKey(ask(ab)))
  t.is(endpoint.aclKey(ask(ab)), endpoint.aclKey(ask(clientInfo('a', 'bc', 50001))), 'the source port is not a parameter')
  // "a"+"bc" and "ab"+"c" render alike here, but a topic between them would not: never one key
  t.not(endpoint.aclKey(ask(ab)), endpoint.aclKey(ask(clientInfo('ab', 'c'))))
  t.not(endpoint.aclKey(ask(ab)), endpoint.aclKey(ask(clientInfo('a', undefined))))
  t.not(endpoint.aclKey(ask(ab, 't')), endpoint.aclKey(ask(ab, 'u')))
  t.not(endpoint.aclKey(ask(ab, 't', 'publish')), endpoint.aclKey(ask(ab, 't', 'subscribe')))
  t.not(endpoint.aclKey(ask(ab, 't', 'publish', 0)), endpoint.aclKey(ask(ab, 't', 'publish', 1)))
  t.throws(() => new Endpoint('auth', { url: 'http://127.0.0.1:1/auth', method: 'POST', headers: {}, params: 'u=%u' }).aclKey(ask(ab)))
})

test('ACL answers a connection already got expire with their cache entry (deny_ttl)', async (t) => {
  const server = await aclServer(t)
  const broker = await brokerWith(t, cachedAcl(server, undefined, { cache: { enable: true, denyTtl: 300, allowTtl: 60_000, jitter: 0 } }))
  const { client } = await connack(t, broker.url, { clientId: 'e1', username: 'bob' })
  const denied = () => aclRequests(server).filter((line) => line.endsWith('denied/e')).length
  await client!.publishAsync('denied/e', 'x', { qos: 1 })
  const answered = Date.now()
  await client!.publishAsync('denied/e', 'x', { qos: 1 })
  // "still cached" can only be claimed while the TTL has not run out (a busy machine may be slower)
  if (Date.now() - answered < 300) t.is(denied(), 1)
  await new Promise((resolve) => setTimeout(resolve, 300 + 200))
  await client!.publishAsync('denied/e', 'x', { qos: 1 })
  await until(() => denied() >= 2, 'the expired answer asked again')
  t.is(denied(), 2)
  t.is(broker.broker.stats().messagesDropped, 3)
})
