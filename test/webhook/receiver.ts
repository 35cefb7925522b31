// Test helpers of the webhook suite: a real HTTP receiver on 127.0.0.1, and options read
// from a real web_hook.conf through the plugin's own parser.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { writeFile } from 'node:fs/promises'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Conf } from '../../sdk/index.ts'
import { startTestBroker, type TestBroker } from '../../sdk/testing.ts'
import webhook, { type Options, parse } from '../../plugins/webhook/index.ts'
import { boot, type Booted, readConfigs } from '../../runtime/boot.ts'
import { createLogger } from '../../runtime/logger.ts'
import { freePort } from '../helpers/cli.ts'
import { type Teardown, tmpDir, until } from '../helpers/mqtt.ts'

/**
 * Waits for deliveries: longer than the suite's usual bound, because the first request waits
 * for the delivery worker to load, which takes seconds on a busy 2-core machine.
 */
export const DELIVERY_MS = 20_000

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  /** header names exactly as sent */
  readonly rawHeaders: readonly string[]
  /** the request body exactly as sent */
  readonly body: string
  readonly socket: Socket
}

/** What the receiver does with a request: answer it, or leave it hanging. */
export type Responder = (request: Received, response: ServerResponse) => void

export const answer = (status = 200, headers: Record<string, string> = {}): Responder =>
  (_request, response) => response.writeHead(status, headers).end()

export const hang: Responder = () => {}

export class Receiver {
  readonly requests: Received[] = []
  respond: Responder
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  #port: number | undefined

  private constructor (server: Server, respond: Responder, readonly protocol: 'http' | 'https') {
    this.#server = server
    this.respond = respond
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    server.on('secureConnection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    server.on('request', (req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const received: Received = {
          method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8'), socket: req.socket
        }
        this.requests.push(received)
        this.respond(received, res)
      })
    })
  }

  /** An HTTP (or, with `tls`, HTTPS) receiver on 127.0.0.1:ephemeral, closed at teardown. */
  static async start (t: Teardown, respond: Responder = answer(), tls?: { key: string, cert: string, ca?: string, requestCert?: boolean }, port = 0): Promise<Receiver> {
    const server = tls ? createHttpsServer({ key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: tls.requestCert ?? false }) : createServer()
    const receiver = new Receiver(server, respond, tls ? 'https' : 'http')
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', resolve)
    })
    void receiver.port
    t.teardown(() => receiver.close())
    return receiver
  }

  /** the port it listens on (kept after close, to start another receiver there) */
  get port (): number {
    this.#port ??= (this.#server.address() as AddressInfo).port
    return this.#port
  }

  /** `http://127.0.0.1:<port><path>` */
  url (path = ''): string {
    return `${this.protocol}://127.0.0.1:${this.port}${path}`
  }

  bodies (): string[] {
    return this.requests.map((request) => request.body)
  }

  /** Parsed bodies (batches flattened), in arrival order. */
  events (): Array<Record<string, unknown>> {
    return this.requests.flatMap((request) => {
      const parsed = JSON.parse(request.body) as Record<string, unknown> | Array<Record<string, unknown>>
      return Array.isArray(parsed) ? parsed : [parsed]
    })
  }

  /** Resolves with the requests once `count` arrived. */
  async count (count: number, timeoutMs = DELIVERY_MS): Promise<Received[]> {
    await until(() => this.requests.length >= count, `${count} webhook requests (have ${this.requests.length})`, timeoutMs)
    return this.requests
  }

  /** Resolves with the first event (batches flattened) that matches. */
  async find (match: (event: Record<string, unknown>) => boolean, what = 'a matching webhook event', timeoutMs = DELIVERY_MS): Promise<Record<string, unknown>> {
    return until(() => this.events().find(match), what, timeoutMs)
  }

  /** The raw body of the first request whose body contains `text`. */
  async body (text: string, timeoutMs = DELIVERY_MS): Promise<string> {
    const found = await until(() => this.requests.find((request) => request.body.includes(text)), `a webhook body containing ${text}`, timeoutMs)
    return found.body
  }

  /** Stops listening and cuts every connection, hanging ones included. */
  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/** Writes `text` as web_hook.conf in a temp dir; returns the file. */
export async function confFile (t: Teardown, text: string, name = 'web_hook.conf'): Promise<string> {
  const file = join(await tmpDir(t, 'tapmq-webhook-'), name)
  await writeFile(file, text)
  return file
}

/** Options as the loader would make them: a real file through the plugin's parse. */
export async function optionsFrom (t: Teardown, text: string): Promise<Options> {
  return parse(Conf.fromFile(await confFile(t, text)))
}

/** The lines every test conf starts with. */
export function baseConf (receiver: Receiver, path = ''): string {
  return [
    'web.hook.enable=true',
    `web.hook.url=${receiver.url(path)}`,
    'web.hook.retry.initial_backoff=20ms',
    'web.hook.retry.max_backoff=200ms'
  ].join('\n') + '\n'
}

/** A broker running the webhook plugin with the options of `conf`, closed at teardown. */
export async function brokerWith (t: Teardown, conf: string, config: Record<string, string> = {}): Promise<TestBroker> {
  const options = await optionsFrom(t, conf)
  const broker = await startTestBroker({ plugins: [{ plugin: webhook, options }], config })
  t.teardown(() => broker.close())
  return broker
}

/** The plugin's counters and gauges. */
export function counters (broker: TestBroker): Record<string, number> {
  return broker.tapmq.plugins.status('tapmq:webhook').counters
}

/** Waits until the counter `name` reached `value`. */
export function counterReaches (broker: TestBroker, name: string, value: number, timeoutMs = DELIVERY_MS): Promise<Record<string, number>> {
  return until(() => {
    const now = counters(broker)
    return (now[name] ?? 0) >= value ? now : undefined
  }, `${name} >= ${value} (is ${counters(broker)[name]})`, timeoutMs)
}

/** tapmq.conf + plugins.conf + web_hook.conf in a temp etc/, booted the way the CLI does. */
export async function bootFiles (t: Teardown, webhook: string, plugins = 'plugin.webhook = on\nplugin.webhook.conf = web_hook.conf\n'): Promise<{ dir: string, port: number, start: () => Promise<Booted>, reload: (booted: Booted) => Promise<void>, lines: string[] }> {
  const dir = await tmpDir(t)
  const port = await freePort()
  await writeFile(join(dir, 'tapmq.conf'), `url = nmq-tcp://127.0.0.1:${port}\nwebsocket.enable = false\ndata_dir = data\npid_file = data/tapmq.pid\nlog.level = info\nshutdown_timeout = 3s\n`)
  await writeFile(join(dir, 'plugins.conf'), plugins)
  await writeFile(join(dir, 'web_hook.conf'), webhook)
  const lines: string[] = []
  const sink = new Writable({
    write (chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(line)
      done()
    }
  })
  const log = createLogger({ level: 'info', format: 'json' }, sink)
  const files = { confFile: join(dir, 'tapmq.conf'), pluginsFile: join(dir, 'plugins.conf') }
  const start = () => boot({ ...files, log })
  // what SIGHUP does in the CLI
  const reload = (booted: Booted) => booted.tapmq.reload(() => readConfigs(files))
  return { dir, port, start, reload, lines }
}
