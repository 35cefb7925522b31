// web_hook.conf: the stock file, defaults, aliases, extension keys, and every bad value
// stopping start-up with the file and line to fix.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { Conf, parseConf } from '../../sdk/index.ts'
import { type Options, parse } from '../../plugins/webhook/index.ts'
import { connectClient, tmpDir } from '../helpers/mqtt.ts'
import { bootFiles, confFile, optionsFrom, Receiver } from './receiver.ts'

const STOCK = new URL('../../etc/web_hook.conf', import.meta.url).pathname

test('the stock etc/web_hook.conf: off, NanoMQ\'s values, every key read, the defaults', (t) => {
  const conf = Conf.fromFile(STOCK)
  t.false(conf.bool('web.hook.enable', true))
  const options = parse(conf)
  t.deepEqual(conf.unread().map((entry) => entry.key), [])
  t.deepEqual(options, {
    url: 'http://127.0.0.1/',
    headers: [{ name: 'content-type', value: 'application/json' }],
    encoding: 'plain',
    poolSize: 32,
    pipelining: 1,
    rules: [],
    ssl: { verify: true },
    connectTimeoutMs: 5000,
    requestTimeoutMs: 5000,
    retry: { maxRetries: 5, initialBackoffMs: 500, maxBackoffMs: 30_000 },
    queue: { maxEvents: 10_000, maxBytes: 64 * 1024 * 1024 },
    batch: { maxEvents: 1, maxDelayMs: 100, maxBytes: 1024 * 1024 },
    signingSecrets: [],
    workerNice: 5,
    drainTimeoutMs: 5000,
    warnings: []
  } satisfies Options)
})

