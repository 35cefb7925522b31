// NanoMQ's HTTP authentication (auth_http.conf), done as EMQX 4 does it and asynchronously:
// `auth` asks auth_req (then super_req), `authorize.publish` / `authorize.subscribe` ask
// acl_req. A slow auth server delays only the client it is asked about.
import { type AuthDecision, type AuthorizeDecision, type AuthorizeRequest, type AuthRequest, definePlugin, type PluginHost, STAGE } from '../../sdk/index.ts'
import { DecisionCache } from './cache.ts'
import { Options, parseConf } from './config.ts'
import { CheckFailure, classify, type Classified, Endpoint, HttpClient, type Prepared, type Verdict } from './http.ts'
import type { RenderInput } from './params.ts'

const PLUGIN_NAME = 'tapmq:http-auth'
/** on top of our own HTTP timeouts, so the host's tap timeout never pre-empts on_error */
const TAP_MARGIN_MS = 1000

export default definePlugin({
  name: PLUGIN_NAME,
  version: '1.0.0',
  description: 'Authenticates CONNECTs and authorizes PUBLISH/SUBSCRIBE by asking an HTTP server (NanoMQ auth_http.conf, EMQX 4 auth_http)',
  tapmq: '>=0.1.0',
  options: Options,
  conf: { file: 'auth_http.conf', aliases: ['nanomq_auth_http.conf'], enableKey: 'auth.http.enable', parse: parseConf },

  setup (host, options: Options) {
    const auth = new HttpAuth(host, options)
    const { authEndpoint, superEndpoint, aclEndpoint } = auth

    // one HTTP round trip (two with super_req) must fit in the tap's timeout
    const oneRequest = options.timeout > 0 && options.connectTimeout > 0 ? options.timeout + options.connectTimeout : 0
    const tapTimeout = (requests: number) => (oneRequest === 0 ? 0 : oneRequest * requests + TAP_MARGIN_MS)

    if (authEndpoint) {
      host.hooks.auth.tapPromise({ name: PLUGIN_NAME, stage: STAGE.AUTH, timeout: tapTimeout(superEndpoint ? 2 : 1) },
        (request) => auth.authenticate(request))
    } else if (superEndpoint) {
      host.log.warn('auth.http.super_req is set but auth.http.auth_req.url is not; superusers are only known after an HTTP auth allow')
    }
    if (aclEndpoint) {
      const tap = { name: PLUGIN_NAME, stage: STAGE.AUTH, timeout: tapTimeout(1) }
      host.hooks.authorize.subscribe.tapPromise(tap, (request) => auth.authorize(request))
      host.hooks.authorize.publish.tapPromise(tap, (request) => auth.authorize(request))
    }
    if (!authEndpoint && !aclEndpoint) host.log.warn('http-auth is enabled but neither auth.http.auth_req.url nor auth.http.acl_req.url is set; it does nothing')
    if (options.timeout === 0 || options.connectTimeout === 0) {
      host.log.warn({ timeout: options.timeout, connectTimeout: options.connectTimeout }, 'an auth.http timeout of 0 means no timeout: a hung auth server holds its clients forever')
    }
    for (const endpoint of [authEndpoint, superEndpoint, aclEndpoint]) {
      if (endpoint?.jsonWithGet) host.log.warn({ request: `${endpoint.kind}_req` }, 'content-type application/json with method GET: parameters go in the query string (a GET has no body)')
    }
    host.log.info({
      auth: authEndpoint?.logUrl, super: superEndpoint?.logUrl, acl: aclEndpoint?.logUrl, onError: options.onError, cache: options.cache.enable
    }, 'http-auth ready')

    return {
      health: () => auth.health(),
      close: () => auth.close()
    }
  }
})

class HttpAuth {
  readonly authEndpoint?: Endpoint
  readonly superEndpoint?: Endpoint
  readonly aclEndpoint?: Endpoint
  readonly #client: HttpClient
  readonly #cache?: DecisionCache
  readonly #metrics
  #failuresInARow = 0
  #lastFailure = ''
  #failuresLogged = 0

