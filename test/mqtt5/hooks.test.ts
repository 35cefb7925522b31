// MQTT 5 in the hook payloads, and plugins' denials as MQTT 5 reason codes and reason strings.
// Every MQTT 5 field is optional: present for MQTT 5 clients (when the packet carried it),
// absent for MQTT 3.1.1 clients, so 3.1.1 payloads keep exactly their old keys.
import test, { type ExecutionContext } from 'ava'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type {
  AckedEvent, ConnackEvent, ConnectEvent, ConnectedEvent, DeliveredEvent, DroppedEvent, PublishEvent, SubscribeEvent,
  AuthRequest, SessionSubscriptionEvent, SessionTerminatedEvent
} from '../../sdk/index.ts'
import { tapDecision } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { recordingPlugin } from '../helpers/hooks.ts'
import { connectClient, nextMessage, once, settle, WAIT_MS, within } from '../helpers/mqtt.ts'

type Received = { cmd: string, reasonCode?: number, returnCode?: number, granted?: number[], properties?: Record<string, any>, messageId?: number, topic?: string }
type V5Client = MqttClient & { received: Received[] }

/** An mqtt.js client on MQTT 5 that keeps every packet it receives. */
async function v5 (t: ExecutionContext, url: string, options: IClientOptions = {}): Promise<V5Client> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options }) as V5Client
  client.received = []
  client.on('packetreceive', (packet) => client.received.push(packet as unknown as Received))
  t.teardown(() => client.endAsync(true).catch(() => {}))
  await within(new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  }), 'MQTT 5 connect')
  return client
}

/** The CONNACK of an MQTT 5 CONNECT the broker refuses. */
async function refusedConnack (t: ExecutionContext, url: string, options: IClientOptions = {}): Promise<Received> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options })
  t.teardown(() => client.endAsync(true).catch(() => {}))
  const [packet] = await once<[Received]>(client, 'packetreceive')
  t.is(packet.cmd, 'connack')
  return packet
}

/** The next packet `client` receives with `cmd` (already received or still to come). */
async function nextPacket (client: V5Client, cmd: string, from = 0): Promise<Received> {
  const seen = () => client.received.slice(from).find((p) => p.cmd === cmd)
  const found = seen()
  if (found) return found
  return within(new Promise<Received>((resolve) => {
    const listener = () => {
      const packet = seen()
      if (!packet) return
      client.off('packetreceive', listener)
      resolve(packet)
    }
    client.on('packetreceive', listener)
  }), `a ${cmd}`)
}

const MQTT5_KEYS = ['properties', 'userProperties', 'reasonCode', 'nl', 'rap', 'rh']

function noMqtt5Keys (t: ExecutionContext, event: object, what: string): void {
  for (const key of MQTT5_KEYS) t.false(key in event, `${what} has no ${key}`)
}

test('§3.1.2.11: CONNECT properties and user properties on client.connect, auth, client.connack and client.connected of an MQTT 5 client', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  await v5(t, broker.url, {
    clientId: 'five',
    properties: {
      sessionExpiryInterval: 30,
      receiveMaximum: 10,
      maximumPacketSize: 4096,
      topicAliasMaximum: 5,
      requestResponseInformation: true,
      requestProblemInformation: true,
      userProperties: { site: 'plant-1', tag: ['a', 'b'] }
    }
  })
  const [connected] = await rec.of<ConnectedEvent>('client.connected').count(1)
  const [connect] = rec.of<ConnectEvent>('client.connect').list
  const [auth] = rec.of<AuthRequest>('auth').list
  const [connack] = await rec.of<ConnackEvent>('client.connack').count(1)
  const expected = {
    sessionExpiryInterval: 30,
    receiveMaximum: 10,
    maximumPacketSize: 4096,
    topicAliasMaximum: 5,
    requestResponseInformation: true,
    requestProblemInformation: true,
    userProperties: { site: 'plant-1', tag: ['a', 'b'] }
  }
  for (const [name, event] of [['client.connect', connect], ['auth', auth], ['client.connack', connack], ['client.connected', connected]] as const) {
    t.is(event!.protoVer, 5, name)
    t.deepEqual(event!.properties, expected, name)
    t.deepEqual(event!.userProperties, { site: 'plant-1', tag: ['a', 'b'] }, name)
    t.true(Object.isFrozen(event!.properties) && Object.isFrozen(event!.userProperties), `${name}: read-only`)
  }
  t.is(connack!.reasonCode, 0x00)
  t.is(connack!.returnCode, 0)
  t.is(connack!.result, 'success')
})

