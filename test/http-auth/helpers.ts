// Helpers for the http-auth tests: a real HTTP auth server on 127.0.0.1 that records what
// it receives and answers as each test says, mqtt.js connects that report the CONNACK
// code, bounded waits, temp dirs and test certificates.
import { once as onceEvent } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import selfsigned from 'selfsigned'
import httpAuth from '../../plugins/http-auth/index.ts'
import type { Options } from '../../plugins/http-auth/config.ts'
import { Value } from '@sinclair/typebox/value'
import { startTestBroker, type TestBroker, type TestBrokerOptions } from '../../sdk/testing.ts'

export interface Teardown {
  teardown (fn: () => unknown): void
}

export { WAIT_MS, until } from '../helpers/mqtt.ts'
import { WAIT_MS, until } from '../helpers/mqtt.ts'

/** One request as the auth server saw it. */
export interface Seen {
  readonly method: string
  readonly path: string
  readonly query: Record<string, string>
  readonly headers: IncomingMessage['headers']
  readonly body: string
  /** the body decoded by its content type (form or JSON) */
  readonly fields: Record<string, string>
  /** Date.now() when the request had arrived */
  readonly at: number
}

export type Answer = (request: Seen, res: ServerResponse) => void | Promise<void>

/** A real node:http auth server. `answer` can be swapped at any time. */
export class AuthServer {
  readonly seen: Seen[] = []
  answer: Answer = (_req, res) => { res.writeHead(200).end() }
  readonly #server: Server
  readonly #waiters = new Set<() => void>()
  port = 0

  private constructor () {
    this.#server = createServer((req, res) => this.#handle(req, res))
    this.#server.keepAliveTimeout = 30_000
  }

  static async start (t: Teardown, answer?: Answer): Promise<AuthServer> {
    const server = new AuthServer()
    if (answer) server.answer = answer
    server.#server.listen(0, '127.0.0.1')
    await onceEvent(server.#server, 'listening')
    server.port = (server.#server.address() as AddressInfo).port
    t.teardown(() => server.close())
    return server
  }

  url (path = '/mqtt/auth'): string {
    return `http://127.0.0.1:${this.port}${path}`
  }

  #handle (req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const url = new URL(req.url ?? '/', 'http://x')
      const type = String(req.headers['content-type'] ?? '')
      let fields: Record<string, string> = {}
      if (req.method !== 'GET' && body !== '') {
        fields = type.includes('json') ? JSON.parse(body) : Object.fromEntries(new URLSearchParams(body))
      }
      const seen: Seen = { method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body, fields, at: Date.now() }
      this.seen.push(seen)
      for (const wake of this.#waiters) wake()
      Promise.resolve(this.answer(seen, res)).catch(() => res.destroy())
    })
  }

  /** Resolves once `count` requests arrived (bounded). */
  async waitFor (count: number, timeoutMs = WAIT_MS): Promise<void> {
    await until(() => this.seen.length >= count, `${count} auth requests (got ${this.seen.length})`, timeoutMs)
  }

