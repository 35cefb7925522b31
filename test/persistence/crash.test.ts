// The embedded store across a SIGKILL of the real `tapmq start` process: a persistent
// subscriber that was offline gets every acknowledged message after the restart, QoS 1 at
// least once and QoS 2 exactly once; retained messages, subscriptions and wills survive.
import test from 'ava'
import type { IClientOptions, MqttClient } from 'mqtt'
import { type RunningCommand, startTapmq, workspace, type Workspace } from '../helpers/cli.ts'
import { connectBeforeConnack, once, type Teardown, until, within } from '../helpers/mqtt.ts'

const WAIT = 10_000

interface Broker {
  readonly cmd: RunningCommand
  readonly url: string
  /** parsed JSON log lines so far */
  logs (): Array<Record<string, unknown>>
  kill (signal: NodeJS.Signals): Promise<number | null>
}

async function startBroker (t: { teardown (fn: () => unknown): void }, ws: Workspace): Promise<Broker> {
  const cmd = await startTapmq(t, ws, WAIT)
  return {
    cmd,
    url: `mqtt://127.0.0.1:${ws.port}`,
    logs: () => cmd.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>),
    kill: async (signal) => {
      cmd.child.kill(signal)
      return cmd.exited(WAIT)
    }
  }
}

async function persistentWorkspace (t: { teardown (fn: () => unknown): void }, extra = ''): Promise<Workspace> {
  const ws = await workspace(`persistence = embedded\n${extra}`)
  t.teardown(() => ws.remove())
  return ws
}

/** every wait here is WAIT: a broker process starts and restarts in between */
const connect = (t: Teardown, url: string, options: IClientOptions, onMessage?: (topic: string, payload: Buffer) => void) =>
  connectBeforeConnack(t, url, options, onMessage, WAIT)

const range = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

/**
 * Keeps 50 publishes to `topic` in flight and SIGKILLs `broker` from inside the callback of
 * the `count`th acknowledgement; resolves with the payloads whose acknowledgement arrived.
 */
async function publishUntilKilled (t: { is (actual: unknown, expected: unknown): void }, publisher: MqttClient, broker: Broker,
  topic: string, qos: 1 | 2, count: number): Promise<Set<string>> {
  const acked = new Set<string>()
  let killed: Promise<number | null> | undefined
  await within(new Promise<void>((resolve) => {
    let sent = 0
    const next = () => {
      if (killed) return
      const payload = `m-${sent++}`
      publisher.publish(topic, payload, { qos }, (err) => {
        if (err) return
        acked.add(payload)
        if (acked.size === count && !killed) {
          killed = broker.kill('SIGKILL')
          resolve()
        }
        next()
      })
    }
    for (let i = 0; i < 50; i++) next()
  }), `publishing until the ${count}th ${qos === 1 ? 'PUBACK' : 'PUBCOMP'}`, WAIT)
  t.is(await killed, null)
  return acked
}

test('after SIGKILL and restart on the same data_dir, an offline persistent subscriber gets QoS 1 at least once and QoS 2 exactly once', async (t) => {
  const ws = await persistentWorkspace(t)
  const first = await startBroker(t, ws)

  // the subscriber: a persistent session with a QoS 1, a QoS 2 and a will subscription, then offline
  const subscriber = connect(t, first.url, { clientId: 'durable-sub', clean: false })
  await subscriber.connack
  const granted = await subscriber.client.subscribeAsync({ 'crash/q1': { qos: 1 }, 'crash/q2': { qos: 2 }, 'crash/will': { qos: 1 } })
  t.deepEqual(granted.map((g) => g.qos), [1, 2, 1])
  await subscriber.client.endAsync()

  // a client with a will, still connected when the broker dies
  const dying = connect(t, first.url, { clientId: 'dying', will: { topic: 'crash/will', payload: Buffer.from('gone'), qos: 1, retain: false } })
  await dying.connack

  // acknowledged publishes: publishAsync resolves on PUBACK (QoS 1) and PUBCOMP (QoS 2)
  const publisher = connect(t, first.url, { clientId: 'publisher' })
  await publisher.connack
  const q1 = range(20, 'q1')
  const q2 = range(20, 'q2')
  for (let i = 0; i < 20; i++) {
    await publisher.client.publishAsync('crash/q1', q1[i]!, { qos: 1 })
    await publisher.client.publishAsync('crash/q2', q2[i]!, { qos: 2 })
  }
  await publisher.client.publishAsync('crash/retained', 'kept', { qos: 1, retain: true })

  t.is(await first.kill('SIGKILL'), null, 'killed, not exited')
  publisher.client.end(true)
  dying.client.end(true)

  const second = await startBroker(t, ws)
  const opened = second.logs().find((line) => line.msg === 'message store opened')
  t.like(opened, { retained: 1, sessions: 1, wills: 1 }, 'the store reopened with what was written before the kill')
  t.true((opened?.queued as number) >= 40)

  const received: Array<[string, string]> = []
  const back = connect(t, second.url, { clientId: 'durable-sub', clean: false }, (topic, payload) => received.push([topic, payload.toString()]))
  t.true((await back.connack).sessionPresent, 'the session and its subscriptions survived')
  const payloads = (topic: string) => received.filter(([tp]) => tp === topic).map(([, p]) => p)
  await until(() => payloads('crash/q1').length >= 20 && payloads('crash/q2').length >= 20 && payloads('crash/will').length >= 1,
    'all queued messages', WAIT).catch(() => undefined)

  // a live marker through the restored subscription: everything queued was flushed before it
  const late = connect(t, second.url, { clientId: 'late-publisher' })
  await late.connack
  await late.client.publishAsync('crash/q2', 'marker', { qos: 2 })
  await until(() => payloads('crash/q2').includes('marker'), 'the marker', WAIT)

  t.deepEqual(new Set(payloads('crash/q1')), new Set(q1), 'QoS 1: every acknowledged message, at least once')
  t.deepEqual(payloads('crash/q2').filter((p) => p !== 'marker').sort(), [...q2].sort(), 'QoS 2: every acknowledged message, exactly once')
  t.deepEqual(payloads('crash/will'), ['gone'], 'the will of the client connected at the kill was published after the restart')

  // the retained message survived too
  const reader = connect(t, second.url, { clientId: 'reader' })
  await reader.connack
  const retained = once<[string, Buffer]>(reader.client, 'message', WAIT)
  await reader.client.subscribeAsync('crash/retained', { qos: 1 })
  t.is((await retained)[1].toString(), 'kept')
})

