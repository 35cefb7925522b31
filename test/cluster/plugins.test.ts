// Plugins and operations in a cluster: webhook events exactly once (posted by the node where
// they happened), and a node that loses Redis at runtime and recovers.
import test from 'ava'
import { Receiver } from '../webhook/receiver.ts'
import { HAS_REDIS, MISSING, WAIT_MS, connect, nextMessage, startNode, startRedis, until } from './redis.ts'

if (!HAS_REDIS) {
  test.skip(`cluster plugin tests need ${MISSING}`, () => {})
} else {
  test.serial('webhook across two nodes: every event is posted exactly once, by the node where it happened', async (t) => {
    const receiver = await Receiver.start(t)
    const hook = [
      'web.hook.enable=true',
      `web.hook.url=http://127.0.0.1:${receiver.port}/hook`,
      'web.hook.body.encoding_of_payload_field=plain',
      'web.hook.pool_size=1',
      'web.hook.rule.client.connack.1={"action": "on_client_connack"}',
      'web.hook.rule.message.publish.1={"action": "on_message_publish", "topic": "wh/#"}'
    ].join('\n')
    const redis = await startRedis(t)
    const start = async (name: string) => {
      const { workspace } = await import('../helpers/cli.ts')
      const scratch = await workspace()
      t.teardown(() => scratch.remove())
      const file = await scratch.write('web_hook.conf', hook)
      return startNode(t, redis, name, '', ['--webhook', file])
    }
    const [a, b] = await Promise.all([start('a'), start('b')])
    const sub = await connect(t, a, { clientId: 'wh-sub' })
    await sub.subscribeAsync('wh/#', { qos: 1 })
    const pub = await connect(t, b, { clientId: 'wh-pub' })
    const delivered = nextMessage(sub, (topic) => topic === 'wh/1')
    await pub.publishAsync('wh/1', 'one', { qos: 1 })
    await delivered
    // node a saw wh/1 (its subscriber got it) before its own client publishes wh/2: a wrong
    // post of wh/1 by node a would be queued before wh/2's
    await sub.publishAsync('wh/2', 'two', { qos: 1 })
    const bodies = () => receiver.bodies().map((body) => JSON.parse(body) as Record<string, unknown>)
    await until(() => bodies().some((body) => body.topic === 'wh/1') && bodies().some((body) => body.topic === 'wh/2'), 'both publish events')
    // and one more round trip through node b, after which anything late from b would be in
    const marker = nextMessage(sub, (topic) => topic === 'wh/3')
    await pub.publishAsync('wh/3', 'three', { qos: 1 })
    await marker
    await until(() => bodies().some((body) => body.topic === 'wh/3'), 'the wh/3 event')
    const publishes = bodies().filter((body) => body.action === 'message_publish')
    t.deepEqual(publishes.map((body) => `${String(body.topic)} from ${String(body.from_client_id)}`).sort(),
      ['wh/1 from wh-pub', 'wh/2 from wh-sub', 'wh/3 from wh-pub'])
    t.deepEqual(bodies().filter((body) => body.action === 'client_connack').map((body) => body.clientid).sort(), ['wh-pub', 'wh-sub'])
  })

  test.serial('HTTP API /nodes lists the live nodes by name; a SIGKILLed node leaves the list', async (t) => {
    const { freePort } = await import('../helpers/cli.ts')
    const redis = await startRedis(t)
    const httpPort = await freePort()
    const withApi = async (name: string, port?: number) => {
      const node = await startNode(t, redis, name, port ? `http_server.enable = true\nhttp_server.port = ${port}\nhttp_server.bind = 127.0.0.1` : '', [], port ? 'plugin.http_api = on\n' : '')
      return node
    }
    const [, b] = await Promise.all([withApi('alpha', httpPort), withApi('beta')])
    const names = async () => {
      const response = await fetch(`http://127.0.0.1:${httpPort}/api/v4/nodes`, { headers: { authorization: `Basic ${Buffer.from('admin:public').toString('base64')}` } })
      const body = await response.json() as { data: Array<{ node_name: string, node_id: string, connections?: number }> }
      return body.data
    }
    await until(async () => (await names()).length === 2, 'two nodes in /nodes')
    const nodes = await names()
    t.deepEqual(nodes.map((node) => node.node_name), ['alpha', 'beta'])
    t.regex(nodes[0]!.node_id, /^alpha~[0-9a-f]{8}$/)
    t.is(typeof nodes[0]!.connections, 'number')
    b.cmd.child.kill('SIGKILL')
    await until(async () => (await names()).length === 1, 'beta gone from /nodes')
    t.deepEqual((await names()).map((node) => node.node_name), ['alpha'])
  })

  test.serial('Redis lost at runtime: logged and counted, the node recovers when Redis returns', async (t) => {
    const redis = await startRedis(t)
    const [a, b] = await Promise.all([startNode(t, redis, 'a'), startNode(t, redis, 'b')])
    const sub = await connect(t, a, { clientId: 'rl-sub' })
    await sub.subscribeAsync('rl/#', { qos: 1 })
    const pub = await connect(t, b, { clientId: 'rl-pub' })
    await redis.stop()
    await a.cmd.waitFor(/"msg":"Redis connection lost; reconnecting"/, WAIT_MS)
    // a new redis-server on the same port, empty: the nodes reconnect and resubscribe
    await startRedis(t, redis.port)
    const restored = await a.cmd.waitFor(/"msg":"Redis connection restored/, WAIT_MS)
    t.regex(restored, /"outageMs":\d+/)
    await b.cmd.waitFor(/"msg":"Redis connection restored/, WAIT_MS)
    // routing works again: the subscriber on a gets what b's client publishes (retry: the
    // nodes' subscriber connections may come back a little after the first ready)
    const got = nextMessage(sub, (topic) => topic === 'rl/after')
    const retry = setInterval(() => { pub.publish('rl/after', 'back', { qos: 0 }) }, 500)
    try {
      t.is((await got).payload, 'back')
    } finally { clearInterval(retry) }
  })
}
