// A broker with the HTTP API on an ephemeral port of 127.0.0.1, and a small fetch wrapper
// that authenticates (or not) and returns status, headers and the raw text.
import httpApi from '../../plugins/http-api/index.ts'
import type { TapmqPlugin } from '../../sdk/index.ts'
import type { TestBroker, TestBrokerOptions } from '../../sdk/testing.ts'
import { testBroker } from '../helpers/broker.ts'
import { type Teardown, until } from '../helpers/mqtt.ts'

export const ADMIN = { username: 'admin', password: 'public' }

export function basic (username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64')
}

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** the body parsed as JSON */
  readonly json: any
}

export interface Api {
  /** the test broker, when the API runs in one */
  readonly broker: TestBroker
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  request (method: string, path: string, options?: { body?: string, auth?: string | null, headers?: Record<string, string> }): Promise<Reply>
  get (path: string): Promise<Reply>
  post (path: string, body?: unknown): Promise<Reply>
}

/** The URL the plugin logged when it started listening. */
export async function apiUrl (broker: TestBroker): Promise<string> {
  const line = await until(() => broker.logs.find((entry) => entry.msg === 'HTTP API listening'), 'the HTTP API to listen')
  return line.url as string
}

export function client (url: string, broker?: TestBroker): Api {
  const request: Api['request'] = async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers }
    const auth = options.auth === undefined ? basic(ADMIN.username, ADMIN.password) : options.auth
    if (auth !== null) headers.authorization = auth
    const response = await fetch(url + path, { method, headers, body: options.body, signal: AbortSignal.timeout(5000) })
    const text = await response.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, json }
  }
  return {
    broker: broker!,
    url,
    request,
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, {
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' }
    })
  }
}

/** A test broker running the HTTP API (enabled, port 0) and `plugins`, closed at teardown. */
export async function startApi (t: Teardown, options: Record<string, unknown> = {}, extra: {
  plugins?: TapmqPlugin[]
  config?: TestBrokerOptions['config']
} = {}): Promise<Api> {
  const broker = await testBroker(t, {
    config: extra.config,
    plugins: [{ plugin: httpApi, options: { enable: true, port: 0, ...options } }, ...(extra.plugins ?? [])]
  })
  return client(await apiUrl(broker), broker)
}
