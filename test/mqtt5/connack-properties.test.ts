// MQTT 5 CONNACK properties (MQTT 5.0 §3.2.2.3) from tapmq's config keys: Topic Alias
// Maximum (max_topic_alias), Receive Maximum (receive_maximum, default tied to
// max_inflight_inbound), Maximum Packet Size (max_packet_size), Assigned Client Identifier,
// Server Keep Alive (max_keepalive), Response Information (response_information).
// Capabilities that are available (retain, wildcard and shared subscriptions, subscription
// identifiers, QoS 2) are not advertised: absent means available [MQTT-3.2.2-9 ff.].
import test from 'ava'
import { testBroker } from '../helpers/broker.ts'
import { RawClient, connectClient, connectRefused } from '../helpers/mqtt.ts'
import { connack, send5 } from './packet-helpers.ts'

test('defaults: Topic Alias Maximum 10, Receive Maximum 1000 (max_inflight_inbound), Maximum Packet Size of a 1024 KB packet; available features not advertised', async (t) => {
  const broker = await testBroker(t)
  const ack = await connack(t, broker.url, { clientId: 'defaults' })
  t.is(ack.reasonCode, 0)
  t.is(ack.properties?.topicAliasMaximum, 10)
  t.is(ack.properties?.receiveMaximum, 1000)
  // 1024 KB of remaining length, plus the fixed header byte and a 3-byte length field
  t.is(ack.properties?.maximumPacketSize, 1024 * 1024 + 4)
  // [MQTT-3.2.2-9..] absent = available: retain, QoS 2, wildcards, subscription identifiers
  for (const key of ['retainAvailable', 'maximumQoS', 'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'serverKeepAlive', 'assignedClientIdentifier', 'responseInformation']) {
    t.is(ack.properties?.[key], undefined, key)
  }
})

test('config keys: max_topic_alias, receive_maximum, max_packet_size are what the CONNACK advertises', async (t) => {
  const broker = await testBroker(t, { config: { max_topic_alias: '5', receive_maximum: '7', max_packet_size: '2' } })
  const ack = await connack(t, broker.url, { clientId: 'configured' })
  t.is(ack.properties?.topicAliasMaximum, 5)
  t.is(ack.properties?.receiveMaximum, 7)
  t.is(ack.properties?.maximumPacketSize, 2048 + 3)
})

test('receive_maximum defaults to max_inflight_inbound, 65535 when that is unlimited (0)', async (t) => {
  const small = await testBroker(t, { config: { max_inflight_inbound: '50' } })
  t.is((await connack(t, small.url, { clientId: 'a' })).properties?.receiveMaximum, 50)
  const unlimited = await testBroker(t, { config: { max_inflight_inbound: '0' } })
  t.is((await connack(t, unlimited.url, { clientId: 'b' })).properties?.receiveMaximum, 65535)
})

test('max_topic_alias = 0: no Topic Alias Maximum in CONNACK, and an alias is a protocol error (DISCONNECT 0x94) [MQTT-3.2.2-18]', async (t) => {
  const broker = await testBroker(t, { config: { max_topic_alias: '0' } })
  const ack = await connack(t, broker.url, { clientId: 'no-alias-probe' })
  t.is(ack.properties?.topicAliasMaximum, undefined)
  const { client } = await RawClient.connect(t, broker.port, { clientId: 'no-alias', protocolVersion: 5 })
  send5(client, { cmd: 'publish', topic: 'a', payload: 'x', qos: 0, properties: { topicAlias: 1 } })
  const disconnect = await client.next('disconnect') as { reasonCode?: number }
  t.is(disconnect.reasonCode, 0x94)
  await client.waitClosed()
})

test('an empty client id gets an Assigned Client Identifier [MQTT-3.2.2-16]; a given one does not', async (t) => {
  const broker = await testBroker(t)
  const assigned = await connack(t, broker.url, { clientId: '', clean: true })
  const id = assigned.properties?.assignedClientIdentifier
  t.regex(String(id), /^tapmq-[0-9a-f]{8}$/)
  t.truthy(broker.broker.client(String(id)), 'the broker knows the client by that id')
  const given = await connack(t, broker.url, { clientId: 'given' })
  t.is(given.properties?.assignedClientIdentifier, undefined)
})

test('max_keepalive: an MQTT 5 client asking for more (or 0) gets Server Keep Alive instead of a refusal [MQTT-3.2.2-21]; MQTT 3.1.1 is still refused', async (t) => {
  const broker = await testBroker(t, { config: { max_keepalive: '30' } })
  t.is((await connack(t, broker.url, { clientId: 'long', keepalive: 600 })).properties?.serverKeepAlive, 30)
  t.is((await connack(t, broker.url, { clientId: 'none', keepalive: 0 })).properties?.serverKeepAlive, 30)
  const within = await connack(t, broker.url, { clientId: 'within', keepalive: 10 })
  t.is(within.reasonCode, 0)
  t.is(within.properties?.serverKeepAlive, undefined)
  const refused = await connectRefused(t, broker.url, { clientId: 'v4', keepalive: 600 })
  t.is(refused.code, 2)
})

test('response_information: sent only to a client that sets Request Response Information (§3.2.2.3.15)', async (t) => {
  const broker = await testBroker(t, { config: { response_information: 'replies/' } })
  t.is((await connack(t, broker.url, { clientId: 'asks', properties: { requestResponseInformation: true } })).properties?.responseInformation, 'replies/')
  t.is((await connack(t, broker.url, { clientId: 'silent' })).properties?.responseInformation, undefined)
  const none = await testBroker(t)
  t.is((await connack(t, none.url, { clientId: 'asks', properties: { requestResponseInformation: true } })).properties?.responseInformation, undefined)
})

test('MQTT 3.1.1 clients still get the 4-byte CONNACK (no properties)', async (t) => {
  const broker = await testBroker(t)
  const { connack: ack } = await RawClient.connect(t, broker.port, { clientId: 'v4' })
  t.deepEqual({ cmd: ack.cmd, returnCode: (ack as { returnCode?: number }).returnCode, length: ack.length }, { cmd: 'connack', returnCode: 0, length: 2 })
  const client = await connectClient(t, broker.url, { clientId: 'v4-mqttjs' })
  t.true(client.connected)
})

test('bad values are refused with the key named: receive_maximum 0 or above 65535, max_topic_alias above 65535', async (t) => {
  const { startTestBroker } = await import('../../sdk/testing.ts')
  const bad: Array<Record<string, string>> = [{ receive_maximum: '0' }, { receive_maximum: '65536' }, { max_topic_alias: '70000' }, { outbound_topic_alias: 'maybe' }]
  for (const config of bad) {
    const err = await t.throwsAsync(startTestBroker({ config }))
    t.true(err!.message.includes(Object.keys(config)[0]), err!.message)
  }
})
