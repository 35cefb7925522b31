// GHSA-52qw-whmv-87c5 (fixed in aedes 1.1.3), carried for aedes 2.0.0-beta.1 by
// patches/aedes+2.0.0-beta.1+001+GHSA-52qw-whmv-87c5-prototype-keys.patch.
//
// aedes keyed its client table, each client's subscriptions and the SUBSCRIBE dedupe map by
// strings from the wire in plain objects, so a client id or topic filter named like an
// Object.prototype member ('constructor', 'toString', '__proto__', ...) read back as present
// and one CONNECT, SUBSCRIBE or UNSUBSCRIBE threw out of a socket handler: the whole broker
// process died. So the broker runs here as its own process (the real CLI), and every test
// ends by checking that the process is alive and still routes a message.
import test, { type ExecutionContext } from 'ava'
import type { IClientOptions, MqttClient } from 'mqtt'
import { type RunningCommand, startTapmq, workspace } from '../helpers/cli.ts'
import { connectClient, nextMessage, once, until } from '../helpers/mqtt.ts'

/** names every plain object inherits; '__proto__' is the one a plain object cannot even store */
const NAMES = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty'] as const

const VERSIONS = [
  { label: 'MQTT 3.1.1', protocolVersion: 4 },
  { label: 'MQTT 5', protocolVersion: 5 }
] as const

interface Broker {
  readonly url: string
  readonly cmd: RunningCommand
}

async function startBroker (t: ExecutionContext): Promise<Broker> {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  return { url: `mqtt://127.0.0.1:${ws.port}`, cmd: await startTapmq(t, ws) }
}

/** the broker process's fate, for failure messages: a crash shows up as a refused connection first */
async function died (broker: Broker): Promise<string | undefined> {
  const code = await broker.cmd.exited(1000).catch(() => 'running')
  if (code === 'running') return undefined
  return `the broker process exited (code ${String(code)}); stderr:\n${broker.cmd.stderr().slice(-1500)}\nstdout:\n${broker.cmd.output().slice(-1500)}`
}

/**
 * Runs `scenario`, then checks the broker process is alive and routes a message between two
 * fresh clients. A scenario that fails because the broker died says so.
 */
async function survives (t: ExecutionContext, broker: Broker, protocolVersion: 4 | 5, scenario: () => Promise<void>): Promise<void> {
  try {
    await scenario()
  } catch (err) {
    const death = await died(broker)
    if (death) throw new Error(`${(err as Error).message}: ${death}`)
    throw err
  }
  t.is(broker.cmd.child.exitCode, null, 'the broker process is alive')
  const probe = await connectClient(t, broker.url, { clientId: `probe-${protocolVersion}`, protocolVersion })
  await probe.subscribeAsync('probe/after', { qos: 1 })
  const sender = await connectClient(t, broker.url, { clientId: `probe-sender-${protocolVersion}`, protocolVersion })
  const routed = nextMessage(probe)
  await sender.publishAsync('probe/after', 'still routing', { qos: 1 })
  t.deepEqual((await routed).map(String), ['probe/after', 'still routing'])
}

function client (t: ExecutionContext, broker: Broker, protocolVersion: 4 | 5, options: IClientOptions): Promise<MqttClient> {
  return connectClient(t, broker.url, { protocolVersion, ...options })
}

