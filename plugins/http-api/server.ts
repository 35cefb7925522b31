// The HTTP server: fastify with a bounded body, basic auth before anything is parsed, and
// errors mapped to NanoMQ's result codes. Settings can change at reload; the listener is
// only replaced when its address or limits change.
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import type { PluginHealth, PluginHost } from '../../sdk/index.ts'
import { checkBasicAuth } from './auth.ts'
import { ApiError, CODE } from './codes.ts'
import type { ApiContext } from './context.ts'
import { nanomqMetrics, Peaks } from './metrics.ts'
import { isLoopback, type Options, resolveSettings, sameListener, type Settings } from './settings.ts'
import { V1_PATH, v1Handler } from './v1.ts'
import { registerV4 } from './v4.ts'
import { isDashboardRequest, registerDashboard } from './static.ts'
import { CpuSampler } from './views.ts'

/** slow or stalled clients are cut off after this long (headers plus body) */
const REQUEST_TIMEOUT_MS = 30_000

export class HttpApi {
  readonly #host: PluginHost
  readonly #ctx: ApiContext
  #settings: Settings
  #app?: FastifyInstance
  #url?: string
  #problem?: string
  /** a listener switch started by reload, which must not wait for the request that asked for it */
  #switching: Promise<void> = Promise.resolve()
  readonly #requests
  readonly #authFailures
  readonly #errors

  constructor (host: PluginHost, options: Options) {
    this.#host = host
    this.#settings = resolveSettings(options, host.config)
    const peaks = new Peaks()
    const cpu = new CpuSampler()
    const metrics = nanomqMetrics(host.broker, peaks, cpu)
    this.#ctx = { host, settings: () => this.#settings, peaks, cpu, nanomqMetrics: metrics }
    this.#requests = host.metrics.counter('requests_total', 'HTTP API requests answered')
    this.#authFailures = host.metrics.counter('auth_failures_total', 'HTTP API requests refused with 401')
    this.#errors = host.metrics.counter('errors_total', 'HTTP API requests that failed with a 5xx status')
  }

  /** `http://host:port` while listening */
  get url (): string | undefined {
    return this.#url
  }

  async start (): Promise<void> {
    const authType = this.#host.config.get('http_server.auth_type')
    if (authType !== undefined && authType.toLowerCase() !== 'basic') {
      this.#host.log.warn({ auth_type: authType }, 'http_server.auth_type: tapmq supports basic only; using basic auth')
    }
    if (!this.#settings.enable) {
      this.#host.log.info('HTTP API idle: http_server.enable is false')
      return
    }
    this.#app = await this.#listen(this.#settings)
  }

  /** New options (plugins.conf) or a new main config (tapmq reload). */
  reconfigure (options: Options): void {
    const previous = this.#settings
    this.#settings = resolveSettings(options, this.#host.config)
    if (sameListener(previous, this.#settings)) return
    const old = this.#app
    this.#app = undefined
    this.#url = undefined
    this.#switching = this.#switching.then(async () => {
      await old?.close()
      if (this.#settings.enable) this.#app = await this.#listen(this.#settings)
      else this.#host.log.info('HTTP API idle: http_server.enable is false')
    }).catch((err: Error) => {
      this.#problem = err.message
      this.#host.log.error({ err: err.message }, 'HTTP API could not move to its new address')
    })
  }

  async close (): Promise<void> {
    await this.#switching
    const app = this.#app
    this.#app = undefined
    this.#url = undefined
    await app?.close()
  }

  health (): PluginHealth {
    if (this.#problem) return { status: 'down', detail: this.#problem }
    if (!this.#settings.enable) return { status: 'ok', detail: 'idle: http_server.enable is false' }
    return this.#url ? { status: 'ok', detail: `listening on ${this.#url}` } : { status: 'degraded', detail: 'starting' }
  }

  async #listen (settings: Settings): Promise<FastifyInstance> {
    const app = this.#build(settings)
    try {
      await app.listen({ host: settings.bind, port: settings.port })
    } catch (err) {
      await app.close()
      throw new Error(`HTTP API cannot listen on ${settings.bind}:${settings.port}: ${(err as Error).message}`)
    }
    const address = app.server.address()
    const port = typeof address === 'object' && address ? address.port : settings.port
    const host = settings.bind.includes(':') ? `[${settings.bind}]` : settings.bind
    this.#url = `http://${host}:${port}`
    this.#problem = undefined
    this.#host.log.info({ url: this.#url, address: settings.bind, port }, 'HTTP API listening')
    if (!isLoopback(settings.bind) && settings.username === 'admin' && settings.password === 'public') {
      this.#host.log.warn({ address: settings.bind }, 'HTTP API reachable from other hosts with the default credentials admin/public: set http_server.password')
    }
    return app
  }

  #build (settings: Settings): FastifyInstance {
    const app = Fastify({
      logger: false,
      bodyLimit: settings.bodyLimit,
      requestTimeout: REQUEST_TIMEOUT_MS,
      routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 4096 }
    })
    // bodies stay text until a handler parses them, after authentication; one parser for
    // every content type, because NanoMQ clients post JSON as form data (curl -d)
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))

    app.addHook('onRequest', async (request, reply) => {
      if (isDashboardRequest(request)) return
      const current = this.#settings
      const isV1 = request.routeOptions.url === V1_PATH
      if (isV1 && current.v1ParseBeforeAuth) return
      const code = checkBasicAuth(request.headers.authorization, current)
      if (code === CODE.SUCCESS) return
      return reply.code(401).header('www-authenticate', 'Basic realm="tapmq"').send(isV1 ? { code, seq: 0 } : { code })
    })
    app.addHook('onResponse', async (_request, reply) => {
      this.#requests.inc()
      if (reply.statusCode === 401) this.#authFailures.inc()
      if (reply.statusCode >= 500) this.#errors.inc()
    })

    app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
      if (error instanceof ApiError) {
        return reply.code(error.status).send(error.detail ? { code: error.code, message: error.detail } : { code: error.code })
      }
      const status = error.statusCode ?? 500
      if (status >= 500) {
        this.#host.log.error({ err: error, method: request.method, url: request.url }, 'HTTP API request failed')
        return reply.code(500).send({ code: CODE.UNKNOWN_ERROR, message: 'internal error; see the broker log' })
      }
      // fastify's own 4xx: body too large, bad content length, malformed URL, ...
      return reply.code(status).send({ code: CODE.PARAM_ERROR, message: error.message })
    })
    app.setNotFoundHandler((request, reply) =>
      reply.code(404).send({ code: CODE.PARAM_ERROR, message: `no endpoint ${request.method} ${request.url.split('?')[0]}` }))

    app.all(V1_PATH, v1Handler(this.#ctx))
    registerV4(app, this.#ctx)
    registerDashboard(app, this.#ctx)
    return app
  }
}
