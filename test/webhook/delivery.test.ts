// Delivery: retries and backoff, permanent failures, a receiver that is down, hangs or
// talks garbage (MQTT never notices, the queue stays bounded), signing, batching, drain.
import { createHmac } from 'node:crypto'
import { channel } from 'node:diagnostics_channel'
import { readdirSync, readFileSync } from 'node:fs'
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net'
import test from 'ava'
import { released } from '../../plugins/webhook/sender.mjs'
import { connectClient, lengthPrefixed, nextMessage, RawClient, remainingLength, until, within } from '../helpers/mqtt.ts'
import { answer, baseConf, brokerWith, counterReaches, counters, DELIVERY_MS, hang, Receiver } from './receiver.ts'

const PUBLISH_RULE = 'web.hook.rule.message.publish.1={"action": "on_message_publish"}\n'

test('receiver down, then back up: events are retried and delivered', async (t) => {
  const receiver = await Receiver.start(t)
  const port = receiver.port
  await receiver.close()
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + 'web.hook.retry.max_retries=100\n')
  const client = await connectClient(t, broker.url, { clientId: 'p' })
  for (const n of [1, 2, 3]) await client.publishAsync(`down/${n}`, String(n))
  // six retries: at least six requests in a row failed
  await counterReaches(broker, 'retried_total', 6)
  t.is(counters(broker).sent_total, 0)
  t.like(broker.tapmq.plugins.status('tapmq:webhook').health, { status: 'degraded' })
  t.regex(broker.tapmq.plugins.status('tapmq:webhook').health.detail ?? '', /requests in a row failed; last: ECONNREFUSED/)

  const back = await Receiver.start(t, answer(), undefined, port)
  await back.count(3)
  t.deepEqual(back.events().map((event) => event.topic).sort(), ['down/1', 'down/2', 'down/3'])
  const after = await counterReaches(broker, 'sent_total', 3)
  t.is(after.failed_total, 0)
  t.is(after.dropped_total, 0)
  t.deepEqual(broker.tapmq.plugins.status('tapmq:webhook').health, { status: 'ok' })
})

test('5xx and 429 are retried with the same body, honouring Retry-After; 4xx is permanent', async (t) => {
  const answers = [503, 429, 200]
  const arrivals: number[] = []
  const receiver = await Receiver.start(t, (request, response) => {
    if (request.body.includes('"topic":"bad/1"')) return response.writeHead(400).end('no')
    arrivals.push(Date.now())
    const status = answers.shift() ?? 200
    response.writeHead(status, status === 429 ? { 'retry-after': '1' } : {}).end()
  })
  const broker = await brokerWith(t, [
    'web.hook.enable=true',
    `web.hook.url=${receiver.url('/r')}`,
    'web.hook.pool_size=1',
    'web.hook.retry.initial_backoff=10ms',
    'web.hook.retry.max_backoff=5s',
    PUBLISH_RULE
  ].join('\n'))
  const client = await connectClient(t, broker.url, { clientId: 'p' })
  await client.publishAsync('retry/1', 'again')
  await client.publishAsync('bad/1', 'refused')
  const done = await counterReaches(broker, 'failed_total', 1)
  t.is(done.sent_total, 1)
  t.is(done.retried_total, 2)
  t.is(done.requests_total, 4)
  const retried = receiver.requests.filter((request) => request.body.includes('retry/1'))
  t.is(retried.length, 3)
  t.is(new Set(retried.map((request) => request.body)).size, 1)
  // the 429 said "Retry-After: 1", longer than the 10 ms backoff: the third try waited for it
  t.true(arrivals[2]! - arrivals[1]! >= 990, `retried after ${arrivals[2]! - arrivals[1]!} ms`)
  t.is(receiver.requests.filter((request) => request.body.includes('bad/1')).length, 1)
})