for (const qos of [1, 2] as const) {
  const ack = qos === 1 ? 'PUBACK' : 'PUBCOMP'
  test(`QoS ${qos}: a message whose ${ack} reached the publisher is delivered after a SIGKILL sent the moment that ${ack} arrived`, async (t) => {
    const ws = await persistentWorkspace(t)
    const first = await startBroker(t, ws)
    const subscriber = connect(t, first.url, { clientId: 'acked-sub', clean: false })
    await subscriber.connack
    await subscriber.client.subscribeAsync({ 'acked/#': { qos } })
    await subscriber.client.endAsync()

    // many publishes in flight; kill the broker from inside the callback of the 200th acknowledgement
    const publisher = connect(t, first.url, { clientId: 'acked-pub' })
    await publisher.connack
    const acked = await publishUntilKilled(t, publisher.client, first, 'acked/x', qos, 200)
    publisher.client.end(true)

    const second = await startBroker(t, ws)
    const received: string[] = []
    const back = connect(t, second.url, { clientId: 'acked-sub', clean: false }, (_topic, payload) => received.push(payload.toString()))
    t.true((await back.connack).sessionPresent)
    const missing = () => [...acked].filter((p) => !received.includes(p))
    await until(() => missing().length === 0, 'every acknowledged message', WAIT).catch(() => undefined)
    t.deepEqual(missing(), [], `of ${acked.size} acknowledged messages, these were lost`)
    if (qos === 2) {
      // a live marker comes after anything still queued: then count
      const late = connect(t, second.url, { clientId: 'late' })
      await late.connack
      await late.client.publishAsync('acked/x', 'marker', { qos: 2 })
      await until(() => received.includes('marker'), 'the marker', WAIT)
      t.deepEqual([...acked].filter((p) => received.filter((r) => r === p).length !== 1), [], 'exactly once')
    }
  })
}

// Subscribers online while the load runs: their queue rows wait in memory for the batch's
// commit, and rows a subscriber acknowledges first are never written (sqlite-store.ts).
// The PUBACK still waits for the batch, so what the publisher saw acknowledged is delivered
// or on disk.
for (const silent of [false, true]) {
  const who = silent ? 'one acknowledging and one that never acknowledges' : 'one acknowledging'
  test(`QoS 1 to persistent subscribers online (${who}), 100 ms commit window: SIGKILL at the 300th PUBACK loses nothing acknowledged`, async (t) => {
    // a long window: rows stay in memory long enough for the acknowledging subscriber to take
    // them back, and for a PUBACK sent before the commit to be caught by the kill
    const ws = await persistentWorkspace(t, 'persistence.commit_window = 100ms')
    const first = await startBroker(t, ws)
    const heard = { acker: new Set<string>(), silent: new Set<string>() }
    const acker = connect(t, first.url, { clientId: 'live-acker', clean: false }, (_topic, payload) => heard.acker.add(payload.toString()))
    await acker.connack
    await acker.client.subscribeAsync({ 'live/#': { qos: 1 } })
    if (silent) {
      const quiet = connect(t, first.url, { clientId: 'live-silent', clean: false })
      await quiet.connack
      await quiet.client.subscribeAsync({ 'live/#': { qos: 1 } })
      // mqtt.js sends the PUBACK from handleMessage's callback: never calling it, never acknowledge
      quiet.client.handleMessage = () => {}
    }

    const publisher = connect(t, first.url, { clientId: 'live-pub' })
    await publisher.connack
    const acked = await publishUntilKilled(t, publisher.client, first, 'live/x', 1, 300)
    publisher.client.end(true)
    const beforeKill = new Set(heard.acker)
    t.true(beforeKill.size > 0, 'the online subscriber got messages before the kill')

    const second = await startBroker(t, ws)
    const after = { acker: new Set<string>(), silent: new Set<string>() }
    const back = connect(t, second.url, { clientId: 'live-acker', clean: false }, (_topic, payload) => after.acker.add(payload.toString()))
    t.true((await back.connack).sessionPresent)
    if (silent) {
      const quiet = connect(t, second.url, { clientId: 'live-silent', clean: false }, (_topic, payload) => after.silent.add(payload.toString()))
      t.true((await quiet.connack).sessionPresent)
    }
    const missing = () => ({
      acker: [...acked].filter((p) => !beforeKill.has(p) && !after.acker.has(p)),
      // it acknowledged nothing: every acknowledged message must come again
      silent: silent ? [...acked].filter((p) => !after.silent.has(p)) : []
    })
    await until(() => missing().acker.length === 0 && missing().silent.length === 0, 'every acknowledged message', WAIT).catch(() => undefined)
    t.deepEqual(missing(), { acker: [], silent: [] }, `of ${acked.size} acknowledged messages, these were lost`)
  })
}
