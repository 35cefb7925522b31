// The decision cache: hits, separate allow/deny TTLs, Cache-Control, single-flight, errors
// never cached, and keys that hold a password only as a hash.
import test from 'ava'
import { DecisionCache } from '../../plugins/http-auth/cache.ts'
import { AuthServer, brokerWith, connackCode, counters, gate, sleep, until } from './helpers.ts'

/** alice/secret is allowed; `short` is allowed for max-age=1; `nostore` may not be cached; the rest get 401. */
function cachingServer (t: Parameters<typeof AuthServer.start>[0]) {
  return AuthServer.start(t, (req, res) => {
    const { username, password } = req.fields
    if (username === 'short') return void res.writeHead(200, { 'cache-control': 'max-age=1' }).end()
    if (username === 'nostore') return void res.writeHead(200, { 'cache-control': 'no-store' }).end()
    res.writeHead(username === 'alice' && password === 'secret' ? 200 : 401).end()
  })
}

const PARAMS = 'username=%u,password=%P'
const NO_EVENTS = { hit () {}, shared () {}, stored () {} }

const count = (server: AuthServer, username: string, password?: string) =>
  server.seen.filter((seen) => seen.fields.username === username && (password === undefined || seen.fields.password === password)).length

test('repeated connects are answered from the cache; the password is part of the key', async (t) => {
  const server = await cachingServer(t)
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: PARAMS }, cache: { enable: true } })
  for (let i = 0; i < 3; i++) t.is(await connackCode(t, broker.url, { clientId: `c${i}`, username: 'alice', password: 'secret' }), 0)
  for (let i = 0; i < 3; i++) t.is(await connackCode(t, broker.url, { clientId: `d${i}`, username: 'alice', password: 'guess' }), 4)
  t.is(count(server, 'alice', 'secret'), 1)
  t.is(count(server, 'alice', 'guess'), 1)
  t.like(counters(broker), { requests_total: 2, cache_hits_total: 4, cache_entries: 2 })
})

test('the cache is off by default', async (t) => {
  const server = await cachingServer(t)
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: PARAMS } })
  for (let i = 0; i < 3; i++) t.is(await connackCode(t, broker.url, { username: 'alice', password: 'secret' }), 0)
  t.is(server.seen.length, 3)
  t.like(counters(broker), { cache_hits_total: 0 })
})

test('deny answers expire after deny_ttl, allow answers after allow_ttl; Cache-Control overrides', async (t) => {
  const server = await cachingServer(t)
  const broker = await brokerWith(t, {
    authReq: { url: server.url(), params: PARAMS },
    cache: { enable: true, allowTtl: 60_000, denyTtl: 2000, jitter: 0 }
  })
  const connect = (username: string, password = 'x') => connackCode(t, broker.url, { username, password })
  const asked = (username: string) => server.seen.filter((seen) => seen.fields.username === username).map((seen) => seen.at)

  t.is(await connect('alice', 'secret'), 0)
  for (const [username, code, ttl] of [['mallory', 4, 2000], ['short', 0, 1000]] as const) {
    t.is(await connect(username), code)
    t.is(await connect(username), code)
    // "still cached" can only be claimed while the TTL has not run out (a busy machine may be slower)
    if (Date.now() - Math.min(...asked(username)) < ttl) t.is(count(server, username), 1)
    const before = count(server, username)
    // once the TTL (counted from the answer, which comes after the request) is surely over: asked again
    await sleep(Math.max(0, Math.max(...asked(username)) + ttl + 500 - Date.now()))
    t.is(await connect(username), code)
    t.is(count(server, username), before + 1, username)
  }
  // no-store: never cached
  t.is(await connect('nostore'), 0)
  t.is(await connect('nostore'), 0)
  t.is(count(server, 'nostore'), 2)
  // allow answers live for 60 s: alice was asked once, whatever happened since
  t.is(await connect('alice', 'secret'), 0)
  t.is(count(server, 'alice'), 1)
})

test('single-flight: concurrent identical connects share one HTTP request', async (t) => {
  const release = gate()
  const server = await AuthServer.start(t, async (_req, res) => {
    await release.opened
    res.writeHead(200).end()
  })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: PARAMS }, cache: { enable: true } })
  const N = 10
  const codes = Promise.all(Array.from({ length: N }, (_, i) => connackCode(t, broker.url, { clientId: `sf-${i}`, username: 'alice', password: 'secret' })))
  // all ten are waiting: one on the server, nine on that request
  await until(() => counters(broker).coalesced_total === N - 1, `${N - 1} coalesced connects`)
  t.is(server.seen.length, 1)
  release.open()
  t.deepEqual(await codes, Array(N).fill(0))
  t.is(server.seen.length, 1)
  t.like(counters(broker), { requests_total: 1, coalesced_total: N - 1 })
})

test('failures are never cached', async (t) => {
  let status = 503
  const server = await AuthServer.start(t, (_req, res) => { res.writeHead(status).end() })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: PARAMS }, cache: { enable: true } })
  t.is(await connackCode(t, broker.url, { username: 'alice', password: 'secret' }), 3)
  status = 200
  t.is(await connackCode(t, broker.url, { username: 'alice', password: 'secret' }), 0)
  t.is(await connackCode(t, broker.url, { username: 'alice', password: 'secret' }), 0)
  t.is(server.seen.length, 2)
})

test('cache keys hold the password only as a keyed hash', (t) => {
  const cache = new DecisionCache({ enable: true, allowTtl: 1000, denyTtl: 1000, jitter: 0, maxEntries: 10 }, NO_EVENTS)
  const request = (password: string): Array<[string, string]> => [['username', 'u'], ['password', password]]
  const key = cache.key('auth', request('hunter2'))
  t.false(key.includes('hunter2'))
  t.false(key.includes('username'))
  t.is(key, cache.key('auth', request('hunter2')))
  t.not(key, cache.key('auth', request('hunter3')))
  t.not(key, cache.key('super', request('hunter2')))
  // values cannot run into each other
  t.not(cache.key('auth', [['username', 'ab'], ['password', 'c']]), cache.key('auth', [['username', 'a'], ['password', 'bc']]))
  // another process (another secret) makes other keys
  t.not(key, new DecisionCache({ enable: true, allowTtl: 1000, denyTtl: 1000, jitter: 0, maxEntries: 10 }, NO_EVENTS).key('auth', request('hunter2')))
})

test('the cache keeps at most max_entries answers', async (t) => {
  const server = await cachingServer(t)
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: PARAMS }, cache: { enable: true, maxEntries: 2 } })
  for (const username of ['u1', 'u2', 'u3']) t.is(await connackCode(t, broker.url, { username }), 4)
  t.is(counters(broker).cache_entries, 2)
  // u1 was evicted (least recently used): asked again; u3 is still cached
  t.is(await connackCode(t, broker.url, { username: 'u3' }), 4)
  t.is(await connackCode(t, broker.url, { username: 'u1' }), 4)
  t.is(count(server, 'u1'), 2)
  t.is(count(server, 'u3'), 1)
})
