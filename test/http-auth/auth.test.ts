// Authentication at CONNECT: the NanoMQ 0.8 release-notes config verbatim, the wire format
// of GET / form POST / JSON POST, the status → CONNACK table, EMQX 5 JSON bodies and
// `ignore` chaining with a second auth plugin.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { Conf, definePlugin, STAGE } from '../../sdk/index.ts'
import { startTestBroker } from '../../sdk/testing.ts'
import httpAuth from '../../plugins/http-auth/index.ts'
import { AuthServer, brokerWith, connackCode, counters, gate, logText, tmpDir } from './helpers.ts'

/** The block from the NanoMQ 0.8.0 release notes, byte for byte except the port. */
const RELEASE_NOTES_BLOCK = `## whether turn on HTTP Auth plugin
## Value: true | false
auth.http.enable = true

## targrt HTTP URL that Auth request
auth.http.auth_req.url = http://127.0.0.1:80/mqtt/auth

## HTTP Auth Request
## Value: post | get
auth.http.auth_req.method = post

## HTTP Request Headers for Auth Request
auth.http.auth_req.headers.content_type = application/x-www-form-urlencoded

## Parameters used to construct the request body or query string parameters
auth.http.auth_req.params = clientid=%c,username=%u,password=%P
`

/** A server that allows alice/secret and answers 401 to everyone else. */
const credentialsServer = (t: Parameters<typeof AuthServer.start>[0]) => AuthServer.start(t, (req, res) => {
  const fields = req.method === 'GET' ? req.query : req.fields
  res.writeHead(fields.username === 'alice' && fields.password === 'secret' ? 200 : 401).end()
})

test('the release-notes config, verbatim: right credentials connect, wrong ones get CONNACK 4', async (t) => {
  const server = await credentialsServer(t)
  const dir = await tmpDir(t)
  const file = join(dir, 'auth_http.conf')
  await writeFile(file, RELEASE_NOTES_BLOCK.replace('127.0.0.1:80/', `127.0.0.1:${server.port}/`))
  const options = httpAuth.conf!.parse!(Conf.fromFile(file))
  const broker = await startTestBroker({ plugins: [{ plugin: httpAuth, options }] })
  t.teardown(() => broker.close())

  t.is(await connackCode(t, broker.url, { clientId: 'c1', username: 'alice', password: 'secret' }), 0)
  t.is(await connackCode(t, broker.url, { clientId: 'c2', username: 'alice', password: 'wrong' }), 4)
  t.is(await connackCode(t, broker.url, { clientId: 'c3' }), 4)

  const [first] = server.seen
  t.is(first!.method, 'POST')
  t.is(first!.path, '/mqtt/auth')
  t.is(first!.headers['content-type'], 'application/x-www-form-urlencoded')
  t.is(first!.body, 'clientid=c1&username=alice&password=secret')
  // a client without user name or password: those params are left out (NanoMQ, quirk Q22)
  t.is(server.seen[2]!.body, 'clientid=c3')
})

test('GET puts the encoded params in the query string, with the method line uppercase', async (t) => {
  const server = await credentialsServer(t)
  const broker = await brokerWith(t, {
    authReq: { url: server.url('/auth?tenant=a b'), method: 'GET', params: 'clientid=%c,username=%u,password=%P,fixed=const' }
  })
  t.is(await connackCode(t, broker.url, { clientId: 'g&1=x', username: 'alice', password: 'secret' }), 0)
  const [seen] = server.seen
  t.is(seen!.method, 'GET')
  t.is(seen!.body, '')
  t.deepEqual(seen!.query, { tenant: 'a b', clientid: 'g&1=x', username: 'alice', password: 'secret', fixed: 'const' })
})

test('form POST percent-encodes every reserved character', async (t) => {
  const server = await credentialsServer(t)
  const broker = await brokerWith(t, {
    authReq: { url: server.url(), method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, params: 'username=%u,password=%P' }
  })
  t.is(await connackCode(t, broker.url, { username: 'a+b c', password: "p&=%+ é'*" }), 4)
  t.is(server.seen[0]!.body, 'username=a%2Bb%20c&password=p%26%3D%25%2B%20%C3%A9%27%2A')
  t.deepEqual(server.seen[0]!.fields, { username: 'a+b c', password: "p&=%+ é'*" })
})

test('JSON POST sends a flat object of strings in config order', async (t) => {
  const server = await credentialsServer(t)
  const broker = await brokerWith(t, {
    authReq: { url: server.url(), method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Api-Key': 'k1' }, params: 'clientid=%c,username=%u,password=%P,port=%p' }
  })
  t.is(await connackCode(t, broker.url, { clientId: 'j1', username: 'alice', password: 'secret' }), 0)
  const [seen] = server.seen
  t.is(seen!.method, 'POST')
  t.is(seen!.headers['content-type'], 'application/json')
  t.is(seen!.headers['x-api-key'], 'k1')
  t.is(seen!.body, JSON.stringify({ clientid: 'j1', username: 'alice', password: 'secret', port: String(broker.port) }))
})

test('PUT is accepted and carries a body like POST', async (t) => {
  const server = await credentialsServer(t)
  const broker = await brokerWith(t, { authReq: { url: server.url(), method: 'PUT', params: 'username=%u,password=%P' } })
  t.is(await connackCode(t, broker.url, { username: 'alice', password: 'secret' }), 0)
  t.is(server.seen[0]!.method, 'PUT')
  t.is(server.seen[0]!.headers['content-type'], 'application/x-www-form-urlencoded')
})

test('status codes map to CONNACK codes as in EMQX 4 (3.1.1 codes only)', async (t) => {
  let status = 200
  const server = await AuthServer.start(t, (_req, res) => { res.writeHead(status).end() })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'username=%u' } })
  const table: Array<[number, number]> = [[200, 0], [204, 0], [400, 4], [401, 4], [403, 5], [429, 5], [404, 3], [302, 3], [201, 3]]
  for (const [answer, expected] of table) {
    status = answer
    t.is(await connackCode(t, broker.url, { username: 'u' }), expected, `HTTP ${answer}`)
  }
  // 3.1 clients (MQIsdp) get the same 3.1.1 codes
  status = 403
  t.is(await connackCode(t, broker.url, { username: 'u', protocolVersion: 3, protocolId: 'MQIsdp' }), 5)
})

