// Two costs of aedes' connect path that tapmq removes without changing what any client sees
// (docs/benchmarks.md, "The connect path"):
//
// 1. The CONNACK. aedes writes it with mqtt-packet's writeToStream, which corks the socket,
//    writes four one-byte-ish chunks and uncorks on the next tick: a nextTick, a writev of
//    four buffers and their WriteWrap per connection. An MQTT 3.1/3.1.1 CONNACK is always the
//    same four bytes, so it is written as one shared, never-modified 4-byte buffer.
// 2. The presence notices. For every connect and disconnect aedes publishes
//    `$SYS/<broker id>/new/clients` and `…/disconnect/clients` through mqemitter: a Packet,
//    the publish series, a topic match and aedes' own takeover listener, which does nothing
//    on a single node. When no subscriber other than that listener matches the topic (the
//    usual case), the notice is skipped. A client or plugin that subscribes gets every notice
//    from then on. In a cluster (`persistence = redis`) the notices always go out: other nodes
//    close their connection with the same client id when they see one.
import type { Aedes } from 'aedes'
import mqttPacket from 'mqtt-packet'

type WriteToStream = ((packet: { cmd: string }, stream: { write (chunk: Buffer): boolean }, opts?: { protocolVersion?: number }) => boolean) & { cacheNumbers: boolean }

/** CONNACK bytes by session-present flag (0 or 1) and return code (0..5), shared and read-only */
const CONNACKS: Buffer[][] = [0, 1].map((sessionPresent) =>
  [0, 1, 2, 3, 4, 5].map((returnCode) => Buffer.from([0x20, 0x02, sessionPresent, returnCode])))

let connackWriterInstalled = false

/** The 4-byte CONNACK of MQTT 3.1/3.1.1, or undefined for anything mqtt-packet must encode. */
export function connackBytes (packet: { cmd: string, returnCode?: number, sessionPresent?: boolean, properties?: object }, protocolVersion?: number): Buffer | undefined {
  if (packet.cmd !== 'connack' || packet.properties !== undefined || (protocolVersion !== undefined && protocolVersion !== 3 && protocolVersion !== 4)) return undefined
  const returnCode = packet.returnCode
  if (typeof returnCode !== 'number' || !(returnCode >= 0 && returnCode <= 5) || !Number.isInteger(returnCode)) return undefined
  return CONNACKS[packet.sessionPresent ? 1 : 0][returnCode]
}

/**
 * Writes MQTT 3.1/3.1.1 CONNACKs with one write of a shared buffer; every other packet, and a
 * CONNACK with MQTT 5 properties, goes through mqtt-packet as before. Once per process: aedes
 * looks `writeToStream` up on mqtt-packet's export at every write, as does
 * watchOutgoingPublishes (aedes-internals.ts), whose wrapper this composes with.
 */
export function installConnackWriter (): void {
  if (connackWriterInstalled) return
  connackWriterInstalled = true
  const exported = mqttPacket as unknown as { writeToStream: WriteToStream }
  const write = exported.writeToStream
  const writeConnackOnce = function (packet: { cmd: string }, stream: { write (chunk: Buffer): boolean }, opts?: { protocolVersion?: number }): boolean {
    if (packet.cmd === 'connack') {
      const bytes = connackBytes(packet, opts?.protocolVersion)
      if (bytes !== undefined) {
        stream.write(bytes)
        // as mqtt-packet: a CONNACK write reports success; back-pressure applies to later packets
        return true
      }
    }
    return write(packet, stream, opts)
  } as WriteToStream
  // mqtt.js switches number caching through this accessor
  Object.defineProperty(writeConnackOnce, 'cacheNumbers', { get: () => write.cacheNumbers, set: (value: boolean) => { write.cacheNumbers = value } })
  exported.writeToStream = writeConnackOnce
}

/** What of mqemitter (aedes' default `mq`) the presence check reads: its Qlobber. */
interface Matcher {
  match (topic: string): Array<(...args: unknown[]) => unknown>
  add (...args: unknown[]): unknown
  remove (...args: unknown[]): unknown
}
interface LocalEmitter {
  _matcher?: Matcher
}

/** aedes' own listener on `$SYS/+/new/clients` (aedes.js), which acts only on notices from other brokers */
const AEDES_TAKEOVER_LISTENER = 'closeSameClients'

type Done = (err?: Error) => void
type Publish = (packet: { topic: string }, client?: unknown, done?: Done) => void

/**
 * Skips aedes' `$SYS/<id>/new/clients` and `$SYS/<id>/disconnect/clients` notices while no one
 * but aedes itself listens to them. `shared`: the broker's messages reach other nodes (a
 * cluster), whose aedes listens; then every notice goes out.
 */
export function skipUnwatchedClientNotices (broker: Aedes, shared: boolean): void {
  if (shared) return
  const matcher = (broker as unknown as { mq: LocalEmitter }).mq._matcher
  if (typeof matcher?.match !== 'function' || typeof matcher.add !== 'function' || typeof matcher.remove !== 'function') return
  const newClients = `$SYS/${broker.id}/new/clients`
  const goneClients = `$SYS/${broker.id}/disconnect/clients`
  // a topic match per CONNECT costs about what the notice itself costs: the answers are kept
  // until the subscriptions change (every subscribe and unsubscribe goes through the matcher)
  let generation = 0
  let answered = -1
  let newWatched = true
  let goneWatched = true
  const add = matcher.add
  const remove = matcher.remove
  matcher.add = function (this: Matcher, ...args: unknown[]) {
    generation++
    return add.apply(this, args)
  }
  matcher.remove = function (this: Matcher, ...args: unknown[]) {
    generation++
    return remove.apply(this, args)
  }
  const listened = (topic: string) => {
    const listeners = matcher.match(topic)
    for (let i = 0; i < listeners.length; i++) if (listeners[i].name !== AEDES_TAKEOVER_LISTENER) return true
    return false
  }
  const watched = (topic: string) => {
    if (answered !== generation) {
      newWatched = listened(newClients)
      goneWatched = listened(goneClients)
      answered = generation
    }
    return topic === newClients ? newWatched : goneWatched
  }
  const publish = broker.publish as unknown as Publish
  broker.publish = function (this: Aedes, packet: { topic: string }, client?: unknown, done?: Done) {
    const topic = packet.topic
    if ((topic === newClients || topic === goneClients) && !watched(topic)) {
      // aedes publishes these with a no-op callback; answer it as a completed publish would
      const callback = typeof client === 'function' ? client as Done : done
      callback?.()
      return
    }
    return publish.call(this, packet, client, done)
  } as unknown as Aedes['publish']
}
