// Where the server's settings come from: the main config file, NanoMQ's environment
// variables, reload; idle unless enabled; the password only through config.secret.
import { Writable } from 'node:stream'
import { connect, createServer } from 'node:net'
import test from 'ava'
import httpApi from '../../plugins/http-api/index.ts'
import { boot, type BootOptions } from '../../runtime/boot.ts'
import { createLogger } from '../../runtime/logger.ts'
import { definePlugin } from '../../sdk/index.ts'
import { startTestBroker } from '../../sdk/testing.ts'
import { freePort, workspace, type Workspace } from '../helpers/cli.ts'
import { type Teardown, WAIT_MS, within } from '../helpers/mqtt.ts'
import { basic, client } from './helpers.ts'

const quietLog = () => createLogger({ level: 'info', format: 'json' }, new Writable({ write (_chunk, _encoding, done) { done() } }))

async function bootFrom (t: Teardown, ws: Workspace, options: Partial<BootOptions> = {}) {
  const plugins = await ws.write('plugins.conf', 'plugin.http_api = on\n')
  const booted = await boot({ confFile: ws.conf, pluginsFile: plugins, env: {}, log: quietLog(), ...options })
  t.teardown(() => booted.tapmq.stop())
  return booted
}

/** Polls an async check every 20 ms until it gives a value; bounded by WAIT_MS. */
async function eventually<T> (check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`no answer within ${WAIT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function refused (port: number): Promise<boolean> {
  return within(new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(true))
  }), 'a connection attempt')
}

test('idle unless http_server.enable = true: nothing listens, health says why', async (t) => {
  const port = await freePort()
  const ws = await workspace(`http_server.port = ${port}\n`)
  t.teardown(() => ws.remove())
  const { tapmq } = await bootFrom(t, ws)
  const status = tapmq.plugins.status('http_api')
  t.like(status, { name: 'tapmq:http-api', state: 'running', health: { status: 'ok', detail: 'idle: http_server.enable is false' } })
  t.true(await refused(port))
})

test('the main config sets port, bind and credentials; the password is never shown', async (t) => {
  const port = await freePort()
  const ws = await workspace([
    'http_server.enable = true', `http_server.port = ${port}`, 'http_server.bind = 127.0.0.1',
    'http_server.username = ops', 'http_server.password = correct-horse'
  ].join('\n'))
  t.teardown(() => ws.remove())
  const { tapmq } = await bootFrom(t, ws)
  const api = client(`http://127.0.0.1:${port}`, undefined)
  t.is((await api.request('GET', '/api/v4/brokers')).status, 401)
  const auth = basic('ops', 'correct-horse')
  const conf = await api.request('GET', '/api/v4/configuration', { auth })
  t.is(conf.status, 200)
  t.like(conf.json.data, {
    url: `nmq-tcp://127.0.0.1:${ws.port}`,
    websocket: { enable: false },
    http_server: { enable: true, port, bind: '127.0.0.1', username: 'ops', password: '******' }
  })
  const flat = await api.request('GET', '/api/v4/configuration?format=flat', { auth })
  t.is(flat.json.data['http_server.password'], '******')
  t.false(conf.text.includes('correct-horse') || flat.text.includes('correct-horse'))
  t.regex(tapmq.plugins.status('http_api').health.detail ?? '', new RegExp(`listening on http://127.0.0.1:${port}`))
})

test('NanoMQ\'s NANOMQ_HTTP_SERVER_* variables work', async (t) => {
  const port = await freePort()
  const ws = await workspace()
  t.teardown(() => ws.remove())
  await bootFrom(t, ws, {
    env: {
      NANOMQ_HTTP_SERVER_ENABLE: 'true',
      NANOMQ_HTTP_SERVER_PORT: String(port),
      NANOMQ_HTTP_SERVER_USERNAME: 'env-user',
      NANOMQ_HTTP_SERVER_PASSWORD: 'env-pass'
    }
  })
  const api = client(`http://127.0.0.1:${port}`, undefined)
  t.is((await api.request('GET', '/api/v4/nodes', { auth: basic('env-user', 'env-pass') })).status, 200)
  t.is((await api.request('GET', '/api/v4/nodes', { auth: basic('admin', 'public') })).status, 401)
})

test('reload applies new credentials in place and moves the listener when the port changes', async (t) => {
  const [first, second] = [await freePort(), await freePort()]
  const ws = await workspace(`http_server.enable = true\nhttp_server.port = ${first}\nhttp_server.password = one\n`)
  t.teardown(() => ws.remove())
  await bootFrom(t, ws)
  const api = client(`http://127.0.0.1:${first}`, undefined)
  t.is((await api.request('GET', '/api/v4/nodes', { auth: basic('admin', 'one') })).status, 200)

  // new password, same port: the reload request itself is answered, then the new password holds
  await ws.write('tapmq.conf', `url = nmq-tcp://127.0.0.1:${ws.port}\nlog.format = json\ndata_dir = data\npid_file = data/tapmq.pid\n` +
    `http_server.enable = true\nhttp_server.port = ${first}\nhttp_server.password = two\n`)
  t.is((await api.request('POST', '/api/v4/reload', { auth: basic('admin', 'one') })).text, '{"code":0}')
  t.is((await api.request('GET', '/api/v4/nodes', { auth: basic('admin', 'one') })).status, 401)
  t.is((await api.request('GET', '/api/v4/nodes', { auth: basic('admin', 'two') })).status, 200)

  // new port: the answer comes from the old listener, then the new one takes over
  await ws.write('tapmq.conf', `url = nmq-tcp://127.0.0.1:${ws.port}\nlog.format = json\ndata_dir = data\npid_file = data/tapmq.pid\n` +
    `http_server.enable = true\nhttp_server.port = ${second}\nhttp_server.password = two\n`)
  t.is((await api.request('POST', '/api/v4/reload', { auth: basic('admin', 'two') })).text, '{"code":0}')
  const moved = client(`http://127.0.0.1:${second}`, undefined)
  t.is(await eventually(async () => (await moved.request('GET', '/api/v4/nodes', { auth: basic('admin', 'two') }).catch(() => undefined))?.status), 200)
  t.true(await refused(first))
})

test('config.secret is only for keys a plugin declares', async (t) => {
  let error: unknown
  const nosy = definePlugin({
    name: 'test:nosy',
    version: '1.0.0',
    setup (host) {
      try {
        host.config.secret('http_server.password')
      } catch (err) {
        error = err
      }
      t.is(host.config.get('http_server.password'), undefined)
    }
  })
  const broker = await startTestBroker({ plugins: [nosy] })
  t.teardown(() => broker.close())
  t.like(error, { code: 'TAPMQ_ERR_PLUGIN_SECRET' })
})

test('a taken port fails the start, and the error names the address', async (t) => {
  const squatter = createServer()
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())))
  const { port } = squatter.address() as { port: number }
  await t.throwsAsync(startTestBroker({ plugins: [{ plugin: httpApi, options: { enable: true, port } }] }), {
    code: 'TAPMQ_ERR_PLUGIN_SETUP',
    message: new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`)
  })
})
