// What single steps of aedes' connect path cost, in one process (run by hand, never by npm test):
//
//   flock /tmp/tapmq-bench.lock node --import tsx bench/connect-costs.ts
//
// - aedes' emptyQueue (lib/handlers/connect.js) runs, for every client, clean or not, a
//   stream.pipeline(persistence.outgoingStream(client), through(clearQueue), done). With an
//   empty queue that is the first line below; the pipeline ends by aborting its
//   AbortController, which builds a DOMException with a stack trace (second line).
// - the CONNACK: mqtt-packet's writeToStream (cork, four writes, uncork on the next tick)
//   against one write of a 4-byte buffer (runtime/broker/handlers/connect-fastpath.ts), on a
//   Writable that discards, so only the JavaScript side is measured, not the syscall.
// Figures are CPU µs per call (process.cpuUsage), after a warm-up.
import { pipeline, Readable, Transform, Writable } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import { connackBytes } from '../runtime/broker/handlers/connect-fastpath.ts'

const N = 20_000

async function measure (label: string, fn: () => Promise<void> | void): Promise<void> {
  for (let i = 0; i < 2000; i++) await fn()
  const before = process.cpuUsage()
  for (let i = 0; i < N; i++) await fn()
  const used = process.cpuUsage(before)
  console.log(`${label.padEnd(72)} ${((used.user + used.system) / N).toFixed(2).padStart(7)} µs`)
}

const emptyQueue = () => new Promise<void>((resolve) => {
  pipeline(Readable.from([]), new Transform({ objectMode: true, transform (_data, _enc, next) { next() } }), () => resolve())
})
const sink = () => new Writable({ write (_chunk, _enc, cb) { cb() }, writev (_chunks, cb) { cb() } })
const connack = { cmd: 'connack' as const, returnCode: 0, sessionPresent: false }

await measure('pipeline(Readable.from([]), Transform): aedes emptyQueue, empty queue', emptyQueue)
await measure('new AbortController().abort(): the DOMException part of it', () => { new AbortController().abort() })
await measure('CONNACK via mqtt-packet writeToStream (cork, 4 writes, nextTick uncork)', () => new Promise<void>((resolve) => {
  const out = sink()
  mqttPacket.writeToStream(connack, out)
  process.nextTick(resolve)
}))
await measure('CONNACK as one 4-byte write', () => new Promise<void>((resolve) => {
  const out = sink()
  out.write(connackBytes(connack)!)
  process.nextTick(resolve)
}))
await measure('(a Writable and a nextTick alone, the floor of the two lines above)', () => new Promise<void>((resolve) => {
  sink()
  process.nextTick(resolve)
}))