  async close (): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/** A promise and the function that settles it: for holding auth answers until a test releases them. */
export function gate (): { readonly opened: Promise<void>, open (): void } {
  let open!: () => void
  const opened = new Promise<void>((resolve) => { open = resolve })
  return { opened, open }
}


export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Options with the schema defaults applied, as the plugin host would pass them. */
export function options (partial: Record<string, unknown>): Options {
  return Value.Default(httpAuth.options!, Value.Clone(partial)) as Options
}

/** A broker running http-auth with `partial` options (plus other plugins after it), closed at teardown. */
export async function brokerWith (t: Teardown, partial: Record<string, unknown>, extra: TestBrokerOptions = {}): Promise<TestBroker> {
  const broker = await startTestBroker({
    ...extra,
    plugins: [{ plugin: httpAuth, options: options(partial) }, ...(extra.plugins ?? [])]
  })
  t.teardown(() => broker.close())
  return broker
}

/** The plugin's counters by short name. */
export function counters (broker: TestBroker): Record<string, number> {
  return broker.tapmq.plugins.status('tapmq:http-auth').counters
}

/**
 * Connects with mqtt.js (no reconnects) and resolves with the CONNACK return code: 0 with
 * the open client, or the refusal code. The client is ended at teardown.
 */
export async function connack (t: Teardown, url: string, opts: IClientOptions = {}): Promise<{ code: number, client?: MqttClient }> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts })
  // a test that already failed ends its clients: that is no reason for another rejection
  let ended = false
  t.teardown(() => {
    ended = true
    return client.endAsync(true)
  })
  // errors after the CONNACK (a reset of a refused connection) must not crash the test process
  client.on('error', () => {})
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no CONNACK within ${2 * WAIT_MS} ms`)), 2 * WAIT_MS)
    client.once('connect', () => { clearTimeout(timer); resolve({ code: 0, client }) })
    client.once('error', (err: Error & { code?: number }) => {
      clearTimeout(timer)
      if (typeof err.code === 'number') resolve({ code: err.code })
      else reject(err)
    })
    client.once('close', () => {
      clearTimeout(timer)
      if (!ended) reject(new Error('connection closed without a CONNACK'))
    })
  })
}

/** The CONNACK code only. */
export async function connackCode (t: Teardown, url: string, opts: IClientOptions = {}): Promise<number> {
  return (await connack(t, url, opts)).code
}

export async function tmpDir (t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapmq-http-auth-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A port nothing listens on: bound, then released. */
export async function closedPort (): Promise<number> {
  const server = createNetServer()
  server.listen(0, '127.0.0.1')
  await onceEvent(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface TestCerts {
  readonly ca: string
  readonly serverKey: string
  readonly serverCert: string
  /** PEM of the client's key and certificate */
  readonly clientKey: string
  readonly clientCert: string
  readonly caPem: string
}

/** A CA, a server certificate for localhost/127.0.0.1 and a client certificate, all signed by the CA. */
export async function makeCerts (dir: string, client: { commonName: string, organization: string }): Promise<TestCerts> {
  const ec = { keyType: 'ec', algorithm: 'sha256' } as const
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'http-auth test CA' }], {
    ...ec,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
    ]
  })
  const signer = { ca: { key: ca.private, cert: ca.cert } }
  const server = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { ...ec, ...signer })
  const clientPems = await selfsigned.generate([
    { name: 'commonName', value: client.commonName },
    { name: 'organizationName', value: client.organization }
  ], { ...ec, ...signer })
  const files = { ca: join(dir, 'ca.pem'), serverKey: join(dir, 'server-key.pem'), serverCert: join(dir, 'server.pem') }
  await writeFile(files.ca, ca.cert)
  await writeFile(files.serverKey, server.private, { mode: 0o600 })
  await writeFile(files.serverCert, server.cert)
  return { ...files, clientKey: clientPems.private, clientCert: clientPems.cert, caPem: ca.cert }
}

/** Every log line the broker wrote, as one string, for "never logged" checks. */
export function logText (broker: TestBroker): string {
  return broker.logs.map((line) => JSON.stringify(line)).join('\n')
}

/**
 * SUBSCRIBE and the granted QoS per filter, 128 for a refusal. mqtt.js rejects a SUBACK
 * carrying 0x80 with the packet attached; that is an answer here, not an error.
 */
export async function subscribeGranted (client: MqttClient, topics: string | Record<string, { qos: 0 | 1 | 2 }>, qos: 0 | 1 | 2 = 0): Promise<number[]> {
  try {
    const granted = typeof topics === 'string' ? await client.subscribeAsync(topics, { qos }) : await client.subscribeAsync(topics)
    return granted.map((grant) => grant.qos)
  } catch (err) {
    const packet = (err as { packet?: { cmd?: string, granted?: number[] } }).packet
    if (packet?.cmd === 'suback' && packet.granted) return packet.granted
    throw err
  }
}

/** the suite's bounded wait for an event, under this file's historical name */
export { once as nextEvent } from '../helpers/mqtt.ts'
