// Shared subscriptions (MQTT 5.0 §4.8.2) in a cluster of two brokers on a real redis-server
// (in this process, which is cheaper than two CLI children): each broker round-robins among
// its OWN members, so a group with members on both brokers gets one copy per broker.
// docs/mqtt5.md "### Shared subscriptions" documents this; EMQX 4.3 dispatches cluster-wide.
import test from 'ava'
import type { MqttClient } from 'mqtt'
import { testBroker } from '../helpers/broker.ts'
import { connectBeforeConnack, connectClient, settle, subackCodes } from '../helpers/mqtt.ts'
import { HAS_REDIS, MISSING, startRedis, until } from './redis.ts'

// the broker's shared groups, from aedes' lib/shared.js (tapmq's patch 004)
const sharedModule = '../../node_modules/aedes/lib/shared.js'

function collect (client: MqttClient): string[] {
  const got: string[] = []
  client.on('message', (_topic, payload) => got.push(payload.toString()))
  return got
}

if (!HAS_REDIS) {
  test.skip(`cluster shared-subscription tests need ${MISSING}`, () => {})
} else {
  test.serial('a group with members on two nodes: each node round-robins among its own members, one copy per node', async (t) => {
    const redis = await startRedis(t)
    const cluster = (name: string) => ({ 'cluster.enable': 'true', 'cluster.redis.url': redis.url, 'cluster.node_name': name, heartbeat_interval: '500ms' })
    const a = await testBroker(t, { config: cluster('a') })
    const b = await testBroker(t, { config: cluster('b') })
    const members: Array<{ id: string, got: string[] }> = []
    for (const [node, id] of [[a, 'a1'], [a, 'a2'], [b, 'b1']] as const) {
      const client = await connectClient(t, node.url, { protocolVersion: 5, clientId: id })
      members.push({ id, got: collect(client) })
      t.deepEqual(await subackCodes(client, { '$share/g/c/#': { qos: 1 } }), [1])
    }
    const pub = await connectClient(t, a.url, { protocolVersion: 5, clientId: 'pub' })
    // node b learns of the subscription through redis: publish until b1 has had one
    const warm = setInterval(() => { pub.publish('c/warm', 'warm', { qos: 1 }) }, 200)
    try {
      await until(() => members[2]!.got.includes('warm'), 'node b to route the group')
    } finally {
      clearInterval(warm)
    }
    await until(() => members[0]!.got.length + members[1]!.got.length >= members[2]!.got.length, 'node a to have routed the warm-up messages too')
    await settle(200)
    for (const m of members) m.got.length = 0

    for (let i = 0; i < 4; i++) await pub.publishAsync(`c/${i}`, `m${i}`, { qos: 1 })
    await until(() => members[2]!.got.length === 4 && members[0]!.got.length + members[1]!.got.length === 4, 'one copy per node')
    await settle(200)
    // node a: its two members share the four messages; node b: its only member gets all four
    t.is(members[0]!.got.length, 2)
    t.is(members[1]!.got.length, 2)
    t.deepEqual([...members[0]!.got, ...members[1]!.got].sort(), ['m0', 'm1', 'm2', 'm3'])
    t.deepEqual(members[2]!.got, ['m0', 'm1', 'm2', 'm3'])
  })

  test.serial('a persistent member that reconnects on another node leaves the group of the first node and joins there', async (t) => {
    const redis = await startRedis(t)
    const cluster = (name: string) => ({ 'cluster.enable': 'true', 'cluster.redis.url': redis.url, 'cluster.node_name': name, heartbeat_interval: '500ms' })
    const a = await testBroker(t, { config: cluster('a') })
    const b = await testBroker(t, { config: cluster('b') })
    const groups = await import(sharedModule) as { sharedGroups (broker: unknown): Array<{ members: string[], offline: string[] }> }
    const groupsOf = (node: typeof a) => groups.sharedGroups(node.tapmq.broker)
    const session = { protocolVersion: 5 as const, clientId: 'mover', clean: false, properties: { sessionExpiryInterval: 300 } }
    const first = await connectClient(t, a.url, session)
    t.deepEqual(await subackCodes(first, { '$share/g/mv/#': { qos: 1 } }), [1])
    await first.endAsync()
    await until(() => groupsOf(a)[0]?.offline.join() === 'mover', 'an offline member on node a')
    const { client, connack } = connectBeforeConnack(t, b.url, session)
    const got = collect(client)
    t.true((await connack).sessionPresent, 'the session (and its $share subscription) is in redis')
    await until(() => groupsOf(b)[0]?.members.join() === 'mover', 'the member on node b')
    await until(() => groupsOf(a).length === 0, 'node a to drop its offline member (and the group)')
    const pub = await connectClient(t, a.url, { protocolVersion: 5, clientId: 'pub' })
    await pub.publishAsync('mv/1', 'moved', { qos: 1 })
    await until(() => got.includes('moved'), 'the message through node b')
    await settle(200)
    t.deepEqual(got, ['moved'], 'once: node a queued nothing for it')
  })
}
