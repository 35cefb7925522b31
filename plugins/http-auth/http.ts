// The HTTP side: building one auth request (method, URL, headers, body), sending it
// through a keep-alive pool with bounded time and bounded body, and turning the response
// into a verdict with EMQX 4's status table and EMQX 5's JSON body.
import { readFileSync } from 'node:fs'
import { Agent } from 'undici'
import type { AuthorizeRequest, ClientInfo, ConnackRejectCode } from '../../sdk/index.ts'
import type { HttpRequest, Options } from './config.ts'
import { type CompiledParam, compileParams, formEncode, jsonEncode, type RenderInput, renderParams, type RequestKind } from './params.ts'

const USER_AGENT = 'tapmq-http-auth/1.0'

/** What the auth server said, once classified. */
export type Verdict =
  | { readonly result: 'allow', readonly superuser?: boolean }
  | { readonly result: 'deny', readonly code: ConnackRejectCode, readonly reason: string }
  | { readonly result: 'ignore' }

export interface Classified {
  readonly verdict: Verdict
  /** from `Cache-Control`: ms the answer may be reused (0 = not at all); undefined = the configured TTL */
  readonly maxAgeMs?: number
}

/** A request that got no usable answer: the fail policy (on_error) decides. */
export class CheckFailure extends Error {
  constructor (message: string, readonly timeout = false) {
    super(message)
    this.name = 'CheckFailure'
  }
}

/** One prepared request; `secret` is what must never appear in a log line. */
export interface Prepared {
  readonly method: 'GET' | 'POST' | 'PUT'
  readonly url: string
  /** the endpoint's headers: the same object for every request of one endpoint (and method) */
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string
  readonly secret?: string
}

/** One of auth_req, super_req, acl_req, compiled once. */
export class Endpoint {
  readonly url: URL
  readonly method: HttpRequest['method']
  readonly headers: Readonly<Record<string, string>>
  readonly params: readonly CompiledParam[]
  /** JSON body (content type application/json with POST or PUT) instead of a form */
  readonly json: boolean
  /** JSON was asked for with GET, which has no body: the query string is used (quirk Q28) */
  readonly jsonWithGet: boolean
  /** the URL without its query, for logs */
  readonly logUrl: string
  /** the client placeholders the parameters use, each once (for ACL cache keys) */
  readonly #clientFields: ReadonlyArray<(input: RenderInput) => string | undefined>
  /** per connection: the client's part of an ACL cache key, rendered once */
  readonly #clientKeys = new WeakMap<ClientInfo, string>()

  constructor (readonly kind: RequestKind, request: HttpRequest) {
    this.url = new URL(request.url)
    this.url.hash = ''
    this.method = request.method
    this.params = compileParams(request.params, kind)
    this.#clientFields = [...new Set(this.params.flatMap((param) => param.clientFields))]
    const headers: Record<string, string> = { 'user-agent': USER_AGENT }
    let contentType: string | undefined
    for (const [name, value] of Object.entries(request.headers)) {
      const lower = name.toLowerCase()
      if (lower === 'content-type' || lower === 'content_type') {
        contentType = value
        headers['content-type'] = value
      } else {
        if (lower === 'user-agent') delete headers['user-agent']
        headers[name] = value
      }
    }
    const isJson = contentType !== undefined && /^application\/([\w.+-]*\+)?json\b/i.test(contentType.trim())
    this.json = isJson && this.method !== 'GET'
    this.jsonWithGet = isJson && this.method === 'GET'
    if (contentType === undefined && this.method !== 'GET') headers['content-type'] = 'application/x-www-form-urlencoded'
    this.headers = headers
    this.logUrl = `${this.url.origin}${this.url.pathname}`
  }

