// An auth server that is down, slow, failing (5xx) or answering garbage, huge or endless
// bodies: every case is bounded and decided by auth.http.on_error (deny = CONNACK 3,
// ignore = the next plugin / allow_anonymous decides).
import type { ServerResponse } from 'node:http'
import test from 'ava'
import { AuthServer, brokerWith, closedPort, connackCode, counters, logText, until } from './helpers.ts'

// short enough for a quick test, long enough that a busy machine does not turn an answer into a timeout
const FAST_TIMEOUTS = { timeout: 1000, connectTimeout: 1000 }

/** Misbehaves according to the user name. */
function misbehave (username: string, res: ServerResponse): void {
  const socket = res.socket!
  switch (username) {
    case 'slow':
      // answers long after our timeout; the socket is destroyed by then
      setTimeout(() => { if (!res.destroyed) res.writeHead(200).end() }, 10_000).unref()
      return
    case 'e500':
      return void res.writeHead(500).end('internal error')
    case 'e503':
      return void res.writeHead(503).end()
    case 'garbage':
      return void socket.end('SSH-2.0-OpenSSH_9.6\r\nthis is not HTTP\r\n\r\n')
    case 'huge':
      return void res.writeHead(200, { 'content-length': String(1 << 20) }).end(Buffer.alloc(1 << 20, 'a'))
    case 'huge-chunked': {
      res.writeHead(200)
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(16 << 10, 'b'))
      return void res.end()
    }
    case 'endless': {
      res.writeHead(200, { 'content-type': 'text/plain' })
      const timer = setInterval(() => { if (!res.destroyed) res.write('.') }, 20)
      res.on('close', () => clearInterval(timer))
      return
    }
    case 'bad-json':
      return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"result": "allow"')
    case 'odd-json':
      return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"result": "maybe"}')
    default:
      res.writeHead(200).end()
  }
}

const CASES = ['slow', 'e500', 'e503', 'garbage', 'huge', 'huge-chunked', 'endless', 'bad-json', 'odd-json']

for (const policy of ['deny', 'ignore'] as const) {
  test(`misbehaving auth server, on_error = ${policy}`, async (t) => {
    const server = await AuthServer.start(t, (req, res) => misbehave(req.fields.username ?? '', res))
    const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'username=%u,password=%P' }, onError: policy, ...FAST_TIMEOUTS })
    const expected = policy === 'deny' ? 3 : 0
    // all at once: each is bounded on its own
    const codes = await Promise.all(CASES.map((username) => connackCode(t, broker.url, { username, password: 'pw-' + username })))
    t.deepEqual(Object.fromEntries(CASES.map((name, i) => [name, codes[i]])), Object.fromEntries(CASES.map((name) => [name, expected])))
    t.like(counters(broker), { requests_total: CASES.length, errors_total: CASES.length, timeouts_total: 2, allow_total: 0, deny_total: 0 })
    // a well-behaved answer still works afterwards
    t.is(await connackCode(t, broker.url, { username: 'fine' }), 0)
    t.false(logText(broker).includes('pw-'))
  })

  test(`auth server down, on_error = ${policy}`, async (t) => {
    const port = await closedPort()
    const broker = await brokerWith(t, { authReq: { url: `http://127.0.0.1:${port}/mqtt/auth`, params: 'username=%u' }, onError: policy, ...FAST_TIMEOUTS })
    t.is(await connackCode(t, broker.url, { username: 'u' }), policy === 'deny' ? 3 : 0)
    t.like(counters(broker), { errors_total: 1 })
    t.is(broker.tapmq.plugins.status('tapmq:http-auth').health.status, 'degraded')
  })
}

test('on_error = ignore hands the decision to the next source: allow_anonymous = false refuses', async (t) => {
  const port = await closedPort()
  const broker = await brokerWith(t, { authReq: { url: `http://127.0.0.1:${port}/`, params: 'username=%u' }, onError: 'ignore' }, { config: { allow_anonymous: 'false' } })
  t.is(await connackCode(t, broker.url, { username: 'u' }), 5)
})

test('our tap timeout covers our HTTP timeouts, so the host never pre-empts on_error', async (t) => {
  const server = await AuthServer.start(t, (req, res) => misbehave('slow', res))
  // the host would give up on a tap after 100 ms; our own timeouts are 1 s + 1 s
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'username=%u' }, onError: 'ignore', ...FAST_TIMEOUTS }, { config: { hook_timeout: '100ms' } })
  t.is(await connackCode(t, broker.url, { username: 'slow' }), 0)
  t.like(counters(broker), { timeouts_total: 1 })
  t.false(broker.logs.some((line) => line.msg === 'plugin hook timed out'))
})

test('a 5xx and a down server heal: health goes back to ok after an answer', async (t) => {
  let status = 503
  const server = await AuthServer.start(t, (_req, res) => { res.writeHead(status).end() })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'username=%u' } })
  t.is(await connackCode(t, broker.url, { username: 'u' }), 3)
  t.is(broker.tapmq.plugins.status('tapmq:http-auth').health.status, 'degraded')
  status = 200
  t.is(await connackCode(t, broker.url, { username: 'u' }), 0)
  t.is(broker.tapmq.plugins.status('tapmq:http-auth').health.status, 'ok')
})

test('pending requests beyond pool_size + max_pending fail at once', async (t) => {
  const held: ServerResponse[] = []
  const server = await AuthServer.start(t, (_req, res) => { held.push(res) })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'username=%u' }, poolSize: 1, maxPending: 1 })
  const first = connackCode(t, broker.url, { username: 'a' })
  const second = connackCode(t, broker.url, { username: 'b' })
  // one in flight on the single pooled connection, one waiting for it
  await until(() => counters(broker).pending_requests === 2 && server.seen.length === 1, 'one auth request at the server, one waiting')
  t.is(await connackCode(t, broker.url, { username: 'c' }), 3)
  held.shift()!.writeHead(200).end()
  await server.waitFor(2)
  held.shift()!.writeHead(200).end()
  t.deepEqual(await Promise.all([first, second]), [0, 0])
  t.is(server.seen.length, 2)
})
