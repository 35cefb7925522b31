// Test certificates made at test time with selfsigned 5: a CA, a server certificate for
// 127.0.0.1/localhost signed by it, and a client certificate (CN + O) signed by it.
//
//   const certs = await writeTestCertificates(await tmpDir(t))
//   config: { 'tls.enable': 'true', 'tls.keyfile': certs.files.serverKey, ... }
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import selfsigned from 'selfsigned'

export interface KeyAndCert {
  readonly key: string
  readonly cert: string
}

export interface TestCertificates {
  readonly ca: KeyAndCert
  readonly server: KeyAndCert
  readonly client: KeyAndCert
  /** the client certificate's subject attributes */
  readonly clientSubject: { readonly commonName: string, readonly organization: string }
}

const EC = { keyType: 'ec', algorithm: 'sha256' } as const

/** `caName` is the CA's CN; give a second, untrusted CA another name. */
export async function makeTestCertificates (
  client = { commonName: 'device-1', organization: 'Acme' }, caName = 'tapmq test CA'
): Promise<TestCertificates> {
  const ca = await selfsigned.generate([{ name: 'commonName', value: caName }], {
    ...EC,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
    ]
  })
  const signer = { ca: { key: ca.private, cert: ca.cert } }
  // for `localhost` selfsigned adds the 127.0.0.1 IP SAN, so hostname checks pass
  const server = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { ...EC, ...signer })
  const clientPems = await selfsigned.generate([
    { name: 'commonName', value: client.commonName },
    { name: 'organizationName', value: client.organization }
  ], { ...EC, ...signer })
  return {
    ca: { key: ca.private, cert: ca.cert },
    server: { key: server.private, cert: server.cert },
    client: { key: clientPems.private, cert: clientPems.cert },
    clientSubject: client
  }
}

/** Writes the CA certificate and the server key pair as PEM files into `dir`. */
export async function writeTestCertificates (dir: string): Promise<TestCertificates & { files: { ca: string, serverKey: string, serverCert: string } }> {
  const certs = await makeTestCertificates()
  const files = { ca: join(dir, 'ca.pem'), serverKey: join(dir, 'server-key.pem'), serverCert: join(dir, 'server.pem') }
  await Promise.all([
    writeFile(files.ca, certs.ca.cert),
    writeFile(files.serverKey, certs.server.key, { mode: 0o600 }),
    writeFile(files.serverCert, certs.server.cert)
  ])
  return { ...certs, files }
}

/** The broker config keys of a TLS listener on 127.0.0.1:ephemeral using `files`. */
export function tlsConfig (files: { ca: string, serverKey: string, serverCert: string }, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'tls.enable': 'true',
    'tls.url': 'tls+nmq-tcp://127.0.0.1:0',
    'tls.keyfile': files.serverKey,
    'tls.certfile': files.serverCert,
    'tls.cacertfile': files.ca,
    ...extra
  }
}
