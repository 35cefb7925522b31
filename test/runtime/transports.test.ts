// connect / subscribe / publish over every listener kind: TCP, WebSocket and TLS (with a
// CA made at test time), and mutual TLS: the client certificate reaches `auth`.
import test from 'ava'
import type { MqttClient } from 'mqtt'
import type { AuthRequest } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { connectClient, connectRefused, nextMessage, Recorder, tmpDir } from '../helpers/mqtt.ts'
import { makeTestCertificates, tlsConfig, writeTestCertificates } from '../helpers/tls.ts'

async function roundTrip (t: { is (a: unknown, b: unknown): void }, subscriber: MqttClient, publisher: MqttClient, topic: string): Promise<void> {
  const granted = await subscriber.subscribeAsync(topic, { qos: 1 })
  t.is(granted[0]!.qos, 1)
  const received = nextMessage(subscriber)
  await publisher.publishAsync(topic, `hello ${topic}`, { qos: 1 })
  const [gotTopic, payload] = await received
  t.is(gotTopic, topic)
  t.is(payload.toString(), `hello ${topic}`)
}

test('TCP: connect, subscribe, publish', async (t) => {
  const broker = await testBroker(t)
  t.regex(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
  const sub = await connectClient(t, broker.url, { clientId: 'tcp-sub' })
  const pub = await connectClient(t, broker.url, { clientId: 'tcp-pub' })
  await roundTrip(t, sub, pub, 'tcp/a')
})

test('WebSocket: connect, subscribe, publish; TCP and WS clients reach each other', async (t) => {
  const auth = new Recorder<AuthRequest>()
  const broker = await testBroker(t, { websocket: true, plugins: [tapping('rec', (hooks) => hooks.auth.tap('rec', auth.push))] })
  t.truthy(broker.wsUrl)
  const wsSub = await connectClient(t, broker.wsUrl!, { clientId: 'ws-sub' })
  const wsPub = await connectClient(t, broker.wsUrl!, { clientId: 'ws-pub' })
  const tcp = await connectClient(t, broker.url, { clientId: 'tcp-peer' })
  await roundTrip(t, wsSub, wsPub, 'ws/a')
  await roundTrip(t, tcp, wsPub, 'ws/b')
  const wsAuth = auth.list.find((a) => a.clientId === 'ws-sub')!
  t.is(wsAuth.peer.transport, 'ws')
  t.is(wsAuth.peer.address, '127.0.0.1')
  t.is(wsAuth.peer.listenerPort, Number(new URL(broker.wsUrl!).port))
  t.is(auth.list.find((a) => a.clientId === 'tcp-peer')!.peer.transport, 'tcp')
})

test('TLS: server certificate signed by a test CA, client verifies it', async (t) => {
  const certs = await writeTestCertificates(await tmpDir(t))
  const auth = new Recorder<AuthRequest>()
  const broker = await testBroker(t, {
    config: tlsConfig(certs.files),
    plugins: [tapping('rec', (hooks) => hooks.auth.tap('rec', auth.push))]
  })
  const tls = broker.tapmq.listeners.find((listener) => listener.url.startsWith('tls'))
  t.truthy(tls, `a TLS listener among ${broker.tapmq.listeners.map((l) => l.url).join(', ')}`)
  const url = `mqtts://127.0.0.1:${tls!.port}`
  const options = { ca: certs.ca.cert, rejectUnauthorized: true, servername: 'localhost' }
  const sub = await connectClient(t, url, { ...options, clientId: 'tls-sub' })
  const pub = await connectClient(t, url, { ...options, clientId: 'tls-pub' })
  await roundTrip(t, sub, pub, 'tls/a')
  const request = auth.list.find((a) => a.clientId === 'tls-sub')!
  t.is(request.peer.transport, 'tls')
  t.is(request.peer.listenerPort, tls!.port)
  t.is(request.peer.certificate, undefined, 'no client certificate was asked for')
  // the plain TCP listener still works beside it
  const tcp = await connectClient(t, broker.url, { clientId: 'tcp-beside-tls' })
  await roundTrip(t, tcp, pub, 'tls/b')
})

test('TLS: a client that does not trust the CA cannot connect', async (t) => {
  const certs = await writeTestCertificates(await tmpDir(t))
  const broker = await testBroker(t, { config: tlsConfig(certs.files) })
  const tls = broker.tapmq.listeners.find((listener) => listener.url.startsWith('tls'))!
  const err = await connectRefused(t, `mqtts://127.0.0.1:${tls.port}`, { rejectUnauthorized: true, servername: 'localhost' })
  t.regex(String((err as NodeJS.ErrnoException).code ?? err.message), /SELF_SIGNED|UNABLE_TO|CERT/)
})

test('mTLS: with verify_peer the client certificate CN and DN reach auth', async (t) => {
  const certs = await writeTestCertificates(await tmpDir(t))
  const auth = new Recorder<AuthRequest>()
  const broker = await testBroker(t, {
    config: tlsConfig(certs.files, { 'tls.verify_peer': 'true', 'tls.fail_if_no_peer_cert': 'false' }),
    plugins: [tapping('rec', (hooks) => hooks.auth.tap('rec', auth.push))]
  })
  const tls = broker.tapmq.listeners.find((listener) => listener.url.startsWith('tls'))!
  const url = `mqtts://127.0.0.1:${tls.port}`
  const client = await connectClient(t, url, {
    clientId: 'mtls', ca: certs.ca.cert, key: certs.client.key, cert: certs.client.cert, servername: 'localhost'
  })
  t.true(client.connected)
  const request = await auth.find((a) => a.clientId === 'mtls')
  t.is(request.peer.transport, 'tls')
  t.is(request.peer.certificate?.commonName, 'device-1')
  t.is(request.peer.certificate?.subject, 'CN=device-1,O=Acme')

  // verify_peer without fail_if_no_peer_cert: a client without a certificate may connect
  await connectClient(t, url, { clientId: 'no-cert', ca: certs.ca.cert, servername: 'localhost' })
  t.is((await auth.find((a) => a.clientId === 'no-cert')).peer.certificate, undefined)
})

test('mTLS: a certificate from an unknown CA is not passed to auth as an identity', async (t) => {
  const certs = await writeTestCertificates(await tmpDir(t))
  const stranger = await makeTestCertificates({ commonName: 'admin', organization: 'Evil' }, 'some other CA')
  const auth = new Recorder<AuthRequest>()
  const broker = await testBroker(t, {
    config: tlsConfig(certs.files, { 'tls.verify_peer': 'true', 'tls.fail_if_no_peer_cert': 'false' }),
    plugins: [tapping('rec', (hooks) => hooks.auth.tap('rec', auth.push))]
  })
  const tls = broker.tapmq.listeners.find((listener) => listener.url.startsWith('tls'))!
  await connectClient(t, `mqtts://127.0.0.1:${tls.port}`, {
    clientId: 'forged', ca: certs.ca.cert, key: stranger.client.key, cert: stranger.client.cert, servername: 'localhost'
  })
  const request = await auth.find((a) => a.clientId === 'forged')
  t.is(request.peer.certificate, undefined, 'an unverified CN=admin must not look like a verified identity')
})

test('mTLS: with fail_if_no_peer_cert a client without a certificate is refused', async (t) => {
  const certs = await writeTestCertificates(await tmpDir(t))
  const auth = new Recorder<AuthRequest>()
  const broker = await testBroker(t, {
    config: tlsConfig(certs.files, { 'tls.verify_peer': 'true', 'tls.fail_if_no_peer_cert': 'true' }),
    plugins: [tapping('rec', (hooks) => hooks.auth.tap('rec', auth.push))]
  })
  const tls = broker.tapmq.listeners.find((listener) => listener.url.startsWith('tls'))!
  const url = `mqtts://127.0.0.1:${tls.port}`
  await connectRefused(t, url, { clientId: 'no-cert', ca: certs.ca.cert, servername: 'localhost' })
  // a certificate from the right CA still gets in
  await connectClient(t, url, {
    clientId: 'with-cert', ca: certs.ca.cert, key: certs.client.key, cert: certs.client.cert, servername: 'localhost'
  })
  t.deepEqual(auth.list.map((a) => a.clientId), ['with-cert'], 'the refused client never reached auth')
})
