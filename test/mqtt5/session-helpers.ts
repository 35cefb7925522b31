// Helpers of the MQTT 5 session tests (session expiry, message expiry, will delay, server
// DISCONNECT): mqtt.js clients on protocol version 5 that keep their CONNACK, and a marker
// round trip that proves nothing was queued before it.
import type { Aedes } from 'aedes'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import mqttPacket, { type IConnackPacket, type IPublishPacket, type Packet } from 'mqtt-packet'
import { once, type Teardown, until, WAIT_MS, within } from '../helpers/mqtt.ts'

export interface V5Client {
  readonly client: MqttClient
  readonly connack: IConnackPacket
  /** every PUBLISH that arrived, in order, from before the CONNACK on */
  readonly messages: IPublishPacket[]
}

/**
 * Connects an mqtt.js client on MQTT 5 with the message handler on before the CONNACK (a
 * session's queue is flushed right after it). No reconnects; ended at teardown.
 */
export async function connect5 (t: Teardown, url: string, options: IClientOptions & { clientId: string }): Promise<V5Client> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options })
  t.teardown(() => client.endAsync(true).catch(() => {}))
  const messages: IPublishPacket[] = []
  client.on('message', (_topic, _payload, packet) => messages.push(packet))
  const connack = await within(new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
    client.once('close', () => reject(new Error('connection closed before CONNACK')))
  }), `MQTT 5 connect of ${options.clientId}`)
  return { client, connack, messages }
}

/**
 * Subscribes `client` to a topic of its own, publishes to it at QoS 1 and resolves once it
 * came back: every message the broker had queued for the client was sent before it.
 */
export async function roundTrip (v5: V5Client, topic = `marker/${v5.client.options.clientId}`): Promise<IPublishPacket[]> {
  await v5.client.subscribeAsync(topic, { qos: 1 })
  const back = within(new Promise<void>((resolve) => {
    const listener = (received: string) => {
      if (received !== topic) return
      v5.client.off('message', listener)
      resolve()
    }
    v5.client.on('message', listener)
  }), `marker on ${topic}`)
  await v5.client.publishAsync(topic, 'marker', { qos: 1 })
  await back
  return v5.messages.filter((packet) => packet.topic !== topic)
}

/** Resolves when aedes expired the session of `clientId` (its `sessionExpired` event). */
export function sessionExpired (broker: Aedes, clientId: string, timeoutMs = WAIT_MS): Promise<void> {
  return within(new Promise<void>((resolve) => {
    const listener = (client: { id: string }) => {
      if (client.id !== clientId) return
      ;(broker as unknown as NodeJS.EventEmitter).off('sessionExpired', listener)
      resolve()
    }
    ;(broker as unknown as NodeJS.EventEmitter).on('sessionExpired', listener)
  }), `expiry of the session of ${clientId}`, timeoutMs)
}

/** Resolves when the connection of `clientId` is gone from aedes (after its close ran). */
export async function clientGone (broker: Aedes, clientId: string): Promise<void> {
  const emitter = broker as unknown as NodeJS.EventEmitter
  for (;;) {
    const [client] = await once<[{ id: string }]>(emitter, 'clientDisconnect')
    if (client.id === clientId) return
  }
}

/** The pending timers of aedes' MQTT 5 session handling (what the tests may look at). */
export function pending (broker: Aedes): { sessions: Map<string, unknown>, wills: Map<string, unknown> } {
  const internals = broker as unknown as { expiringSessions: Map<string, unknown>, delayedWills: Map<string, unknown> }
  return { sessions: internals.expiringSessions, wills: internals.delayedWills }
}

/** `packet` as MQTT 5 bytes, for RawClient.write (RawClient.send encodes 3.1.1) */
export function send5 (packet: Packet): Buffer {
  return mqttPacket.generate(packet, { protocolVersion: 5 })
}

/**
 * Resolves once aedes finished the CONNECT of `clientId` (CONNACK written, queue sent): an
 * in-process client can see its CONNACK a turn before the broker's write callback ran.
 */
export async function ready (broker: Aedes, clientId: string): Promise<void> {
  const clients = (broker as unknown as { clients: Record<string, { connected: boolean } | undefined> }).clients
  await until(() => clients[clientId]?.connected === true, `${clientId} connected in the broker`)
}