test('a receiver that hangs: MQTT traffic flows normally, the queue stays bounded, drops are counted', async (t) => {
  const receiver = await Receiver.start(t, hang)
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + [
    'web.hook.pool_size=2',
    'web.hook.request_timeout=60s',
    'web.hook.queue.max_events=10',
    'web.hook.drain_timeout=100ms'
  ].join('\n'))
  const subscriber = await connectClient(t, broker.url, { clientId: 'sub' })
  await subscriber.subscribeAsync('load/#', { qos: 1 })
  const received: string[] = []
  subscriber.on('message', (topic) => received.push(topic))
  const publisher = await connectClient(t, broker.url, { clientId: 'pub' })
  for (let n = 0; n < 100; n++) await publisher.publishAsync(`load/${n}`, 'x', { qos: 1 })
  await until(() => received.length === 100, 'all 100 messages at the subscriber')
  t.is(received[99], 'load/99')

  // 2 requests hang in the pool, the queue keeps the newest 10, the oldest 88 were dropped
  const now = await counterReaches(broker, 'dropped_queue_full_total', 88)
  t.like(now, { matched_total: 100, dropped_total: 88, queue_depth: 10, inflight_requests: 2, sent_total: 0 })
  await receiver.count(2)
  t.deepEqual(receiver.events().map((event) => event.topic), ['load/0', 'load/1'])
  const health = broker.tapmq.plugins.status('tapmq:webhook').health
  t.is(health.status, 'degraded')
  t.regex(health.detail ?? '', /queue 100% full/)
})

test('a receiver that answers garbage: requests fail and are counted, MQTT is untouched', async (t) => {
  // it reads (so it sees the client close) and answers something that is not HTTP
  const garbage = createNetServer((socket) => socket.resume().end('this is not HTTP\r\n\r\n'))
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => garbage.close(() => resolve())))
  const port = (garbage.address() as { port: number }).port
  const broker = await brokerWith(t, [
    'web.hook.enable=true',
    `web.hook.url=http://127.0.0.1:${port}/`,
    'web.hook.retry.max_retries=1',
    'web.hook.retry.initial_backoff=10ms',
    PUBLISH_RULE
  ].join('\n'))
  const subscriber = await connectClient(t, broker.url, { clientId: 'sub' })
  await subscriber.subscribeAsync('g/#')
  const publisher = await connectClient(t, broker.url, { clientId: 'pub' })
  for (let n = 0; n < 5; n++) {
    await publisher.publishAsync(`g/${n}`, 'x')
    t.is((await nextMessage(subscriber))[0], `g/${n}`)
  }
  const now = await counterReaches(broker, 'failed_total', 5)
  t.like(now, { sent_total: 0, retried_total: 5, requests_total: 10 })
  t.true(broker.logs.some((line) => line.msg === 'webhook request failed; events dropped'))
})

test('signing: Standard Webhooks headers that verify with an independent HMAC, for each secret; same id on retry', async (t) => {
  const keys = [Buffer.from('0123456789abcdef0123456789abcdef'), Buffer.from('fedcba9876543210fedcba9876543210')]
  const secrets = keys.map((key) => `whsec_${key.toString('base64')}`)
  let first = true
  const receiver = await Receiver.start(t, (_request, response) => {
    response.writeHead(first ? 500 : 204).end()
    first = false
  })
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + `web.hook.signing.secrets = ${secrets.join(', ')}\n`)
  const client = await connectClient(t, broker.url, { clientId: 'signed' })
  await client.publishAsync('sig/1', 'payload')
  await receiver.count(2)
  const [failed, retried] = receiver.requests
  t.is(failed!.headers['webhook-id'], retried!.headers['webhook-id'])
  t.regex(String(retried!.headers['webhook-id']), /^msg_[A-Za-z0-9_-]{24}$/)
  for (const request of receiver.requests) {
    const id = String(request.headers['webhook-id'])
    const timestamp = String(request.headers['webhook-timestamp'])
    t.regex(timestamp, /^\d{10}$/)
    t.true(Math.abs(Number(timestamp) - Date.now() / 1000) < 300)
    const signatures = String(request.headers['webhook-signature']).split(' ')
    const expected = keys.map((key) => 'v1,' + createHmac('sha256', key).update(`${id}.${timestamp}.${request.body}`).digest('base64'))
    t.deepEqual(signatures, expected)
  }
  // a tampered body would not verify
  const tampered = createHmac('sha256', keys[0]!).update(`${failed!.headers['webhook-id']}.${failed!.headers['webhook-timestamp']}.${failed!.body} `).digest('base64')
  t.false(String(failed!.headers['webhook-signature']).includes(tampered))
})

