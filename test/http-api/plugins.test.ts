// Plugins at runtime through the API: list with state, health, hooks and counters; disable
// and enable change behaviour live, without dropping connections, and are not persisted.
import test from 'ava'
import { definePlugin } from '../../sdk/index.ts'
import { connectClient } from '../helpers/mqtt.ts'
import { startApi } from './helpers.ts'

/** Counts the messages it sees on message.publish, in a metric and in `seen`. */
function counterPlugin (seen: string[]) {
  return definePlugin({
    name: 'test:counter',
    version: '2.3.4',
    setup (host) {
      const published = host.metrics.counter('published_total', 'Messages seen')
      host.hooks.message.publish.tap('test:counter', (message) => {
        seen.push(message.topic)
        published.inc()
      })
      return { health: () => ({ status: 'ok', detail: `seen ${seen.length}` }) }
    }
  })
}

const path = (name: string, action = '') => `/api/v4/plugins/${encodeURIComponent(name)}${action ? '/' + action : ''}`

test('GET /plugins lists name, version, state, health, hooks and counters', async (t) => {
  const seen: string[] = []
  const api = await startApi(t, {}, { plugins: [counterPlugin(seen)] })
  const reply = await api.get('/api/v4/plugins')
  t.is(reply.status, 200)
  const [self, counter] = reply.json.data
  t.like(self, { name: 'tapmq:http-api', state: 'running', health: { status: 'ok' } })
  t.regex(self.health.detail, /^listening on http:\/\/127\.0\.0\.1:\d+$/)
  t.deepEqual(counter, {
    id: 'test:counter',
    name: 'test:counter',
    version: '2.3.4',
    state: 'running',
    health: { status: 'ok', detail: 'seen 0' },
    hooks: ['message.publish'],
    counters: { published_total: 0 }
  })
  t.deepEqual((await api.get(path('test:counter'))).json.data, counter)
  const unknown = await api.get(path('no-such-plugin'))
  t.is(unknown.status, 404)
  t.is(unknown.json.code, 108)
})

test('disable stops a plugin live, enable resumes it; connections stay up; nothing is persisted', async (t) => {
  const seen: string[] = []
  const api = await startApi(t, {}, { plugins: [counterPlugin(seen)] })
  const client = await connectClient(t, api.broker.url, { clientId: 'publisher' })
  let closes = 0
  client.on('close', () => closes++)
  const counters = async () => (await api.get(path('test:counter'))).json.data.counters.published_total

  await client.publishAsync('before', 'x', { qos: 1 })
  t.deepEqual(seen, ['before'])
  t.is(await counters(), 1)

  const disabled = await api.request('PUT', path('test:counter', 'disable'))
  t.is(disabled.status, 200)
  t.like(disabled.json, { code: 0, persisted: false, data: { state: 'disabled', detail: 'disabled at runtime', hooks: [] } })
  await client.publishAsync('while-disabled', 'x', { qos: 1 })
  t.deepEqual(seen, ['before'])
  t.is(await counters(), 1)

  const enabled = await api.request('PUT', path('test:counter', 'enable'))
  t.like(enabled.json, { code: 0, persisted: false, data: { state: 'running', hooks: ['message.publish'] } })
  await client.publishAsync('after', 'x', { qos: 1 })
  t.deepEqual(seen, ['before', 'after'])
  t.is(await counters(), 2)

  const reloaded = await api.request('PUT', path('test:counter', 'reload'))
  t.like(reloaded.json, { code: 0, persisted: false, data: { state: 'running' } })
  await client.publishAsync('after-reload', 'x', { qos: 1 })
  t.deepEqual(seen, ['before', 'after', 'after-reload'])

  t.true(client.connected)
  t.is(closes, 0)
})

test('the API cannot disable itself, but can reload itself', async (t) => {
  const api = await startApi(t)
  const refused = await api.request('PUT', path('tapmq:http-api', 'disable'))
  t.is(refused.status, 400)
  t.is(refused.json.code, 108)
  t.regex(refused.json.message, /plugins\.conf/)
  const reload = await api.request('PUT', path('tapmq:http-api', 'reload'))
  t.like(reload.json, { code: 0, data: { state: 'running' }, persisted: false })
  t.is((await api.get('/api/v4/brokers')).status, 200)
})

test('a plugin whose setup fails on enable is reported, and the API keeps working', async (t) => {
  let fail = false
  const fragile = definePlugin({
    name: 'test:fragile',
    version: '1.0.0',
    setup () {
      if (fail) throw new Error('cannot start now')
    }
  })
  const api = await startApi(t, {}, { plugins: [fragile] })
  t.is((await api.request('PUT', path('test:fragile', 'disable'))).status, 200)
  fail = true
  const reply = await api.request('PUT', path('test:fragile', 'enable'))
  t.is(reply.status, 500)
  t.is(reply.json.code, 102)
  t.regex(reply.json.message, /cannot start now/)
  t.like((await api.get(path('test:fragile'))).json.data, { state: 'failed', health: { status: 'down' } })
})
