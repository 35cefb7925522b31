// What every transport shares: hand the stream to aedes, remember the peer, and cap the
// packet size before aedes buffers the packet.
import type { Server } from 'node:net'
import type { Aedes, Client } from 'aedes'
import type { Duplex } from 'node:stream'
import type { IncomingMessage } from 'node:http'
import type { Peer } from '../../sdk/events.ts'
import { ERR_LISTEN } from '../../sdk/errors.ts'
import { type AedesClientInternals, internals } from '../broker/aedes-internals.ts'
import type { ClientStates } from '../broker/client-state.ts'
import type { WriteCoalescer } from '../broker/write-coalescing.ts'
import type { Limits } from '../broker/limits.ts'
import { formatListenUrl, type ListenAddress } from '../config/listener-url.ts'
import { wireSize } from '../config/broker-config.ts'

export interface Listener {
  /** the URL with the real port (after listening on port 0) */
  readonly url: string
  readonly port: number
  close (): Promise<void>
}

export interface ListenerContext {
  readonly broker: Aedes
  readonly clients: ClientStates
  readonly maxPacketSize: number
  readonly limits: Limits
  /** set when write_coalescing is on */
  readonly coalescer?: WriteCoalescer
}

/** Hands the stream to aedes, unless a connection limit refuses it first (the socket is closed). */
export function acceptConnection (ctx: ListenerContext, stream: Duplex, peer: Peer, req?: IncomingMessage): Client | undefined {
  if (ctx.limits.admitConnection() !== undefined) {
    stream.destroy()
    return undefined
  }
  stream.on('close', closeCounter(ctx.limits))
  const client = ctx.broker.handle(stream, req)
  ctx.clients.attach(client, peer)
  limitPacketSize(client, ctx.maxPacketSize)
  ctx.coalescer?.attach(client)
  return client
}

// One function per broker (or per size limit) shared by every connection, rather than a
// closure each: an idle connection should cost little more than it costs aedes.
const closeCounters = new WeakMap<Limits, () => void>()

function closeCounter (limits: Limits): () => void {
  let counter = closeCounters.get(limits)
  if (!counter) {
    counter = () => limits.connectionClosed()
    closeCounters.set(limits, counter)
  }
  return counter
}

const sizeLimiters = new Map<number, AedesClientInternals['_parser']['_parseLength']>()

/** mqtt-packet has no size limit: check the remaining length as soon as it is parsed. */
function limitPacketSize (client: Client, max: number): void {
  const parser = internals(client)._parser
  let limiter = sizeLimiters.get(max)
  if (!limiter) {
    const parseLength = parser._parseLength
    limiter = function (this: typeof parser) {
      const complete = parseLength.call(this)
      if (complete && this.packet.length > max) {
        // MQTT 5: a DISCONNECT with 0x95 Packet too large, once connected [MQTT-3.2.2-15]
        const client = (this as unknown as { client?: Client & { rejectPacketTooLarge?: (size: number) => void } }).client
        if (client?.version === 5 && client.connected && client.rejectPacketTooLarge) {
          client.rejectPacketTooLarge(wireSize(this.packet.length))
          return false
        }
        this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds max_packet_size (${max} bytes)`))
        return false
      }
      return complete
    }
    sizeLimiters.set(max, limiter)
  }
  parser._parseLength = limiter
}

export function listen (server: Server, address: ListenAddress): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(ERR_LISTEN([formatListenUrl(address), err.code ?? err.message], { cause: err }))
    server.once('error', onError)
    server.listen(address.port, address.host, () => {
      server.off('error', onError)
      const port = (server.address() as { port: number }).port
      resolve({
        url: formatListenUrl(address, port),
        port,
        close: () => new Promise<void>((done) => server.close(() => done()))
      })
    })
  })
}
