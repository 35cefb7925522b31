// auth.http.ssl.*: an https:// auth server verified against a CA file, with a client
// certificate; an unverifiable server is an error (on_error), unless verify = false.
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import test from 'ava'
import { brokerWith, connackCode, counters, makeCerts, tmpDir } from './helpers.ts'

interface Seen { readonly clientCn?: string, readonly body: string }

async function httpsServer (t: Parameters<typeof tmpDir>[0], certs: { serverKey: string, serverCert: string, ca: string }) {
  const seen: Seen[] = []
  const server: Server = createServer({
    key: await readFile(certs.serverKey),
    cert: await readFile(certs.serverCert),
    ca: await readFile(certs.ca),
    requestCert: true,
    rejectUnauthorized: false
  }, (req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      const socket = req.socket as TLSSocket
      const peer = socket.authorized ? socket.getPeerCertificate() : undefined
      seen.push({ clientCn: peer?.subject?.CN as string | undefined, body })
      res.writeHead(200).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { seen, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/mqtt/auth` }
}

test('https auth server: verified with ssl.cacertfile, client certificate from ssl.certfile/keyfile', async (t) => {
  const dir = await tmpDir(t)
  const certs = await makeCerts(dir, { commonName: 'tapmq-broker', organization: 'Acme' })
  const server = await httpsServer(t, certs)
  const clientCert = join(dir, 'client.pem')
  const clientKey = join(dir, 'client-key.pem')
  await writeFile(clientCert, certs.clientCert)
  await writeFile(clientKey, certs.clientKey, { mode: 0o600 })

  const broker = await brokerWith(t, {
    authReq: { url: server.url, params: 'username=%u' },
    ssl: { cacertfile: certs.ca, certfile: clientCert, keyfile: clientKey }
  })
  t.is(await connackCode(t, broker.url, { username: 'over-tls' }), 0)
  t.deepEqual(server.seen, [{ clientCn: 'tapmq-broker', body: 'username=over-tls' }])
})

test('https auth server that cannot be verified: on_error applies, unless ssl.verify = false', async (t) => {
  const dir = await tmpDir(t)
  const certs = await makeCerts(dir, { commonName: 'x', organization: 'y' })
  const server = await httpsServer(t, certs)
  // no CA: the server's certificate is not trusted
  const strict = await brokerWith(t, { authReq: { url: server.url, params: 'username=%u' } })
  t.is(await connackCode(t, strict.url, { username: 'u' }), 3)
  t.like(counters(strict), { errors_total: 1 })
  const lax = await brokerWith(t, { authReq: { url: server.url, params: 'username=%u' }, ssl: { verify: false } })
  t.is(await connackCode(t, lax.url, { username: 'u' }), 0)
  t.is(server.seen.length, 1)
})
