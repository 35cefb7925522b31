// MQTT 5 clients in the HTTP API: API v1 req 5 says protocol 5, API v4 /clients says
// proto_ver 5 (and filters on it), beside MQTT 3.1.1 clients with 4.
import test from 'ava'
import { connectClient } from '../helpers/mqtt.ts'
import { startApi } from './helpers.ts'

test('an MQTT 5 client is protocol 5 in API v1 and proto_ver 5 in API v4, beside a 3.1.1 client with 4', async (t) => {
  const api = await startApi(t)
  await connectClient(t, api.broker.url, { clientId: 'five', protocolVersion: 5, keepalive: 30, properties: { userProperties: { a: 'b' } } })
  await connectClient(t, api.broker.url, { clientId: 'four', keepalive: 60 })

  const v1 = await api.post('/api/v1', { req: 5, seq: 1 })
  t.deepEqual(v1.json.data, [
    { client_id: 'five', username: '', keepalive: 30, protocol: 5, connect_status: 1 },
    { client_id: 'four', username: '', keepalive: 60, protocol: 4, connect_status: 1 }
  ])

  const v4 = await api.get('/api/v4/clients')
  t.like(v4.json.data.find((c: { client_id: string }) => c.client_id === 'five'), { proto_name: 'MQTT', proto_ver: 5, clean_start: true })
  t.like(v4.json.data.find((c: { client_id: string }) => c.client_id === 'four'), { proto_name: 'MQTT', proto_ver: 4 })
  const ids = async (query: string) => (await api.get('/api/v4/clients?' + query)).json.data.map((c: { client_id: string }) => c.client_id)
  t.deepEqual(await ids('proto_ver=5'), ['five'])
  t.deepEqual(await ids('proto_ver=4'), ['four'])
  t.like((await api.get('/api/v4/clients/five')).json.data[0], { client_id: 'five', proto_ver: 5 })
})
