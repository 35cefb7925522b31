// /api/v4/prometheus: prom-client's exposition of the broker registry (broker gauges,
// process metrics, hook errors, every plugin's counters) plus NanoMQ's metric names.
import test from 'ava'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { definePlugin } from '../../sdk/index.ts'
import { connectClient, until } from '../helpers/mqtt.ts'
import { startApi } from './helpers.ts'

interface Family {
  name: string
  help: string
  type: string
  metrics: Array<{ value?: string, labels?: Record<string, string> }>
}

const probe = definePlugin({
  name: 'test:probe',
  version: '1.0.0',
  setup (host) {
    const seen = host.metrics.counter('seen_total', 'Messages the probe saw')
    host.hooks.message.publish.tap('test:probe', () => seen.inc())
  }
})

async function scrape (api: Awaited<ReturnType<typeof startApi>>): Promise<Map<string, Family>> {
  const reply = await api.get('/api/v4/prometheus')
  if (reply.status !== 200) throw new Error(`scrape answered ${reply.status}`)
  const families = parsePrometheusTextFormat(reply.text) as Family[]
  return new Map(families.map((family) => [family.name, family]))
}

const value = (families: Map<string, Family>, name: string) => Number(families.get(name)?.metrics[0]?.value)

test('the exposition parses and holds the documented families', async (t) => {
  const api = await startApi(t, {}, { plugins: [probe] })
  const reply = await api.get('/api/v4/prometheus')
  t.regex(reply.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)

  const a = await connectClient(t, api.broker.url, { clientId: 'A' })
  await a.subscribeAsync({ 'a/b': { qos: 1 }, 'a/+/c': { qos: 0 } })
  const b = await connectClient(t, api.broker.url, { clientId: 'B' })
  await b.publishAsync('a/b', 'one', { qos: 1 })
  await b.publishAsync('a/b', 'two', { qos: 1 })

  const families = await scrape(api)
  const expected: Record<string, string> = {
    tapmq_connections: 'gauge',
    tapmq_sessions: 'gauge',
    tapmq_subscriptions: 'gauge',
    tapmq_topics: 'gauge',
    tapmq_messages_received_total: 'gauge',
    tapmq_messages_sent_total: 'gauge',
    tapmq_messages_dropped_total: 'gauge',
    tapmq_hook_errors_total: 'counter',
    tapmq_test_probe_seen_total: 'counter',
    tapmq_http_api_requests_total: 'counter',
    tapmq_http_api_auth_failures_total: 'counter',
    nanomq_connections_count: 'gauge',
    nanomq_connections_max: 'gauge',
    nanomq_sessions_count: 'gauge',
    nanomq_sessions_max: 'gauge',
    nanomq_topics_count: 'gauge',
    nanomq_topics_max: 'gauge',
    nanomq_subscribers_count: 'gauge',
    nanomq_subscribers_max: 'gauge',
    nanomq_messages_received: 'counter',
    nanomq_messages_sent: 'counter',
    nanomq_messages_dropped: 'counter',
    nanomq_memory_usage: 'gauge',
    nanomq_memory_usage_max: 'gauge',
    nanomq_cpu_usage: 'gauge',
    nanomq_cpu_usage_max: 'gauge'
  }
  for (const [name, type] of Object.entries(expected)) {
    t.is(families.get(name)?.type.toLowerCase(), type, name)
  }
  t.true([...families.keys()].some((name) => name.startsWith('tapmq_process_')), 'process metrics')
  t.is(value(families, 'tapmq_connections'), 2)
  t.is(value(families, 'tapmq_sessions'), 2)
  t.is(value(families, 'tapmq_subscriptions'), 2)
  // a, a/b, a/+, a/+/c
  t.is(value(families, 'tapmq_topics'), 4)
  t.is(value(families, 'tapmq_messages_received_total'), 2)
  t.is(value(families, 'tapmq_test_probe_seen_total'), 2)
  t.is(value(families, 'nanomq_connections_count'), 2)
  t.is(value(families, 'nanomq_subscribers_count'), 2)
  t.is(value(families, 'nanomq_topics_count'), 4)
  t.is(value(families, 'nanomq_messages_received'), 2)
  t.true(value(families, 'nanomq_memory_usage') > 0)
})

test('the _max families keep the peak after the count falls', async (t) => {
  const api = await startApi(t)
  const one = await connectClient(t, api.broker.url, { clientId: 'one' })
  await connectClient(t, api.broker.url, { clientId: 'two' })
  t.is(value(await scrape(api), 'nanomq_connections_count'), 2)
  await one.endAsync()
  await until(() => api.broker.broker.client('one') === undefined, 'one gone')
  const after = await scrape(api)
  t.is(value(after, 'nanomq_connections_count'), 1)
  t.is(value(after, 'nanomq_connections_max'), 2)
})

test('nanomq_metrics = false leaves NanoMQ\'s names out', async (t) => {
  const api = await startApi(t, { nanomq_metrics: false })
  const families = await scrape(api)
  t.true(families.has('tapmq_connections'))
  t.false([...families.keys()].some((name) => name.startsWith('nanomq_')))
})
