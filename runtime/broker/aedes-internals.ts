// aedes 1.2 keeps some state it documents but does not type. Every access to it goes
// through this file, so an aedes upgrade has one place to check.
import type { Aedes, Client } from 'aedes'

export interface AedesClientInternals {
  /** set when the client sent DISCONNECT */
  _disconnected?: boolean
  /** subscriptions by topic filter */
  subscriptions?: Record<string, { qos: number }>
  _parser: { _parseLength (): boolean, _emitError (err: Error): void, packet: { length: number } }
}

export function internals (client: Client): Client & AedesClientInternals {
  return client as Client & AedesClientInternals
}

export function connectedClients (broker: Aedes): Record<string, Client | undefined> {
  return (broker as unknown as { clients: Record<string, Client | undefined> }).clients
}