test('batching: JSON arrays of at most max_events, partial batches after max_delay', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + [
    'web.hook.pool_size=1',
    'web.hook.batch.max_events=5',
    'web.hook.batch.max_delay=200ms'
  ].join('\n'))
  const client = await connectClient(t, broker.url, { clientId: 'b' })
  await Promise.all(Array.from({ length: 12 }, (_, n) => client.publishAsync(`batch/${n}`, String(n))))
  await counterReaches(broker, 'sent_total', 12)
  const batches = receiver.requests.map((request) => JSON.parse(request.body) as Array<{ topic: string, action: string }>)
  t.true(batches.every((batch) => Array.isArray(batch) && batch.length >= 1 && batch.length <= 5))
  t.true(batches.some((batch) => batch.length > 1))
  t.deepEqual(batches.flat().map((event) => event.topic), Array.from({ length: 12 }, (_, n) => `batch/${n}`))
  t.true(batches.flat().every((event) => event.action === 'message_publish'))
  t.is(counters(broker).requests_total, batches.length)
  // the last, partial batch went out without waiting for a full one
  t.true(batches.length <= 4)
})

test('graceful drain at shutdown: queued events are sent before close() returns', async (t) => {
  const receiver = await Receiver.start(t, (_request, response) => setTimeout(() => response.end(), 100))
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + 'web.hook.pool_size=1\nweb.hook.rule.client.disconnected.1={"action": "on_client_disconnected"}\n')
  const client = await connectClient(t, broker.url, { clientId: 'drain' })
  // QoS 1: the PUBACK says the broker has seen it
  for (let n = 0; n < 8; n++) await client.publishAsync(`drain/${n}`, 'x', { qos: 1 })
  // the first request arrived: the worker is up (loading it is not what this test measures)
  await receiver.count(1)
  // the client is still connected: its disconnect (reason shutdown) is sent in the drain too
  await within(broker.close(), 'broker close', DELIVERY_MS)
  t.deepEqual(receiver.events().map((event) => event.topic ?? event.reason), [...Array.from({ length: 8 }, (_, n) => `drain/${n}`), 'shutdown'])
  t.true(broker.logs.some((line) => line.msg === 'webhook stopped; every queued event was sent'))
})

test('drain at shutdown is bounded: what cannot be sent in time is counted and logged', async (t) => {
  const receiver = await Receiver.start(t, hang)
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + 'web.hook.pool_size=1\nweb.hook.drain_timeout=300ms\nweb.hook.request_timeout=60s\n')
  const client = await connectClient(t, broker.url, { clientId: 'stuck' })
  for (let n = 0; n < 4; n++) await client.publishAsync(`stuck/${n}`, 'x', { qos: 1 })
  await receiver.count(1)
  await client.endAsync()
  await within(broker.close(), 'broker close', DELIVERY_MS)
  const line = broker.logs.find((entry) => entry.msg === 'webhook stopped; queued events were lost')
  t.like(line, { lost: 4, level: 40 })
  t.like(counters(broker), { dropped_shutdown_total: 4, sent_total: 0 })
})

test('pipelining (web.hook.enable_pipelining) delivers everything over fewer connections', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + 'web.hook.pool_size=1\nweb.hook.enable_pipelining=true\n')
  const client = await connectClient(t, broker.url, { clientId: 'pipe' })
  await Promise.all(Array.from({ length: 20 }, (_, n) => client.publishAsync(`pipe/${n}`, 'x')))
  await receiver.count(20)
  t.is(new Set(receiver.requests.map((request) => request.socket)).size, 1)
  t.is((await counterReaches(broker, 'sent_total', 20)).failed_total, 0)
})

