// NanoMQ 0.8's API v1 (nanomq-compat.md section 3.2) against a live broker: every request
// code tapmq implements, the envelope, and the error codes.
import test from 'ava'
import { connectClient, until } from '../helpers/mqtt.ts'
import { startApi } from './helpers.ts'

test('req 2: broker statistics', async (t) => {
  const api = await startApi(t)
  const sub = await connectClient(t, api.broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('t/#', { qos: 1 })
  const pub = await connectClient(t, api.broker.url, { clientId: 'pub' })
  await pub.publishAsync('t/1', 'hello', { qos: 1 })
  await pub.publishAsync('nobody/listens', 'lost', { qos: 1 })
  await until(() => api.broker.broker.stats().messagesSent >= 1, 'delivery to sub')
  const reply = await api.post('/api/v1', { req: 2, seq: 1111111 })
  t.is(reply.status, 200)
  const stats = api.broker.broker.stats()
  t.is(reply.text, `{"code":0,"seq":1111111,"rep":2,"data":{"client_size":2,"message_in":2,"message_out":${stats.messagesSent},"message_drop":${stats.messagesDropped}}}`)
  t.is(stats.messagesSent, 1)
})

test('req 4: subscriptions grouped by client', async (t) => {
  const api = await startApi(t)
  const a = await connectClient(t, api.broker.url, { clientId: 'A' })
  await a.subscribeAsync({ 'a/b': { qos: 0 }, 'c/#': { qos: 1 } })
  await connectClient(t, api.broker.url, { clientId: 'idle' })
  const reply = await api.post('/api/v1', { req: 4, seq: 2 })
  t.is(reply.text, '{"code":0,"seq":2,"rep":4,"data":[{"client_id":"A","subscriptions":[{"topic":"a/b","qos":0},{"topic":"c/#","qos":1}]}]}')
})

test('req 5: clients, with "" for a missing user name (Q29)', async (t) => {
  const api = await startApi(t)
  await connectClient(t, api.broker.url, { clientId: 'anon', keepalive: 30 })
  await connectClient(t, api.broker.url, { clientId: 'named', username: 'alice', keepalive: 60 })
  const reply = await api.post('/api/v1', { req: 5, seq: 3 })
  t.is(reply.status, 200)
  t.deepEqual(reply.json, {
    code: 0,
    seq: 3,
    rep: 5,
    data: [
      { client_id: 'anon', username: '', keepalive: 30, protocol: 4, connect_status: 1 },
      { client_id: 'named', username: 'alice', keepalive: 60, protocol: 4, connect_status: 1 }
    ]
  })
})

test('req 11: configuration in NanoMQ\'s shape with the password redacted; req 12 is refused', async (t) => {
  const api = await startApi(t, { username: 'ops', password: 'topsecret' })
  const reply = await api.request('POST', '/api/v1', { body: JSON.stringify({ req: 11, seq: 4 }), auth: 'Basic ' + Buffer.from('ops:topsecret').toString('base64') })
  t.is(reply.status, 200)
  const { data } = reply.json
  t.deepEqual(Object.keys(data), ['url', 'num_taskq_thread', 'max_taskq_thread', 'parallel', 'property_size', 'msq_len',
    'allow_anonymous', 'daemon', 'tls', 'websocket', 'http_server'])
  t.deepEqual(data.http_server, { enable: true, port: 0, bind: '127.0.0.1', username: 'ops', password: '******', auth_type: 'basic' })
  t.false(reply.text.includes('topsecret'))

  const write = await api.request('POST', '/api/v1', { body: JSON.stringify({ req: 12, seq: 5, data }), auth: 'Basic ' + Buffer.from('ops:topsecret').toString('base64') })
  t.is(write.status, 501)
  t.is(write.json.code, 118)
  t.is(write.json.seq, 5)
  t.is(write.json.rep, 12)
  t.regex(write.json.message, /does not write config files/)
})

test('req 10: ctrl stop answers first, then stops the broker', async (t) => {
  const api = await startApi(t)
  const client = await connectClient(t, api.broker.url, { clientId: 'watcher' })
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
  const reply = await api.post('/api/v1', { req: 10, seq: 6, action: 'stop' })
  t.is(reply.text, '{"code":0,"seq":6,"rep":10}')
  await closed
  await until(() => api.broker.logs.some((entry) => entry.msg === 'tapmq stopped'), 'the broker to stop')
  t.pass()
})

test('req 10: restart without the tapmq command line is a clear error; unknown actions are refused', async (t) => {
  const api = await startApi(t)
  const restart = await api.post('/api/v1', { req: 10, seq: 7, action: 'restart' })
  t.is(restart.status, 501)
  t.like(restart.json, { code: 101, seq: 7, rep: 10 })
  const other = await api.post('/api/v1', { req: 10, seq: 8, action: 'explode' })
  t.is(other.status, 400)
  t.like(other.json, { code: 108, seq: 8, rep: 10 })
  const missing = await api.post('/api/v1', { req: 10, seq: 9 })
  t.like(missing.json, { code: 107, seq: 9, rep: 10 })
  // still running
  t.is((await api.post('/api/v1', { req: 2, seq: 10 })).status, 200)
})

test('unknown req: 404 with code 108; missing req: 107; bad JSON: 400 with code 109 and seq 0', async (t) => {
  const api = await startApi(t)
  const unknown = await api.post('/api/v1', { req: 1, seq: 42 })
  t.is(unknown.status, 404)
  t.is(unknown.text, '{"code":108,"seq":42,"rep":1}')
  const missing = await api.post('/api/v1', { seq: 43 })
  t.is(missing.status, 400)
  t.is(missing.json.code, 107)
  for (const body of ['{"req": 2,', 'null', '[1,2]', '"text"', '']) {
    const bad = await api.post('/api/v1', body)
    t.is(bad.status, 400, body)
    t.is(bad.text, '{"code":109,"seq":0}', body)
  }
})

test('curl -d posts JSON as a form: still JSON to /api/v1, like NanoMQ', async (t) => {
  const api = await startApi(t)
  const reply = await api.request('POST', '/api/v1', {
    body: '{"req": 2,"seq": 1111111}',
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  t.is(reply.status, 200)
  t.like(reply.json, { code: 0, seq: 1111111, rep: 2 })
})
