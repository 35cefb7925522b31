import { readFileSync } from 'node:fs'
import { createServer, type TLSSocket } from 'node:tls'
import type { PeerCertificate } from '../../sdk/events.ts'
import { ERR_CONF_FILE } from '../../sdk/errors.ts'
import type { TlsConfig } from '../config/broker-config.ts'
import { acceptConnection, listen, type Listener, type ListenerContext } from './listener.ts'

function read (file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw ERR_CONF_FILE([file, (err as NodeJS.ErrnoException).code ?? String(err)], { cause: err })
  }
}

/** CN and the subject DN in RFC 4514-ish `CN=a,O=b` form, for `%C` and `%d`. */
export function certificateOf (socket: TLSSocket): PeerCertificate | undefined {
  // verify_peer without fail_if_no_peer_cert lets unverified certificates through: never report them
  if (!socket.authorized) return undefined
  const cert = socket.getPeerX509Certificate?.()
  if (!cert) return undefined
  const parts = cert.subject.split('\n').filter(Boolean)
  const commonName = parts.find((part) => part.startsWith('CN='))?.slice(3)
  return { commonName, subject: parts.join(',') }
}

export function listenTls (ctx: ListenerContext, config: TlsConfig): Promise<Listener> {
  let port = 0
  const server = createServer({
    key: read(config.keyFile),
    cert: read(config.certFile),
    ca: config.caCertFile ? read(config.caCertFile) : undefined,
    passphrase: config.keyPassword,
    requestCert: config.verifyPeer,
    rejectUnauthorized: config.verifyPeer && config.failIfNoPeerCert
  }, (socket) => {
    acceptConnection(ctx, socket, {
      address: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      listenerPort: port,
      transport: 'tls',
      certificate: certificateOf(socket)
    })
  })
  // a failed handshake concerns one client only
  server.on('tlsClientError', () => {})
  return listen(server, config.address).then((listener) => {
    port = listener.port
    return listener
  })
}
