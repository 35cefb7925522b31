// GHSA-5jvp-3p2v-5qgf (fixed in aedes 1.2.0), carried for aedes 2.0.0-beta.1 by
// patches/aedes+2.0.0-beta.1+002+GHSA-5jvp-3p2v-5qgf-inbound-qos2-window.patch.
//
// An inbound QoS 2 PUBLISH is stored until its PUBREL. Without a bound, one client that keeps
// sending fresh packet identifiers and never sends PUBREL grows the broker's store (up to
// 65,535 messages of any size per client id). The patch bounds the PUBLISHes awaiting PUBREL
// per connection by aedes' maxInflightInbound, tapmq's `max_inflight_inbound` (default
// 1000; 0 = no bound): the PUBLISH past it closes that connection, nobody else's.
import test, { type ExecutionContext } from 'ava'
import type { MqttClient } from 'mqtt'
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, nextMessage, RawClient, until, within } from '../helpers/mqtt.ts'
import type { TestBroker } from '../../sdk/testing.ts'

const VERSIONS = [
  { label: 'MQTT 3.1.1', protocolVersion: 4 },
  { label: 'MQTT 5', protocolVersion: 5 }
] as const

const TOPIC = 'window'

function publish (messageId: number, dup = false): IPublishPacket {
  return { cmd: 'publish', topic: TOPIC, payload: Buffer.from(String(messageId)), qos: 2, messageId, retain: false, dup }
}

/** mqtt-packet encodes MQTT 5 only when told to (RawClient.send does not) */
function encode (packet: Packet, protocolVersion: 4 | 5): Buffer {
  return mqttPacket.generate(packet, { protocolVersion })
}

/** a raw client that will not complete its QoS 2 handshakes unless the test does it */
async function hoarder (t: ExecutionContext, broker: TestBroker, protocolVersion: 4 | 5): Promise<RawClient> {
  const { client, connack } = await RawClient.connect(t, broker.port, { clientId: `hoarder-${protocolVersion}`, protocolVersion })
  t.like(connack, { cmd: 'connack' })
  return client
}

/** mqtt.js subscriber to TOPIC; `heard` collects the payloads */
async function listener (t: ExecutionContext, broker: TestBroker, clientId: string, protocolVersion: 4 | 5): Promise<{ client: MqttClient, heard: string[] }> {
  const client = await connectClient(t, broker.url, { clientId, protocolVersion })
  await client.subscribeAsync([TOPIC, 'sentinel'], { qos: 2 })
  const heard: string[] = []
  client.on('message', (topic, payload) => heard.push(topic === TOPIC ? String(payload) : `${topic} ${String(payload)}`))
  return { client, heard }
}

/**
 * Publishes a sentinel from a fresh client and waits until every listener has it: whatever
 * was routed to TOPIC before was routed before the sentinel (one subscriber connection
 * receives in order). Returns what each heard on TOPIC.
 */
async function routedBefore (t: ExecutionContext, broker: TestBroker, listeners: Array<{ heard: string[] }>): Promise<string[][]> {
  const sender = await connectClient(t, broker.url, { clientId: 'sentinel-sender' })
  await sender.publishAsync('sentinel', 'end', { qos: 1 })
  await until(() => listeners.every(({ heard }) => heard.includes('sentinel end')), 'the sentinel at every listener')
  await sender.endAsync()
  return listeners.map(({ heard }) => heard.filter((payload) => payload !== 'sentinel end'))
}

