// Basic auth with NanoMQ's codes (103 wrong, 104 missing or empty), authentication before
// parsing (Q24) and NanoMQ's order on request, bounded bodies, and hostile input that
// must not take the server down.
import { connect } from 'node:net'
import test from 'ava'
import { within } from '../helpers/mqtt.ts'
import { basic, startApi } from './helpers.ts'

/** Writes `text` to the API's port and resolves with everything it answers until it closes. */
function rawRequest (url: string, ...parts: string[]): Promise<string> {
  return within(new Promise<string>((resolve, reject) => {
    const socket = connect(Number(new URL(url).port), '127.0.0.1', () => {
      for (const part of parts) socket.write(part)
      socket.end()
    })
    let answer = ''
    socket.on('data', (chunk) => { answer += chunk })
    socket.on('close', () => resolve(answer))
    // the server may reset a connection whose body it refused
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve(answer) : reject(err)))
  }), 'a raw request')
}

test('a missing, unreadable or empty credential is 401 with code 104', async (t) => {
  const api = await startApi(t)
  const headers = [null, 'Bearer abc', 'Basic !!!', basic('admin', ''), basic('', 'public'), 'Basic ' + Buffer.from('nocolon').toString('base64')]
  for (const auth of headers) {
    const v4 = await api.request('GET', '/api/v4/brokers', { auth })
    t.is(v4.status, 401, String(auth))
    t.is(v4.text, '{"code":104}', String(auth))
    t.is(v4.headers.get('www-authenticate'), 'Basic realm="tapmq"')
    const v1 = await api.request('POST', '/api/v1', { auth, body: '{"req":2,"seq":5}' })
    t.is(v1.status, 401)
    t.is(v1.text, '{"code":104,"seq":0}')
  }
})

test('wrong credentials are 401 with code 103; the right ones pass', async (t) => {
  const api = await startApi(t, { username: 'ops', password: 's3cret:with:colons' })
  for (const auth of [basic('admin', 'public'), basic('ops', 'wrong'), basic('nobody', 's3cret:with:colons')]) {
    const reply = await api.request('GET', '/api/v4/nodes', { auth })
    t.is(reply.status, 401)
    t.is(reply.text, '{"code":103}')
  }
  const ok = await api.request('GET', '/api/v4/nodes', { auth: basic('ops', 's3cret:with:colons') })
  t.is(ok.status, 200)
  // the scheme name is case-insensitive
  const lower = await api.request('GET', '/api/v4/nodes', { auth: basic('ops', 's3cret:with:colons').replace('Basic', 'basic') })
  t.is(lower.status, 200)
  t.like((await api.get('/api/v4/plugins/tapmq:http-api')).json, { code: 103 })
})

test('credentials are checked before the body is parsed (Q24): bad JSON without them is 401', async (t) => {
  const api = await startApi(t)
  const reply = await api.request('POST', '/api/v1', { auth: null, body: '{not json' })
  t.is(reply.status, 401)
  t.is(reply.text, '{"code":104,"seq":0}')
  // unknown paths do not reveal themselves either
  t.is((await api.request('GET', '/api/v4/secret-place', { auth: null })).status, 401)
})

test('v1_parse_before_auth = true restores NanoMQ 0.8\'s order on /api/v1', async (t) => {
  const api = await startApi(t, { v1_parse_before_auth: true })
  const bad = await api.request('POST', '/api/v1', { auth: null, body: '{not json' })
  t.is(bad.status, 400)
  t.is(bad.text, '{"code":109,"seq":0}')
  const unauthenticated = await api.request('POST', '/api/v1', { auth: basic('admin', 'nope'), body: '{"req":2,"seq":77}' })
  t.is(unauthenticated.status, 401)
  t.is(unauthenticated.text, '{"code":103,"seq":77}')
  t.is((await api.post('/api/v1', { req: 2, seq: 78 })).status, 200)
  // v4 still authenticates first
  t.is((await api.request('POST', '/api/v4/mqtt/publish', { auth: null, body: '{not json' })).status, 401)
})

test('bad JSON on v4 bodies is 400 with code 109', async (t) => {
  const api = await startApi(t)
  for (const path of ['/api/v4/mqtt/publish', '/api/v4/mqtt/publish_batch']) {
    const reply = await api.post(path, '{"topic": "a", ')
    t.is(reply.status, 400, path)
    t.is(reply.text, '{"code":109}', path)
  }
})

test('an oversized body is refused with 413 and the server keeps serving', async (t) => {
  const api = await startApi(t, { body_limit: 4096 })
  const big = JSON.stringify({ topic: 'big', payload: 'x'.repeat(5000) })
  const reply = await api.post('/api/v4/mqtt/publish', big)
  t.is(reply.status, 413)
  t.is(reply.json.code, 108)
  const v1 = await api.post('/api/v1', JSON.stringify({ req: 2, seq: 1, pad: 'y'.repeat(5000) }))
  t.is(v1.status, 413)
  // a chunked body without a length is cut off once it passes the limit
  const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`
  const chunked = await rawRequest(api.url,
    'POST /api/v4/mqtt/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n' +
    `Authorization: ${basic('admin', 'public')}\r\nConnection: close\r\n\r\n`,
    chunk('{"topic":"a","payload":"'), chunk('z'.repeat(3000)), chunk('z'.repeat(3000)), chunk('"}'), '0\r\n\r\n')
  t.regex(chunked, /^HTTP\/1\.1 413/)
  t.is((await api.get('/api/v4/brokers')).status, 200)
})

test('garbage on the socket, bad URLs and odd methods do not crash the server', async (t) => {
  const api = await startApi(t)
  const raw = (text: string) => rawRequest(api.url, text)
  t.regex(await raw('NOT HTTP AT ALL\r\n\r\n'), /^HTTP\/1\.1 400/)
  t.regex(await raw('GET /api/v4/clients/%E0%A4%A HTTP/1.1\r\nHost: x\r\nAuthorization: ' + basic('admin', 'public') + '\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 (400|404)/)
  t.regex(await raw('POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\nAuthorization: ' + basic('admin', 'public') + '\r\nConnection: close\r\n\r\n{'), /^HTTP\/1\.1 413/)
  t.regex(await raw('BREW /api/v4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 (400|401|404|405)/)
  for (const body of ['{"topic":123,"payload":"x"}', '{"topic":"a/#","payload":"x"}', '{"topic":"a","payload":"!!","encoding":"base64"}',
    '{"topic":"a","payload":"x","qos":3}', '{"topic":"a","payload":"x","retain":"yes"}', '{"payload":"x"}', '{"topic":"a"}', '[]', '{"__proto__":{"x":1}}']) {
    const reply = await api.post('/api/v4/mqtt/publish', body)
    t.is(reply.status, 400, body)
    t.true([107, 108].includes(reply.json.code), body)
  }
  t.is((await api.get('/api/v4/brokers')).status, 200)
})
