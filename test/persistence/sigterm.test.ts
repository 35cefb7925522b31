// SIGTERM under load, on the real `tapmq start` process with the embedded store: publishers
// keep QoS 1 messages in flight to persistent sessions when the signal arrives. The broker
// must exit 0 within the bound that `tapmq stop` waits for, and after a restart on the same
// data_dir every message whose PUBACK a publisher received reaches the persistent
// subscribers (the offline one from its queue; the online one before or after the stop).
import test from 'ava'
import type { IClientOptions } from 'mqtt'
import { startTapmq, workspace } from '../helpers/cli.ts'
import { connectBeforeConnack, type Teardown, until, within } from '../helpers/mqtt.ts'

const WAIT = 10_000
/** workspace() sets shutdown_timeout = 3s; `tapmq stop` waits 3 x shutdown_timeout + 5 s for the exit */
const SHUTDOWN_BOUND = 3 * 3000 + 5000
const PUBLISHERS = 4
const IN_FLIGHT = 20
/** acknowledged messages before the SIGTERM */
const BEFORE_SIGNAL = 800

/** as connectBeforeConnack, and an error (the broker going away under load) is no failure */
function connect (t: Teardown, url: string, options: IClientOptions, onMessage?: (payload: string) => void) {
  const connection = connectBeforeConnack(t, url, options, onMessage && ((_topic, payload) => onMessage(payload.toString())), WAIT)
  connection.client.on('error', () => {})
  return connection
}

// the stock commit window, and a long one that leaves a batch open when the signal comes
for (const window of ['0ms', '200ms']) {
  test(`SIGTERM under QoS 1 load (commit window ${window}): exit 0 within the shutdown bound, and after a restart every acknowledged message reaches the persistent sessions`, async (t) => {
    const ws = await workspace(`persistence = embedded\npersistence.commit_window = ${window}`)
    t.teardown(() => ws.remove())
    const url = `mqtt://127.0.0.1:${ws.port}`
    const first = await startTapmq(t, ws, WAIT)

    // a persistent session that is offline during the load, and one online that acknowledges
    const offline = connect(t, url, { clientId: 'term-offline', clean: false })
    await offline.connack
    await offline.client.subscribeAsync({ 'term/#': { qos: 1 } })
    await offline.client.endAsync()
    const onlineHeard = new Set<string>()
    const online = connect(t, url, { clientId: 'term-online', clean: false }, (payload) => onlineHeard.add(payload))
    await online.connack
    await online.client.subscribeAsync({ 'term/#': { qos: 1 } })

    // publishers: IN_FLIGHT QoS 1 messages each, a new one per PUBACK, until their connection goes
    const acked = new Set<string>()
    let signalled = false
    const stopped = new Promise<void>((resolve) => {
      for (let p = 0; p < PUBLISHERS; p++) {
        const publisher = connect(t, url, { clientId: `term-pub-${p}` })
        let sent = 0
        const next = () => {
          if (!publisher.client.connected) return
          const payload = `p${p}-${sent++}`
          publisher.client.publish(`term/${p}`, payload, { qos: 1 }, (err) => {
            if (err) return
            acked.add(payload)
            if (acked.size >= BEFORE_SIGNAL && !signalled) {
              signalled = true
              first.child.kill('SIGTERM')
              resolve()
            }
            next()
          })
        }
        publisher.connack.then(() => { for (let i = 0; i < IN_FLIGHT; i++) next() }, () => {})
      }
    })
    await within(stopped, `${BEFORE_SIGNAL} PUBACKs`, WAIT)

    t.is(await first.exited(SHUTDOWN_BOUND), 0, 'graceful exit, code 0')
    t.regex(first.output(), /"msg":"tapmq stopped"/)
    t.true(acked.size >= BEFORE_SIGNAL)
    const ackedAtExit = [...acked]
    const heardBeforeStop = new Set(onlineHeard)

    const second = await startTapmq(t, ws, WAIT)
    t.regex(second.output(), /"msg":"message store opened"/)
    const offlineHeard = new Set<string>()
    const offlineBack = connect(t, url, { clientId: 'term-offline', clean: false }, (payload) => offlineHeard.add(payload))
    t.true((await offlineBack.connack).sessionPresent, 'the offline session survived')
    const onlineAfter = new Set<string>()
    const onlineBack = connect(t, url, { clientId: 'term-online', clean: false }, (payload) => onlineAfter.add(payload))
    t.true((await onlineBack.connack).sessionPresent, 'the online session survived')

    const missing = () => ({
      offline: ackedAtExit.filter((m) => !offlineHeard.has(m)),
      online: ackedAtExit.filter((m) => !heardBeforeStop.has(m) && !onlineAfter.has(m))
    })
    await until(() => missing().offline.length === 0 && missing().online.length === 0, 'every acknowledged message', WAIT).catch(() => undefined)
    t.deepEqual(missing(), { offline: [], online: [] }, `of ${ackedAtExit.length} acknowledged messages, these were lost`)

    second.child.kill('SIGTERM')
    t.is(await second.exited(SHUTDOWN_BOUND), 0)
  })
}