for (const { label, protocolVersion } of VERSIONS) {
  test(`${label}: a client that leaves more than max_inflight_inbound QoS 2 PUBLISH awaiting PUBREL (40 pipelined in one write) is disconnected; only the window's messages are routed, and MQTT 3.1.1 and 5 bystanders carry on`, async (t) => {
    const broker = await testBroker(t, { config: { max_inflight_inbound: '3' } })
    const old = await listener(t, broker, 'bystander-311', 4)
    const v5 = await listener(t, broker, 'bystander-5', 5)
    const raw = await hoarder(t, broker, protocolVersion)
    // one write: the broker parses and dispatches the whole flood in one go
    raw.write(Buffer.concat(Array.from({ length: 40 }, (_, i) => encode(publish(i + 1), protocolVersion))))
    await raw.waitClosed()

    const [heardOld, heardV5] = await routedBefore(t, broker, [old, v5])
    t.deepEqual(heardOld, ['1', '2', '3'], 'the three messages inside the window were routed (MQTT 3.1.1 subscriber)')
    t.deepEqual(heardV5, ['1', '2', '3'], 'the three messages inside the window were routed (MQTT 5 subscriber)')
    // the bystanders' own QoS 2 exchanges still work, across versions
    await old.client.subscribeAsync('chat', { qos: 2 })
    const toOld = nextMessage(old.client)
    await v5.client.publishAsync('chat', 'from 5', { qos: 2 })
    t.deepEqual((await toOld).map(String), ['chat', 'from 5'])
    await v5.client.subscribeAsync('chat/5', { qos: 2 })
    const toV5 = nextMessage(v5.client)
    await old.client.publishAsync('chat/5', 'from 3.1.1', { qos: 2 })
    t.deepEqual((await toV5).map(String), ['chat/5', 'from 3.1.1'])
    t.true(old.client.connected && v5.client.connected, 'both bystanders are still connected')
  })

  test(`${label}: PUBREL frees the slot: with max_inflight_inbound 1 a completed QoS 2 exchange lets the next PUBLISH in, and a second PUBLISH awaiting PUBREL closes the connection`, async (t) => {
    const broker = await testBroker(t, { config: { max_inflight_inbound: '1' } })
    const sub = await listener(t, broker, 'subscriber', protocolVersion)
    const raw = await hoarder(t, broker, protocolVersion)
    raw.write(encode(publish(1), protocolVersion))
    t.like(await raw.next('pubrec'), { messageId: 1 })
    raw.write(encode({ cmd: 'pubrel', messageId: 1 }, protocolVersion))
    t.like(await raw.next('pubcomp'), { messageId: 1 })
    raw.write(encode(publish(2), protocolVersion))
    t.like(await raw.next('pubrec'), { messageId: 2 }, 'the completed exchange gave its slot back')
    raw.write(encode(publish(3), protocolVersion))
    await raw.waitClosed()
    t.deepEqual((await routedBefore(t, broker, [sub]))[0], ['1', '2'])
  })

  test(`${label}: a DUP re-send of a QoS 2 PUBLISH awaiting PUBREL is acknowledged with PUBREC, not routed again [MQTT-4.3.3-${protocolVersion === 5 ? '9' : '2'}], and takes no second slot`, async (t) => {
    const broker = await testBroker(t, { config: { max_inflight_inbound: '2' } })
    const sub = await listener(t, broker, 'subscriber', protocolVersion)
    const raw = await hoarder(t, broker, protocolVersion)
    raw.write(encode(publish(1), protocolVersion))
    t.like(await raw.next('pubrec'), { messageId: 1 })
    raw.write(encode(publish(1, true), protocolVersion))
    t.like(await raw.next('pubrec'), { messageId: 1 })
    raw.write(encode(publish(2), protocolVersion))
    t.like(await raw.next('pubrec'), { messageId: 2 }, 'the re-send did not take the second slot')
    raw.write(encode(publish(3), protocolVersion))
    await raw.waitClosed()
    t.deepEqual((await routedBefore(t, broker, [sub]))[0], ['1', '2'])
  })

  test(`${label}: a client that completes every QoS 2 exchange is never throttled: ten times max_inflight_inbound messages from mqtt.js`, async (t) => {
    const broker = await testBroker(t, { config: { max_inflight_inbound: '3' } })
    const sub = await listener(t, broker, 'subscriber', protocolVersion)
    const publisher = await connectClient(t, broker.url, { clientId: 'publisher', protocolVersion })
    const sent: string[] = []
    for (let i = 1; i <= 30; i++) {
      // bounded: a PUBLISH the broker answers by closing the connection never completes in mqtt.js
      await within(publisher.publishAsync(TOPIC, String(i), { qos: 2 }), `the QoS 2 exchange of message ${i}`)
      sent.push(String(i))
    }
    t.deepEqual((await routedBefore(t, broker, [sub]))[0], sent)
    t.true(publisher.connected)
  })

  test(`${label}: max_inflight_inbound = 0 turns the bound off: 100 QoS 2 PUBLISH awaiting PUBREL are all acknowledged`, async (t) => {
    const broker = await testBroker(t, { config: { max_inflight_inbound: '0' } })
    const raw = await hoarder(t, broker, protocolVersion)
    raw.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => encode(publish(i + 1), protocolVersion))))
    const acknowledged: number[] = []
    for (let i = 0; i < 100; i++) acknowledged.push((await raw.next('pubrec')).messageId!)
    t.deepEqual(acknowledged.sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1))
    // still open: a PINGREQ is answered
    raw.write(encode({ cmd: 'pingreq' }, protocolVersion))
    t.like(await raw.next('pingresp'), { cmd: 'pingresp' })
  })
}
