// MQTT 5 on every listener: the same broker, a publisher and a subscriber over TCP, TLS and
// WebSocket, a message with user properties and a correlation id from each to the others.
import test from 'ava'
import type { IClientOptions, MqttClient } from 'mqtt'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, tmpDir, until } from '../helpers/mqtt.ts'
import { tlsConfig, writeTestCertificates } from '../helpers/tls.ts'

test('MQTT 5 over TCP, TLS and WebSocket: each transport\'s client gets the others\' messages with their properties', async (t) => {
  const certs = await writeTestCertificates(await tmpDir(t))
  const broker = await testBroker(t, { websocket: true, config: tlsConfig(certs.files) })
  const tls = broker.tapmq.listeners.find((listener) => listener.url.startsWith('tls'))
  t.truthy(tls, 'a TLS listener')
  const endpoints: Array<[string, string, IClientOptions]> = [
    ['tcp', broker.url, {}],
    ['tls', `mqtts://127.0.0.1:${tls!.port}`, { ca: certs.ca.cert, rejectUnauthorized: true }],
    ['ws', broker.wsUrl!, {}]
  ]
  const clients: Array<[string, MqttClient, string[]]> = []
  for (const [name, url, options] of endpoints) {
    const client = await connectClient(t, url, { protocolVersion: 5, clientId: `five-${name}`, ...options })
    const got: string[] = []
    client.on('message', (topic, payload, packet) => {
      got.push(`${topic} ${payload.toString()} ${JSON.stringify(packet.properties?.userProperties)} ${packet.properties?.correlationData?.toString()}`)
    })
    await client.subscribeAsync('five/#', { qos: 1, nl: true })
    clients.push([name, client, got])
  }
  for (const [name, client] of clients) {
    await client.publishAsync(`five/${name}`, 'hi', { qos: 1, properties: { userProperties: { via: name }, correlationData: Buffer.from(`c-${name}`) } })
  }
  for (const [name, , got] of clients) {
    await until(() => got.length >= 2, `${name} gets the other two`)
    const expected = clients.filter(([other]) => other !== name)
      .map(([other]) => `five/${other} hi {"via":"${other}"} c-${other}`)
    t.deepEqual([...got].sort(), expected.sort(), name)
  }
})
