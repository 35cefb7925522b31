// The web dashboard (dashboard/, built into dashboard/dist by `npm run build`), served at `/`
// by the API's own server, and the per-topic publish counter behind its message rates
// (GET /api/v4/topic-stats). The built files hold no data, so they are served without
// credentials; every /api path still needs them. See docs/dashboard.md.
import { stat } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import { STAGE } from '../../sdk/index.ts'
import { CODE } from './codes.ts'
import { type ApiContext, PLUGIN_NAME } from './context.ts'

/** where `npm run build` puts the dashboard */
export const DASHBOARD_ROOT = fileURLToPath(new URL('../../dashboard/dist/', import.meta.url))

/** most topics counted at once; the least recently published are forgotten first */
export const TOPIC_LIMIT = 1000

/** route config that marks the dashboard's routes */
const DASHBOARD_ROUTE = { dashboard: true }

/** Content-Security-Policy of the page: only its own bundled files (no CDN, no inline script). */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/** Cumulative messages per topic, published by clients, for the dashboard's rates. */
export class TopicCounter {
  readonly #counts = new LRUCache<string, { n: number }>({ max: TOPIC_LIMIT })

  count (topic: string): void {
    const entry = this.#counts.get(topic)
    if (entry) entry.n++
    else this.#counts.set(topic, { n: 1 })
  }

  snapshot (): Array<{ topic: string, messages: number }> {
    return [...this.#counts.entries()].map(([topic, { n }]) => ({ topic, messages: n }))
  }
}

const counters = new WeakMap<ApiContext, TopicCounter>()

/**
 * Starts counting messages per topic for this API instance. Call it from setup (the
 * server's constructor), so that the tap belongs to the plugin and stops when it is disabled.
 * A cheap tap: one cache lookup per message, at most TOPIC_LIMIT entries.
 */
export function trackTopics (ctx: ApiContext): TopicCounter {
  const existing = counters.get(ctx)
  if (existing) return existing
  const counter = new TopicCounter()
  counters.set(ctx, counter)
  // tapped when the API first listens, so an idle API costs the message path nothing
  ctx.host.hooks.message.publish.tap({ name: PLUGIN_NAME, stage: STAGE.OBSERVE }, (_message, control) => {
    if (ctx.settings().enable) counter.count(control.current.topic)
  })
  return counter
}

/** The path of a request URL with `//` collapsed and percent-escapes decoded; undefined when undecodable. */
function cleanPath (url: string): string | undefined {
  const raw = url.split('?')[0]!.replace(/\/{2,}/g, '/')
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}

function isApiPath (path: string | undefined): boolean {
  return path === undefined || /^\/api(\/|$)/i.test(path)
}

/**
 * True for a request the dashboard's routes answer without credentials: the page and its
 * files. Anything under /api (however spelled) is not, even when only the fallback route matched it.
 */
export function isDashboardRequest (request: FastifyRequest): boolean {
  const config = request.routeOptions.config as { dashboard?: boolean } | undefined
  return config?.dashboard === true && !isApiPath(cleanPath(request.url))
}

/** The dashboard's routes on `app`: `/topic-stats` (authenticated), and the page at `/` (public). */
export function registerDashboard (app: FastifyInstance, ctx: ApiContext): void {
  const counter = trackTopics(ctx)
  app.get('/api/v4/topic-stats', async () => ({ code: CODE.SUCCESS, data: { topics: counter.snapshot(), limit: TOPIC_LIMIT } }))

  // only the reply.sendFile decorator: the routes are ours, so they can be told apart
  app.register(fastifyStatic, { root: DASHBOARD_ROOT, serve: false })
  const serve = (request: FastifyRequest, reply: FastifyReply) => sendAsset(request, reply)
  app.get('/', { config: DASHBOARD_ROUTE }, serve)
  app.get('/*', { config: DASHBOARD_ROUTE }, serve)
}

async function isFile (path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile()
  } catch {
    return false
  }
}

async function sendAsset (request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const path = cleanPath(request.url)
  // an unknown API path: the API's own 404 (credentials were checked, since it is not public)
  if (isApiPath(path)) return reply.callNotFound()
  const relative = posix.normalize(path!).replace(/^\/+/, '')
  if (relative.split('/').includes('..') || relative.includes('\0')) return reply.callNotFound()
  reply.header('x-content-type-options', 'nosniff')

  if (relative !== '' && await isFile(join(DASHBOARD_ROOT, relative))) {
    // Vite puts a content hash in every name under assets/
    const hashed = relative.startsWith('assets/')
    return reply.sendFile(relative, { maxAge: hashed ? 365 * 24 * 3600 * 1000 : 3600 * 1000, immutable: hashed })
  }
  // a missing file with an extension is a 404; anything else is a page of the app
  if (posix.extname(relative) !== '') return reply.callNotFound()
  reply.header('cache-control', 'no-cache').header('content-security-policy', CSP).header('x-frame-options', 'DENY')
  if (await isFile(join(DASHBOARD_ROOT, 'index.html'))) return reply.sendFile('index.html', { cacheControl: false })
  return reply.code(503).type('text/html; charset=utf-8').send(NOT_BUILT)
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tapmq dashboard</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5">
<h1>The dashboard is not built</h1>
<p>Run <code>npm run build</code> (or <code>npm install</code>, which builds it) in the tapmq folder, then reload this page.
The HTTP API under <code>/api</code> works without it.</p>
</body></html>
`
