// aedes 1.2 keeps some state it documents but does not type. Every access to it goes
// through this file, so an aedes upgrade has one place to check.
import type { Aedes, Client } from 'aedes'
import mqttPacket, { type IPublishPacket } from 'mqtt-packet'

export interface AedesClientInternals {
  /** set when the client sent DISCONNECT */
  _disconnected?: boolean
  /** subscriptions by topic filter */
  subscriptions?: Record<string, { qos: number }>
  _parser: { _parseLength (): boolean, _emitError (err: Error): void, packet: { length: number }, on (event: 'packet', listener: (packet: { cmd: string, messageId?: number }) => void): void }
}

export function internals (client: Client): Client & AedesClientInternals {
  return client as Client & AedesClientInternals
}

export function connectedClients (broker: Aedes): Record<string, Client | undefined> {
  return (broker as unknown as { clients: Record<string, Client | undefined> }).clients
}


/** A PUBLISH as aedes writes it to a subscriber: QoS after downgrade, its message id. */
export type OutgoingPublish = IPublishPacket & { clientId?: string }

type WriteToStream = ((packet: { cmd: string }, stream: object, opts?: object) => boolean) & { cacheNumbers: boolean }
const publishWatchers = new WeakMap<object, (packet: OutgoingPublish) => void>()
let writesWatched = false

/**
 * Calls `watch` with every PUBLISH aedes writes to `stream`, just before it is written. Only
 * there are the delivered QoS and the message id known: aedes keeps no copy for clean
 * sessions. aedes writes every packet with mqtt-packet's writeToStream, which is wrapped
 * once per process; other streams pass straight through.
 */
export function watchOutgoingPublishes (stream: object, watch: (packet: OutgoingPublish) => void): void {
  if (!writesWatched) {
    writesWatched = true
    const exported = mqttPacket as unknown as { writeToStream: WriteToStream }
    const write = exported.writeToStream
    const watched = function (packet: { cmd: string }, target: object, opts?: object): boolean {
      // an outbound topic alias copy (aedes' write.js) stands for _aliasOf, which has the topic
      if (packet.cmd === 'publish') publishWatchers.get(target)?.(((packet as { _aliasOf?: object })._aliasOf ?? packet) as OutgoingPublish)
      return write(packet, target, opts)
    } as WriteToStream
    // mqtt.js switches number caching through this accessor
    Object.defineProperty(watched, 'cacheNumbers', { get: () => write.cacheNumbers, set: (value: boolean) => { write.cacheNumbers = value } })
    exported.writeToStream = watched
  }
  publishWatchers.set(stream, watch)
}

/** The watcher watchOutgoingPublishes registered for `stream`, for writers that bypass writeToStream. */
export function outgoingPublishWatcher (stream: object): ((packet: OutgoingPublish) => void) | undefined {
  return publishWatchers.get(stream)
}

/** What write coalescing (broker/write-coalescing.ts) uses of aedes' client.js. */
export interface AedesDeliveryInternals {
  /** the QoS 0 delivery function; subscriptions capture it when they are made */
  deliver0: (packet: object, cb: () => void) => void
  /** highest brokerCounter delivered per brokerId (aedes' dedupe) */
  duplicates: Record<string, number>
  errored: boolean
  _onError (err: Error): void
  /** calls back on 'drain', or with an error on drain_timeout or close */
  waitForDrain (callback: (err?: Error | null) => void): void
  /**
   * MQTT 5 (aedes 2 beta, patched: lib/write.js): the PUBLISH as aedes would write it (with an
   * outbound topic alias), or null when it exceeds the client's Maximum Packet Size
   */
  prepareOutboundPublish (packet: object): (object & { topic: string, properties?: object, _aliasOf?: object }) | null
  /** MQTT 5 (aedes 2 beta, patched: lib/client.js): the Subscription Identifiers of every matching subscription on `packet` */
  allSubscriptionIdentifiers (packet: object): void
}

export function deliveryInternals (client: Client): Client & AedesDeliveryInternals {
  return client as unknown as Client & AedesDeliveryInternals
}

/** MQTT 5: the client id of this CONNECT was empty and tapmq chose one (aedes 2 beta: connect.js). */
export function markAssignedClientId (packet: object): void {
  (packet as { _tapmqAssignedClientId?: boolean })._tapmqAssignedClientId = true
}

/**
 * MQTT 5 Server Keep Alive: the keepalive aedes uses for this client and names in its CONNACK.
 * Called from authenticate, which aedes runs before it arms the keepalive timer and writes
 * the CONNACK (aedes 2 beta: `_serverKeepAlive` in connect.js).
 */
export function setServerKeepAlive (client: Client, keepalive: number | undefined): void {
  if (keepalive !== undefined) (client as unknown as { _serverKeepAlive?: number })._serverKeepAlive = keepalive
}

/**
 * MQTT 5 reason code (and reason string) of the PUBACK/PUBREC aedes answers a PUBLISH with;
 * a code of 0x80 or more also keeps the message from being routed (aedes 2 beta, patched:
 * publish.js). For plugins' denials ([MQTT-3.4.2-1], reason strings per [MQTT-3.1.2-29]).
 */
export function setAckReason (packet: object, reasonCode: number, reasonString?: string): void {
  const p = packet as { ackReasonCode?: number, ackReasonString?: string }
  p.ackReasonCode = reasonCode
  if (reasonString !== undefined) p.ackReasonString = reasonString
}