  constructor (private readonly host: PluginHost, private readonly options: Options) {
    if (options.authReq) this.authEndpoint = new Endpoint('auth', options.authReq)
    if (options.superReq) this.superEndpoint = new Endpoint('super', options.superReq)
    if (options.aclReq) this.aclEndpoint = new Endpoint('acl', options.aclReq)
    this.#client = new HttpClient(options)
    const m = host.metrics
    const metrics = this.#metrics = {
      requests: m.counter('requests_total', 'HTTP requests sent to the auth servers'),
      allow: m.counter('allow_total', 'Answers that allowed (auth, superuser or ACL)'),
      deny: m.counter('deny_total', 'Answers that denied'),
      ignore: m.counter('ignore_total', 'Answers that passed the decision on (body "ignore" or result=ignore)'),
      errors: m.counter('errors_total', 'Requests without a usable answer: network errors, timeouts, 5xx, unreadable bodies'),
      timeouts: m.counter('timeouts_total', 'Requests that timed out (also counted in errors_total)'),
      cacheHits: m.counter('cache_hits_total', 'Decisions answered from the decision cache'),
      coalesced: m.counter('coalesced_total', 'Decisions that shared an identical request already in flight'),
      latency: m.histogram('request_duration_seconds', 'Auth server response time', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
      pending: m.gauge('pending_requests', 'Requests in flight or waiting for a pooled connection'),
      cacheEntries: m.gauge('cache_entries', 'Decisions in the cache')
    }
    metrics.pending.set(0)
    metrics.cacheEntries.set(0)
    if (options.cache.enable) {
      this.#cache = new DecisionCache(options.cache, {
        hit: () => metrics.cacheHits.inc(),
        shared: () => metrics.coalesced.inc(),
        stored: (size) => metrics.cacheEntries.set(size)
      })
    }
  }

  async authenticate (request: AuthRequest): Promise<AuthDecision> {
    const input: RenderInput = { client: request, password: request.password }
    let verdict: Verdict
    try {
      verdict = await this.#ask(this.authEndpoint!, input)
    } catch (err) {
      return this.#failed('auth', request.clientId, err) === 'deny'
        ? { result: 'deny', code: 3, reason: 'auth server unavailable' }
        : { result: 'ignore' }
    }
    if (verdict.result !== 'allow') return verdict
    let superuser = verdict.superuser
    if (superuser === undefined && this.superEndpoint) {
      try {
        superuser = (await this.#ask(this.superEndpoint, input)).result === 'allow'
      } catch (err) {
        // a superuser check that failed makes no superuser; the ACL still applies
        this.#failed('super', request.clientId, err)
        superuser = false
      }
    }
    return { result: 'allow', superuser: superuser === true }
  }

  async authorize (request: AuthorizeRequest): Promise<AuthorizeDecision> {
    if (request.superuser) return { result: 'ignore' }
    const input: RenderInput = { client: request.client, access: request.access, topic: request.topic, qos: request.qos }
    let verdict: Verdict
    try {
      verdict = await this.#ask(this.aclEndpoint!, input)
    } catch (err) {
      return this.#failed('acl', request.client.clientId, err) === 'deny'
        ? { result: 'deny', reason: 'acl server unavailable' }
        : { result: 'ignore' }
    }
    if (verdict.result === 'deny') {
      return { result: 'deny', reason: verdict.reason, disconnect: request.access === 'publish' && this.options.aclDenyAction === 'disconnect' }
    }
    return verdict.result === 'allow' ? { result: 'allow' } : { result: 'ignore' }
  }

  /** One decision: from the cache, shared with an identical request in flight, or asked. */
  async #ask (endpoint: Endpoint, input: RenderInput): Promise<Verdict> {
    const prepared = endpoint.prepare(input)
    if (!this.#cache) return (await this.#fetch(endpoint, prepared)).verdict
    return this.#cache.lookup(this.#cache.key(endpoint.kind, prepared), () => this.#fetch(endpoint, prepared))
  }

  async #fetch (endpoint: Endpoint, prepared: Prepared): Promise<Classified> {
    const m = this.#metrics
    m.requests.inc()
    m.pending.set(this.#client.outstanding + 1)
    const started = performance.now()
    try {
      const classified = classify(endpoint.kind, await this.#client.send(prepared))
      const { result } = classified.verdict
      ;(result === 'allow' ? m.allow : result === 'deny' ? m.deny : m.ignore).inc()
      this.#failuresInARow = 0
      return classified
    } catch (err) {
      m.errors.inc()
      if ((err as CheckFailure).timeout) m.timeouts.inc()
      throw err
    } finally {
      m.latency.observe((performance.now() - started) / 1000)
      m.pending.set(this.#client.outstanding)
    }
  }

  /** Logs a request that got no answer (rate-limited) and returns the policy that applies. */
  #failed (kind: string, clientId: string, err: unknown): Options['onError'] {
    const message = err instanceof CheckFailure ? err.message : 'internal error'
    if (!(err instanceof CheckFailure)) this.host.log.error({ err }, 'http-auth check failed unexpectedly')
    this.#failuresInARow++
    this.#lastFailure = `${kind}_req: ${message}`
    this.#failuresLogged++
    if (this.#failuresLogged <= 10 || this.#failuresLogged % 1000 === 0) {
      this.host.log.warn({ request: `${kind}_req`, clientId, error: message, policy: this.options.onError, occurrences: this.#failuresLogged },
        'auth server gave no answer; applying auth.http.on_error')
    }
    return this.options.onError
  }

  health () {
    if (this.#failuresInARow === 0) return { status: 'ok' as const }
    return { status: 'degraded' as const, detail: `${this.#failuresInARow} failed requests in a row; last: ${this.#lastFailure}` }
  }

  async close (): Promise<void> {
    // a reload or shutdown lets the checks in flight answer their clients first (bounded)
    await this.#client.close(Math.min(2000, this.options.timeout + this.options.connectTimeout || 2000))
    this.#cache?.clear()
  }
}
