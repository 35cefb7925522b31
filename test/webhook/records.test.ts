// The hand-off format between the broker thread and the delivery worker: every record must
// come out as the body the broker-thread formatter gives, whatever travels in it.
import test from 'ava'
import fc from 'fast-check'
import * as bodies from '../../plugins/webhook/bodies.ts'
import { ENCODINGS } from '../../plugins/webhook/encoding.mjs'
import { RecordWriter, recordEnd, RequestBody } from '../../plugins/webhook/records.mjs'
import type { PublishEvent } from '../../sdk/index.ts'

const publish = (overrides: Partial<PublishEvent>): PublishEvent => ({
  topic: 'webhook/msg/123', payload: Buffer.from('{"temp":21.5}'), qos: 1, retain: false,
  from: 'sensor-1', fromUsername: 'alice', ts: 1_764_115_200_123, isWill: false, ...overrides
})

/**
 * Writes `write`'s records, transfers them as the channel does, and reads them back: each
 * as a request of its own, and all of them as one batch.
 */
function roundTrip (write: (writer: RecordWriter) => void): string[] {
  const writer = new RecordWriter()
  write(writer)
  const { buffer, byteLength, count } = writer.take()
  const copy = structuredClone(buffer, { transfer: [buffer] })
  const data = Buffer.from(copy, 0, byteLength)
  const out: string[] = []
  const single = new RequestBody()
  const batch = new RequestBody()
  batch.start(true)
  for (let at = 0; at < data.length;) {
    const end = recordEnd(data, at)
    single.start(false)
    single.append(data, at, end)
    out.push(single.finish().toString())
    batch.append(data, at, end)
    at = end
  }
  if (out.length !== count) throw new Error(`wrote ${count} records, read ${out.length}`)
  const batched = batch.finish().toString()
  if (batched !== '[' + out.join(',') + ']') throw new Error('the batch is not the array of the single bodies')
  return out
}

const cases: Array<[string, PublishEvent]> = [
  ['a plain message', publish({})],
  ['no user name (NanoMQ\'s "undefined")', publish({ fromUsername: undefined })],
  ['an empty user name, which is not a missing one', publish({ fromUsername: '' })],
  ['retained QoS 2, empty payload', publish({ qos: 2, retain: true, payload: Buffer.alloc(0) })],
  ['unicode and JSON specials in topic, ids and payload', publish({
    topic: 'plant/ä/"quoted"/\\/ü', from: 'dev-\u2603', fromUsername: 'bob\n', payload: Buffer.from('\u0000 "x" \u00e9 \ud83d\ude00')
  })],
  ['invalid UTF-8 in the payload', publish({ payload: Buffer.from([0xff, 0xfe, 0x41]) })],
  ['every ASCII byte, then valid multi-byte UTF-8', publish({ payload: Buffer.concat([Buffer.from(Array.from({ length: 128 }, (_, i) => i)), Buffer.from('é€😀')]) })],
  ['a binary header then zeros (the benchmark\'s payload)', publish({ payload: Buffer.concat([Buffer.from([1, 0, 0, 0, 0x93, 0xb2, 0, 0, 0, 0, 0, 0xc0, 0x5e, 0x1a, 0xfa, 0x41]), Buffer.alloc(48)]) })],
  ['a time stamp that is not a whole number', publish({ ts: 1_764_115_200_123.5 })],
  ['a large binary payload', publish({ payload: Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256)) })]
]

for (const [name, event] of cases) {
  test(`a publish record gives the broker thread's body, in every encoding: ${name}`, (t) => {
    const read = roundTrip((writer) => {
      for (const encoding of ENCODINGS) writer.publish(event.ts, event.topic, event.retain, event.qos, event.fromUsername, event.from, event.payload, encoding)
    })
    t.deepEqual(read, ENCODINGS.map((encoding) => bodies.messagePublish(event, encoding)))
    for (const body of read) t.notThrows(() => JSON.parse(body))
  })
}

test('JSON records and publish records interleave, past the initial buffer size', (t) => {
  const connack = '{"proto_ver":4,"keepalive":60,"conn_ack":"success","username":"ü","clientid":"c","action":"client_connack"}'
  const expected: string[] = []
  const read = roundTrip((writer) => {
    for (let i = 0; i < 2000; i++) {
      const event = publish({ topic: `t/${i}`, payload: Buffer.from(`payload ${i}`) })
      writer.json(connack)
      writer.publish(event.ts, event.topic, event.retain, event.qos, event.fromUsername, event.from, event.payload, 'plain')
      expected.push(connack, bodies.messagePublish(event, 'plain'))
    }
  })
  t.is(read.length, 4000)
  t.deepEqual(read, expected)
})