  /**
   * The decision cache key of an ACL question, without building the request: the values of
   * the client placeholders the parameters use (rendered once per connection, each on its
   * own so that no two clients' values can run together), then access, QoS and topic. Two
   * questions with the same key make the same request. acl_req has no %P, so no password
   * is ever part of it.
   */
  aclKey (request: AuthorizeRequest): string {
    let client = this.#clientKeys.get(request.client)
    if (client === undefined) {
      if (this.kind !== 'acl') throw new Error(`aclKey on ${this.kind}_req`)
      const input: RenderInput = { client: request.client }
      client = JSON.stringify(this.#clientFields.map((field) => field(input) ?? null))
      this.#clientKeys.set(request.client, client)
    }
    return `${client}\0${request.access}\0${request.qos}\0${request.topic}`
  }

  prepare (input: RenderInput): Prepared {
    return this.build(this.render(input), input)
  }

  /** The parameters' values for this input, in config order (missing ones left out), not yet encoded. */
  render (input: RenderInput): Array<[string, string]> {
    return renderParams(this.params, input)
  }

  /** The request from rendered parameters. */
  build (pairs: ReadonlyArray<readonly [string, string]>, input: RenderInput): Prepared {
    const secret = input.password?.toString('utf8') || undefined
    if (this.method === 'GET') {
      const query = formEncode(pairs)
      const url = query === '' ? this.url.href : `${this.url.href}${this.url.search ? '&' : '?'}${query}`
      return { method: this.method, url, headers: this.headers, secret }
    }
    return { method: this.method, url: this.url.href, headers: this.headers, body: this.json ? jsonEncode(pairs) : formEncode(pairs), secret }
  }
}

export interface RawResponse {
  readonly status: number
  readonly contentType: string
  readonly cacheControl: string
  readonly body: Buffer
}

/**
 * A keep-alive pool towards the auth servers (undici: about a fifth of got's CPU per
 * request), with bounded time, concurrency and body size.
 */
export class HttpClient {
  readonly #agent: Agent
  readonly #maxBody: number
  readonly #maxOutstanding: number
  /** the whole exchange, waiting for a pooled connection and reading the body included; 0 = none */
  readonly #totalMs: number
  #outstanding = 0
  #closed = false
  #idle?: () => void

  constructor (options: Options) {
    this.#maxBody = options.maxBodyBytes
    this.#maxOutstanding = options.poolSize + options.maxPending
    this.#totalMs = options.timeout > 0 && options.connectTimeout > 0 ? options.timeout + options.connectTimeout : 0
    const { ssl } = options
    // 0 means "no timeout" for that phase, as NanoMQ's docs promise (quirk Q25); undici also reads 0 as none
    this.#agent = new Agent({
      connections: options.poolSize,
      pipelining: 1,
      headersTimeout: options.timeout,
      bodyTimeout: options.timeout,
      connect: {
        timeout: options.connectTimeout,
        ca: ssl.cacertfile ? readFileSync(ssl.cacertfile) : undefined,
        cert: ssl.certfile ? readFileSync(ssl.certfile) : undefined,
        key: ssl.keyfile ? readFileSync(ssl.keyfile) : undefined,
        rejectUnauthorized: ssl.verify,
        ...(ssl.serverName ? { servername: ssl.serverName } : {})
      }
    })
  }

  /** Requests in flight or waiting for a pooled connection. */
  get outstanding (): number {
    return this.#outstanding
  }

  async send (request: Prepared): Promise<RawResponse> {
    if (this.#closed) throw new CheckFailure('http-auth is shutting down')
    if (this.#outstanding >= this.#maxOutstanding) {
      throw new CheckFailure(`too many auth requests pending (${this.#outstanding})`)
    }
    this.#outstanding++
    const abort = new AbortController()
    let timedOut = false
    const timer = this.#totalMs > 0
      ? setTimeout(() => { timedOut = true; abort.abort() }, this.#totalMs).unref()
      : undefined
    try {
      const url = new URL(request.url)
      const response = await this.#agent.request({
        origin: url.origin, path: url.pathname + url.search, method: request.method, headers: request.headers, body: request.body, signal: abort.signal
      })
      const declared = Number(response.headers['content-length'] ?? 0)
      if (declared > this.#maxBody) {
        response.body.destroy()
        throw new CheckFailure(`response body larger than ${this.#maxBody} bytes`)
      }
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length
        if (size > this.#maxBody) {
          response.body.destroy()
          throw new CheckFailure(`response body larger than ${this.#maxBody} bytes`)
        }
        chunks.push(chunk)
      }
      return {
        status: response.statusCode,
        contentType: headerText(response.headers['content-type']),
        cacheControl: headerText(response.headers['cache-control']),
        body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      }
    } catch (err) {
      if (err instanceof CheckFailure) throw err
      if (timedOut) throw new CheckFailure('timeout (request)', true)
      throw failureOf(err as Error & { code?: string }, request.secret)
    } finally {
      clearTimeout(timer)
      this.#outstanding--
      if (this.#outstanding === 0) this.#idle?.()
    }
  }

  /** Lets requests in flight finish for up to `graceMs` (their clients are waiting), then closes the pool. */
  async close (graceMs: number): Promise<void> {
    this.#closed = true
    if (this.#outstanding > 0) {
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        this.#idle = resolve
        timer = setTimeout(resolve, graceMs)
      })
      clearTimeout(timer)
    }
    await this.#agent.destroy().catch(() => {})
  }
}

