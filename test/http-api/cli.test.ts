// End to end through the real command line: `tapmq start --http -p <port>` with a
// plugins.conf that switches the HTTP API on, then `POST /api/v4/ctrl/stop` ends the process.
import test from 'ava'
import { freePort, tapmq, workspace } from '../helpers/cli.ts'
import { connectClient, until } from '../helpers/mqtt.ts'
import { basic } from './helpers.ts'

test('tapmq start --http -p N serves the API; POST /api/v4/ctrl/stop makes the process exit 0', async (t) => {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const plugins = await ws.write('plugins.conf', '## the HTTP API, idle unless http_server.enable (here: --http)\nplugin.http_api = on\n')
  const httpPort = await freePort()
  const broker = tapmq(['start', '--conf', ws.conf, '--plugins', plugins, '--http', '-p', String(httpPort)])
  t.teardown(() => broker.child.kill('SIGKILL'))
  await broker.waitFor(/"msg":"tapmq started"/)

  const base = `http://127.0.0.1:${httpPort}/api/v4`
  const headers = { authorization: basic('admin', 'public') }
  const client = await connectClient(t, `mqtt://127.0.0.1:${ws.port}`, { clientId: 'cli-e2e' })
  await client.subscribeAsync('e2e/#')

  const brokers = await fetch(`${base}/brokers`, { headers, signal: AbortSignal.timeout(5000) })
  t.is(brokers.status, 200)
  const body = await brokers.json() as { code: number, data: Array<{ node_status: string, version: string }> }
  t.is(body.code, 0)
  t.like(body.data[0], { node_status: 'Running' })
  const clients = await (await fetch(`${base}/clients`, { headers, signal: AbortSignal.timeout(5000) })).json() as { data: Array<{ client_id: string }> }
  t.deepEqual(clients.data.map((c) => c.client_id), ['cli-e2e'])
  // the listener binds 127.0.0.1 by default, and the main config reached the plugin
  const conf = await (await fetch(`${base}/configuration/http_server`, { headers, signal: AbortSignal.timeout(5000) })).json() as { data: Record<string, unknown> }
  t.like(conf.data, { enable: true, port: httpPort, bind: '127.0.0.1' })

  const stop = await fetch(`${base}/ctrl/stop`, { method: 'POST', headers, signal: AbortSignal.timeout(5000) })
  t.deepEqual(await stop.json(), { code: 0 })
  t.is(await broker.exited(), 0)
  t.regex(broker.output(), /"msg":"tapmq stopped"/)
  await until(() => !client.connected, 'the MQTT client to see the broker go')
})