test('take() hands off a buffer of exactly the records; records written afterwards are not in it', (t) => {
  const writer = new RecordWriter()
  writer.json('{"a":1}')
  const first = writer.take()
  writer.json('{"b":2}')
  const second = writer.take()
  t.not(first.buffer, second.buffer)
  // exactly their size: a queued hand-off of one small event must not hold a large buffer
  t.is(first.buffer.byteLength, first.byteLength)
  t.is(second.buffer.byteLength, second.byteLength)
  t.is(Buffer.from(first.buffer, 0, first.byteLength).toString('utf8', 5), '{"a":1}')
  t.is(Buffer.from(second.buffer, 0, second.byteLength).toString('utf8', 5), '{"b":2}')
  t.is(writer.count, 0)
})

test('a request body takes back an event that did not fit', (t) => {
  const writer = new RecordWriter()
  writer.json('{"a":1}')
  writer.json('{"b":2}')
  const { buffer, byteLength } = writer.take()
  const data = Buffer.from(buffer, 0, byteLength)
  const body = new RequestBody()
  body.start(true)
  body.append(data, 0, recordEnd(data, 0))
  const mark = body.append(data, recordEnd(data, 0), byteLength)
  t.is(body.finishedLength, '[{"a":1},{"b":2}]'.length)
  body.truncate(mark)
  t.is(body.finish().toString(), '[{"a":1}]')
})

test('any payload bytes: the body equals JSON.stringify of the UTF-8 decoder\'s text (property)', (t) => {
  // bytes biased to the interesting ranges: controls, quote and backslash, lead and
  // continuation bytes, and the edges of Unicode table 3-7
  const interesting = fc.constantFrom(0x00, 0x0a, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
    0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff)
  const bytes = fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), interesting), { maxLength: 40 })
  t.notThrows(() => fc.assert(fc.property(bytes, (list) => {
    const event = publish({ payload: Buffer.from(list) })
    const [body] = roundTrip((writer) => writer.publish(event.ts, event.topic, event.retain, event.qos, event.fromUsername, event.from, event.payload, 'plain'))
    return body === bodies.messagePublish(event, 'plain')
  }), { numRuns: 5000 }))
})

test('time stamps in a row, repeated or not, whole or not: each body has its own (property)', (t) => {
  // the body builder keeps the digits of the last ts it wrote; a repeat must reuse them and
  // a change must not
  const base = 1_764_115_200_123
  const ts = fc.oneof(
    fc.constantFrom(base, base + 1, base + 0.5, 0, 9, 10, 999, 1000, 2 ** 53 - 1, 2 ** 53, 1e21, -1, Number.MAX_VALUE),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    fc.double({ noNaN: true, noDefaultInfinity: true })
  )
  t.notThrows(() => fc.assert(fc.property(fc.array(ts, { minLength: 1, maxLength: 20 }), (list) => {
    const events = list.map((value) => publish({ ts: value }))
    const read = roundTrip((writer) => {
      for (const event of events) writer.publish(event.ts, event.topic, event.retain, event.qos, event.fromUsername, event.from, event.payload, 'plain')
    })
    return read.join('\n') === events.map((event) => bodies.messagePublish(event, 'plain')).join('\n')
  }), { numRuns: 500 }))
})

test('a finished body stays as it is while the next ones are built (small ones copied, large ones keep their buffer)', (t) => {
  const body = new RequestBody()
  const finished: Array<{ buffer: Buffer, text: string }> = []
  // from single events to batches past the scratch buffer's size, and back
  for (const events of [1, 2, 40, 200, 200, 3, 500, 1]) {
    const writer = new RecordWriter()
    for (let i = 0; i < events; i++) {
      const event = publish({ topic: `t/${events}/${i}`, payload: Buffer.alloc(64, events + i) })
      writer.publish(event.ts, event.topic, event.retain, event.qos, event.fromUsername, event.from, event.payload, 'plain')
    }
    const { buffer, byteLength } = writer.take()
    const data = Buffer.from(buffer, 0, byteLength)
    body.start(true)
    for (let at = 0; at < data.length; at = recordEnd(data, at)) body.append(data, at, recordEnd(data, at))
    const out = body.finish()
    finished.push({ buffer: out, text: out.toString() })
    t.is(JSON.parse(out.toString()).length, events)
  }
  for (const { buffer, text } of finished) t.is(buffer.toString(), text)
})

