// tls+mqtt-tcp:// upstreams: the bridge verifies the upstream's certificate against
// ssl.cacertfile, and refuses one it cannot verify.
import test from 'ava'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, Recorder, tmpDir } from '../helpers/mqtt.ts'
import { tlsConfig, writeTestCertificates } from '../helpers/tls.ts'
import { bridgeConfig, bridgeStatus, edgeBroker, waitBridge, waitCounter } from './helpers.ts'

async function tlsUpstream (t: Parameters<typeof testBroker>[0]) {
  const certs = await writeTestCertificates(await tmpDir(t))
  const upstream = await testBroker(t, { config: tlsConfig(certs.files) })
  const tls = upstream.tapmq.listeners.find((listener) => listener.url.startsWith('tls'))!
  return { upstream, certs, port: tls.port }
}

test('a tls+mqtt-tcp:// bridge verifies the upstream with ssl.cacertfile and forwards over TLS', async (t) => {
  const { upstream, certs, port } = await tlsUpstream(t)
  const cloud = await connectClient(t, upstream.url, { clientId: 'cloud' })
  await cloud.subscribeAsync('secure/#', { qos: 1 })
  const got = new Recorder<string>()
  cloud.on('message', (topic, payload) => got.push(`${topic}=${payload}`))

  const edge = await edgeBroker(t, [bridgeConfig(`tls+mqtt-tcp://127.0.0.1:${port}`, {
    forwards: ['secure/#'], ssl: { cacertfile: certs.files.ca, serverName: 'localhost' }
  })])
  await waitBridge(edge, 'connected')
  const bridgeClient = upstream.broker.clients().find((client) => client.clientId.startsWith('tapmq-bridge-'))
  t.is(bridgeClient?.peer.transport, 'tls')
  const device = await connectClient(t, edge.url, { clientId: 'device' })
  await device.publishAsync('secure/x', 'sealed', { qos: 1 })
  await got.count(1)
  t.deepEqual(got.list, ['secure/x=sealed'])
})

test('an upstream certificate that does not verify keeps the bridge down, and health says why', async (t) => {
  const { port } = await tlsUpstream(t)
  const edge = await edgeBroker(t, [bridgeConfig(`tls+mqtt-tcp://127.0.0.1:${port}`, { forwards: ['secure/#'], ssl: { serverName: 'localhost' } })])
  await waitCounter(edge, 'default_connect_failures_total', 1)
  const health = bridgeStatus(edge).health
  t.is(health.status, 'down')
  t.regex(health.detail ?? '', /last error: .*(self[- ]signed|unable to (get|verify)|certificate)/i)
  t.is(bridgeStatus(edge).counters.default_connects_total, 0)
})
