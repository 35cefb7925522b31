// NanoMQ's HTTP authentication (auth_http.conf), done as EMQX 4 does it and asynchronously:
// `auth` asks auth_req (then super_req), `authorize.publish` / `authorize.subscribe` ask
// acl_req. A slow auth server delays only the client it is asked about.
import {
  type AuthDecision, type AuthorizeDecision, type AuthorizeRequest, type AuthRequest, definePlugin, isThenable, type MaybePromise, type PluginHost, STAGE, tapDecision
} from '../../sdk/index.ts'
import { ConnectionAnswers, DecisionCache } from './cache.ts'
import { Options, parseConf } from './config.ts'
import { CheckFailure, classify, type Classified, Endpoint, HttpClient, type Prepared, type Verdict } from './http.ts'
import type { RenderInput } from './params.ts'

const PLUGIN_NAME = 'tapmq:http-auth'
/** on top of our own HTTP timeouts, so the host's tap timeout never pre-empts on_error */
const TAP_MARGIN_MS = 1000

// the answers that carry nothing per request are shared (and frozen): a cache hit allocates nothing
const ALLOW = Object.freeze({ result: 'allow' } as const)
const IGNORE = Object.freeze({ result: 'ignore' } as const)
const ALLOW_USER = Object.freeze({ result: 'allow', superuser: false } as const)
const ALLOW_SUPERUSER = Object.freeze({ result: 'allow', superuser: true } as const)
const AUTH_UNAVAILABLE = Object.freeze({ result: 'deny', code: 3, reason: 'auth server unavailable' } as const)
const ACL_UNAVAILABLE = Object.freeze({ result: 'deny', reason: 'acl server unavailable' } as const)

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
      // tapDecision: a decision from the cache is answered synchronously (no promise, no timer)
      tapDecision(host.hooks.auth, { name: PLUGIN_NAME, stage: STAGE.AUTH, timeout: tapTimeout(superEndpoint ? 2 : 1) },
        (request) => auth.authenticate(request))
    } else if (superEndpoint) {
      host.log.warn('auth.http.super_req is set but auth.http.auth_req.url is not; superusers are only known after an HTTP auth allow')
    }
    if (aclEndpoint) {
      const tap = { name: PLUGIN_NAME, stage: STAGE.AUTH, timeout: tapTimeout(1) }
      tapDecision(host.hooks.authorize.subscribe, tap, (request) => auth.authorize(request))
      tapDecision(host.hooks.authorize.publish, tap, (request) => auth.authorize(request))
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

const verdictOf = (classified: Classified): Verdict => classified.verdict

class HttpAuth {
  readonly authEndpoint?: Endpoint
  readonly superEndpoint?: Endpoint
  readonly aclEndpoint?: Endpoint
  readonly #client: HttpClient
  readonly #cache?: DecisionCache
  /** with the cache on: ACL answers already known per connection (the hot path) */
  readonly #known?: ConnectionAnswers
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
      if (options.aclReq) this.#known = new ConnectionAnswers(options.cache.maxEntries)
    }
  }

  /** auth_req, then super_req. Synchronous when the answers come from the cache. */
  authenticate (request: AuthRequest): MaybePromise<AuthDecision> {
    const input: RenderInput = { client: request, password: request.password }
    let answer: MaybePromise<Verdict>
    try {
      answer = this.#decide(this.authEndpoint!, input)
    } catch (err) {
      return this.#authFailed(request.clientId, err)
    }
    if (isThenable(answer)) {
      return answer.then((verdict) => this.#withSuperuser(verdict, input, request.clientId), (err) => this.#authFailed(request.clientId, err))
    }
    return this.#withSuperuser(answer, input, request.clientId)
  }

  #authFailed (clientId: string, err: unknown): AuthDecision {
    return this.#failed('auth', clientId, err) === 'deny' ? AUTH_UNAVAILABLE : IGNORE
  }

  /** After auth_req allowed: is the client a superuser? A failed super_req makes none; the ACL still applies. */
  #withSuperuser (verdict: Verdict, input: RenderInput, clientId: string): MaybePromise<AuthDecision> {
    if (verdict.result !== 'allow') return verdict
    if (verdict.superuser !== undefined || !this.superEndpoint) return verdict.superuser === true ? ALLOW_SUPERUSER : ALLOW_USER
    let answer: MaybePromise<Verdict>
    try {
      answer = this.#decide(this.superEndpoint, input)
    } catch (err) {
      return this.#superFailed(clientId, err)
    }
    if (isThenable(answer)) return answer.then((found) => (found.result === 'allow' ? ALLOW_SUPERUSER : ALLOW_USER), (err) => this.#superFailed(clientId, err))
    return answer.result === 'allow' ? ALLOW_SUPERUSER : ALLOW_USER
  }

  #superFailed (clientId: string, err: unknown): AuthDecision {
    this.#failed('super', clientId, err)
    return ALLOW_USER
  }

  /** acl_req for one PUBLISH or one topic filter. Synchronous when the answer comes from the cache. */
  authorize (request: AuthorizeRequest): MaybePromise<AuthorizeDecision> {
    if (request.superuser) return IGNORE
    // the hot path: this connection already asked this question
    const known = this.#known?.get(request.client, ConnectionAnswers.slot(request.access, request.qos), request.topic, Date.now())
    if (known !== undefined) {
      this.#metrics.cacheHits.inc()
      return this.#aclDecision(known, request)
    }
    let answer: MaybePromise<Verdict>
    try {
      answer = this.#decideAcl(request)
    } catch (err) {
      return this.#aclFailed(request, err)
    }
    if (isThenable(answer)) return answer.then((verdict) => this.#aclDecision(verdict, request), (err) => this.#aclFailed(request, err))
    return this.#aclDecision(answer, request)
  }

  #aclDecision (verdict: Verdict, request: AuthorizeRequest): AuthorizeDecision {
    if (verdict.result === 'ignore') return IGNORE
    // a cached publish answer may be remembered by the broker for as long as the cache keeps it
    const rememberMs = request.access === 'publish' && this.#known ? this.#known.expiresAt(request.client, ConnectionAnswers.slot('publish', request.qos), request.topic) - Date.now() : 0
    if (verdict.result === 'allow') return rememberMs > 0 ? { result: 'allow', rememberMs } : ALLOW
    const disconnect = request.access === 'publish' && this.options.aclDenyAction === 'disconnect'
    return rememberMs > 0 ? { result: 'deny', reason: verdict.reason, disconnect, rememberMs } : { result: 'deny', reason: verdict.reason, disconnect }
  }

  #aclFailed (request: AuthorizeRequest, err: unknown): AuthorizeDecision {
    return this.#failed('acl', request.client.clientId, err) === 'deny' ? ACL_UNAVAILABLE : IGNORE
  }

  /** One decision: from the cache (synchronously), shared with an identical request in flight, or asked. */
  #decide (endpoint: Endpoint, input: RenderInput): MaybePromise<Verdict> {
    const cache = this.#cache
    if (!cache) return this.#fetch(endpoint, endpoint.prepare(input)).then(verdictOf)
    // a cache hit renders the parameters and hashes them; it encodes no request
    const pairs = endpoint.render(input)
    return cache.lookup(cache.key(endpoint.kind, pairs), () => this.#fetch(endpoint, endpoint.build(pairs, input)))
  }

  /** An ACL decision. A cache hit builds no request: its key is made without rendering or encoding the parameters. */
  #decideAcl (request: AuthorizeRequest): MaybePromise<Verdict> {
    const endpoint = this.aclEndpoint!
    const cache = this.#cache
    if (!cache) return this.#fetchAcl(endpoint, request).then(verdictOf)
    const key = endpoint.aclKey(request)
    const cached = cache.get(key)
    if (cached !== undefined) return this.#remember(request, key, cached)
    return cache.fetch(key, () => this.#fetchAcl(endpoint, request)).then((verdict) => this.#remember(request, key, verdict))
  }

  /** Keeps an ACL answer with its connection for as long as the shared cache keeps it (not at all if it was not cached). */
  #remember (request: AuthorizeRequest, key: string, verdict: Verdict): Verdict {
    const expires = this.#cache!.expiresAt(key)
    if (expires > 0) this.#known?.set(request.client, ConnectionAnswers.slot(request.access, request.qos), request.topic, verdict, expires)
    return verdict
  }

  #fetchAcl (endpoint: Endpoint, request: AuthorizeRequest): Promise<Classified> {
    return this.#fetch(endpoint, endpoint.prepare({ client: request.client, access: request.access, topic: request.topic, qos: request.qos }))
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
    this.#known?.clear()
  }
}
