// What one idle connection keeps on the JS heap, tapmq against bare aedes, in one process
// (exact where the RSS figure of the memory scenario is noisy): heap growth per connection
// after GC, and with --diff the growth by object kind from two heap snapshots.
//
//   node --expose-gc --import tsx bench/heap-per-connection.ts [--clients 2000] [--diff]
//
// The generator's sockets live in the same process; their share cancels out in the
// difference between the two brokers.
import { readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { writeHeapSnapshot } from 'node:v8'
import { Aedes } from 'aedes'
import { startTestBroker } from '../sdk/testing.ts'
import { WireClient } from './lib/wire.ts'

const { values } = parseArgs({ options: { clients: { type: 'string', default: '2000' }, diff: { type: 'boolean', default: false } } })
const N = Number(values.clients)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with node --expose-gc')

async function settle (): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc!()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** count and bytes per object kind (constructor name for objects and closures) */
function snapshotByKind (): Map<string, [number, number]> {
  const file = writeHeapSnapshot(join(tmpdir(), `heap-per-connection-${process.pid}.heapsnapshot`))
  const snap = JSON.parse(readFileSync(file, 'utf8'))
  rmSync(file)
  const fields = snap.snapshot.meta.node_fields as string[]
  const types = snap.snapshot.meta.node_types[0] as string[]
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f))
  const nodes = snap.nodes as number[]
  const out = new Map<string, [number, number]>()
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = types[nodes[i + iType]]
    const kind = type === 'object' || type === 'closure' ? `${type} ${snap.strings[nodes[i + iName]]}` : `(${type})`
    const entry = out.get(kind) ?? [0, 0]
    entry[0]++
    entry[1] += nodes[i + iSize]
    out.set(kind, entry)
  }
  return out
}

async function measure (label: string, port: number): Promise<{ heap: number, kinds?: Map<string, number> }> {
  const address = { host: '127.0.0.1', port }
  const clients: WireClient[] = [(await WireClient.connect(address, { clientId: `${label}-warm`, keepalive: 600 })).client]
  const before = values.diff ? snapshotByKind() : undefined
  await settle()
  const heapBefore = process.memoryUsage().heapUsed
  for (let i = 0; i < N; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, k) =>
      WireClient.connect(address, { clientId: `${label}-${i + k}`, keepalive: 600 })))
    clients.push(...batch.map((b) => b.client))
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  await settle()
  const heap = (process.memoryUsage().heapUsed - heapBefore) / N
  let kinds: Map<string, number> | undefined
  if (before) {
    kinds = new Map()
    for (const [kind, [, bytes]] of snapshotByKind()) kinds.set(kind, (bytes - (before.get(kind)?.[1] ?? 0)) / N)
  }
  for (const client of clients) client.destroy()
  return { heap, kinds }
}

const broker = new Aedes()
await broker.listen()
const server = createServer(broker.handle).listen(0, '127.0.0.1')
await new Promise((resolve) => server.once('listening', resolve))
const aedes = await measure('aedes', (server.address() as { port: number }).port)
await new Promise<void>((resolve) => broker.close(() => server.close(() => resolve())))

const tapmq = await startTestBroker({ config: { 'log.level': 'warn' } })
const ours = await measure('tapmq', tapmq.port)
await tapmq.close()

console.log(`JS heap per idle connection (${N} clients, generator sockets included in both):`)
console.log(`  bare aedes ${Math.round(aedes.heap)} B, tapmq ${Math.round(ours.heap)} B, tapmq - aedes ${Math.round(ours.heap - aedes.heap)} B`)
if (aedes.kinds && ours.kinds) {
  const kinds = new Set([...aedes.kinds.keys(), ...ours.kinds.keys()])
  const rows = [...kinds].map((k) => [k, aedes.kinds!.get(k) ?? 0, ours.kinds!.get(k) ?? 0] as const)
    .filter(([, a, t]) => Math.abs(t - a) >= 8).sort((x, y) => (y[2] - y[1]) - (x[2] - x[1]))
  console.log('\nbytes per connection by kind, where tapmq and aedes differ:\n   aedes   tapmq    diff  kind')
  for (const [kind, a, t] of rows) console.log(`  ${a.toFixed(0).padStart(6)}  ${t.toFixed(0).padStart(6)}  ${(t - a).toFixed(0).padStart(6)}  ${kind}`)
}
process.exit(0)
