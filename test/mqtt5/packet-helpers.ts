// Helpers for the MQTT 5 packet-level tests (CONNACK properties, reason codes, topic
// aliases, flow control, subscription options, pass-through): mqtt.js clients on
// protocolVersion 5 that record every packet they receive, and raw MQTT 5 packets.
import type { ExecutionContext } from 'ava'
import type { IClientOptions, MqttClient } from 'mqtt'
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet'
import { RawClient, connectClient, once, WAIT_MS } from '../helpers/mqtt.ts'

export type AnyPacket = { cmd: string, reasonCode?: number, properties?: Record<string, any>, topic?: string, messageId?: number, retain?: boolean, payload?: Buffer, length?: number, dup?: boolean, sessionPresent?: boolean, granted?: number[], qos?: number }

/** An mqtt.js MQTT 5 client whose received packets are in `received` (mqtt.js' own parse). */
export async function v5 (t: ExecutionContext, url: string, clientId: string, options: IClientOptions = {}): Promise<MqttClient & { received: AnyPacket[] }> {
  const client = await connectClient(t, url, { protocolVersion: 5, clientId, ...options }) as MqttClient & { received: AnyPacket[] }
  client.received = []
  client.on('packetreceive', (packet) => client.received.push(packet as AnyPacket))
  return client
}

/** The CONNACK an mqtt.js client got (mqtt.js keeps no copy: a connect listener that records it). */
export async function connack (t: ExecutionContext, url: string, options: IClientOptions): Promise<AnyPacket> {
  const mqtt = (await import('mqtt')).default
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options })
  t.teardown(() => client.endAsync(true).catch(() => {}))
  const [packet] = await once<[AnyPacket]>(client, 'connect')
  return packet
}

/** A raw MQTT 5 connection: CONNECT sent, CONNACK returned; `send5` for v5 packets. */
export async function raw5 (t: ExecutionContext, port: number, connect: Partial<IConnectPacket> & { clientId: string }): Promise<{ client: RawClient, connack: AnyPacket }> {
  const { client, connack } = await RawClient.connect(t, port, { protocolVersion: 5, ...connect })
  return { client, connack: connack as AnyPacket }
}

/** Writes `packet` encoded as MQTT 5 (RawClient.send encodes without properties). */
export function send5 (client: RawClient, packet: Record<string, unknown>): void {
  client.write(mqttPacket.generate(packet as unknown as Packet, { protocolVersion: 5 }))
}

/** The next packet with `cmd` as an AnyPacket. */
export async function next5 (client: RawClient, cmd: Packet['cmd'], timeoutMs = WAIT_MS): Promise<AnyPacket> {
  return await client.next(cmd, timeoutMs) as AnyPacket
}

/** Resolves with the next packet `client` receives that matches. */
export function nextReceived (client: MqttClient & { received: AnyPacket[] }, match: (p: AnyPacket) => boolean, timeoutMs = WAIT_MS): Promise<AnyPacket> {
  const found = client.received.find(match)
  if (found) return Promise.resolve(found)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.off('packetreceive', listener); reject(new Error(`no matching packet within ${timeoutMs} ms`)) }, timeoutMs)
    const listener = (received: Packet) => {
      const packet = received as AnyPacket
      if (!match(packet)) return
      clearTimeout(timer)
      client.off('packetreceive', listener)
      resolve(packet)
    }
    client.on('packetreceive', listener)
  })
}