test('an MQTT 5 CONNECT without properties: no properties key; an MQTT 3.1.1 client: none of the MQTT 5 keys anywhere', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  await v5(t, broker.url, { clientId: 'bare5' })
  const old = await connectClient(t, broker.url, { clientId: 'old' })
  await old.subscribeAsync('x/#', { qos: 1 })
  const got = nextMessage(old)
  await old.publishAsync('x/1', 'hi', { qos: 1 })
  await got
  await rec.of('message.acked').count(1)
  await rec.of('client.connected').count(2)

  const bare = rec.of<ConnectedEvent>('client.connected').list.find((e) => e.clientId === 'bare5')!
  t.false('properties' in bare)
  t.false('userProperties' in bare)
  t.is(rec.of<ConnackEvent>('client.connack').list.find((e) => e.clientId === 'bare5')!.reasonCode, 0, 'the reason code is there for any MQTT 5 CONNACK')

  for (const hook of ['client.connect', 'auth', 'client.connack', 'client.connected', 'client.subscribe', 'session.subscribed', 'message.publish', 'message.delivered', 'message.acked']) {
    const event = rec.of<{ clientId?: string, from?: string, protoVer?: number }>(hook).list.find((e) => e.clientId === 'old' || e.from === 'old')
    t.truthy(event, hook)
    noMqtt5Keys(t, event!, hook)
  }
})

test('§3.3.2.3: PUBLISH properties on message.publish, message.delivered (with the Subscription Identifier) and message.acked; absent for a 3.1.1 publisher', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const sub = await v5(t, broker.url, { clientId: 'sub5' })
  await sub.subscribeAsync('m/#', { qos: 1, properties: { subscriptionIdentifier: 7 } })
  const pub = await v5(t, broker.url, { clientId: 'pub5' })
  const got = nextMessage(sub)
  await pub.publishAsync('m/1', '{"v":1}', {
    qos: 1,
    properties: {
      payloadFormatIndicator: true,
      messageExpiryInterval: 60,
      contentType: 'application/json',
      responseTopic: 'reply/pub5',
      correlationData: Buffer.from('c-1'),
      userProperties: { k: 'v', many: ['1', '2'] }
    }
  })
  await got
  const [acked] = await rec.of<AckedEvent>('message.acked').count(1)
  const [published] = rec.of<PublishEvent>('message.publish').list
  const [delivered] = rec.of<DeliveredEvent>('message.delivered').list
  const sent = {
    payloadFormatIndicator: true,
    contentType: 'application/json',
    responseTopic: 'reply/pub5',
    correlationData: Buffer.from('c-1'),
    userProperties: { k: 'v', many: ['1', '2'] }
  }
  t.like(published!.properties, { ...sent, messageExpiryInterval: 60 })
  t.false('subscriptionIdentifier' in published!.properties!, 'the publisher sent none')
  t.true(Object.isFrozen(published!.properties))
  t.like(delivered!.properties, { ...sent, subscriptionIdentifier: 7 })
  t.true(delivered!.properties!.messageExpiryInterval! <= 60 && delivered!.properties!.messageExpiryInterval! > 0, 'what is left of the expiry')
  t.like(acked!.properties, { ...sent, subscriptionIdentifier: 7 })
  t.false('topicAlias' in delivered!.properties!)

  // a 3.1.1 publisher to the same MQTT 5 subscriber: the message has no properties, but the
  // delivery carries the subscriber's Subscription Identifier
  const old = await connectClient(t, broker.url, { clientId: 'old' })
  const got2 = nextMessage(sub)
  await old.publishAsync('m/2', 'x', { qos: 1 })
  await got2
  await rec.of('message.acked').count(2)
  const oldPublish = rec.of<PublishEvent>('message.publish').list[1]!
  t.false('properties' in oldPublish)
  t.deepEqual(rec.of<DeliveredEvent>('message.delivered').list[1]!.properties, { subscriptionIdentifier: 7 })
})

