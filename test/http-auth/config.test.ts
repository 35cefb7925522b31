// auth_http.conf: the stock file, NanoMQ's shipped file, EMQX 4 spellings, and every bad
// value stopping start-up with file:line.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import test from 'ava'
import { Conf } from '../../sdk/index.ts'
import { startTestBroker } from '../../sdk/testing.ts'
import httpAuth from '../../plugins/http-auth/index.ts'
import { tmpDir } from './helpers.ts'

const STOCK = fileURLToPath(new URL('../../etc/auth_http.conf', import.meta.url))
const parse = (conf: Conf) => httpAuth.conf!.parse!(conf)

async function parseText (t: Parameters<typeof tmpDir>[0], text: string) {
  const file = join(await tmpDir(t), 'auth_http.conf')
  await writeFile(file, text)
  return { file, parsed: () => parse(Conf.fromFile(file)) }
}

test('the stock etc/auth_http.conf: off, NanoMQ values, documented defaults', (t) => {
  const conf = Conf.fromFile(STOCK)
  t.false(conf.bool('auth.http.enable', true))
  const options = parse(conf)
  t.deepEqual(options.authReq, {
    url: 'http://127.0.0.1/mqtt/auth',
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    params: 'clientid=%c,username=%u,password=%P'
  })
  t.is(options.superReq, undefined)
  t.is(options.aclReq, undefined)
  t.like(options, { timeout: 5000, connectTimeout: 5000, poolSize: 32, maxPending: 10_000, onError: 'deny', aclDenyAction: 'ignore', maxBodyBytes: 65_536 })
  t.deepEqual(options.cache, { enable: false, allowTtl: 60_000, denyTtl: 5_000, jitter: 0.1, maxEntries: 10_000 })
  t.like(options.ssl, { verify: true })
  // every key in the stock file is one the plugin reads
  t.deepEqual(conf.unread().map((entry) => entry.key), [])
})

