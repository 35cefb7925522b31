// CPU cost of the store operations on the QoS 1 path of one persistent subscriber, without
// a broker: outgoingEnqueueCombi + outgoingUpdate + outgoingClearMessageId per message,
// committed in groups of `batch` messages (one group commit per batch in tapmq), the acks
// after the commit of their rows.
//   node --import tsx bench/persistence-ops.ts [messages] [batch]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteStore } from '../runtime/persistence/sqlite-store.ts'

const messages = Number(process.argv[2] ?? 50_000)
const batch = Number(process.argv[3] ?? 50)
for (const sync of ['normal', 'full'] as const) {
  const dir = mkdtempSync(join(tmpdir(), 'tapmq-ops-'))
  const store = new SqliteStore({ file: join(dir, 'tapmq.db'), sync })
  const broker = { id: 'bench', counter: 0 }
  await store.setup(broker)
  const client = { id: 'sub' }
  await store.addSubscriptions(client, [{ topic: 'a/b', qos: 1 }])
  const payload = Buffer.alloc(64, 1)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < messages; i += batch) {
    const pending: Array<Promise<unknown>> = []
    for (let j = 0; j < batch; j++) {
      const n = ++broker.counter
      const packet = { cmd: 'publish', topic: 'a/b', payload, qos: 1, retain: false, dup: false, brokerId: 'bench', brokerCounter: n }
      pending.push(store.outgoingEnqueueCombi(store.subscriptionsByTopic === undefined ? [] : await store.subscriptionsByTopic('a/b'), packet))
      pending.push(store.outgoingUpdate(client, { ...packet, messageId: (n % 65535) + 1 }))
    }
    // the subscriber's acks come after the commit that wrote the rows (acked before it, rows are never written)
    pending.push(store.flush())
    await Promise.all(pending)
    pending.length = 0
    for (let j = 0; j < batch; j++) pending.push(store.outgoingClearMessageId(client, { messageId: ((broker.counter - batch + j + 1) % 65535) + 1 }))
    pending.push(store.flush())
    await Promise.all(pending)
  }
  const wall = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  console.log(`sync=${sync} batch=${batch}: ${Math.round(messages / (wall / 1000))} msg/s wall, ` +
    `${((cpu.user + cpu.system) / messages).toFixed(1)} µs CPU per message, queue left ${store.stats().queued}`)
  await store.destroy()
  rmSync(dir, { recursive: true, force: true })
}