test('an answer with a huge body still counts by its status; the body is not kept', async (t) => {
  const big = Buffer.alloc(2 * 1024 * 1024, 0x78)
  const receiver = await Receiver.start(t, (_request, response) => response.writeHead(200).end(big))
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + 'web.hook.pool_size=1\n')
  const client = await connectClient(t, broker.url, { clientId: 'big' })
  for (let n = 0; n < 3; n++) await client.publishAsync(`big/${n}`, 'x')
  t.like(await counterReaches(broker, 'sent_total', 3), { failed_total: 0, retried_total: 0, requests_total: 3 })
})

test('the delivery thread runs at web.hook.worker_nice (Linux): MQTT gets the CPU first', async (t) => {
  if (process.platform !== 'linux') return t.pass('per-thread nice values are a Linux feature')
  const niceOf = (tid: string | number): number | undefined => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
    } catch {
      return undefined // the thread ended between the listing and the read
    }
  }
  const niceOfThreads = () => readdirSync('/proc/self/task').map(niceOf)
  const before = niceOfThreads().filter((nice) => nice === 13).length
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + 'web.hook.worker_nice=13\n')
  const client = await connectClient(t, broker.url, { clientId: 'nice' })
  await client.publishAsync('nice/1', 'x')
  await receiver.count(1)
  t.is(niceOfThreads().filter((nice) => nice === 13).length, before + 1)
  // the broker's own thread keeps its priority
  t.is(niceOf(process.pid), 0)
})

test('an event larger than web.hook.batch.max_bytes is dropped and counted; the others go out', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, baseConf(receiver) + PUBLISH_RULE + 'web.hook.batch.max_bytes=1KB\n')
  const client = await connectClient(t, broker.url, { clientId: 'large' })
  await client.publishAsync('small/1', 'x')
  await client.publishAsync('large/1', 'y'.repeat(2000))
  await client.publishAsync('small/2', 'z')
  const now = await counterReaches(broker, 'sent_total', 2)
  t.like(now, { matched_total: 3, dropped_too_large_total: 1, dropped_total: 1 })
  t.deepEqual(receiver.events().map((event) => event.topic).sort(), ['small/1', 'small/2'])
})