test('PublishControl.rewrite adds a user property: an MQTT 5 subscriber receives it, from an MQTT 5 and from a 3.1.1 publisher; later taps see it', async (t) => {
  const seenLater: PublishEvent[] = []
  const stamper = tapping('stamper', (hooks) => {
    hooks.message.publish.tap('stamper', (message, control) => {
      const properties = control.current.properties
      control.rewrite({ properties: { ...properties, userProperties: { ...properties?.userProperties, via: 'tapmq' } } })
    })
    hooks.message.publish.tap({ name: 'later', stage: 10 }, (message, control) => { seenLater.push({ ...message, ...control.current }) })
  })
  const broker = await testBroker(t, { plugins: [stamper] })
  const sub = await v5(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('r/#', { qos: 1 })
  const pub = await v5(t, broker.url, { clientId: 'pub5' })

  const first = once<[string, Buffer, { properties?: Record<string, any> }]>(sub, 'message')
  await pub.publishAsync('r/1', 'a', { qos: 1, properties: { userProperties: { own: 'yes' }, contentType: 'text/plain' } })
  const [, , packet] = await first
  t.deepEqual(packet.properties?.userProperties, { own: 'yes', via: 'tapmq' })
  t.is(packet.properties?.contentType, 'text/plain', 'the other properties stay')

  const old = await connectClient(t, broker.url, { clientId: 'old' })
  const second = once<[string, Buffer, { properties?: Record<string, any> }]>(sub, 'message')
  await old.publishAsync('r/2', 'b', { qos: 0 })
  const [, , packet2] = await second
  t.deepEqual(packet2.properties?.userProperties, { via: 'tapmq' })
  t.deepEqual(seenLater.map((m) => m.properties?.userProperties), [{ own: 'yes', via: 'tapmq' }, { via: 'tapmq' }])
})

test('PublishControl.rewrite with properties undefined removes them all', async (t) => {
  const broker = await testBroker(t, {
    plugins: [tapping('stripper', (hooks) => {
      hooks.message.publish.tap('stripper', (_message, control) => control.rewrite({ properties: undefined }))
    })]
  })
  const sub = await v5(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('s/#', { qos: 0 })
  const pub = await v5(t, broker.url, { clientId: 'pub' })
  const got = once<[string, Buffer, { properties?: Record<string, any> }]>(sub, 'message')
  await pub.publishAsync('s/1', 'a', { qos: 0, properties: { userProperties: { secret: 'x' } } })
  const [, , packet] = await got
  t.is(packet.properties?.userProperties, undefined)
})

test('§3.8.3.1: client.subscribe and session.subscribed show No Local, Retain As Published and Retain Handling of an MQTT 5 SUBSCRIBE', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const client = await v5(t, broker.url, { clientId: 'opts' })
  await client.subscribeAsync({ 'o/1': { qos: 1, nl: true, rap: true, rh: 2 }, 'o/2': { qos: 0 } })
  await rec.of('session.subscribed').count(2)
  const events = rec.of<SubscribeEvent>('client.subscribe').list
  t.like(events.find((e) => e.topic === 'o/1'), { qos: 1, nl: true, rap: true, rh: 2 })
  t.like(events.find((e) => e.topic === 'o/2'), { qos: 0, nl: false, rap: false, rh: 0 })
  const granted = rec.of<SessionSubscriptionEvent>('session.subscribed').list
  t.like(granted.find((e) => e.topic === 'o/1'), { qos: 1, nl: true, rap: true, rh: 2 })
  t.like(granted.find((e) => e.topic === 'o/2'), { qos: 0, nl: false, rap: false, rh: 0 })
})

// ---- denials ------------------------------------------------------------------------------

function denyAuth (answer: { code?: 2 | 3 | 4 | 5, reason?: string }) {
  return tapping('gate', (hooks) => {
    tapDecision(hooks.auth, 'gate', (request) => request.clientId.startsWith('ok') ? { result: 'allow' } : { result: 'deny', ...answer })
  })
}

test('[MQTT-3.2.2-6] an auth deny with code 4 is CONNACK 0x86 Bad User Name or Password with the reason as Reason String; 3.1.1 keeps return code 4', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [denyAuth({ code: 4, reason: 'wrong password for sensor' }), rec.plugin] })
  const connack = await refusedConnack(t, broker.url, { clientId: 'c5' })
  t.is(connack.reasonCode, 0x86)
  t.is(connack.properties?.reasonString, 'wrong password for sensor')

  const [event] = await rec.of<ConnackEvent>('client.connack').count(1)
  t.like(event, { reasonCode: 0x86, returnCode: 4, result: 'bad_username_or_password' })

  const old = mqtt.connect(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'c4' })
  t.teardown(() => old.endAsync(true).catch(() => {}))
  const [packet] = await once<[Received]>(old, 'packetreceive')
  t.is(packet.returnCode, 4)
  t.false('properties' in packet && packet.properties !== undefined)
  const old4 = (await rec.of<ConnackEvent>('client.connack').count(2))[1]!
  t.like(old4, { returnCode: 4, result: 'bad_username_or_password' })
  noMqtt5Keys(t, old4, '3.1.1 client.connack')
})

