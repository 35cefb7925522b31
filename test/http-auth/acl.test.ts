// super_req and acl_req: superusers skip the ACL, a denied SUBSCRIBE gets SUBACK 0x80 and
// the client stays, a denied PUBLISH is dropped and counted (or disconnects the client).
import test from 'ava'
import { AuthServer, brokerWith, connack, counters, nextEvent, type Seen, subscribeGranted, until } from './helpers.ts'

/** auth: everyone; superuser: `admin`; ACL: topics under `allowed/` (and `+/` filters denied). */
async function aclServer (t: Parameters<typeof AuthServer.start>[0]): Promise<AuthServer> {
  return AuthServer.start(t, (req: Seen, res) => {
    const fields = req.method === 'GET' ? req.query : req.fields
    if (req.path === '/mqtt/auth') return void res.writeHead(200).end()
    if (req.path === '/mqtt/superuser') return void res.writeHead(fields.username === 'admin' ? 200 : 403).end()
    res.writeHead(fields.topic?.startsWith('allowed/') ? 200 : 403).end()
  })
}

function endpoints (server: AuthServer) {
  return {
    authReq: { url: server.url('/mqtt/auth'), params: 'username=%u' },
    superReq: { url: server.url('/mqtt/superuser'), params: 'username=%u' },
    aclReq: { url: server.url('/mqtt/acl'), params: 'access=%A,username=%u,clientid=%c,topic=%t' }
  }
}


test('a denied subscription gets SUBACK 0x80, the client stays and keeps working', async (t) => {
  const server = await aclServer(t)
  const broker = await brokerWith(t, endpoints(server))
  const { client } = await connack(t, broker.url, { clientId: 'bob-1', username: 'bob' })
  t.deepEqual(await subscribeGranted(client!, { 'allowed/a': { qos: 1 }, 'secret/a': { qos: 1 } }), [1, 128])
  t.true(client!.connected)
  // still connected and served
  const message = nextEvent<[string, Buffer]>(client!, 'message')
  await client!.publishAsync('allowed/a', 'hi', { qos: 1 })
  const [topic, payload] = await message
  t.is(topic, 'allowed/a')
  t.is(payload.toString(), 'hi')
})

test('a denied publish is dropped and counted; a superuser skips every ACL check', async (t) => {
  const server = await aclServer(t)
  const broker = await brokerWith(t, endpoints(server))
  const { client: admin } = await connack(t, broker.url, { clientId: 'admin-1', username: 'admin' })
  // superuser: granted without asking the ACL server
  t.deepEqual(await subscribeGranted(admin!, '#', 1), [1])
  const { client: bob } = await connack(t, broker.url, { clientId: 'bob-2', username: 'bob' })

  const received: string[] = []
  admin!.on('message', (topic) => received.push(topic))
  await bob!.publishAsync('secret/b', 'x', { qos: 1 })
  await bob!.publishAsync('allowed/b', 'y', { qos: 1 })
  // messages of one publisher arrive in order: once allowed/b is in, secret/b is not coming
  await until(() => received.includes('allowed/b'), 'allowed/b at the superuser')
  t.deepEqual(received, ['allowed/b'])
  t.true(bob!.connected)
  t.true(broker.broker.stats().messagesDropped >= 1)
  // the admin published nothing and subscribed as a superuser: no ACL request names it
  const acl = server.seen.filter((seen) => seen.path === '/mqtt/acl')
  t.deepEqual(acl.map((seen) => [seen.fields.username, seen.fields.access, seen.fields.topic]), [['bob', '2', 'secret/b'], ['bob', '2', 'allowed/b']])
  t.like(counters(broker), { deny_total: 2 }) // bob is no superuser (403), and secret/b
})

test('acl_deny_action = disconnect closes the publisher', async (t) => {
  const server = await aclServer(t)
  const broker = await brokerWith(t, { ...endpoints(server), aclDenyAction: 'disconnect' })
  const { client } = await connack(t, broker.url, { clientId: 'bob-3', username: 'bob' })
  const closed = nextEvent(client!, 'close')
  client!.publish('secret/c', 'x', { qos: 0 })
  await closed
  t.false(client!.connected)
  // a denied subscription still only gets 0x80
  const { client: other } = await connack(t, broker.url, { clientId: 'bob-4', username: 'bob' })
  t.deepEqual(await subscribeGranted(other!, 'secret/d'), [128])
  t.true(other!.connected)
})

test('is_superuser in an EMQX 5 auth answer makes a superuser without super_req', async (t) => {
  const server = await AuthServer.start(t, (req, res) => {
    if (req.path === '/mqtt/auth') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: 'allow', is_superuser: req.fields.username === 'root' }))
    }
    res.writeHead(403).end()
  })
  const broker = await brokerWith(t, { authReq: { url: server.url('/mqtt/auth'), params: 'username=%u' }, aclReq: { url: server.url('/mqtt/acl'), params: 'topic=%t' } })
  const { client: root } = await connack(t, broker.url, { username: 'root' })
  const { client: user } = await connack(t, broker.url, { username: 'user' })
  t.deepEqual(await subscribeGranted(root!, 't/1'), [0])
  t.deepEqual(await subscribeGranted(user!, 't/1'), [128])
  t.is(server.seen.filter((seen) => seen.path === '/mqtt/acl').length, 1)
})

test('acl server errors: deny by default, pass on with on_error = ignore', async (t) => {
  const server = await AuthServer.start(t, (_req, res) => { res.writeHead(503).end() })
  const deny = await brokerWith(t, { aclReq: { url: server.url('/mqtt/acl'), params: 'topic=%t' } })
  const { client: a } = await connack(t, deny.url, {})
  t.deepEqual(await subscribeGranted(a!, 't/1'), [128])
  const ignore = await brokerWith(t, { aclReq: { url: server.url('/mqtt/acl'), params: 'topic=%t' }, onError: 'ignore' })
  const { client: b } = await connack(t, ignore.url, {})
  // nobody else decides: access is allowed
  t.deepEqual(await subscribeGranted(b!, 't/1'), [0])
  t.like(counters(ignore), { errors_total: 1 })
})

test('a failing super_req makes no superuser; the ACL still applies', async (t) => {
  const server = await AuthServer.start(t, (req, res) => {
    if (req.path === '/mqtt/auth') return void res.writeHead(200).end()
    if (req.path === '/mqtt/superuser') return void res.writeHead(500).end()
    res.writeHead(403).end()
  })
  const broker = await brokerWith(t, endpoints(server))
  const { code, client } = await connack(t, broker.url, { username: 'admin' })
  t.is(code, 0)
  t.deepEqual(await subscribeGranted(client!, 'x/1'), [128])
})
