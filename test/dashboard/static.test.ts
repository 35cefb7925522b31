// How the http-api plugin serves the dashboard: public page and files with the right types,
// no way out of dashboard/dist, the index.html fallback, credentials still needed on every
// /api path, and the per-topic publish counter behind the topic tree's rates.
import { request as httpRequest } from 'node:http'
import test from 'ava'
import { TOPIC_LIMIT, TopicCounter } from '../../plugins/http-api/static.ts'
import { startApi } from '../http-api/helpers.ts'
import { connectClient } from '../helpers/mqtt.ts'
import { ensureDashboardBuilt } from './helpers.ts'

test.before(() => ensureDashboardBuilt())

/** GET with the path sent exactly as written (fetch would normalize `..` away). */
function rawGet (base: string, path: string): Promise<{ status: number, type: string | undefined, body: string }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method: 'GET', timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }))
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer`)))
    req.on('error', reject)
    req.end()
  })
}

test('the page and its files are served without credentials, with their content types', async (t) => {
  const api = await startApi(t)
  const page = await api.request('GET', '/', { auth: null })
  t.is(page.status, 200)
  t.is(page.headers.get('content-type'), 'text/html; charset=utf-8')
  t.is(page.headers.get('cache-control'), 'no-cache')
  t.regex(page.headers.get('content-security-policy') ?? '', /default-src 'self'/)
  t.is(page.headers.get('x-content-type-options'), 'nosniff')
  t.regex(page.text, /<div id="app"><\/div>/)

  // Vite's hashed bundle names: cached for good
  const script = /src="(\/assets\/[^"]+\.js)"/.exec(page.text)?.[1]
  const style = /href="(\/assets\/[^"]+\.css)"/.exec(page.text)?.[1]
  t.truthy(script)
  t.truthy(style)
  const js = await api.request('GET', script!, { auth: null })
  t.is(js.status, 200)
  t.regex(js.headers.get('content-type') ?? '', /^(text|application)\/javascript/)
  t.regex(js.headers.get('cache-control') ?? '', /immutable/)
  t.is((await api.request('GET', style!, { auth: null })).headers.get('content-type'), 'text/css; charset=utf-8')
  t.is((await api.request('GET', '/favicon.svg', { auth: null })).headers.get('content-type'), 'image/svg+xml')
  t.is((await api.request('HEAD', '/', { auth: null })).status, 200)
})

test('paths of the app fall back to index.html; missing files are 404', async (t) => {
  const api = await startApi(t)
  const index = (await api.request('GET', '/', { auth: null })).text
  for (const path of ['/clients', '/topics/deep/link', '/index.html']) {
    const reply = await api.request('GET', path, { auth: null })
    t.is(reply.status, 200, path)
    t.is(reply.text, index, path)
  }
  t.is((await api.request('GET', '/assets/nothing-here.js', { auth: null })).status, 404)
  t.is((await api.request('GET', '/missing.png', { auth: null })).status, 404)
})

test('no path leaves dashboard/dist', async (t) => {
  const api = await startApi(t)
  const index = (await api.request('GET', '/', { auth: null })).text
  for (const path of [
    '/../package.json', '/../../package.json', '/assets/../../package.json', '/%2e%2e/package.json',
    '/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json', '/..%5c..%5cpackage.json', '/%2e%2e%2fvite.config.ts',
    '/..', '/%00', '/assets/%2e%2e/%2e%2e/sdk/index.ts'
  ]) {
    const reply = await rawGet(api.url, path)
    // `..` that stays inside (`/..` is `/`) may give the page itself; nothing else
    if (reply.status === 200) t.is(reply.body, index, path)
    t.notRegex(reply.body, /"name": "tapmq"|defineConfig|definePlugin/, path)
  }
})

test('every /api path still needs credentials, however it is spelled', async (t) => {
  const api = await startApi(t)
  for (const path of ['/api/v4/clients', '//api/v4/clients', '/api/v4/topic-stats', '/api/v4/no-such-thing', '/API/v4/clients', '/%61pi/v4/clients', '/api']) {
    const reply = await rawGet(api.url, path)
    t.is(reply.status, 401, path)
  }
  // with them, an unknown API path is the API's 404, not the page
  const unknown = await api.get('/api/v4/no-such-thing')
  t.is(unknown.status, 404)
  t.is(unknown.json.code, 108)
})

test('/api/v4/topic-stats counts client messages per topic', async (t) => {
  const api = await startApi(t)
  t.deepEqual((await api.get('/api/v4/topic-stats')).json, { code: 0, data: { topics: [], limit: TOPIC_LIMIT } })
  const client = await connectClient(t, api.broker.url, { clientId: 'counted' })
  for (let i = 0; i < 3; i++) await client.publishAsync('site/a/temp', String(i), { qos: 1 })
  await client.publishAsync('site/b/temp', 'x', { qos: 1 })
  // the API's own publishes are the broker's, not a client's: not counted
  t.is((await api.post('/api/v4/mqtt/publish', { topic: 'site/c/temp', payload: 'y' })).status, 200)
  const { topics } = (await api.get('/api/v4/topic-stats')).json.data as { topics: Array<{ topic: string, messages: number }> }
  t.deepEqual(topics.sort((a, b) => a.topic.localeCompare(b.topic)), [
    { topic: 'site/a/temp', messages: 3 },
    { topic: 'site/b/temp', messages: 1 }
  ])
})

test('the topic counter keeps the most recently published topics, up to its limit', (t) => {
  const counter = new TopicCounter()
  counter.count('first')
  for (let i = 0; i < TOPIC_LIMIT; i++) counter.count(`t/${i}`)
  const snapshot = counter.snapshot()
  t.is(snapshot.length, TOPIC_LIMIT)
  t.false(snapshot.some((entry) => entry.topic === 'first'))
  // a busy topic stays while quiet ones go
  counter.count('t/0')
  counter.count('new')
  const names = new Set(counter.snapshot().map((entry) => entry.topic))
  t.true(names.has('t/0'))
  t.false(names.has('t/1'))
  t.is(counter.snapshot().find((entry) => entry.topic === 't/0')?.messages, 2)
})