for (const { label, protocolVersion } of VERSIONS) {
  test(`${label}: a client id named like an Object.prototype member connects, and a second CONNECT with it takes over the first [MQTT-3.1.4-2]${protocolVersion === 5 ? ' with DISCONNECT 0x8E [MQTT-3.1.4-3]' : ''}`, async (t) => {
    const broker = await startBroker(t)
    await survives(t, broker, protocolVersion, async () => {
      for (const name of NAMES) {
        const first = await client(t, broker, protocolVersion, { clientId: name })
        const firstClosed = once(first, 'close')
        const disconnect = protocolVersion === 5 ? once<[{ reasonCode?: number }]>(first, 'disconnect') : undefined
        // awaited below; handled here too, so a failure before that is reported once, not as an unhandled rejection
        firstClosed.catch(() => {})
        disconnect?.catch(() => {})
        const second = await client(t, broker, protocolVersion, { clientId: name })
        await firstClosed
        if (disconnect) t.is((await disconnect)[0].reasonCode, 0x8e, `${name}: the old connection is told 'Session taken over'`)
        // the session that took over is a working one
        await second.subscribeAsync(`own/${name}`, { qos: 1 })
        const routed = nextMessage(second)
        await second.publishAsync(`own/${name}`, name, { qos: 1 })
        t.deepEqual((await routed).map(String), [`own/${name}`, name], `${name}: the new connection routes`)
        await second.endAsync()
      }
    })
  })

  test(`${label}: a topic named like an Object.prototype member: UNSUBSCRIBE before any SUBSCRIBE is answered [MQTT-3.10.4-5], SUBSCRIBE delivers, UNSUBSCRIBE stops delivery [MQTT-3.10.4-2]`, async (t) => {
    const broker = await startBroker(t)
    await survives(t, broker, protocolVersion, async () => {
      const subscriber = await client(t, broker, protocolVersion, { clientId: 'subscriber' })
      const publisher = await client(t, broker, protocolVersion, { clientId: 'publisher' })
      await subscriber.subscribeAsync('sentinel', { qos: 1 })
      const heard: string[] = []
      subscriber.on('message', (topic, payload) => heard.push(`${topic} ${String(payload)}`))
      for (const name of NAMES) {
        const never = await subscriber.unsubscribeAsync(name) as { cmd?: string, granted?: number[] } | undefined
        t.is(never?.cmd, 'unsuback', `${name}: UNSUBACK for a filter never subscribed`)
        // MQTT 5 §3.11.3: 0x11 No subscription existed (an inherited name is not a subscription)
        if (protocolVersion === 5) t.deepEqual(never?.granted, [0x11], `${name}: UNSUBACK says 'No subscription existed'`)

        t.deepEqual((await subscriber.subscribeAsync(name, { qos: 1 })).map((grant) => grant.qos), [1], `${name}: SUBACK grants QoS 1`)
        await publisher.publishAsync(name, 'while subscribed', { qos: 1 })
        await until(() => heard.includes(`${name} while subscribed`), `${name}: the message while subscribed`)

        const gone = await subscriber.unsubscribeAsync(name) as { cmd?: string, granted?: number[] } | undefined
        t.is(gone?.cmd, 'unsuback')
        if (protocolVersion === 5) t.deepEqual(gone?.granted, [0x00], `${name}: UNSUBACK says 'Success'`)
        // same publisher, same subscriber: the sentinel arrives after anything published before it
        await publisher.publishAsync(name, 'after unsubscribe', { qos: 1 })
        await publisher.publishAsync('sentinel', name, { qos: 1 })
        await until(() => heard.includes(`sentinel ${name}`), `${name}: the sentinel`)
        t.false(heard.includes(`${name} after unsubscribe`), `${name}: nothing delivered after UNSUBSCRIBE`)
      }
    })
  })

  test(`${label}: one SUBSCRIBE with '__proto__' and another filter grants and delivers both; a prototype-named filter subscribed again with another QoS replaces the subscription [MQTT-3.8.4-3]`, async (t) => {
    const broker = await startBroker(t)
    await survives(t, broker, protocolVersion, async () => {
      const subscriber = await client(t, broker, protocolVersion, { clientId: 'subscriber' })
      const publisher = await client(t, broker, protocolVersion, { clientId: 'publisher' })
      const heard: Array<{ topic: string, payload: string, qos: number }> = []
      subscriber.on('message', (topic, payload, packet) => heard.push({ topic, payload: String(payload), qos: packet.qos }))

      // the dedupe of one SUBSCRIBE's filters used a plain object: '__proto__' set its prototype instead of a key
      const granted = await subscriber.subscribeAsync(['__proto__', 'plain'], { qos: 1 })
      t.deepEqual(granted.map((grant) => [grant.topic, grant.qos]), [['__proto__', 1], ['plain', 1]])
      await publisher.publishAsync('__proto__', 'a', { qos: 1 })
      await publisher.publishAsync('plain', 'b', { qos: 1 })
      await until(() => heard.length >= 2, 'both messages')
      t.deepEqual(heard.map(({ topic, payload }) => `${topic} ${payload}`), ['__proto__ a', 'plain b'])

      for (const name of NAMES.filter((candidate) => candidate !== '__proto__')) {
        heard.length = 0
        await subscriber.subscribeAsync(name, { qos: 0 })
        t.deepEqual((await subscriber.subscribeAsync(name, { qos: 1 })).map((grant) => grant.qos), [1], `${name}: the second SUBSCRIBE is granted QoS 1`)
        await publisher.publishAsync(name, 'once', { qos: 1 })
        await publisher.publishAsync('plain', name, { qos: 1 })
        await until(() => heard.some((message) => message.topic === 'plain'), `${name}: the sentinel`)
        t.deepEqual(heard, [{ topic: name, payload: 'once', qos: 1 }, { topic: 'plain', payload: name, qos: 1 }],
          `${name}: one copy, at the QoS of the replacing subscription`)
      }
    })
  })
}
