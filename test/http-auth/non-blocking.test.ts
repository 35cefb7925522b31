// A slow auth server delays only the clients it is asked about (NanoMQ 0.8 asked it while
// holding the broker lock, quirk Q25): traffic of connected clients and connects of other
// clients go on while many auth requests are pending. Asserted on events, not on time.
import test from 'ava'
import { AuthServer, brokerWith, connack, gate, nextEvent, until } from './helpers.ts'

test('while 20 connects wait on the auth server, a connected client\'s 50 messages all arrive first', async (t) => {
  // the slow server holds `slow` users until the test releases them, so the order below
  // does not depend on timing; a broker that waited on the auth server would never get there
  const release = gate()
  const server = await AuthServer.start(t, async (req, res) => {
    if (req.fields.username === 'slow') await release.opened
    res.writeHead(200).end()
  })
  const broker = await brokerWith(t, { authReq: { url: server.url(), params: 'username=%u' } })
  const { client: sub } = await connack(t, broker.url, { clientId: 'sub', username: 'fast' })
  const { client: pub } = await connack(t, broker.url, { clientId: 'pub', username: 'fast' })
  await sub!.subscribeAsync('load/#', { qos: 1 })

  const events: string[] = []
  const pending = Array.from({ length: 20 }, (_, i) =>
    connack(t, broker.url, { clientId: `slow-${i}`, username: 'slow' }).then((result) => {
      events.push('connack')
      return result.code
    }))
  // all 20 auth requests are at the server at the same time: nothing is serialised
  await until(() => server.seen.filter((seen) => seen.fields.username === 'slow').length === 20, '20 concurrent auth requests')

  let received = 0
  const all = new Promise<void>((resolve) => {
    sub!.on('message', () => {
      events.push('message')
      if (++received === 50) resolve()
    })
  })
  for (let i = 0; i < 50; i++) pub!.publish(`load/${i}`, String(i), { qos: 1 })
  await Promise.race([all, nextEvent(sub!, 'close', 10_000)])
  t.is(received, 50)

  // another client's connect is not held up either
  const other = await connack(t, broker.url, { clientId: 'late', username: 'fast' })
  t.is(other.code, 0)
  events.push('other connected')

  release.open()
  t.deepEqual(await Promise.all(pending), Array(20).fill(0))
  t.deepEqual(events, [...Array(50).fill('message'), 'other connected', ...Array(20).fill('connack')])
})
