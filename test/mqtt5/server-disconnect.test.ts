// MQTT 5 server-side DISCONNECT with a reason code (§3.14, §4.13): the broker tells a v5
// client why it closes the connection; a 3.1.1 client is just closed. The client.disconnected
// hook carries the reason and the MQTT 5 reason code.
import test from 'ava'
import type { IDisconnectPacket } from 'mqtt-packet'
import type { DisconnectEvent } from '../../sdk/index.ts'
import httpApi from '../../plugins/http-api/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { once, RawClient, Recorder, WAIT_MS } from '../helpers/mqtt.ts'
import { freePort, startTapmq, workspace } from '../helpers/cli.ts'
import { connect5, ready, send5 } from './session-helpers.ts'

type Broker = Awaited<ReturnType<typeof testBroker>>

async function recording (t: Parameters<typeof testBroker>[0], options: Parameters<typeof testBroker>[1] = {}): Promise<{ broker: Broker, events: Recorder<DisconnectEvent> }> {
  const events = new Recorder<DisconnectEvent>()
  const broker = await testBroker(t, {
    ...options,
    plugins: [...(options.plugins ?? []), tapping('test:disconnects', (hooks) => hooks.client.disconnected.tap('test:disconnects', events.push))]
  })
  return { broker, events }
}

/** Resolves with the DISCONNECT the broker sent to an mqtt.js v5 client. */
function serverDisconnect (client: Awaited<ReturnType<typeof connect5>>['client']): Promise<IDisconnectPacket> {
  return once<[IDisconnectPacket]>(client, 'disconnect').then(([packet]) => packet)
}

test('session takeover: the old connection gets DISCONNECT 0x8E, without a Session Expiry Interval [MQTT-3.1.4-3] [MQTT-3.14.2-2]', async (t) => {
  const { broker, events } = await recording(t)
  const old = await connect5(t, broker.url, { clientId: 'twin', clean: false, properties: { sessionExpiryInterval: 60 } })
  const told = serverDisconnect(old.client)
  await connect5(t, broker.url, { clientId: 'twin', clean: false, properties: { sessionExpiryInterval: 60 } })
  const packet = await told
  t.is(packet.reasonCode, 0x8E)
  t.is(packet.properties?.sessionExpiryInterval, undefined)
  t.like(await events.find((e) => e.clientId === 'twin'), { reason: 'takeover', reasonCode: 0x8E, protoVer: 5 })
})

test('MQTT 3.1.1 takeover: the old connection is just closed, no reason code in the hook', async (t) => {
  const { broker, events } = await recording(t)
  const { client: old } = await RawClient.connect(t, broker.port, { clientId: 'legacy-twin' })
  await RawClient.connect(t, broker.port, { clientId: 'legacy-twin' })
  await old.waitClosed()
  t.deepEqual(old.packets.filter((p) => p.cmd === 'disconnect'), [])
  const event = await events.find((e) => e.clientId === 'legacy-twin')
  t.is(event.reason, 'takeover')
  t.false('reasonCode' in event)
})

test('broker shutdown: DISCONNECT 0x8B (Server shutting down) [§3.14.2.1]', async (t) => {
  const { broker, events } = await recording(t)
  const v5 = await connect5(t, broker.url, { clientId: 'bystander' })
  await ready(broker.tapmq.broker, 'bystander')
  const told = serverDisconnect(v5.client)
  await broker.close()
  t.is((await told).reasonCode, 0x8B)
  t.like(await events.find((e) => e.clientId === 'bystander'), { reason: 'shutdown', reasonCode: 0x8B })
})

test('SIGTERM to tapmq start: its MQTT 5 clients get DISCONNECT 0x8B', async (t) => {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const run = await startTapmq(t, ws)
  const v5 = await connect5(t, `mqtt://127.0.0.1:${ws.port}`, { clientId: 'sigterm' })
  // a round trip: the broker (another process) finished the CONNECT before it answers
  await v5.client.subscribeAsync('any', { qos: 1 })
  const told = serverDisconnect(v5.client)
  run.child.kill('SIGTERM')
  t.is((await told).reasonCode, 0x8B)
  t.is(await run.exited(WAIT_MS * 2), 0)
})

test('operator kick (BrokerView.disconnect): DISCONNECT 0x98 (Administrative action); 3.1.1 is just closed', async (t) => {
  const { broker, events } = await recording(t)
  const v5 = await connect5(t, broker.url, { clientId: 'kicked5' })
  await ready(broker.tapmq.broker, 'kicked5')
  const told = serverDisconnect(v5.client)
  t.true(broker.broker.disconnect('kicked5'))
  t.is((await told).reasonCode, 0x98)
  t.like(await events.find((e) => e.clientId === 'kicked5'), { reason: 'kicked', reasonCode: 0x98 })

  const { client: v4 } = await RawClient.connect(t, broker.port, { clientId: 'kicked4' })
  t.true(broker.broker.disconnect('kicked4'))
  await v4.waitClosed()
  t.deepEqual(v4.packets.filter((p) => p.cmd === 'disconnect'), [])
  t.like(await events.find((e) => e.clientId === 'kicked4'), { reason: 'kicked' })
})

test('operator kick through the HTTP API (DELETE /api/v4/clients/:clientid): DISCONNECT 0x98', async (t) => {
  const port = await freePort()
  const { broker } = await recording(t, { plugins: [{ plugin: httpApi, options: { enable: true, port, bind: '127.0.0.1' } }] })
  const v5 = await connect5(t, broker.url, { clientId: 'via-http' })
  await ready(broker.tapmq.broker, 'via-http')
  const told = serverDisconnect(v5.client)
  const reply = await fetch(`http://127.0.0.1:${port}/api/v4/clients/via-http`, {
    method: 'DELETE', headers: { authorization: 'Basic ' + Buffer.from('admin:public').toString('base64') }
  })
  t.is(reply.status, 200)
  t.is((await told).reasonCode, 0x98)
})

test('keepalive timeout: DISCONNECT 0x8D (Keep Alive timeout) [MQTT-3.1.2-22]', async (t) => {
  const { broker, events } = await recording(t)
  const { client, connack } = await RawClient.connect(t, broker.port, { clientId: 'silent', protocolVersion: 5, keepalive: 1 })
  t.is((connack as { reasonCode?: number }).reasonCode, 0)
  // nothing more is sent: 1.5 × keepalive later the broker gives up on the client
  const disconnect = await client.next('disconnect') as { reasonCode?: number }
  t.is(disconnect.reasonCode, 0x8D)
  await client.waitClosed()
  t.like(await events.find((e) => e.clientId === 'silent'), { reason: 'keepalive_timeout', reasonCode: 0x8D })
})

test('the client\'s own DISCONNECT reason code reaches the hook', async (t) => {
  const { broker, events } = await recording(t)
  const { client } = await RawClient.connect(t, broker.port, { clientId: 'leaving', protocolVersion: 5 })
  client.write(send5({ cmd: 'disconnect', reasonCode: 0x04 }))
  await client.waitClosed()
  t.like(await events.find((e) => e.clientId === 'leaving'), { reason: 'normal', reasonCode: 0x04 })
})