test('EMQX 5 JSON bodies: result allow / deny / ignore are honoured', async (t) => {
  let body = ''
  const server = await AuthServer.start(t, (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(body) })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'username=%u' } }, { config: { allow_anonymous: 'false' } })
  body = '{"result":"allow","is_superuser":false}'
  t.is(await connackCode(t, broker.url, { username: 'u' }), 0)
  body = '{"result":"deny"}'
  t.is(await connackCode(t, broker.url, { username: 'u' }), 5)
  // ignore: nobody else decides and allow_anonymous = false refuses
  body = '{"result":"ignore"}'
  t.is(await connackCode(t, broker.url, { username: 'u' }), 5)
  // EMQX 4 servers may answer 200 with any JSON (a mountpoint): allow
  body = '{"mountpoint":"a/"}'
  t.is(await connackCode(t, broker.url, { username: 'u' }), 0)
  t.like(counters(broker), { allow_total: 2, deny_total: 1, ignore_total: 1 })
})

test('a 200 "ignore" body passes the decision to the next auth plugin', async (t) => {
  const server = await AuthServer.start(t, (req, res) => {
    res.writeHead(200).end(req.fields.username === 'legacy' ? 'ignore' : 'ok')
  })
  const asked: string[] = []
  const fallback = definePlugin({
    name: 'test:fallback-auth',
    version: '1.0.0',
    setup (host) {
      host.hooks.auth.tapPromise({ name: 'test:fallback-auth', stage: STAGE.DEFAULT }, async (request) => {
        asked.push(request.username ?? '')
        return request.password?.toString() === 'legacy-pw' ? { result: 'allow' } : { result: 'deny', code: 4 }
      })
    }
  })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'username=%u' } }, { plugins: [fallback] })
  t.is(await connackCode(t, broker.url, { username: 'legacy', password: 'legacy-pw' }), 0)
  t.is(await connackCode(t, broker.url, { username: 'legacy', password: 'nope' }), 4)
  // a plain allow never reaches the next plugin
  t.is(await connackCode(t, broker.url, { username: 'modern', password: 'whatever' }), 0)
  t.deepEqual(asked, ['legacy', 'legacy'])
})

test('without auth_req.url the plugin does not answer auth', async (t) => {
  const broker = await brokerWith(t, {}, { config: { allow_anonymous: 'false' } })
  t.is(await connackCode(t, broker.url, {}), 4)
  t.true(broker.logs.some((line) => String(line.msg).includes('neither auth.http.auth_req.url nor auth.http.acl_req.url')))
})

test('the password appears in no log line, error or metric', async (t) => {
  const password = 'S3cr3t-PassW0rd'
  const server = await AuthServer.start(t, (_req, res) => { res.writeHead(500).end(password) })
  const broker = await brokerWith(t, {
    authReq: { url: server.url(), method: 'GET', params: 'username=%u,password=%P' }
  }, { config: { 'log.level': 'debug' } })
  t.is(await connackCode(t, broker.url, { username: 'u', password }), 3)
  await server.close()
  t.is(await connackCode(t, broker.url, { username: 'u', password }), 3)
  t.true(server.seen.length >= 1)
  t.true(broker.logs.some((line) => line.msg === 'auth server gave no answer; applying auth.http.on_error'))
  t.false(logText(broker).includes(password))
  t.false(JSON.stringify(broker.tapmq.plugins.status('tapmq:http-auth')).includes(password))
  t.false((await broker.tapmq.metrics.registry.metrics()).includes(password))
})

test('disabling the plugin lets a check in flight answer its client; later connects are not asked', async (t) => {
  const release = gate()
  const server = await AuthServer.start(t, async (_req, res) => {
    await release.opened
    res.writeHead(403).end()
  })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'username=%u' } })
  const pending = connackCode(t, broker.url, { username: 'in-flight' })
  await server.waitFor(1)
  // close starts at once and waits for the request in flight
  const disabling = broker.tapmq.plugins.disable('tapmq:http-auth')
  release.open()
  t.is(await pending, 5)
  await disabling
  t.is(broker.tapmq.plugins.status('tapmq:http-auth').state, 'disabled')
  // nobody asks the server any more: allow_anonymous (true) decides
  t.is(await connackCode(t, broker.url, { username: 'later' }), 0)
  t.is(server.seen.length, 1)
})
