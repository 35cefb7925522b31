// Payload encodings against the vectors of the compat notes (§1.6), then all of them end to
// end with the configured headers.
import test from 'ava'
import { base62Emqx, base62NanoMQ08, encodePayload } from '../../plugins/webhook/encoding.mjs'
import { connectClient } from '../helpers/mqtt.ts'
import { baseConf, brokerWith, Receiver } from './receiver.ts'

/** payload → [base64, NanoMQ 0.8.0 base62, EMQX 4 base62], from the notes' table */
const VECTORS: Array<[Buffer, string, string, string]> = [
  [Buffer.from('hello'), 'aGVsbG8=', 'aGVsbG8', 'aGVsbGP'],
  [Buffer.from('hi'), 'aGk=', 'aGk', 'aGJ'],
  [Buffer.from([0xfb, 0xff]), '+/8=', 'ibic8', '9B9CP'],
  [Buffer.from([0x8a]), 'ig==', 'iag', 'iC'],
  [Buffer.from([0x00, 0x01]), 'AAE=', 'AAE', 'AAB'],
  [Buffer.from('{"temp":21.5}'), 'eyJ0ZW1wIjoyMS41fQ==', 'eyJ0ZW1wIjoyMS41fQ', 'eyJ0ZW1wIjoyMS41fB']
]

for (const [payload, base64, nanomq, emqx] of VECTORS) {
  test(`vectors of ${JSON.stringify(payload.toString('latin1'))}`, (t) => {
    t.is(encodePayload(payload, 'base64'), base64)
    t.is(base62NanoMQ08(payload), nanomq)
    t.is(encodePayload(payload, 'base62_nanomq08'), nanomq)
    t.is(base62Emqx(payload), emqx)
    t.is(encodePayload(payload, 'base62'), emqx)
  })
}

test('an empty payload is "" in every encoding (NanoMQ: key missing or null)', (t) => {
  for (const encoding of ['plain', 'base64', 'base62', 'base62_nanomq08'] as const) t.is(encodePayload(Buffer.alloc(0), encoding), '')
})

test('EMQX base62: whole groups use 9A, 9B, 9C for 61, 62, 63; 3-byte input has no tail', (t) => {
  // 0xf7 0xdf 0xff = 111101 111101 111111 111111 → 61 61 63 63
  t.is(base62Emqx(Buffer.from([0xf7, 0xdf, 0xff])), '9A9A9C9C')
  t.is(base62Emqx(Buffer.from('abc')), Buffer.from('abc').toString('base64'))
})

for (const [encoding, expected] of [['plain', 'hello'], ['base64', 'aGVsbG8='], ['base62', 'aGVsbGP'], ['base62_nanomq08', 'aGVsbG8']] as const) {
  test(`encoding ${encoding} end to end, with the configured headers`, async (t) => {
    const receiver = await Receiver.start(t)
    const broker = await brokerWith(t, baseConf(receiver, '/hooks/mqtt?src=tapmq') + [
      `web.hook.body.encoding_of_payload_field=${encoding.toUpperCase()}`,
      'web.hook.headers.X-Api-Key = s3cret value ',
      'web.hook.headers.accept=text/plain',
      'web.hook.rule.message.publish.1={"action": "on_message_publish"}'
    ].join('\n'))
    const client = await connectClient(t, broker.url, { clientId: 'enc' })
    await client.publishAsync('enc/1', 'hello')
    const body = await receiver.body('"topic":"enc/1"')
    t.is((JSON.parse(body) as { payload: string }).payload, expected)
    const [request] = receiver.requests
    t.is(request!.url, '/hooks/mqtt?src=tapmq')
    t.is(request!.headers['x-api-key'], 's3cret value')
    t.is(request!.headers.accept, 'text/plain')
    t.is(request!.headers['content-type'], 'application/json')
    // the name is sent as written
    t.true(request!.rawHeaders.includes('X-Api-Key'))
  })
}

test('the pre-4.3 alias web.hook.encode_payload, and a Content-Type header that overrides the default', async (t) => {
  const receiver = await Receiver.start(t)
  const broker = await brokerWith(t, [
    'web.hook.api.url=' + receiver.url('/old'),
    'web.hook.encode_payload=base64',
    'web.hook.headers.Content-Type=application/vnd.acme+json',
    'web.hook.rule.message.publish.1={"action": "on_message_publish"}'
  ].join('\n'))
  const client = await connectClient(t, broker.url, { clientId: 'alias' })
  await client.publishAsync('a/1', 'hi')
  const body = await receiver.body('"topic":"a/1"')
  t.is((JSON.parse(body) as { payload: string }).payload, 'aGk=')
  t.is(receiver.requests[0]!.url, '/old')
  t.is(receiver.requests[0]!.headers['content-type'], 'application/vnd.acme+json')
  t.is(receiver.requests[0]!.rawHeaders.filter((name) => name.toLowerCase() === 'content-type').length, 1)
})