test('the stock file\'s commented rules and extension keys, uncommented, are valid and give their defaults', async (t) => {
  const text = (await readFile(STOCK, 'utf8'))
    .replace(/^#(web\.hook\.rule\.)/gm, '$1')
    .replace(/^## (web\.hook\.(?!ssl\.|signing\.)[a-z_.]+ = .*)$/gm, '$1')
  const options = await optionsFrom(t, text)
  t.is(options.rules.length, 13)
  t.deepEqual(options.warnings, [])
  t.like(options, { connectTimeoutMs: 5000, requestTimeoutMs: 5000, pipelining: 1, drainTimeoutMs: 5000, workerNice: 5 })
  t.deepEqual(options.retry, { maxRetries: 5, initialBackoffMs: 500, maxBackoffMs: 30_000 })
  t.deepEqual(options.queue, { maxEvents: 10_000, maxBytes: 64 * 1024 * 1024 })
  t.deepEqual(options.batch, { maxEvents: 1, maxDelayMs: 100, maxBytes: 1024 * 1024 })
})

test('extension keys, units, TLS paths relative to the file, secrets', async (t) => {
  const dir = await tmpDir(t)
  await writeFile(join(dir, 'ca.pem'), 'not checked until used')
  const file = join(dir, 'web_hook.conf')
  await writeFile(file, [
    'web.hook.url = https://hooks.example.com:8443/in?x=1',
    'web.hook.ssl.cacertfile = ca.pem',
    'web.hook.ssl.verify = false',
    'web.hook.ssl.server_name_indication = hooks.internal',
    'web.hook.pool_size = 4',
    'web.hook.enable_pipelining = 3',
    'web.hook.connect_timeout = 250ms',
    'web.hook.request_timeout = 2s',
    'web.hook.retry.max_retries = 0',
    'web.hook.retry.initial_backoff = 1s',
    'web.hook.retry.max_backoff = 1m',
    'web.hook.queue.max_events = 500',
    'web.hook.queue.max_bytes = 2MB',
    'web.hook.batch.max_events = 50',
    'web.hook.batch.max_delay = 1s',
    'web.hook.batch.max_bytes = 256KB',
    'web.hook.signing.secrets = whsec_MDEyMzQ1Njc4OWFiY2RlZg==, whsec_ZmVkY2JhOTg3NjU0MzIxMA==',
    'web.hook.drain_timeout = 0s',
    'web.hook.worker_nice = 0'
  ].join('\n'))
  const options = parse(Conf.fromFile(file))
  t.like(options, {
    url: 'https://hooks.example.com:8443/in?x=1',
    ssl: { cacertfile: join(dir, 'ca.pem'), verify: false, serverNameIndication: 'hooks.internal' },
    poolSize: 4,
    pipelining: 3,
    connectTimeoutMs: 250,
    requestTimeoutMs: 2000,
    retry: { maxRetries: 0, initialBackoffMs: 1000, maxBackoffMs: 60_000 },
    queue: { maxEvents: 500, maxBytes: 2 * 1024 * 1024 },
    batch: { maxEvents: 50, maxDelayMs: 1000, maxBytes: 256 * 1024 },
    signingSecrets: ['whsec_MDEyMzQ1Njc4OWFiY2RlZg==', 'whsec_ZmVkY2JhOTg3NjU0MzIxMA=='],
    drainTimeoutMs: 0,
    workerNice: 0
  })
})

test('rules: a rule whose action disagrees with its key, a topic on an event without one, unknown fields: warnings with file:line', async (t) => {
  const file = await confFile(t, [
    'web.hook.url=http://127.0.0.1:9',
    'web.hook.rule.client.connack.1={"action": "on_client_connected"}',
    'web.hook.rule.client.disconnected.7={"action": "on_client_disconnected", "topic": "a/#"}',
    'web.hook.rule.message.publish.2={"action": "on_message_publish", "topic": "x/+", "qos": 1}',
    'web.hook.rule.session.terminated.3={}'
  ].join('\n'))
  const options = parse(Conf.fromFile(file))
  t.deepEqual(options.rules, [
    { event: 'client.connack' },
    { event: 'client.disconnected' },
    { event: 'message.publish', topic: 'x/+' },
    { event: 'session.terminated' }
  ])
  t.deepEqual(options.warnings, [
    `${file}:2: web.hook.rule.client.connack.1 has "action": "on_client_connected", but the key decides: it fires on client.connack (expected "on_client_connack")`,
    `${file}:3: web.hook.rule.client.disconnected.7 has a "topic", but client.disconnected has no topic; the rule matches every client.disconnected`,
    `${file}:4: web.hook.rule.message.publish.2: unknown field "qos" ignored`,
    `${file}:5: web.hook.rule.session.terminated.3 has no "action"; it fires on session.terminated (expected "on_session_terminated")`
  ])
})

/** [what, the line at fault, the error it gives]; every case is the second line of its file */
const BAD: Array<[string, string, RegExp]> = [
  ['a URL that is not a URL', 'web.hook.url=127.0.0.1:8080', /invalid value for web\.hook\.url: "127\.0\.0\.1:8080" \(allowed: a URL with scheme http, https\)|allowed: a URL such as http/],
  ['a URL with another scheme', 'web.hook.url=ftp://127.0.0.1/', /web\.hook\.url.*allowed: a URL with scheme http, https/],
  ['a URL with credentials', 'web.hook.url=http://user:pw@127.0.0.1/', /web\.hook\.url.*without user:password@/],
  ['an unknown encoding', 'web.hook.body.encoding_of_payload_field=base32', /encoding_of_payload_field: "base32" \(allowed: plain \| base64 \| base62 \| base62_nanomq08\)/],
  ['an unknown encoding under the old name', 'web.hook.encode_payload=hex', /web\.hook\.encode_payload: "hex"/],
  ['pool_size 0', 'web.hook.pool_size=0', /web\.hook\.pool_size: "0" \(allowed: an integer from 1 to 1024\)/],
  ['pool_size negative', 'web.hook.pool_size=-4', /web\.hook\.pool_size: "-4"/],
  ['pool_size not a number', 'web.hook.pool_size=many', /web\.hook\.pool_size: "many"/],
  ['a header the sender owns', 'web.hook.headers.content-length=5', /web\.hook\.headers\.content-length.*a header other than Host/],
  ['a header value with a control character', 'web.hook.headers.x-a=b\u0001c', /web\.hook\.headers\.x-a.*without control characters/],
  ['a header set twice', 'web.hook.headers.X-A=1\nweb.hook.headers.x-a=2', /one line per header name/],
  ['a malformed header line', 'web.hook.headers.bad header=1', /expected "key = value"/],
  ['rule JSON that does not parse', 'web.hook.rule.message.publish.1={"action": "on_message_publish", "topic": }', /web\.hook\.rule\.message\.publish\.1.*allowed: JSON: \{"action"/],
  ['rule JSON that is not an object', 'web.hook.rule.message.publish.1=["on_message_publish"]', /allowed: a JSON object/],
  ['a rule topic that is not a filter', 'web.hook.rule.message.publish.1={"action": "on_message_publish", "topic": "a/#/b"}', /"topic" as an MQTT topic filter/],
  ['a rule topic that is not a string', 'web.hook.rule.message.publish.1={"action": "on_message_publish", "topic": 7}', /"topic" as an MQTT topic filter/],
  ['a rule action that is not a string', 'web.hook.rule.message.publish.1={"action": true}', /"action" as a string/],
  ['a rule for an unknown event', 'web.hook.rule.message.published.1={"action": "on_message_published"}', /web\.hook\.rule\.message\.published\.1.*<event> one of client\.connect/],
  ['a rule without a number', 'web.hook.rule.message.publish={"action": "on_message_publish"}', /web\.hook\.rule\.message\.publish: "message\.publish"/],
  ['a rule number out of range', 'web.hook.rule.message.publish.70000={"action": "on_message_publish"}', /<n> a number from 1 to 65535/],
  ['a TLS file that does not exist', 'web.hook.ssl.cacertfile=/nonexistent/ca.pem', /web\.hook\.ssl\.cacertfile: "\/nonexistent\/ca\.pem" \(allowed: a readable file \(ENOENT: \/nonexistent\/ca\.pem\)\)/],
  ['a certificate without its key', `web.hook.ssl.certfile=${STOCK}`, /web\.hook\.ssl\.certfile.*certfile and web\.hook\.ssl\.keyfile together/],
  ['verify that is not a boolean', 'web.hook.ssl.verify=yes', /web\.hook\.ssl\.verify: "yes" \(allowed: true \| false\)/],
  ['a timeout without a unit', 'web.hook.request_timeout=5', /web\.hook\.request_timeout: "5"/],
  ['a zero timeout', 'web.hook.connect_timeout=0s', /web\.hook\.connect_timeout.*above zero/],
  ['a queue size without meaning', 'web.hook.queue.max_bytes=lots', /web\.hook\.queue\.max_bytes: "lots"/],
  ['a signing secret without whsec_', 'web.hook.signing.secrets=supersecret', /web\.hook\.signing\.secrets.*whsec_/],
  ['a signing secret too short', 'web.hook.signing.secrets=whsec_YWJj', /web\.hook\.signing\.secrets/],
  ['initial backoff above the maximum', 'web.hook.retry.initial_backoff=1m', /web\.hook\.retry\.initial_backoff.*no longer than web\.hook\.retry\.max_backoff/],
  ['pipelining out of range', 'web.hook.enable_pipelining=500', /web\.hook\.enable_pipelining: "500"/],
  ['a nice value out of range', 'web.hook.worker_nice=20', /web\.hook\.worker_nice: "20" \(allowed: an integer from 0 to 19\)/]
]

for (const [what, line, message] of BAD) {
  test(`config error with file:line: ${what}`, async (t) => {
    const file = await confFile(t, `web.hook.url=http://127.0.0.1:9/\n${line}\n`)
    const error = t.throws(() => parse(Conf.fromFile(file)), { message })
    const at = line.includes('\n') ? 3 : 2
    t.true(error!.message.startsWith(`${file}:${at}: `), error!.message)
    t.regex((error as { code?: string }).code ?? '', /^TAPMQ_ERR_CONF_(VALUE|SYNTAX)$/)
  })
}

test('no URL at all names the key and the file', (t) => {
  t.throws(() => parse(new Conf(parseConf('web.hook.pool_size=4', 'my_hook.conf'), 'my_hook.conf')), {
    code: 'TAPMQ_ERR_CONF_MISSING', message: 'web.hook.url is required in my_hook.conf'
  })
})

test('loaded from plugins.conf: the first-party plugin, its file, inline keys from plugins.conf', async (t) => {
  const receiver = await Receiver.start(t)
  const { port, start } = await bootFiles(t,
    `web.hook.enable = true\nweb.hook.url = ${receiver.url('/from-file')}\nweb.hook.rule.client.connack.1 = {"action": "on_client_connack"}\n`,
    'plugin.webhook = on\nplugin.webhook.conf = web_hook.conf\nplugin.webhook.web.hook.headers.x-from = plugins.conf\n')
  const { tapmq } = await start()
  t.teardown(() => tapmq.stop())
  t.like(tapmq.plugins.status('webhook'), { name: 'tapmq:webhook', state: 'running', hooks: ['client.connack'] })
  await connectClient(t, `mqtt://127.0.0.1:${port}`, { clientId: 'loaded' })
  const [request] = await receiver.count(1)
  t.is(request!.url, '/from-file')
  t.is(request!.headers['x-from'], 'plugins.conf')
})

test('web.hook.enable=false leaves the plugin loaded but idle, saying where', async (t) => {
  const { dir, start } = await bootFiles(t, 'web.hook.enable=false\nweb.hook.url=http://127.0.0.1:80\n')
  const { tapmq } = await start()
  t.teardown(() => tapmq.stop())
  t.like(tapmq.plugins.status('webhook'), { state: 'disabled', detail: `web.hook.enable = false in ${join(dir, 'web_hook.conf')}:1` })
})

test('a bad web_hook.conf stops start-up with its file:line', async (t) => {
  const { dir, start } = await bootFiles(t, 'web.hook.enable=true\nweb.hook.url=http://127.0.0.1:80\nweb.hook.pool_size=0\n')
  await t.throwsAsync(start(), { code: 'TAPMQ_ERR_CONF_VALUE', message: `${join(dir, 'web_hook.conf')}:3: invalid value for web.hook.pool_size: "0" (allowed: an integer from 1 to 1024)` })
})

test('rule warnings and ignored aliases are logged at start-up', async (t) => {
  const receiver = await Receiver.start(t)
  const { dir, start, lines } = await bootFiles(t, [
    'web.hook.enable=true',
    `web.hook.url=${receiver.url()}`,
    `web.hook.api.url=${receiver.url('/old')}`,
    'web.hook.rule.client.connack.1={"action": "on_message_publish"}',
    'web.hook.typo=1'
  ].join('\n'))
  const { tapmq } = await start()
  t.teardown(() => tapmq.stop())
  const logged = lines.map((line) => JSON.parse(line) as { msg: string, key?: string })
  t.true(logged.some((line) => line.msg === `${join(dir, 'web_hook.conf')}:4: web.hook.rule.client.connack.1 has "action": "on_message_publish", but the key decides: it fires on client.connack (expected "on_client_connack")`))
  t.true(logged.some((line) => line.msg === 'web.hook.api.url is ignored because web.hook.url is set'))
  t.true(logged.some((line) => line.msg === 'unknown key ignored' && line.key === 'web.hook.typo'))
})