test('every combination of qos, retain and user name, one after another in one body builder', (t) => {
  const events = [0, 1, 2].flatMap((qos) => [false, true].flatMap((retain) =>
    ['bob', undefined, ''].map((fromUsername) => publish({ qos: qos as 0 | 1 | 2, retain, fromUsername }))))
  const read = roundTrip((writer) => {
    for (const event of events) writer.publish(event.ts, event.topic, event.retain, event.qos, event.fromUsername, event.from, event.payload, 'plain')
  })
  t.deepEqual(read, events.map((event) => bodies.messagePublish(event, 'plain')))
})

test('recycle() takes back the memory of a body handed out with its scratch buffer, once; never a small body\'s copy', (t) => {
  const body = new RequestBody()
  const build = (events: number) => {
    const writer = new RecordWriter()
    for (let i = 0; i < events; i++) {
      const event = publish({ topic: `t/${i}`, payload: Buffer.alloc(200, 0x61 + (i % 26)) })
      writer.publish(event.ts, event.topic, event.retain, event.qos, event.fromUsername, event.from, event.payload, 'plain')
    }
    const { buffer, byteLength } = writer.take()
    const data = Buffer.from(buffer, 0, byteLength)
    body.start(true)
    for (let at = 0; at < data.length; at = recordEnd(data, at)) body.append(data, at, recordEnd(data, at))
    return body.finish()
  }
  const small = build(1)
  body.recycle(small)
  const first = build(200)
  body.recycle(first)
  body.recycle(first) // a second time changes nothing
  const second = build(200)
  const third = build(200)
  // `second` went out in the scratch buffer allocated after `first`; `third` in `first`'s memory
  t.not(second.buffer, first.buffer)
  t.is(third.buffer, first.buffer)
  t.not(third.buffer, small.buffer)
  t.is(JSON.parse(third.toString()).length, 200)
  const fourth = build(200)
  t.not(fourth.buffer, first.buffer, 'taken back once only')
})

test('strings a record cannot carry are refused whole: more than 65,535 bytes of UTF-8, and lone surrogates', (t) => {
  const writer = new RecordWriter()
  const payload = Buffer.from('x')
  // 22,000 U+FFFD (aedes' decoding of 22,000 ill-formed bytes): 66,000 bytes of UTF-8
  t.false(writer.publish(1, '\ufffd'.repeat(22_000), false, 0, undefined, 'c', payload, 'plain'))
  t.false(writer.publish(1, 't', false, 0, 'u', '\ufffd'.repeat(22_000), payload, 'plain'))
  t.false(writer.publish(1, 't', false, 0, '\ufffd'.repeat(22_000), 'c', payload, 'plain'))
  t.false(writer.publish(1, 'a/\ud800/b', false, 0, undefined, 'c', payload, 'plain'))
  t.is(writer.count, 0)
  // the most a field may hold still travels
  const longest = 'é'.repeat(32_767) + 'a'
  t.true(writer.publish(1, longest, false, 0, undefined, 'c', payload, 'plain'))
  t.true(writer.publish(1, 'a/\ud83d\ude00/b', false, 0, undefined, 'c', payload, 'plain'))
  const { buffer, byteLength, count } = writer.take()
  t.is(count, 2)
  const data = Buffer.from(buffer, 0, byteLength)
  t.is(recordEnd(data, recordEnd(data, 0)), byteLength)
})

test('a record cut short at any byte ends past its buffer, without throwing', (t) => {
  const writer = new RecordWriter()
  writer.publish(1, 'a/topic', false, 1, 'user', 'client', Buffer.from('payload'), 'plain')
  writer.json('{"action":"client_connected"}')
  const { buffer, byteLength } = writer.take()
  const data = Buffer.from(buffer, 0, byteLength)
  const second = recordEnd(data, 0)
  for (const [start, end] of [[0, second], [second, byteLength]]) {
    for (let cut = start + 1; cut < end; cut++) {
      const part = data.subarray(0, cut)
      t.true(recordEnd(part, start) > cut, `record at ${start} cut at ${cut}`)
    }
  }
})
