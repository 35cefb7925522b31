// A QoS 2 PUBLISH re-sent with DUP while the first copy's batch is not yet committed: aedes
// finds the stored packet and answers PUBREC at once, so the store must not hand it over
// before that batch is on disk. A SIGKILL at the first PUBREC must leave the message in the
// offline persistent subscriber's queue.
import test from 'ava'
import { startTapmq, workspace } from '../helpers/cli.ts'
import { connectClient, RawClient, settle, until } from '../helpers/mqtt.ts'

const WAIT = 10_000
/** long enough that the DUP arrives while the first copy's batch is still open */
const COMMIT_WINDOW = '300ms'
const DUP_AFTER_MS = 50

test('a DUP re-send of a QoS 2 PUBLISH gets no PUBREC before the message is durable: a SIGKILL at the PUBREC loses nothing', async (t) => {
  const ws = await workspace(`persistence = embedded\npersistence.commit_window = ${COMMIT_WINDOW}`)
  t.teardown(() => ws.remove())
  const url = `mqtt://127.0.0.1:${ws.port}`
  const broker = await startTapmq(t, ws, WAIT)

  const offline = await connectClient(t, url, { clientId: 'dup-sub', clean: false })
  await offline.subscribeAsync('dup/#', { qos: 2 })
  await offline.endAsync()

  const { client: publisher } = await RawClient.connect(t, ws.port, { clientId: 'dup-pub' })
  const publish = { cmd: 'publish', topic: 'dup/a', payload: Buffer.from('kept'), qos: 2, messageId: 7, retain: false } as const
  publisher.send({ ...publish, dup: false })
  // the re-send a client makes when it did not hear the PUBREC, once aedes is waiting for the first copy's batch
  await settle(DUP_AFTER_MS)
  publisher.send({ ...publish, dup: true })
  const pubrec = await publisher.next('pubrec', WAIT)
  t.is((pubrec as { messageId?: number }).messageId, 7)
  broker.child.kill('SIGKILL')
  await broker.exited(WAIT)

  await startTapmq(t, ws, WAIT)
  const heard: string[] = []
  const again = await connectClient(t, url, { clientId: 'dup-sub', clean: false })
  again.on('message', (topic, payload) => heard.push(`${topic} ${payload.toString()}`))
  await until(() => heard.length > 0, 'the acknowledged message after the restart', WAIT)
  t.deepEqual(heard, ['dup/a kept'])
})
