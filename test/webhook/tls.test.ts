// TLS to https:// receivers: web.hook.ssl.cacertfile, certfile/keyfile, verify,
// server_name_indication (EMQX 4 keys, which NanoMQ 0.8 lists but ignores).
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import test from 'ava'
import selfsigned from 'selfsigned'
import { connectClient, tmpDir } from '../helpers/mqtt.ts'
import { makeTestCertificates, type TestCertificates } from '../helpers/tls.ts'
import { brokerWith, counterReaches, counters, Receiver } from './receiver.ts'

const RULE = 'web.hook.rule.client.connack.1={"action": "on_client_connack"}\n'

interface Files { ca: string, clientCert: string, clientKey: string }

async function certificates (t: Parameters<typeof tmpDir>[0]): Promise<{ certs: TestCertificates, files: Files, dir: string }> {
  const certs = await makeTestCertificates()
  const dir = await tmpDir(t)
  const files = { ca: join(dir, 'ca.pem'), clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client-key.pem') }
  await Promise.all([writeFile(files.ca, certs.ca.cert), writeFile(files.clientCert, certs.client.cert), writeFile(files.clientKey, certs.client.key)])
  return { certs, files, dir }
}

/** A broker whose webhook points at `receiver` with these extra lines, and one client that connects. */
async function connackTo (t: Parameters<typeof tmpDir>[0], receiver: Receiver, lines: string[]) {
  const broker = await brokerWith(t, [`web.hook.url=${receiver.url('/tls')}`, 'web.hook.retry.max_retries=0', ...lines, RULE].join('\n'))
  await connectClient(t, broker.url, { clientId: 'tls-client' })
  return broker
}

test('https with the receiver\'s CA: delivered; the certificate is verified by default', async (t) => {
  const { certs, files } = await certificates(t)
  const receiver = await Receiver.start(t, undefined, { key: certs.server.key, cert: certs.server.cert })
  const trusted = await connackTo(t, receiver, [`web.hook.ssl.cacertfile=${files.ca}`])
  await receiver.body('"clientid":"tls-client"')
  t.is((await counterReaches(trusted, 'sent_total', 1)).failed_total, 0)

  // without the CA the same receiver is refused
  const untrusted = await connackTo(t, receiver, [])
  await counterReaches(untrusted, 'failed_total', 1)
  t.is(counters(untrusted).sent_total, 0)
  t.true(untrusted.logs.some((line) => line.msg === 'webhook request failed; events dropped' && /certificate/i.test(String(line.error))))
})

test('web.hook.ssl.verify=false accepts a receiver it cannot verify', async (t) => {
  const { certs } = await certificates(t)
  const receiver = await Receiver.start(t, undefined, { key: certs.server.key, cert: certs.server.cert })
  const broker = await connackTo(t, receiver, ['web.hook.ssl.verify=false'])
  await receiver.body('"clientid":"tls-client"')
  t.is((await counterReaches(broker, 'sent_total', 1)).failed_total, 0)
})

test('a client certificate for receivers that ask for one', async (t) => {
  const { certs, files } = await certificates(t)
  const receiver = await Receiver.start(t, (request, response) => {
    const socket = request.socket as TLSSocket
    response.writeHead(socket.authorized ? 200 : 401).end()
  }, { key: certs.server.key, cert: certs.server.cert, ca: certs.ca.cert, requestCert: true })
  const anonymous = await connackTo(t, receiver, [`web.hook.ssl.cacertfile=${files.ca}`])
  await counterReaches(anonymous, 'failed_total', 1)

  const identified = await connackTo(t, receiver, [
    `web.hook.ssl.cacertfile=${files.ca}`, `web.hook.ssl.certfile=${files.clientCert}`, `web.hook.ssl.keyfile=${files.clientKey}`
  ])
  await counterReaches(identified, 'sent_total', 1)
  const accepted = receiver.requests.find((request) => (request.socket as TLSSocket).authorized)!
  t.is((accepted.socket as TLSSocket).getPeerCertificate().subject.CN, 'device-1')
})

test('server_name_indication: a name to send and check instead of the URL\'s, or disable the name check', async (t) => {
  const { certs, files } = await certificates(t)
  // a receiver whose certificate names hooks.internal, reached at 127.0.0.1
  const named = await selfsigned.generate([{ name: 'commonName', value: 'hooks.internal' }], {
    keyType: 'ec', algorithm: 'sha256', ca: { key: certs.ca.key, cert: certs.ca.cert }
  })
  const receiver = await Receiver.start(t, undefined, { key: named.private, cert: named.cert })
  const ca = `web.hook.ssl.cacertfile=${files.ca}`

  const mismatch = await connackTo(t, receiver, [ca])
  await counterReaches(mismatch, 'failed_total', 1)
  t.true(mismatch.logs.some((line) => /hooks\.internal|altnames|Hostname/i.test(String(line.error))))

  const sni = await connackTo(t, receiver, [ca, 'web.hook.ssl.server_name_indication=hooks.internal'])
  await counterReaches(sni, 'sent_total', 1)
  t.true(receiver.requests.some((request) => (request.socket as TLSSocket).servername === 'hooks.internal'))

  const disabled = await connackTo(t, receiver, [ca, 'web.hook.ssl.server_name_indication=disable'])
  await counterReaches(disabled, 'sent_total', 1)
  t.is(counters(disabled).failed_total, 0)
})