test('an auth deny with code 5, or without a code, is CONNACK 0x87 Not Authorized; a client that set Request Problem Information 0 gets no Reason String [MQTT-3.1.2-29]', async (t) => {
  const broker = await testBroker(t, { plugins: [denyAuth({ reason: 'not on the list' })] })
  const connack = await refusedConnack(t, broker.url, { clientId: 'c5' })
  t.is(connack.reasonCode, 0x87)
  t.is(connack.properties?.reasonString, 'not on the list')
  const quiet = await refusedConnack(t, broker.url, { clientId: 'c6', properties: { requestProblemInformation: false } })
  t.is(quiet.reasonCode, 0x87)
  t.is(quiet.properties?.reasonString, undefined)
})

test('allow_anonymous = false: an MQTT 5 client without a user name gets 0x86, with one but no plugin accepting it 0x87', async (t) => {
  const broker = await testBroker(t, { config: { allow_anonymous: 'false' } })
  const anonymous = await refusedConnack(t, broker.url, { clientId: 'anon' })
  t.is(anonymous.reasonCode, 0x86)
  t.regex(anonymous.properties?.reasonString ?? '', /anonymous/)
  const named = await refusedConnack(t, broker.url, { clientId: 'named', username: 'u', password: 'p' })
  t.is(named.reasonCode, 0x87)
})

test('§3.9.3: authorize.subscribe and client.subscribe denials are SUBACK 0x87 with the reasons as Reason String; granted filters in the same SUBSCRIBE are not affected', async (t) => {
  const broker = await testBroker(t, {
    plugins: [tapping('acl', (hooks) => {
      hooks.client.subscribe.tap('acl', (event, control) => { if (event.topic === 'early/deny') control.deny('filter blocked by policy') })
      tapDecision(hooks.authorize.subscribe, 'acl', (request) => request.topic.startsWith('secret/') ? { result: 'deny', reason: 'no access to secret/' } : undefined)
    })]
  })
  const client = await v5(t, broker.url, { clientId: 's5' })
  const from = client.received.length
  await client.subscribeAsync({ 'secret/x': { qos: 1 }, 'open/x': { qos: 1 }, 'early/deny': { qos: 0 } }).catch(() => {})
  const suback = await nextPacket(client, 'suback', from)
  t.deepEqual(suback.granted, [0x87, 1, 0x87])
  t.is(suback.properties?.reasonString, 'no access to secret/; filter blocked by policy')

  // [MQTT-3.1.2-29]: no Reason String on a SUBACK for a client that asked not to get one
  const quiet = await v5(t, broker.url, { clientId: 'q5', properties: { requestProblemInformation: false } })
  const quietFrom = quiet.received.length
  await quiet.subscribeAsync({ 'secret/y': { qos: 0 } }).catch(() => {})
  const quietSuback = await nextPacket(quiet, 'suback', quietFrom)
  t.deepEqual(quietSuback.granted, [0x87])
  t.is(quietSuback.properties?.reasonString, undefined)

  // 3.1.1: 0x80, as before
  const old = await connectClient(t, broker.url, { clientId: 'old' })
  const granted = await old.subscribeAsync({ 'secret/z': { qos: 0 } }).then((g) => g.map((x) => x.qos), (err) => (err as { packet?: { granted?: number[] } }).packet?.granted)
  t.deepEqual(granted, [0x80])
})

function denyPublish (answer: { reason?: string, disconnect?: boolean }) {
  return tapping('acl', (hooks) => {
    tapDecision(hooks.authorize.publish, 'acl', (request) => request.topic.startsWith('locked/') ? { result: 'deny', ...answer } : undefined)
  })
}