test('a receiver that answers before it reads the body, pipelined: every batch arrives intact while body memory is reused', async (t) => {
  // the sender reuses the memory of a delivered body for later ones (RequestBody#recycle);
  // this receiver answers as soon as it has a request's head and reads the body afterwards,
  // with requests pipelined, so bodies are reused while earlier ones are still being read.
  // (A body the kernel did not take whole is never reused; on loopback the kernel takes
  // ~1 MB bodies whole, so that case is tested with undici's channels below.)
  const bodies: string[] = []
  const sockets = new Set<Socket>()
  const server = createNetServer((socket) => {
    sockets.add(socket)
    let head = Buffer.alloc(0)
    /** body bytes still to read; -1 while reading a head */
    let need = -1
    let chunks: Buffer[] = []
    let answered = 0
    socket.on('data', (data: Buffer) => {
      let rest = data
      while (rest.length > 0) {
        if (need < 0) {
          head = Buffer.concat([head, rest])
          const end = head.indexOf('\r\n\r\n')
          if (end === -1) return
          need = Number(/content-length: *(\d+)/i.exec(head.subarray(0, end).toString('latin1'))?.[1] ?? 0)
          rest = head.subarray(end + 4)
          head = Buffer.alloc(0)
          chunks = []
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n')
          socket.pause()
          setTimeout(() => socket.resume(), answered++ === 0 ? 500 : 20)
        }
        const taken = rest.subarray(0, need)
        chunks.push(taken)
        need -= taken.length
        rest = rest.subarray(taken.length)
        if (need === 0) {
          bodies.push(Buffer.concat(chunks).toString())
          need = -1
        }
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  const broker = await brokerWith(t, `web.hook.enable=true\nweb.hook.url=${url}\n` + PUBLISH_RULE +
    'web.hook.pool_size=1\nweb.hook.enable_pipelining=10\nweb.hook.batch.max_events=70\nweb.hook.batch.max_delay=20ms\n')
  const client = await connectClient(t, broker.url, { clientId: 'early' })
  const count = 1500
  const payload = (n: number) => `message ${n} ` + String.fromCharCode(97 + (n % 26)).repeat(10_000)
  for (let n = 0; n < count; n++) client.publish(`early/${n}`, payload(n))
  const events = await until(() => {
    const all = bodies.flatMap((body) => JSON.parse(body) as Array<{ topic: string, payload: string }>)
    return all.length >= count ? all : undefined
  }, 'every event at the receiver', DELIVERY_MS)
  t.is(events.length, count)
  for (const event of events) t.is(event.payload, payload(Number(event.topic.slice('early/'.length))))
  t.is(new Set(events.map((event) => event.topic)).size, count)
})

test('a body is reused only when undici wrote it whole to its socket, every time', (t) => {
  const sendHeaders = channel('undici:client:sendHeaders')
  const bodySent = channel('undici:request:bodySent')
  const write = (body: Buffer, pending: number) => {
    const request = { body }
    sendHeaders.publish({ request, headers: '', socket: { writableLength: pending } })
    bodySent.publish({ request })
  }
  const whole = Buffer.from('whole')
  write(whole, 0)
  t.true(released(whole))
  const partly = Buffer.from('partly')
  write(partly, 1000)
  t.false(released(partly))
  const retried = Buffer.from('retried')
  write(retried, 0)
  write(retried, 10)
  t.false(released(retried), 'one attempt left bytes behind')
  const unseen = Buffer.from('never written')
  t.false(released(unseen))
  const otherSocket = Buffer.from('headers of another request')
  sendHeaders.publish({ request: { body: Buffer.from('x') }, headers: '', socket: { writableLength: 0 } })
  bodySent.publish({ request: { body: otherSocket } })
  t.false(released(otherSocket), 'no socket known for it')
})

test('a client whose topic or id re-encodes past 65,535 bytes gets its events delivered, and other clients\' events too', async (t) => {
  const receiver = await Receiver.start(t, answer())
  const broker = await brokerWith(t, baseConf(receiver) + 'web.hook.rule.message.publish.1={"action": "on_message_publish"}\n')
  const port = Number(new URL(broker.url).port)
  // 22,000 ill-formed bytes: aedes decodes each to U+FFFD, 3 bytes once encoded again
  const odd = Buffer.alloc(22_000, 0xc0)
  // written by hand: mqtt-packet would encode a JS string, and the id must go out as these bytes
  const raw = await RawClient.open(t, port)
  raw.write(Buffer.concat([Buffer.from([0x10]), remainingLength(2 + 4 + 4 + 2 + odd.length), lengthPrefixed(Buffer.from('MQTT')), Buffer.from([4, 2, 0, 60]), lengthPrefixed(odd)]))
  await raw.next('connack')
  const good = await connectClient(t, broker.url, { clientId: 'good' })
  raw.write(Buffer.concat([Buffer.from([0x30]), remainingLength(2 + odd.length + 4), lengthPrefixed(odd), Buffer.from('boom')]))
  for (let n = 0; n < 5; n++) await good.publishAsync(`good/${n}`, 'ok')
  const events = await until(() => {
    const all = receiver.events()
    return all.length >= 6 ? all : undefined
  }, 'six message.publish events', DELIVERY_MS)
  const odd8 = '\ufffd'.repeat(22_000)
  t.deepEqual(events.filter((event) => event.from_client_id === odd8).map((event) => [event.topic, event.payload]), [[odd8, 'boom']])
  t.deepEqual(events.filter((event) => event.from_client_id === 'good').map((event) => event.topic).sort(), ['good/0', 'good/1', 'good/2', 'good/3', 'good/4'])
  t.false(broker.logs.some((line) => /stopped unexpectedly|hand-off cut short/.test(String(line.msg))))
})

