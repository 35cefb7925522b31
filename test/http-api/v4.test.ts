// Every API v4 endpoint against a live broker with real clients connected and subscribed.
import test from 'ava'
import type { MqttClient } from 'mqtt'
import { connectClient, nextMessage, once, until } from '../helpers/mqtt.ts'
import { type Api, startApi } from './helpers.ts'

interface Scene {
  api: Api
  alpha: MqttClient
  beta: MqttClient
}

/** alpha (user alice, clean) subscribes a/b and c/#; beta (no user, persistent) subscribes c/d at QoS 1. */
async function scene (t: Parameters<typeof startApi>[0], options: Record<string, unknown> = {}): Promise<Scene> {
  const api = await startApi(t, options)
  const alpha = await connectClient(t, api.broker.url, { clientId: 'alpha', username: 'alice', keepalive: 45 })
  await alpha.subscribeAsync({ 'a/b': { qos: 0 }, 'c/#': { qos: 1 } })
  const beta = await connectClient(t, api.broker.url, { clientId: 'beta', clean: false })
  await beta.subscribeAsync('c/d', { qos: 1 })
  return { api, alpha, beta }
}

test('GET /api/v4 lists the endpoints, each of which answers', async (t) => {
  const { api } = await scene(t)
  const reply = await api.get('/api/v4')
  t.is(reply.status, 200)
  t.is(reply.json.code, 0)
  const endpoints = reply.json.data as Array<{ path: string, name: string, method: string, descr: string }>
  t.deepEqual(Object.keys(endpoints[1]!), ['path', 'name', 'method', 'descr'])
  t.like(endpoints.find((e) => e.name === 'list_brokers'), { path: '/brokers/', method: 'GET' })
  const paths = endpoints.map((e) => `${e.method} ${e.path}`)
  for (const expected of ['GET /brokers/', 'GET /nodes/', 'GET /clients/', 'GET /clients/:clientid', 'DELETE /clients/:clientid',
    'GET /subscriptions/', 'GET /subscriptions/:clientid', 'GET /topic-tree/', 'GET /metrics/', 'GET /prometheus/',
    'POST /mqtt/publish', 'POST /mqtt/publish_batch', 'GET /reload/', 'POST /reload/', 'GET /configuration/', 'POST /ctrl/:action',
    'GET /plugins/', 'PUT /plugins/:name/enable', 'PUT /plugins/:name/disable', 'PUT /plugins/:name/reload']) {
    t.true(paths.includes(expected), expected)
  }
  // every GET without parameters answers 200
  for (const endpoint of endpoints.filter((e) => e.method === 'GET' && !e.path.includes(':'))) {
    t.is((await api.get('/api/v4' + endpoint.path)).status, 200, endpoint.path)
  }
})