test('the stock file\'s commented super_req and acl_req examples parse once uncommented', async (t) => {
  const text = (await readFile(STOCK, 'utf8')).replace(/^# (auth\.http\.(super|acl)_req\.)/gm, '$1').replace(/^# (auth\.http\.(max_pending|max_body_size))/gm, '$1')
  const { parsed } = await parseText(t, text)
  const options = parsed()
  t.deepEqual(options.superReq, { url: 'http://127.0.0.1/mqtt/superuser', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, params: 'clientid=%c,username=%u' })
  t.deepEqual(options.aclReq, {
    url: 'http://127.0.0.1/mqtt/acl', method: 'GET', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    params: 'access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t,mountpoint=%m'
  })
})

test('NanoMQ 0.8\'s shipped nanomq_auth_http.conf parses unchanged', async (t) => {
  const { parsed } = await parseText(t, [
    'auth.http.enable = false',
    'auth.http.auth_req.url = http://127.0.0.1:80/mqtt/auth',
    'auth.http.auth_req.method = post',
    'auth.http.auth_req.headers.content-type = application/x-www-form-urlencoded',
    'auth.http.auth_req.params = clientid=%c,username=%u,password=%P',
    '# auth.http.super_req.url = http://127.0.0.1:80/mqtt/superuser',
    'auth.http.timeout = 5s',
    'auth.http.connect_timeout = 5s',
    'auth.http.pool_size = 32'
  ].join('\n'))
  t.like(parsed(), { authReq: { method: 'POST', url: 'http://127.0.0.1/mqtt/auth' }, timeout: 5000, connectTimeout: 5000, poolSize: 32 })
})

test('release-notes spellings and EMQX 4 spellings', async (t) => {
  const { parsed } = await parseText(t, [
    'auth.http.enable = true',
    'auth.http.auth_req = https://auth.example.com:8443/mqtt/auth',
    'auth.http.auth_req.method = GET',
    'auth.http.auth_req.headers.content_type = application/json',
    'auth.http.auth_req.headers.X-Tenant = t 1',
    'auth.http.super_req = http://127.0.0.1:8080/mqtt/superuser',
    'auth.http.super_req.method = Put',
    'auth.http.timeout = 2m',
    'auth.http.connect_timeout = 1h',
    'auth.http.enable_pipelining = true',
    'auth.http.ssl.verify = false',
    'auth.http.ssl.server_name_indication = auth.internal'
  ].join('\n'))
  const options = parsed()
  t.deepEqual(options.authReq, { url: 'https://auth.example.com:8443/mqtt/auth', method: 'GET', headers: { 'content-type': 'application/json', 'X-Tenant': 't 1' }, params: '' })
  t.is(options.superReq!.method, 'PUT')
  t.is(options.timeout, 120_000)
  t.is(options.connectTimeout, 3_600_000)
  t.deepEqual(options.ssl, { cacertfile: undefined, certfile: undefined, keyfile: undefined, verify: false, serverName: 'auth.internal' })
})

const BAD: Array<[string, string, RegExp]> = [
  ['malformed URL', 'auth.http.auth_req.url = http//127.0.0.1/auth', /auth\.http\.auth_req\.url.*URL/],
  ['URL scheme', 'auth.http.auth_req.url = ftp://127.0.0.1/auth', /auth\.http\.auth_req\.url.*scheme http, https/],
  ['unknown method', 'auth.http.auth_req.method = patch', /auth\.http\.auth_req\.method.*post \| get \| put/],
  ['unknown placeholder', 'auth.http.auth_req.params = clientid=%c,username=%z', /auth\.http\.auth_req\.params.*unknown placeholder %z/],
  ['unknown ${} placeholder', 'auth.http.auth_req.params = user=${user_name}', /unknown placeholder \$\{user_name\}/],
  ['%P in acl_req', 'auth.http.acl_req.params = password=%P', /auth\.http\.acl_req\.params.*%P \(password\) is not available in acl_req/],
  ['%t in auth_req', 'auth.http.auth_req.params = topic=%t', /%t \(topic\) is not available in auth_req/],
  ['param without =', 'auth.http.auth_req.params = clientid', /name=value/],
  ['bad duration', 'auth.http.timeout = 5 seconds', /auth\.http\.timeout.*unit/],
  ['duration without unit', 'auth.http.connect_timeout = 5', /auth\.http\.connect_timeout.*unit/],
  ['pool_size', 'auth.http.pool_size = many', /auth\.http\.pool_size.*integer/],
  ['on_error', 'auth.http.on_error = allow', /auth\.http\.on_error.*deny \| ignore/],
  ['acl_deny_action', 'auth.http.acl_deny_action = kick', /ignore \| disconnect/],
  ['enable typo', 'auth.http.enable = yes', /auth\.http\.enable.*true \| false/],
  ['cache ttl', 'auth.http.cache.deny_ttl = 0s', /auth\.http\.cache\.deny_ttl.*above zero/],
  ['cache jitter', 'auth.http.cache.jitter = 150%', /auth\.http\.cache\.jitter.*percentage/],
  // header names are limited by the .conf key syntax itself
  ['header name', 'auth.http.auth_req.headers.bad(name) = x', /expected "key = value"/],
  ['unreadable CA file', 'auth.http.ssl.cacertfile = does-not-exist.pem', /auth\.http\.ssl\.cacertfile.*readable file \(ENOENT/]
]

for (const [what, line, message] of BAD) {
  test(`bad value stops start-up with file:line: ${what}`, async (t) => {
    const { file, parsed } = await parseText(t, `auth.http.enable = true\n## a comment\n${line}\n`)
    const err = t.throws(parsed)
    t.is((err as { code?: string }).code, what === 'header name' ? 'TAPMQ_ERR_CONF_SYNTAX' : 'TAPMQ_ERR_CONF_VALUE')
    t.true(err!.message.startsWith(`${file}:3: `), err!.message)
    t.regex(err!.message, message)
  })
}

test('options given directly are validated by the schema', async (t) => {
  await t.throwsAsync(startTestBroker({ plugins: [{ plugin: httpAuth, options: { authReq: { url: 'ftp://x', method: 'POST' } } }] }), {
    code: 'TAPMQ_ERR_PLUGIN_OPTIONS', message: /authReq\/url/
  })
  await t.throwsAsync(startTestBroker({ plugins: [{ plugin: httpAuth, options: { authReq: { url: 'http://127.0.0.1/', params: 'a=%q' } } }] }), {
    message: /unknown placeholder %q/
  })
})
