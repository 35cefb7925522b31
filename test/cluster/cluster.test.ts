// A tapmq cluster on a real redis-server: 2-3 nodes of the real CLI as child processes,
// real mqtt.js clients on different nodes.
import test from 'ava'
import { HAS_REDIS, MISSING, WAIT_MS, connect, nextMessage, startNode, startRedis, until } from './redis.ts'

if (!HAS_REDIS) {
  test.skip(`cluster tests need ${MISSING}`, () => {})
} else {
  test.serial('cross-node delivery at QoS 0, 1 and 2: publisher on one node, subscriber on another', async (t) => {
    const redis = await startRedis(t)
    const [a, b] = await Promise.all([startNode(t, redis, 'a'), startNode(t, redis, 'b')])
    const sub = await connect(t, a, { clientId: 'sub-x' })
    await sub.subscribeAsync('x/#', { qos: 2 })
    const pub = await connect(t, b, { clientId: 'pub-x' })
    for (const qos of [0, 1, 2] as const) {
      const got = nextMessage(sub, (topic) => topic === `x/${qos}`)
      // QoS 0 may be published before the other node learnt the subscription: retry until it arrives
      const retry = setInterval(() => { if (qos === 0) pub.publish('x/0', 'q0', { qos: 0 }) }, 500)
      try {
        await pub.publishAsync(`x/${qos}`, `q${qos}`, { qos })
        const message = await got
        t.is(message.payload, `q${qos}`)
        t.is(message.qos, qos)
      } finally { clearInterval(retry) }
    }
  })

  test.serial('retained messages published on one node reach a subscriber on another', async (t) => {
    const redis = await startRedis(t)
    const [a, b] = await Promise.all([startNode(t, redis, 'a'), startNode(t, redis, 'b')])
    const pub = await connect(t, a, { clientId: 'pub-r' })
    await pub.publishAsync('r/state', 'on', { qos: 1, retain: true })
    const sub = await connect(t, b, { clientId: 'sub-r' })
    const got = nextMessage(sub, (topic) => topic === 'r/state')
    await sub.subscribeAsync('r/#', { qos: 1 })
    const message = await got
    t.is(message.payload, 'on')
    t.true(message.retain)
  })

  test.serial('an offline queue filled through one node is drained when the client reconnects on another', async (t) => {
    const redis = await startRedis(t)
    const [a, b] = await Promise.all([startNode(t, redis, 'a'), startNode(t, redis, 'b')])
    const first = await connect(t, a, { clientId: 'sess-1', clean: false })
    await first.subscribeAsync('q/#', { qos: 1 })
    await first.endAsync()
    const pub = await connect(t, a, { clientId: 'pub-q' })
    for (let i = 0; i < 3; i++) await pub.publishAsync(`q/${i}`, `m${i}`, { qos: 1 })
    const received: string[] = []
    const mqtt = (await import('mqtt')).default
    const again = mqtt.connect(`mqtt://127.0.0.1:${b.port}`, { clientId: 'sess-1', clean: false, reconnectPeriod: 0, connectTimeout: WAIT_MS })
    t.teardown(() => again.endAsync(true))
    again.on('error', () => {})
    let sessionPresent: boolean | undefined
    again.on('connect', (connack) => { sessionPresent = connack.sessionPresent })
    again.on('message', (_topic, payload) => received.push(payload.toString()))
    await until(() => received.length >= 3, 'the three queued messages')
    t.deepEqual(received.sort(), ['m0', 'm1', 'm2'])
    t.true(sessionPresent)
  })

  test.serial('a client id that connects on another node takes over: the first connection is closed', async (t) => {
    const redis = await startRedis(t)
    const [a, b] = await Promise.all([startNode(t, redis, 'a'), startNode(t, redis, 'b')])
    const first = await connect(t, a, { clientId: 'dup' })
    const closed = new Promise<void>((resolve) => first.once('close', () => resolve()))
    await connect(t, b, { clientId: 'dup' })
    await Promise.race([closed, new Promise((_resolve, reject) => setTimeout(() => reject(new Error('first connection still open')), WAIT_MS))])
    t.false(first.connected)
  })

  test.serial('SIGKILL of a node: the survivors publish the wills of its clients', async (t) => {
    const redis = await startRedis(t)
    const [a, b, c] = await Promise.all([startNode(t, redis, 'a'), startNode(t, redis, 'b'), startNode(t, redis, 'c')])
    const sub = await connect(t, a, { clientId: 'watcher' })
    await sub.subscribeAsync('wills/#', { qos: 1 })
    await connect(t, b, { clientId: 'doomed', will: { topic: 'wills/doomed', payload: Buffer.from('gone'), qos: 1, retain: false } })
    const other = await connect(t, c, { clientId: 'fine', will: { topic: 'wills/fine', payload: Buffer.from('gone'), qos: 1, retain: false } })
    const got = nextMessage(sub, (topic) => topic.startsWith('wills/'))
    b.cmd.child.kill('SIGKILL')
    const will = await got
    t.is(will.topic, 'wills/doomed')
    t.is(will.payload, 'gone')
    t.true(other.connected)
  })

  test.serial('redis unreachable at start-up: TAPMQ_ERR_REDIS naming the url on stderr, exit code 1', async (t) => {
    const { freePort, tapmq, workspace } = await import('../helpers/cli.ts')
    const port = await freePort()
    const ws = await workspace(`cluster.enable = true\ncluster.redis.url = redis://127.0.0.1:${port}\n`)
    t.teardown(() => ws.remove())
    const cmd = tapmq(['start', '--conf', ws.conf, '--plugins', `${ws.dir}/plugins.conf`])
    t.teardown(() => { cmd.child.kill('SIGKILL') })
    const code = await cmd.exited(WAIT_MS)
    t.is(code, 1)
    t.regex(cmd.stderr(), new RegExp(`^tapmq: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`, 'm'))
  })

  test.serial('persistence = redis on one node: retained messages and sessions survive a restart', async (t) => {
    const redis = await startRedis(t)
    const { startTapmq, workspace } = await import('../helpers/cli.ts')
    const ws = await workspace(`persistence = redis\ncluster.redis.url = ${redis.url}\n`)
    t.teardown(() => ws.remove())
    const start = () => startTapmq(t, ws, WAIT_MS)
    const node = { port: ws.port } as Parameters<typeof connect>[1]
    const first = await start()
    const session = await connect(t, node, { clientId: 'keep', clean: false })
    await session.subscribeAsync('k/#', { qos: 1 })
    await session.endAsync()
    const pub = await connect(t, node, { clientId: 'pub-k' })
    await pub.publishAsync('k/retained', 'kept', { qos: 1, retain: true })
    await pub.publishAsync('k/queued', 'waiting', { qos: 1 })
    await pub.endAsync()
    first.child.kill('SIGTERM')
    t.is(await first.exited(WAIT_MS), 0)

    await start()
    // the handler goes on before CONNACK: the broker may send the queue in the same packet
    const { connectBeforeConnack } = await import('../helpers/mqtt.ts')
    const queued: string[] = []
    const back = connectBeforeConnack(t, `mqtt://127.0.0.1:${ws.port}`, { clientId: 'keep', clean: false },
      (topic, payload) => { if (topic === 'k/queued') queued.push(payload.toString()) }, WAIT_MS)
    back.client.on('error', () => {})
    await back.connack
    await until(() => queued.length > 0, 'the queued message after the restart')
    t.deepEqual(queued, ['waiting'])
    const fresh = await connect(t, node, { clientId: 'fresh' })
    const got = nextMessage(fresh, (topic) => topic === 'k/retained')
    await fresh.subscribeAsync('k/retained')
    t.is((await got).payload, 'kept')
  })
}