test('/brokers and /nodes', async (t) => {
  const { api } = await scene(t)
  const brokers = await api.get('/api/v4/brokers')
  t.is(brokers.json.code, 0)
  const [broker] = brokers.json.data
  t.deepEqual(Object.keys(broker), ['datetime', 'node_status', 'sysdescr', 'uptime', 'version'])
  t.regex(broker.datetime, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
  t.regex(broker.uptime, /^\d+ Hours, \d+ minutes, \d+ seconds$/)
  t.like(broker, { node_status: 'Running', version: api.broker.broker.version })
  const nodes = await api.get('/api/v4/nodes/')
  t.like(nodes.json.data[0], { connections: 2, node_status: 'Running', version: api.broker.broker.version })
})

test('/clients with each filter, /clients/:clientid and /clients/username/:username', async (t) => {
  const { api } = await scene(t)
  const all = await api.get('/api/v4/clients')
  t.is(all.json.data.length, 2)
  t.like(all.json.data[0], {
    client_id: 'alpha', username: 'alice', keepalive: 45, conn_state: 'connected', clean_start: true, proto_name: 'MQTT', proto_ver: 4, ip_address: '127.0.0.1'
  })
  t.like(all.json.data[1], { client_id: 'beta', username: '', clean_start: false })
  const ids = async (query: string) => (await api.get('/api/v4/clients?' + query)).json.data.map((c: { client_id: string }) => c.client_id)
  t.deepEqual(await ids('clientid=beta'), ['beta'])
  t.deepEqual(await ids('username=alice'), ['alpha'])
  t.deepEqual(await ids('conn_state=connected'), ['alpha', 'beta'])
  t.deepEqual(await ids('conn_state=disconnected'), [])
  t.deepEqual(await ids('clean_start=false'), ['beta'])
  t.deepEqual(await ids('proto_ver=4&clean_start=true'), ['alpha'])
  t.deepEqual(await ids('proto_ver=5'), [])
  t.deepEqual(await ids('proto_name=MQTT'), ['alpha', 'beta'])
  for (const bad of ['proto_ver=four', 'clean_start=maybe', 'conn_state=sleeping']) {
    const reply = await api.get('/api/v4/clients?' + bad)
    t.is(reply.status, 400, bad)
    t.is(reply.json.code, 108, bad)
  }
  const one = await api.get('/api/v4/clients/alpha')
  t.is(one.json.data.length, 1)
  t.is(one.json.data[0].client_id, 'alpha')
  const missing = await api.get('/api/v4/clients/ghost')
  t.is(missing.status, 404)
  t.is(missing.json.code, 112)
  t.deepEqual((await api.get('/api/v4/clients/username/alice')).json.data.map((c: { client_id: string }) => c.client_id), ['alpha'])
})

test('DELETE /clients/:clientid kicks the client', async (t) => {
  const { api, beta } = await scene(t)
  const closed = once(beta, 'close')
  const reply = await api.request('DELETE', '/api/v4/clients/beta')
  t.is(reply.text, '{"code":0}')
  await closed
  await until(() => api.broker.broker.client('beta') === undefined, 'beta gone')
  t.is((await api.request('DELETE', '/api/v4/clients/beta')).status, 404)
})

test('/subscriptions with filters and /subscriptions/:clientid', async (t) => {
  const { api } = await scene(t)
  const all = await api.get('/api/v4/subscriptions')
  t.is(all.text, '{"code":0,"data":[{"clientid":"alpha","topic":"a/b","qos":0},{"clientid":"alpha","topic":"c/#","qos":1},{"clientid":"beta","topic":"c/d","qos":1}]}')
  const topics = async (query: string) => (await api.get('/api/v4/subscriptions?' + query)).json.data.map((s: { topic: string }) => s.topic)
  t.deepEqual(await topics('clientid=alpha'), ['a/b', 'c/#'])
  t.deepEqual(await topics('topic=c/d'), ['c/d'])
  t.deepEqual(await topics('qos=1'), ['c/#', 'c/d'])
  t.deepEqual(await topics('share=group'), [])
  t.is((await api.get('/api/v4/subscriptions?qos=x')).status, 400)
  t.is((await api.get('/api/v4/subscriptions/beta')).text, '{"code":0,"data":[{"clientid":"beta","topic":"c/d","qos":1}]}')
  t.is((await api.get('/api/v4/subscriptions/ghost')).text, '{"code":0,"data":[]}')
})

test('/metrics', async (t) => {
  const { api } = await scene(t)
  const reply = await api.get('/api/v4/metrics')
  t.is(reply.status, 200)
  t.deepEqual(Object.keys(reply.json), ['code', 'metrics', 'cpuinfo', 'memory'])
  t.like(reply.json.metrics[0], { connections: 2, sessions: 2, subscriptions: 3, topics: 5 })
  t.regex(reply.json.cpuinfo, /^\d+\.\d\d%$/)
  t.regex(reply.json.memory, /^\d+$/)
})

test('sessions count persistent sessions of offline clients', async (t) => {
  const { api, beta } = await scene(t)
  await beta.endAsync()
  await until(() => api.broker.broker.client('beta') === undefined, 'beta gone')
  const reply = await api.get('/api/v4/metrics')
  t.like(reply.json.metrics[0], { connections: 1, sessions: 2 })
  // back again: one session, not two
  const again = await connectClient(t, api.broker.url, { clientId: 'beta', clean: false })
  t.truthy(again)
  t.like((await api.get('/api/v4/metrics')).json.metrics[0], { connections: 2, sessions: 2 })
})

test('POST /mqtt/publish in plain and base64, to one topic and to several', async (t) => {
  const { api, alpha, beta } = await scene(t)
  const plain = nextMessage(alpha)
  t.is((await api.post('/api/v4/mqtt/publish', { topic: 'a/b', payload: 'Hello World', qos: 1, retain: false, clientid: 'example' })).text, '{"code":0}')
  const [topic, payload] = await plain
  t.is(topic, 'a/b')
  t.is(payload.toString(), 'Hello World')

  const binary = nextMessage(beta)
  t.is((await api.post('/api/v4/mqtt/publish', { topic: 'c/d', payload: Buffer.from([0, 1, 0xfe, 0xff]).toString('base64'), encoding: 'base64' })).status, 200)
  t.deepEqual([...(await binary)[1]], [0, 1, 0xfe, 0xff])

  const received: string[] = []
  alpha.on('message', (name) => received.push(name))
  t.is((await api.post('/api/v4/mqtt/publish', { topics: 'c/1,a/b, c/2', payload: 'many' })).status, 200)
  await until(() => received.length >= 3, 'three messages')
  t.deepEqual(received.sort(), ['a/b', 'c/1', 'c/2'])
})

test('POST /mqtt/publish with retain stores the message for later subscribers', async (t) => {
  const { api } = await scene(t)
  await api.post('/api/v4/mqtt/publish', { topic: 'state/door', payload: 'open', retain: true })
  const late = await connectClient(t, api.broker.url, { clientId: 'late' })
  const message = nextMessage(late)
  await late.subscribeAsync('state/#')
  t.is((await message)[1].toString(), 'open')
})

test('POST /mqtt/publish_batch answers per message', async (t) => {
  const { api, alpha } = await scene(t)
  const got: string[] = []
  alpha.on('message', (_topic, payload) => got.push(payload.toString()))
  const reply = await api.post('/api/v4/mqtt/publish_batch', [
    { topic: 'a/b', payload: 'Hello World', qos: 1, clientid: 'example' },
    { topic: 'a/#', payload: 'wildcards are not topics' },
    { topic: 'a/b', payload: 'Hello World Again', qos: 0, clientid: 'example' }
  ])
  t.is(reply.status, 200)
  t.is(reply.json.code, 0)
  t.deepEqual(reply.json.data.map(({ topic, code }: { topic: string, code: number }) => ({ topic, code })), [
    { topic: 'a/b', code: 0 }, { topic: 'a/#', code: 108 }, { topic: 'a/b', code: 0 }
  ])
  await until(() => got.length >= 2, 'two messages')
  t.deepEqual(got.sort(), ['Hello World', 'Hello World Again'])
  t.is((await api.post('/api/v4/mqtt/publish_batch', { topic: 'a/b' })).status, 400)
})

test('/configuration: NanoMQ shape, sections, every key flat, secrets redacted; writing is refused', async (t) => {
  const { api } = await scene(t, { password: 'not-public' })
  const auth = 'Basic ' + Buffer.from('admin:not-public').toString('base64')
  const full = await api.request('GET', '/api/v4/configuration', { auth })
  t.is(full.status, 200)
  // values from the main config: see settings.test.ts, which boots from files
  t.like(full.json.data, { http_server: { enable: true, password: '******', auth_type: 'basic' } })
  t.false(full.text.includes('not-public'))
  const http = await api.request('GET', '/api/v4/configuration/http_server', { auth })
  t.deepEqual(Object.keys(http.json.data), ['enable', 'port', 'bind', 'username', 'password', 'auth_type'])
  t.like((await api.request('GET', '/api/v4/configuration/basic', { auth })).json.data, { allow_anonymous: true })
  t.is((await api.request('GET', '/api/v4/configuration/bridge', { auth })).status, 404)
  const flat = await api.request('GET', '/api/v4/configuration?format=flat', { auth })
  t.is(flat.json.code, 0)
  const write = await api.request('POST', '/api/v4/configuration', { auth, body: '{}' })
  t.is(write.status, 501)
  t.is(write.json.code, 118)
})

test('/reload: GET shows what a reload applies, POST reloads, POST with data is refused', async (t) => {
  const { api } = await scene(t)
  const view = await api.get('/api/v4/reload')
  t.like(view.json, { code: 0, data: { 'log.level': 'info', plugins: { 'tapmq:http-api': 'running' } } })
  const reload = await api.post('/api/v4/reload')
  t.is(reload.text, '{"code":0}')
  await until(() => api.broker.logs.some((entry) => entry.msg === 'configuration reloaded'), 'the reload')
  // the API survived its own reload and the clients are still there
  t.is((await api.get('/api/v4/clients')).json.data.length, 2)
  const refused = await api.post('/api/v4/reload', { data: { allow_anonymous: false } })
  t.is(refused.status, 400)
  t.is(refused.json.code, 108)
})

test('POST /ctrl/stop stops the broker after answering; unknown actions are 400', async (t) => {
  const { api, alpha } = await scene(t)
  t.is((await api.post('/api/v4/ctrl/explode')).status, 400)
  t.is((await api.post('/api/v4/ctrl/restart')).status, 501)
  const closed = once(alpha, 'close')
  t.is((await api.post('/api/v4/ctrl/stop')).text, '{"code":0}')
  await closed
  await until(() => api.broker.logs.some((entry) => entry.msg === 'tapmq stopped'), 'the broker to stop')
  await t.throwsAsync(api.get('/api/v4/brokers'))
})

test('unknown endpoints are 404 with code 108', async (t) => {
  const { api } = await scene(t)
  const reply = await api.get('/api/v4/rules')
  t.is(reply.status, 404)
  t.is(reply.json.code, 108)
})
