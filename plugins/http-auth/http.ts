// The HTTP side: building one auth request (method, URL, headers, body), sending it
// through a keep-alive pool with bounded time and bounded body, and turning the response
// into a verdict with EMQX 4's status table and EMQX 5's JSON body.
import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { readFileSync } from 'node:fs'
import got, { type Got, type Response } from 'got'
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

/** A keep-alive pool towards the auth servers, with bounded time, concurrency and body size. */
export class HttpClient {
  readonly #got: Got
  /** one got instance per endpoint (its method and headers), so a request merges only its URL and body */
  readonly #perEndpoint = new WeakMap<object, Got>()
  readonly #agents: { http: HttpAgent, https: HttpsAgent }
  readonly #maxBody: number
  readonly #maxOutstanding: number
  #outstanding = 0
  #closed = false
  #idle?: () => void

  constructor (options: Options) {
    const agent = { keepAlive: true, maxSockets: options.poolSize, maxFreeSockets: options.poolSize, scheduling: 'lifo' as const }
    this.#agents = { http: new HttpAgent(agent), https: new HttpsAgent(agent) }
    this.#maxBody = options.maxBodyBytes
    this.#maxOutstanding = options.poolSize + options.maxPending
    const { ssl } = options
    const timeout: Record<string, number> = {}
    // 0 means "no timeout" for that phase, as NanoMQ's docs promise (quirk Q25)
    if (options.connectTimeout > 0) Object.assign(timeout, { lookup: options.connectTimeout, connect: options.connectTimeout, secureConnect: options.connectTimeout })
    if (options.timeout > 0) Object.assign(timeout, { send: options.timeout, response: options.timeout })
    if (options.timeout > 0 && options.connectTimeout > 0) timeout.request = options.timeout + options.connectTimeout
    this.#got = got.extend({
      agent: this.#agents,
      https: {
        certificateAuthority: ssl.cacertfile ? readFileSync(ssl.cacertfile) : undefined,
        certificate: ssl.certfile ? readFileSync(ssl.certfile) : undefined,
        key: ssl.keyfile ? readFileSync(ssl.keyfile) : undefined,
        rejectUnauthorized: ssl.verify,
        serverName: ssl.serverName
      },
      timeout,
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      decompress: false,
      http2: false
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
    try {
      let instance = this.#perEndpoint.get(request.headers)
      if (!instance) {
        instance = this.#got.extend({ method: request.method, headers: { ...request.headers } })
        this.#perEndpoint.set(request.headers, instance)
      }
      const pending = instance(request.url, { body: request.body, responseType: 'buffer' })
      let tooLarge = false
      pending.on('downloadProgress', (progress) => {
        if (progress.transferred > this.#maxBody || (progress.total ?? 0) > this.#maxBody) {
          tooLarge = true
          pending.cancel()
        }
      })
      let response: Response<Buffer>
      try {
        response = await pending
      } catch (err) {
        if (tooLarge) throw new CheckFailure(`response body larger than ${this.#maxBody} bytes`)
        throw failureOf(err as Error & { code?: string, event?: string }, request.secret)
      }
      return {
        status: response.statusCode,
        contentType: String(response.headers['content-type'] ?? ''),
        cacheControl: String(response.headers['cache-control'] ?? ''),
        body: response.body
      }
    } finally {
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
    this.#agents.http.destroy()
    this.#agents.https.destroy()
  }
}

/** A short message from a got error, without the URL (a GET carries the password in it). */
function failureOf (err: Error & { code?: string, event?: string }, secret: string | undefined): CheckFailure {
  if (err.name === 'TimeoutError') return new CheckFailure(`timeout (${err.event ?? 'request'})`, true)
  let message = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message
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