test('§3.4.2.1: an authorize.publish deny is PUBACK / PUBREC 0x87 with the reason as Reason String; the message is not routed and the MQTT 5 publisher stays connected', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [denyPublish({ reason: 'read-only device' }), rec.plugin] })
  const watcher = await v5(t, broker.url, { clientId: 'watcher' })
  await watcher.subscribeAsync('#', { qos: 1 })
  const pub = await v5(t, broker.url, { clientId: 'p5' })

  const from = pub.received.length
  await t.throwsAsync(pub.publishAsync('locked/1', 'x', { qos: 1 }))
  const puback = await nextPacket(pub, 'puback', from)
  t.is(puback.reasonCode, 0x87)
  t.is(puback.properties?.reasonString, 'read-only device')

  const from2 = pub.received.length
  await t.throwsAsync(pub.publishAsync('locked/2', 'x', { qos: 2 }))
  const pubrec = await nextPacket(pub, 'pubrec', from2)
  t.is(pubrec.reasonCode, 0x87)
  t.is(pubrec.properties?.reasonString, 'read-only device')

  await pub.publishAsync('locked/3', 'x', { qos: 0 })
  // still connected, and an allowed message goes through (and is the first one the watcher gets)
  const got = nextMessage(watcher)
  await pub.publishAsync('open/1', 'y', { qos: 1 })
  t.is((await got)[0], 'open/1')
  t.true(pub.connected)
  const dropped = await rec.of<DroppedEvent>('message.dropped').count(3)
  t.deepEqual(dropped.map((d) => [d.topic, d.reason, d.detail]), [
    ['locked/1', 'not_authorized', 'read-only device'], ['locked/2', 'not_authorized', 'read-only device'], ['locked/3', 'not_authorized', 'read-only device']
  ])
  // the PUBACK 0x87 is not a client error: a normal DISCONNECT afterwards is 'normal'
  await pub.endAsync()
  const [gone] = await rec.of<{ clientId: string, reason: string }>('client.disconnected').find((e) => e.clientId === 'p5').then((e) => [e])
  t.is(gone!.reason, 'normal')
})

test('[MQTT-3.1.2-29] a PUBACK 0x87 to a client that set Request Problem Information 0 has no Reason String; 3.1.1 publishers are unchanged (dropped, acknowledged with a plain PUBACK)', async (t) => {
  const broker = await testBroker(t, { plugins: [denyPublish({ reason: 'read-only device' })] })
  const quiet = await v5(t, broker.url, { clientId: 'q5', properties: { requestProblemInformation: false } })
  const from = quiet.received.length
  await t.throwsAsync(quiet.publishAsync('locked/1', 'x', { qos: 1 }))
  const puback = await nextPacket(quiet, 'puback', from)
  t.is(puback.reasonCode, 0x87)
  t.is(puback.properties?.reasonString, undefined)

  const old = await connectClient(t, broker.url, { clientId: 'old' })
  await old.publishAsync('locked/1', 'x', { qos: 1 })
  t.true(old.connected)
})

test('[MQTT-3.14.2-3] the DISCONNECT of a deny-with-disconnect leaves out a Reason String that would exceed the client\'s Maximum Packet Size', async (t) => {
  const broker = await testBroker(t, { plugins: [denyPublish({ reason: 'r'.repeat(100), disconnect: true })] })
  const pub = await v5(t, broker.url, { clientId: 'small', properties: { maximumPacketSize: 64 } })
  const from = pub.received.length
  pub.publish('locked/1', 'x', { qos: 1 }, () => {})
  const disconnect = await nextPacket(pub, 'disconnect', from)
  t.is(disconnect.reasonCode, 0x87)
  t.is(disconnect.properties?.reasonString, undefined)
})

test('§3.14.2.1: an authorize.publish deny with disconnect sends an MQTT 5 publisher DISCONNECT 0x87 with the reason', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [denyPublish({ reason: 'tampering detected', disconnect: true }), rec.plugin] })
  const watcher = await v5(t, broker.url, { clientId: 'watcher' })
  await watcher.subscribeAsync('#', { qos: 0 })
  const pub = await v5(t, broker.url, { clientId: 'p5' })
  const from = pub.received.length
  const closed = once(pub, 'close')
  pub.publish('locked/1', 'x', { qos: 1 }, () => {})
  const disconnect = await nextPacket(pub, 'disconnect', from)
  t.is(disconnect.reasonCode, 0x87)
  t.is(disconnect.properties?.reasonString, 'tampering detected')
  await closed
  const gone = await rec.of<{ clientId: string, reason: string, reasonCode?: number }>('client.disconnected').find((e) => e.clientId === 'p5')
  t.is(gone.reason, 'not_authorized')
  t.is(gone.reasonCode, 0x87)
  await settle()
  t.false(watcher.received.some((p) => p.cmd === 'publish'), 'the message was not routed')
})

