import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import { loadConfig } from '../../runtime/config/load.ts'

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname

async function confFile (t: { teardown (fn: () => unknown): void }, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapmq-conf-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'tapmq.conf')
  await writeFile(file, text)
  return file
}

test('NanoMQ 0.8 shipped nanomq.conf loads unchanged', (t) => {
  const { broker, unknown } = loadConfig({ file: join(FIXTURES, 'nanomq.conf'), env: {} })
  t.deepEqual(broker.tcp, { transport: 'tcp', host: '0.0.0.0', port: 1883, path: '/mqtt' })
  t.deepEqual(broker.websocket, { transport: 'ws', host: '0.0.0.0', port: 8083, path: '/mqtt' })
  t.is(broker.tls, undefined)
  t.true(broker.allowAnonymous)
  t.is(broker.maxPacketSize, 1024 * 1024)
  t.deepEqual(broker.httpServer, { enable: false, port: 8081, bind: '127.0.0.1', username: 'admin', password: 'public' })
  t.deepEqual(unknown, [], 'every NanoMQ key is known, even those without effect')
})

test('the stock etc/tapmq.conf loads without unknown keys', (t) => {
  const { broker, unknown } = loadConfig({ file: new URL('../../etc/tapmq.conf', import.meta.url).pathname, env: {} })
  t.deepEqual(unknown, [])
  t.is(broker.tcp.port, 1883)
  t.true(broker.dataDir.endsWith('/data'))
})

test('tcp:// and nmq-tcp:// both work; listener URLs are validated with file:line', async (t) => {
  t.is(loadConfig({ file: await confFile(t, 'url = tcp://127.0.0.1:1999\n'), env: {} }).broker.tcp.port, 1999)
  const file = await confFile(t, '# x\nurl = http://127.0.0.1:1\n')
  t.throws(() => loadConfig({ file, env: {} }), { message: `${file}:2: invalid value for url: "http://127.0.0.1:1" (allowed: unknown scheme http; use one of nmq-tcp, tcp, mqtt, mqtt-tcp, tls+nmq-tcp, tls, mqtts, ssl, nmq-ws, ws, nmq-wss, wss)` })
  const noPort = await confFile(t, 'websocket.url = nmq-ws://0.0.0.0/mqtt\n')
  t.throws(() => loadConfig({ file: noPort, env: {} }), { message: /:1: invalid value for websocket\.url: .*the port is missing/ })
})

test('invalid values exit with file:line, key, value and what is allowed', async (t) => {
  const file = await confFile(t, 'allow_anonymous = maybe\n')
  t.throws(() => loadConfig({ file, env: {} }), { code: 'TAPMQ_ERR_CONF_VALUE', message: `${file}:1: invalid value for allow_anonymous: "maybe" (allowed: true | false)` })
  const levels = await confFile(t, '\n\nmax_topic_levels = 500\n')
  t.throws(() => loadConfig({ file: levels, env: {} }), { message: /:3: invalid value for max_topic_levels: "500" \(allowed: an integer from 1 to 100\)/ })
})

test('a missing conf file is an error naming it', (t) => {
  t.throws(() => loadConfig({ file: '/nonexistent/tapmq.conf', env: {} }), { code: 'TAPMQ_ERR_CONF_FILE', message: /\/nonexistent\/tapmq\.conf: ENOENT/ })
})

test('unknown keys are reported with their line', async (t) => {
  const file = await confFile(t, 'url = nmq-tcp://127.0.0.1:1883\nalow_anonymous = false\n')
  const { unknown } = loadConfig({ file, env: {} })
  t.deepEqual(unknown.map((entry) => [entry.key, entry.location.file, entry.location.line]), [['alow_anonymous', file, 2]])
})

test('layering: file < environment (TAPMQ_*, NANOMQ_*) < command line', async (t) => {
  const file = await confFile(t, 'url = nmq-tcp://127.0.0.1:1001\nhttp_server.port = 1002\nallow_anonymous = true\nlog.level = info\n')
  const env = { NANOMQ_BROKER_URL: 'nmq-tcp://127.0.0.1:2001', TAPMQ_HTTP_SERVER_PORT: '2002', NANOMQ_ALLOW_ANONYMOUS: 'false' }
  const fromEnv = loadConfig({ file, env }).broker
  t.is(fromEnv.tcp.port, 2001)
  t.is(fromEnv.httpServer.port, 2002)
  t.false(fromEnv.allowAnonymous)
  t.is(fromEnv.log.level, 'info')
  const fromCli = loadConfig({ file, env, cli: [{ key: 'url', value: 'nmq-tcp://127.0.0.1:3001', flag: '--url' }] }).broker
  t.is(fromCli.tcp.port, 3001)
})

test('errors from the environment and the command line name their source', async (t) => {
  const file = await confFile(t, 'url = nmq-tcp://127.0.0.1:1001\n')
  t.throws(() => loadConfig({ file, env: { NANOMQ_HTTP_SERVER_PORT: 'eighty' } }), { message: /^environment NANOMQ_HTTP_SERVER_PORT: invalid value for http_server\.port: "eighty"/ })
  t.throws(() => loadConfig({ file, env: {}, cli: [{ key: 'log.level', value: 'loud', flag: '--log_level' }] }), { message: /^command line --log_level: invalid value for log\.level: "loud" \(allowed: trace \| debug/ })
})

test('durations and sizes convert to milliseconds and bytes; relative paths resolve beside the file', async (t) => {
  const file = await confFile(t, 'drain_timeout = 2m\nconnect_timeout = 1500ms\nmax_packet_size = 2\ndata_dir = state\npid_file = /run/tapmq.pid\n')
  const { broker } = loadConfig({ file, env: {} })
  t.is(broker.aedes.drainTimeout, 120_000)
  t.is(broker.aedes.connectTimeout, 1500)
  t.is(broker.maxPacketSize, 2048)
  t.is(broker.dataDir, join(file, '..', 'state'))
  t.is(broker.pidFile, '/run/tapmq.pid')
})
