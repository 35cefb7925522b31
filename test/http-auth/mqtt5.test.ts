// http-auth with MQTT 5 clients: `%r` is `mqtt5`; the auth server's answers become MQTT 5
// CONNACK reason codes (400/401 → 0x86 Bad User Name or Password, 403 → 0x87 Not
// Authorized) with a Reason String; ACL denials become SUBACK / PUBACK 0x87. MQTT 3.1.1
// clients keep their return codes and `%r` = mqtt.
import test from 'ava'
import mqtt, { type IClientOptions } from 'mqtt'
import { AuthServer, brokerWith, connackCode, until, WAIT_MS } from './helpers.ts'
import { once, within } from '../helpers/mqtt.ts'

type Packet = { cmd: string, reasonCode?: number, returnCode?: number, granted?: number[], properties?: { reasonString?: string } }

/** An MQTT 5 CONNECT; resolves with the CONNACK packet (accepted or not) and the client. */
async function connect5 (t: Parameters<typeof AuthServer.start>[0], url: string, options: IClientOptions = {}) {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options })
  const received: Packet[] = []
  client.on('packetreceive', (packet) => received.push(packet as unknown as Packet))
  client.on('error', () => {})
  t.teardown(() => client.endAsync(true).catch(() => {}))
  const [connack] = await once<[Packet]>(client, 'packetreceive')
  return { client, connack, received }
}

/** An auth server answering each user name with its status (200 for others). */
const byStatus = (t: Parameters<typeof AuthServer.start>[0], statuses: Record<string, number>) => AuthServer.start(t, (request, res) => {
  res.writeHead(statuses[request.fields.u ?? ''] ?? 200).end()
})

test('%r is mqtt5 for an MQTT 5 client and mqtt for MQTT 3.1.1, in the auth request of a real node:http server', async (t) => {
  const server = await AuthServer.start(t)
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'c=%c,r=%r' } })
  const { connack } = await connect5(t, broker.url, { clientId: 'five' })
  t.is(connack.reasonCode, 0)
  t.is(await connackCode(t, broker.url, { clientId: 'four', protocolVersion: 4 }), 0)
  await server.waitFor(2)
  t.deepEqual(server.seen.map((s) => s.fields), [{ c: 'five', r: 'mqtt5' }, { c: 'four', r: 'mqtt' }])
})

test('[MQTT-3.2.2-6] auth server 401 → CONNACK 0x86, 403 → 0x87, each with a Reason String naming the answer; MQTT 3.1.1 gets 4 and 5', async (t) => {
  const server = await byStatus(t, { bad: 401, forbidden: 403 })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'u=%u' } })

  const bad = await connect5(t, broker.url, { clientId: 'b5', username: 'bad', password: 'x' })
  t.is(bad.connack.reasonCode, 0x86)
  t.is(bad.connack.properties?.reasonString, 'auth server answered 401')
  const forbidden = await connect5(t, broker.url, { clientId: 'f5', username: 'forbidden', password: 'x' })
  t.is(forbidden.connack.reasonCode, 0x87)
  t.is(forbidden.connack.properties?.reasonString, 'auth server answered 403')
  // [MQTT-3.1.2-29]: a client that asked for no problem information gets no Reason String
  const quiet = await connect5(t, broker.url, { clientId: 'q5', username: 'bad', password: 'x', properties: { requestProblemInformation: false } })
  t.is(quiet.connack.reasonCode, 0x86)
  t.is(quiet.connack.properties?.reasonString, undefined)

  t.is(await connackCode(t, broker.url, { clientId: 'b4', username: 'bad', password: 'x', protocolVersion: 4 }), 4)
  t.is(await connackCode(t, broker.url, { clientId: 'f4', username: 'forbidden', password: 'x', protocolVersion: 4 }), 5)
})

test('an unreachable auth server is CONNACK 0x88 Server Unavailable for an MQTT 5 client', async (t) => {
  const server = await AuthServer.start(t, (_req, res) => { res.writeHead(503).end() })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'c=%c' } })
  const { connack } = await connect5(t, broker.url, { clientId: 'x5' })
  t.is(connack.reasonCode, 0x88)
})

test('ACL denials from the auth server: SUBACK 0x87 and PUBACK 0x87 for an MQTT 5 client, which stays connected', async (t) => {
  const server = await AuthServer.start(t, (request, res) => {
    res.writeHead(request.path === '/mqtt/acl' && request.fields.t?.startsWith('private/') ? 403 : 200).end()
  })
  const broker = await brokerWith(t, {
    authReq: { url: server.url(), params: 'c=%c' },
    aclReq: { url: server.url('/mqtt/acl'), params: 'c=%c,t=%t,A=%A,r=%r' }
  })
  const { client, received } = await connect5(t, broker.url, { clientId: 'acl5' })
  await client.subscribeAsync({ 'private/a': { qos: 1 }, 'public/a': { qos: 1 } }).catch(() => {})
  const suback = await until(() => received.find((p) => p.cmd === 'suback'), 'a SUBACK')
  t.deepEqual(suback.granted, [0x87, 1])
  t.is(suback.properties?.reasonString, 'acl server answered 403')

  await t.throwsAsync(client.publishAsync('private/b', 'x', { qos: 1 }))
  const puback = await until(() => received.find((p) => p.cmd === 'puback'), 'a PUBACK')
  t.is(puback.reasonCode, 0x87)
  t.is(puback.properties?.reasonString, 'acl server answered 403')
  await within(client.publishAsync('public/b', 'y', { qos: 1 }), 'an allowed publish')
  t.true(client.connected)
  t.true(server.seen.some((s) => s.path === '/mqtt/acl' && s.fields.r === 'mqtt5'), '%r in ACL requests too')
})