test('§3.4.2.1: a message.publish drop is PUBACK 0x10 No Matching Subscribers with the drop reason (not an error to the publisher, as EMQX)', async (t) => {
  const broker = await testBroker(t, {
    plugins: [tapping('filter', (hooks) => {
      hooks.message.publish.tap('filter', (message, control) => { if (message.topic.startsWith('spam/')) control.drop('spam filter') })
    })]
  })
  const watcher = await v5(t, broker.url, { clientId: 'watcher' })
  await watcher.subscribeAsync('#', { qos: 1 })
  const pub = await v5(t, broker.url, { clientId: 'p5' })
  const from = pub.received.length
  await pub.publishAsync('spam/1', 'x', { qos: 1 })
  const puback = await nextPacket(pub, 'puback', from)
  t.is(puback.reasonCode, 0x10)
  t.is(puback.properties?.reasonString, 'spam filter')
  const from2 = pub.received.length
  await pub.publishAsync('spam/2', 'x', { qos: 2 })
  const pubrec = await nextPacket(pub, 'pubrec', from2)
  t.is(pubrec.reasonCode, 0x10)
  const got = nextMessage(watcher)
  await pub.publishAsync('fine/1', 'y', { qos: 1 })
  t.is((await got)[0], 'fine/1', 'the dropped ones were not routed')
})

test('§3.1.3.2: a will message\'s properties reach message.publish (isWill) and its MQTT 5 subscribers', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const sub = await v5(t, broker.url, { clientId: 'sub' })
  await sub.subscribeAsync('wills/#', { qos: 1 })
  const dying = await v5(t, broker.url, {
    clientId: 'dying',
    will: { topic: 'wills/dying', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { contentType: 'text/plain', userProperties: { cause: 'test' } } }
  })
  const got = once<[string, Buffer, { properties?: Record<string, any> }]>(sub, 'message')
  dying.stream.destroy()
  const [topic, , packet] = await got
  t.is(topic, 'wills/dying')
  t.deepEqual(packet.properties?.userProperties, { cause: 'test' })
  const will = await rec.of<PublishEvent>('message.publish').find((m) => m.isWill)
  t.like(will.properties, { contentType: 'text/plain', userProperties: { cause: 'test' } })
})

test('[MQTT-3.2.2-19] no Reason String on a refused CONNACK it would make larger than the client\'s Maximum Packet Size', async (t) => {
  const broker = await testBroker(t, { plugins: [denyAuth({ code: 5, reason: 'x'.repeat(100) })] })
  const small = await refusedConnack(t, broker.url, { clientId: 'small', properties: { maximumPacketSize: 64 } })
  t.is(small.reasonCode, 0x87)
  t.is(small.properties?.reasonString, undefined)
  const large = await refusedConnack(t, broker.url, { clientId: 'large', properties: { maximumPacketSize: 1024 } })
  t.is(large.properties?.reasonString, 'x'.repeat(100))
})

test('a user property named like an Object.prototype key ("__proto__", "constructor") reaches the hooks as a user property', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const pub = await v5(t, broker.url, { clientId: 'proto' })
  // a computed key makes "__proto__" an own property, as mqtt-packet's parser does
  const userProperties = { ['__proto__']: 'p', constructor: 'c' }
  await pub.publishAsync('p/1', 'x', { qos: 1, properties: { userProperties } })
  const [published] = await rec.of<PublishEvent>('message.publish').count(1)
  const seen = published!.properties!.userProperties!
  t.deepEqual(Object.keys(seen).sort(), ['__proto__', 'constructor'])
  t.is(Object.getOwnPropertyDescriptor(seen, '__proto__')?.value, 'p')
})

test('session.terminated: an MQTT 5 session with Session Expiry Interval 0 ends with its connection; one with an interval ends when it expires, reason "expired" (§3.1.2.11.2)', async (t) => {
  const rec = recordingPlugin()
  const broker = await testBroker(t, { plugins: [rec.plugin] })
  const brief = await v5(t, broker.url, { clientId: 'brief', username: 'u0' })
  await brief.endAsync()
  const [ended] = await rec.of<SessionTerminatedEvent>('session.terminated').count(1)
  t.like(ended, { clientId: 'brief', username: 'u0', reason: 'normal' })

  const lasting = await v5(t, broker.url, { clientId: 'lasting', username: 'u1', clean: false, properties: { sessionExpiryInterval: 1 } })
  await lasting.endAsync()
  await rec.of('client.disconnected').count(2)
  t.is(rec.of('session.terminated').list.length, 1, 'the session outlives its connection')
  const [, expired] = await rec.of<SessionTerminatedEvent>('session.terminated').count(2)
  t.like(expired, { clientId: 'lasting', username: 'u1', reason: 'expired' })
})
