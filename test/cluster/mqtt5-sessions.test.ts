// MQTT 5 session expiry in a Redis cluster: the expiry timer lives on the node where the client
// disconnected; a reconnect on another node must cancel it there (aedes' cluster notice
// $SYS/<node>/new/clients), or the first node would wipe the session the client resumed.
import test from 'ava'
import mqtt from 'mqtt'
import { HAS_REDIS, MISSING, WAIT_MS, connect, startNode, startRedis, until } from './redis.ts'

if (!HAS_REDIS) {
  test.skip(`cluster tests need ${MISSING}`, () => {})
} else {
  test.serial('a session resumed on another node outlives the expiry the first node had armed', async (t) => {
    const redis = await startRedis(t)
    const [a, b] = await Promise.all([startNode(t, redis, 'a'), startNode(t, redis, 'b')])
    const v5 = { protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 2 } }
    const first = await connect(t, a, { clientId: 'roam', ...v5 })
    await first.subscribeAsync('roam/#', { qos: 1 })
    await first.endAsync()
    const left = Date.now()
    const second = await connect(t, b, { clientId: 'roam', ...v5 })
    // node a's timer would have fired by now
    await until(() => Date.now() > left + 3000, 'node a\'s 2 s to pass')
    await second.endAsync(false, { properties: { sessionExpiryInterval: 60 } })
    const pub = await connect(t, a, { clientId: 'pub-roam' })
    await pub.publishAsync('roam/x', 'queued in Redis', { qos: 1 })
    const received: string[] = []
    const third = mqtt.connect(`mqtt://127.0.0.1:${b.port}`, { clientId: 'roam', ...v5, reconnectPeriod: 0, connectTimeout: WAIT_MS })
    t.teardown(() => third.endAsync(true))
    third.on('error', () => {})
    third.on('message', (_topic, payload) => received.push(payload.toString()))
    await until(() => received.length >= 1, 'the message queued for the resumed session')
    // QoS 1 is at least once: PUBACK precedes routing, so the message may also reach the
    // resumed session live, through the subscription restored on b (a second copy)
    t.deepEqual([...new Set(received)], ['queued in Redis'])
  })
}
