// Every placeholder, over TCP, WebSocket and TLS with a client certificate; EMQX 5's
// ${name} forms; missing values left out; constants passed through.
import test from 'ava'
import { AuthServer, brokerWith, connack, connackCode, makeCerts, tmpDir } from './helpers.ts'

const ALL_AUTH = 'u=%u,c=%c,a=%a,r=%r,P=%P,p=%p,C=%C,d=%d,m=%m'

const allowAll = (t: Parameters<typeof AuthServer.start>[0]) => AuthServer.start(t, (_req, res) => { res.writeHead(200).end() })

test('every auth placeholder over plain TCP; TLS ones are left out', async (t) => {
  const server = await allowAll(t)
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: ALL_AUTH } })
  t.is(await connackCode(t, broker.url, { clientId: 'tcp-1', username: 'alice', password: 'pw' }), 0)
  t.deepEqual(server.seen[0]!.fields, { u: 'alice', c: 'tcp-1', a: '127.0.0.1', r: 'mqtt', P: 'pw', p: String(broker.port), m: '' })
})

test('%r is ws over WebSocket', async (t) => {
  const server = await allowAll(t)
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'r=%r,p=%p' } }, { websocket: true })
  t.is(await connackCode(t, broker.wsUrl!, { clientId: 'ws-1' }), 0)
  const wsPort = new URL(broker.wsUrl!).port
  t.deepEqual(server.seen[0]!.fields, { r: 'ws', p: wsPort })
})

test('%C and %d come from the TLS client certificate', async (t) => {
  const server = await allowAll(t)
  const certs = await makeCerts(await tmpDir(t), { commonName: 'device-7', organization: 'Acme' })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: ALL_AUTH } }, {
    config: {
      'tls.enable': 'true',
      'tls.url': 'tls+nmq-tcp://127.0.0.1:0',
      'tls.keyfile': certs.serverKey,
      'tls.certfile': certs.serverCert,
      'tls.cacertfile': certs.ca,
      'tls.verify_peer': 'true'
    }
  })
  const tlsPort = broker.tapmq.listeners[1]!.port
  const code = await connackCode(t, `mqtts://127.0.0.1:${tlsPort}`, {
    clientId: 'tls-1', username: 'dev', password: 'pw', ca: certs.caPem, key: certs.clientKey, cert: certs.clientCert, rejectUnauthorized: true
  })
  t.is(code, 0)
  const fields = server.seen[0]!.fields
  t.is(fields.C, 'device-7')
  t.regex(fields.d!, /CN=device-7/)
  t.regex(fields.d!, /O=Acme/)
  t.like(fields, { u: 'dev', c: 'tls-1', a: '127.0.0.1', r: 'mqtt', P: 'pw', p: String(tlsPort), m: '' })
})

test('EMQX 5 ${name} placeholders, templates and constants', async (t) => {
  const server = await allowAll(t)
  const broker = await brokerWith(t, {
    authReq: {
      url: server.url(),
      headers: { 'content-type': 'application/json' },
      params: 'clientid=${clientid},username=${username},password=${password},peerhost=${peerhost},proto=${proto_name},who=${username}@${clientid},cn=${cert_common_name},source=tapmq'
    }
  })
  t.is(await connackCode(t, broker.url, { clientId: 'e5', username: 'bob', password: 'x y' }), 0)
  t.deepEqual(JSON.parse(server.seen[0]!.body), {
    clientid: 'e5', username: 'bob', password: 'x y', peerhost: '127.0.0.1', proto: 'MQTT', who: 'bob@e5', source: 'tapmq'
  })
})

test('ACL placeholders: %A is 1 for subscribe and 2 for publish, %t the topic, %m empty', async (t) => {
  const server = await allowAll(t)
  const broker = await brokerWith(t, {
    aclReq: { url: server.url('/mqtt/acl'), method: 'GET', params: 'access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t,mountpoint=%m,proto=%r,action=${action},qos=${qos}' }
  })
  const { client } = await connack(t, broker.url, { clientId: 'acl-1', username: 'carol' })
  await client!.subscribeAsync('rooms/+/temp', { qos: 1 })
  await client!.publishAsync('rooms/1/temp', '21', { qos: 1 })
  await server.waitFor(2)
  t.deepEqual(server.seen.map((seen) => seen.query), [
    { access: '1', username: 'carol', clientid: 'acl-1', ipaddr: '127.0.0.1', topic: 'rooms/+/temp', mountpoint: '', proto: 'mqtt', action: 'subscribe', qos: '1' },
    { access: '2', username: 'carol', clientid: 'acl-1', ipaddr: '127.0.0.1', topic: 'rooms/1/temp', mountpoint: '', proto: 'mqtt', action: 'publish', qos: '1' }
  ])
})
