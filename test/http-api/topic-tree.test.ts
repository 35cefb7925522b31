// The topic tree in NanoMQ's exact wire format (nanomq-compat.md section 3.3), the 0.8
// trailing-empty-level quirk on request, and the nested format with retained counts.
import test from 'ava'
import { connectClient } from '../helpers/mqtt.ts'
import { startApi } from './helpers.ts'

/** A subscribes a/b, B subscribes a/+/c, C subscribes # (the worked example). */
async function workedExample (t: Parameters<typeof startApi>[0]) {
  const api = await startApi(t)
  const subscriptions: Array<[string, string]> = [['A', 'a/b'], ['B', 'a/+/c'], ['C', '#']]
  for (const [clientId, filter] of subscriptions) {
    const client = await connectClient(t, api.broker.url, { clientId })
    await client.subscribeAsync(filter)
  }
  return api
}

test('API v1 req 13 gives the worked example byte for byte', async (t) => {
  const api = await workedExample(t)
  const reply = await api.post('/api/v1', { req: 13, seq: 1 })
  t.is(reply.status, 200)
  t.is(reply.text, '{"code":0,"seq":1,"rep":13,"data":[' +
    '[{"topic":"","cld_cnt":2}],' +
    '[{"topic":"#","cld_cnt":0,"client_id":["C"]},{"topic":"a","cld_cnt":2}],' +
    '[{"topic":"+","cld_cnt":1},{"topic":"b","cld_cnt":0,"client_id":["A"]}],' +
    '[{"topic":"c","cld_cnt":0,"client_id":["B"]}]]}')
})

test('GET /api/v4/topic-tree names the key clientid and has no seq', async (t) => {
  const api = await workedExample(t)
  const reply = await api.get('/api/v4/topic-tree')
  t.is(reply.status, 200)
  t.regex(reply.headers.get('content-type') ?? '', /^application\/json/)
  t.is(reply.text, '{"code":0,"data":[' +
    '[{"topic":"","cld_cnt":2}],' +
    '[{"topic":"#","cld_cnt":0,"clientid":["C"]},{"topic":"a","cld_cnt":2}],' +
    '[{"topic":"+","cld_cnt":1},{"topic":"b","cld_cnt":0,"clientid":["A"]}],' +
    '[{"topic":"c","cld_cnt":0,"clientid":["B"]}]]}')
})

test('odd depth: no trailing empty level, unless format=nanomq08 asks for 0.8 (Q15)', async (t) => {
  const api = await startApi(t)
  const a = await connectClient(t, api.broker.url, { clientId: 'A' })
  await a.subscribeAsync('a/b')
  const levels = '[{"topic":"","cld_cnt":1}],[{"topic":"a","cld_cnt":1}],[{"topic":"b","cld_cnt":0,"client_id":["A"]}]'
  t.is((await api.post('/api/v1', { req: 13, seq: 1 })).text, `{"code":0,"seq":1,"rep":13,"data":[${levels}]}`)
  t.is((await api.post('/api/v1?format=nanomq08', { req: 13, seq: 1 })).text, `{"code":0,"seq":1,"rep":13,"data":[${levels},[]]}`)
  t.is((await api.get('/api/v4/topic-tree?format=nanomq08')).text, `{"code":0,"data":[${levels.replace('client_id', 'clientid')},[]]}`)
})

test('an empty broker is the root alone ([[root],[]] in nanomq08)', async (t) => {
  const api = await startApi(t)
  t.is((await api.get('/api/v4/topic-tree')).text, '{"code":0,"data":[[{"topic":"","cld_cnt":0}]]}')
  t.is((await api.get('/api/v4/topic-tree?format=nanomq08')).text, '{"code":0,"data":[[{"topic":"","cld_cnt":0}],[]]}')
})

test('clients subscribed to the same filter share its node; unsubscribing prunes the tree', async (t) => {
  const api = await startApi(t)
  const one = await connectClient(t, api.broker.url, { clientId: 'one' })
  const two = await connectClient(t, api.broker.url, { clientId: 'two' })
  await one.subscribeAsync('x/y')
  await two.subscribeAsync('x/y')
  t.deepEqual((await api.get('/api/v4/topic-tree')).json.data, [
    [{ topic: '', cld_cnt: 1 }],
    [{ topic: 'x', cld_cnt: 1 }],
    [{ topic: 'y', cld_cnt: 0, clientid: ['one', 'two'] }]
  ])
  await one.unsubscribeAsync('x/y')
  await two.unsubscribeAsync('x/y')
  t.is((await api.get('/api/v4/topic-tree')).text, '{"code":0,"data":[[{"topic":"","cld_cnt":0}]]}')
})

test('format=tree nests the levels and counts the retained messages each filter would receive', async (t) => {
  const api = await workedExample(t)
  for (const topic of ['a/b', 'a/x/c', 'a/y/c', 'z', '$SYS/info']) {
    t.is((await api.post('/api/v4/mqtt/publish', { topic, payload: 'r', retain: true, clientid: 'admin' })).status, 200)
  }
  const reply = await api.get('/api/v4/topic-tree?format=tree')
  t.is(reply.status, 200)
  t.deepEqual(reply.json, {
    code: 0,
    data: {
      topic: '',
      filter: '',
      clientid: [],
      retained: 5,
      children: [
        // `#` does not match `$SYS/info` at the first level
        { topic: '#', filter: '#', clientid: ['C'], retained: 4, children: [] },
        {
          topic: 'a',
          filter: 'a',
          clientid: [],
          retained: 0,
          children: [
            // a/+ gets a/b; a/+/c gets a/x/c and a/y/c
            { topic: '+', filter: 'a/+', clientid: [], retained: 1, children: [{ topic: 'c', filter: 'a/+/c', clientid: ['B'], retained: 2, children: [] }] },
            { topic: 'b', filter: 'a/b', clientid: ['A'], retained: 1, children: [] }
          ]
        }
      ]
    }
  })
  // the same through API v1
  const v1 = await api.post('/api/v1?format=tree', { req: 13, seq: 9 })
  t.deepEqual(v1.json.data, reply.json.data)
})

test('an unknown format is a parameter error', async (t) => {
  const api = await startApi(t)
  const reply = await api.get('/api/v4/topic-tree?format=yaml')
  t.is(reply.status, 400)
  t.is(reply.json.code, 108)
})
