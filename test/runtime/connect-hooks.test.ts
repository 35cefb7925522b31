// CONNECT path hooks: client.connect → auth → client.connack → client.connected, once
// each, with the documented payloads; rejected connects (rc 1, 4, 5) reach only
// client.connack (and client.connect).
import test from 'ava'
import type { AuthRequest, ConnackEvent, ConnectedEvent, ConnectEvent } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { foreignPart, recordingPlugin } from '../helpers/hooks.ts'
import { connectClient, connectRefused, settle } from '../helpers/mqtt.ts'

test('an accepted CONNECT fires client.connect, auth, client.connack, client.connected once each, in that order', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const client = await connectClient(t, broker.url, {
    clientId: 'c1', username: 'alice', password: Buffer.from([0x00, 0xff, 0x73]), keepalive: 30, clean: true
  })
  const [connected] = await rec.of<ConnectedEvent>('client.connected').count(1)
  // a full round trip after the CONNACK, so late duplicates would have arrived
  await client.subscribeAsync('x/y')
  await settle()

  const names = rec.sequence.map(([name]) => name).filter((name) => name !== 'broker.started')
  t.deepEqual(names.slice(0, 4), ['client.connect', 'auth', 'client.connack', 'client.connected'])
  for (const hook of ['client.connect', 'auth', 'client.connack', 'client.connected']) {
    t.is(rec.of(hook).list.length, 1, `${hook} fired once`)
  }

  const localPort = (client.stream as unknown as { localPort: number }).localPort
  const peer = { address: '127.0.0.1', port: localPort, listenerPort: broker.port, transport: 'tcp' }

  const [auth] = rec.of<AuthRequest>('auth').list
  t.like(auth, { clientId: 'c1', username: 'alice', protoVer: 4, protoName: 'MQTT', keepalive: 30, cleanSession: true, peer })
  t.true(Buffer.isBuffer(auth!.password))
  t.deepEqual(auth!.password, Buffer.from([0x00, 0xff, 0x73]), 'the password exactly as sent, binary included')
  t.is(auth!.peer.certificate, undefined)

  const [connect] = rec.of<ConnectEvent>('client.connect').list
  t.like(connect, { clientId: 'c1', username: 'alice', protoVer: 4, protoName: 'MQTT', keepalive: 30, cleanSession: true, peer })
  t.is(typeof connect!.ts, 'number')
  t.false('password' in connect!, 'client.connect does not carry the password')

  const [connack] = rec.of<ConnackEvent>('client.connack').list
  t.like(connack, {
    clientId: 'c1', username: 'alice', protoVer: 4, keepalive: 30, returnCode: 0, result: 'success', sessionPresent: false, peer
  })
  t.is(typeof connack!.ts, 'number')

  t.like(connected, { clientId: 'c1', username: 'alice', protoVer: 4, keepalive: 30, cleanSession: true, peer })
  t.is(typeof connected!.connectedAt, 'number')
  t.false('password' in connected!)

  for (const [hook, payload] of rec.sequence) t.is(foreignPart(payload), undefined, `${hook} payload is plain data`)
})

test('a client without a client id gets one before any hook sees it', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  await connectClient(t, broker.url, { clientId: '', clean: true })
  const [connected] = await rec.of<ConnectedEvent>('client.connected').count(1)
  t.regex(connected!.clientId, /^tapmq-[0-9a-f]{8}$/)
  t.is(rec.of<AuthRequest>('auth').list[0]!.clientId, connected!.clientId)
  t.is(rec.of<ConnectEvent>('client.connect').list[0]!.clientId, connected!.clientId)
  t.is(rec.of<ConnackEvent>('client.connack').list[0]!.clientId, connected!.clientId)
  t.is(broker.broker.client(connected!.clientId)?.clientId, connected!.clientId)
})

test('rejected CONNECTs: client.connack carries return codes 4 and 5 with their result names; nothing else fires', async (t) => {
  const rec = recordingPlugin()
  const denier = tapping('denier', (hooks) => hooks.auth.tap('denier', (request) =>
    request.username === 'mallory'
      ? { result: 'deny', code: 4, reason: 'bad password' }
      : request.username === 'ok' ? { result: 'allow' } : undefined))
  const broker = await testBroker(t, { plugins: [rec.plugin, denier], config: { allow_anonymous: 'false' } })

  const badPassword = await connectRefused(t, broker.url, { clientId: 'm', username: 'mallory', password: 'x' })
  t.is(badPassword.code, 4)
  const anonymous = await connectRefused(t, broker.url, { clientId: 'anon' })
  t.is(anonymous.code, 4, 'allow_anonymous = false: a client without a user name is refused with rc 4')
  const unknown = await connectRefused(t, broker.url, { clientId: 'u', username: 'nobody', password: 'x' })
  t.is(unknown.code, 5, 'a user name that no auth plugin accepted: rc 5')

  const connacks = await rec.of<ConnackEvent>('client.connack').count(3)
  t.deepEqual(connacks.map((c) => [c.clientId, c.returnCode, c.result]), [
    ['m', 4, 'bad_username_or_password'],
    ['anon', 4, 'bad_username_or_password'],
    ['u', 5, 'not_authorized']
  ])
  t.like(connacks[0], { username: 'mallory', protoVer: 4, sessionPresent: false, peer: { address: '127.0.0.1', transport: 'tcp', listenerPort: broker.port } })
  t.is(connacks[1]!.username, undefined)

  // an accepted client afterwards: its events arrive, the refused ones never had any
  await connectClient(t, broker.url, { clientId: 'ok', username: 'ok', password: 'x' })
  await rec.of('client.connected').count(1)
  t.deepEqual(rec.of<ConnectedEvent>('client.connected').list.map((c) => c.clientId), ['ok'])
  t.deepEqual(rec.of('client.disconnected').list, [], 'a refused client was never connected, so it never disconnects')
  t.deepEqual(rec.of('session.terminated').list, [])
  t.is(broker.broker.stats().connections, 1)
})

test('MQTT 5 and MQTT 3.1 CONNECTs are accepted and go through auth with their protocol version', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  await connectClient(t, broker.url, { clientId: 'v5', protocolVersion: 5, username: 'five' })
  const [connack] = await rec.of<ConnackEvent>('client.connack').count(1)
  t.like(connack, { clientId: 'v5', username: 'five', protoVer: 5, returnCode: 0, result: 'success' })
  t.is(rec.of('auth').list.length, 1)
  t.is(rec.of<ConnectEvent>('client.connect').list[0]?.protoVer, 5)
  await connectClient(t, broker.url, { clientId: 'v3', protocolVersion: 3, protocolId: 'MQIsdp' })
  const [, v3] = await rec.of<ConnectedEvent>('client.connected').count(2)
  t.like(v3, { clientId: 'v3', protoVer: 3, protoName: 'MQIsdp' })
})