function headerText (value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(', ') : value ?? ''
}

/** undici's timeout errors, by code, and the phase each bounds */
const TIMEOUTS: Record<string, string> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect',
  UND_ERR_HEADERS_TIMEOUT: 'response',
  UND_ERR_BODY_TIMEOUT: 'body'
}

/** A short message from an undici error, without the URL (a GET carries the password in it). */
function failureOf (err: Error & { code?: string }, secret: string | undefined): CheckFailure {
  const phase = err.code ? TIMEOUTS[err.code] : undefined
  if (phase) return new CheckFailure(`timeout (${phase})`, true)
  let message = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message
  // a connection error is often an AggregateError (IPv4 and IPv6) with an empty message
  if (message === '' && err instanceof AggregateError) message = err.errors.map((inner: Error & { code?: string }) => inner.code ?? inner.message).join(', ')
  if (secret) message = message.split(secret).join('***')
  return new CheckFailure(message.split('?')[0]!.slice(0, 200))
}

/** EMQX 4's status → CONNACK table (nanomq-compat §2.4), for auth_req. */
function authStatus (status: number): Verdict {
  if (status === 400 || status === 401) return { result: 'deny', code: 4, reason: `auth server answered ${status}` }
  if (status === 403 || status === 429) return { result: 'deny', code: 5, reason: `auth server answered ${status}` }
  // 3xx, 404 and anything else unexpected: server_unavailable
  return { result: 'deny', code: 3, reason: `auth server answered ${status}` }
}

/**
 * The body of a 200/204: `ignore` passes (EMQX 4); JSON `{"result", "is_superuser"}` is
 * honoured (EMQX 5); anything else allows (EMQX 4). A JSON content type with a body that
 * is not JSON is a failure.
 */
function bodyVerdict (kind: RequestKind, response: RawResponse): Verdict {
  const text = response.body.toString('utf8').trim()
  if (text === 'ignore') return { result: 'ignore' }
  if (!/json/i.test(response.contentType) || text === '') return { result: 'allow' }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new CheckFailure('response is not valid JSON although its content type says so')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CheckFailure('JSON response is not an object')
  const { result, is_superuser: superuser } = parsed as { result?: unknown, is_superuser?: unknown }
  const flag = typeof superuser === 'boolean' ? superuser : undefined
  if (result === undefined || result === 'allow') return flag === undefined ? { result: 'allow' } : { result: 'allow', superuser: flag }
  if (result === 'ignore') return { result: 'ignore' }
  // EMQX 5: an authentication deny is not_authorized (5)
  if (result === 'deny') return { result: 'deny', code: 5, reason: `${kind} server answered result=deny` }
  throw new CheckFailure('JSON response has a "result" other than allow, deny or ignore')
}

/** ms from `Cache-Control`: `no-store`/`no-cache` → 0, `max-age=N` → N s. */
function maxAgeOf (cacheControl: string): number | undefined {
  if (cacheControl === '') return undefined
  const directives = cacheControl.toLowerCase().split(',').map((part) => part.trim())
  if (directives.includes('no-store') || directives.includes('no-cache')) return 0
  for (const directive of directives) {
    const match = /^max-age\s*=\s*"?(\d+)"?$/.exec(directive)
    if (match) return Math.min(Number(match[1]), 86_400) * 1000
  }
  return undefined
}

/** Turns a response into a verdict; 5xx throws (on_error decides). */
export function classify (kind: RequestKind, response: RawResponse): Classified {
  const { status } = response
  if (status >= 500) throw new CheckFailure(`auth server answered ${status}`)
  const maxAgeMs = maxAgeOf(response.cacheControl)
  if (status === 200 || status === 204) {
    const verdict = status === 204 ? { result: 'allow' as const } : bodyVerdict(kind, response)
    return { verdict, maxAgeMs }
  }
  if (kind === 'auth') return { verdict: authStatus(status), maxAgeMs }
  // super_req: not a superuser; acl_req: denied
  return { verdict: { result: 'deny', code: 5, reason: `${kind} server answered ${status}` }, maxAgeMs }
}
