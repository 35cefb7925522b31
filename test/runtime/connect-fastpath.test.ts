// The connect path's shortcuts (runtime/broker/handlers/connect-fastpath.ts): CONNACKs are
// byte-identical to mqtt-packet's, and aedes' $SYS client notices still reach anyone who
// subscribes to them.
import { connect as netConnect, type Socket } from 'node:net'
import test from 'ava'
import { Aedes } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { connackBytes, skipUnwatchedClientNotices } from '../../runtime/broker/handlers/connect-fastpath.ts'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, once, type Teardown, until, within } from '../helpers/mqtt.ts'

test('connackBytes: the bytes mqtt-packet generates for every 3.1.1 return code, with and without a session', (t) => {
  for (const sessionPresent of [false, true]) {
    for (let returnCode = 0; returnCode <= 5; returnCode++) {
      const expected = mqttPacket.generate({ cmd: 'connack', returnCode, sessionPresent })
      t.deepEqual(connackBytes({ cmd: 'connack', returnCode, sessionPresent }), expected, `rc ${returnCode}, session ${sessionPresent}`)
      t.deepEqual(connackBytes({ cmd: 'connack', returnCode, sessionPresent }, 4), expected)
    }
  }
  // left to mqtt-packet
  t.is(connackBytes({ cmd: 'connack', returnCode: 6, sessionPresent: false }), undefined, 'aedes\' keepalive code 6')
  t.is(connackBytes({ cmd: 'connack', returnCode: 0, sessionPresent: false }, 5), undefined, 'MQTT 5')
  t.is(connackBytes({ cmd: 'connack', returnCode: 0, sessionPresent: false, properties: {} }), undefined, 'properties')
  t.is(connackBytes({ cmd: 'puback' }), undefined)
})

/** Sends CONNECT on a raw socket and resolves with the first 4 bytes the broker answers. */
async function rawConnack (t: Teardown, port: number, connect: { clientId: string, clean: boolean, username?: string }): Promise<Buffer> {
  const socket: Socket = netConnect({ host: '127.0.0.1', port })
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  let received = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => { received = Buffer.concat([received, chunk]) })
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, keepalive: 0, ...connect }))
  await until(() => received.length >= 4, 'the CONNACK')
  return received.subarray(0, 4)
}

test('clients read the same CONNACK bytes as before: accepted, session present, refused', async (t) => {
  const broker = await testBroker(t, { config: { allow_anonymous: 'false' } })
  // no auth plugin and allow_anonymous = false: a user name gets rc 5, none gets rc 4
  t.deepEqual(await rawConnack(t, broker.port, { clientId: 'anon', clean: true }), Buffer.from([0x20, 2, 0, 4]))
  t.deepEqual(await rawConnack(t, broker.port, { clientId: 'named', clean: true, username: 'u' }), Buffer.from([0x20, 2, 0, 5]))

  const open = await testBroker(t)
  t.deepEqual(await rawConnack(t, open.port, { clientId: 'fresh', clean: false }), Buffer.from([0x20, 2, 0, 0]), 'new session')
  // aedes reports a session as present when it holds subscriptions
  const first = await connectClient(t, open.url, { clientId: 'p', clean: false })
  await first.subscribeAsync('s/+', { qos: 1 })
  await first.endAsync()
  t.deepEqual(await rawConnack(t, open.port, { clientId: 'p', clean: false }), Buffer.from([0x20, 2, 1, 0]), 'session present')
})

test('$SYS new/disconnect client notices: skipped while no one listens, delivered once someone subscribes', async (t) => {
  const broker = await testBroker(t)
  const id = broker.tapmq.broker.id
  const emitted: string[] = []
  const mq = (broker.tapmq.broker as unknown as { mq: { emit (packet: { topic: string }, cb?: () => void): void } }).mq
  const emit = mq.emit.bind(mq)
  mq.emit = (packet, cb) => {
    emitted.push(packet.topic)
    emit(packet, cb)
  }

  const quiet = await connectClient(t, broker.url, { clientId: 'quiet' })
  quiet.end()
  await until(() => broker.tapmq.broker.connectedClients === 0, 'quiet to leave')
  t.deepEqual(emitted.filter((topic) => topic.startsWith('$SYS/') && topic.endsWith('/clients')), [], 'no notice routed without a listener')

  const watcher = await connectClient(t, broker.url, { clientId: 'watcher' })
  await watcher.subscribeAsync([`$SYS/${id}/new/clients`, '$SYS/+/disconnect/clients'])
  const notices: string[] = []
  watcher.on('message', (topic: string, payload: Buffer) => notices.push(`${topic.split('/').slice(2).join('/')} ${payload.toString()}`))
  const device = await connectClient(t, broker.url, { clientId: 'device' })
  device.end()
  await within(until(() => notices.includes('disconnect/clients device'), 'the disconnect notice'), 'the notices')
  t.true(notices.includes('new/clients device'))

  // once nobody listens again, the notices stop again
  await watcher.unsubscribeAsync([`$SYS/${id}/new/clients`, '$SYS/+/disconnect/clients'])
  emitted.length = 0
  const later = await connectClient(t, broker.url, { clientId: 'later' })
  later.end()
  await until(() => broker.tapmq.broker.connectedClients === 1, 'later to leave')
  t.deepEqual(emitted.filter((topic) => topic.startsWith('$SYS/') && topic.endsWith('/clients')), [], 'no notice routed after the unsubscribe')
})

test('in a cluster every notice goes out: publish is left as aedes has it', async (t) => {
  const broker = new Aedes()
  t.teardown(() => new Promise<void>((resolve) => broker.close(() => resolve())))
  const publish = broker.publish
  skipUnwatchedClientNotices(broker, true)
  t.is(broker.publish, publish)
  skipUnwatchedClientNotices(broker, false)
  t.not(broker.publish, publish)
  // an unwatched notice completes at once, anything else is published
  let done = 0
  broker.publish({ topic: `$SYS/${broker.id}/new/clients`, payload: Buffer.from('x') } as never, () => { done++ })
  t.is(done, 1)
  const routed = new Promise<string>((resolve) => broker.subscribe('plain', (packet, cb) => { resolve(packet.payload.toString()); cb() }, () => {
    broker.publish({ cmd: 'publish', topic: 'plain', payload: Buffer.from('y'), qos: 0, retain: false, dup: false }, () => {})
  }))
  t.is(await within(routed, 'the plain message'), 'y')
})
