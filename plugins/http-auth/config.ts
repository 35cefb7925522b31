// Options of the http-auth plugin: the TypeBox schema (the single source of truth, with
// every default) and `parse`, which reads NanoMQ's auth_http.conf keys through the typed
// Conf getters so that every bad value stops start-up with file:line.
import { type Conf, type Static, Type } from '../../sdk/index.ts'
import { compileParams, ParamError, type RequestKind } from './params.ts'

const HttpRequest = Type.Object({
  /** http:// or https:// URL; its path (and query) is the request path */
  url: Type.String({ pattern: '^https?://' }),
  /** @default 'POST' — sent uppercase (NanoMQ sent the shipped `post` verbatim, quirk Q3) */
  method: Type.Union([Type.Literal('GET'), Type.Literal('POST'), Type.Literal('PUT')], { default: 'POST' }),
  /** header name → value, sent as given; `content-type` picks form or JSON bodies */
  headers: Type.Record(Type.String(), Type.String(), { default: {} }),
  /** `name=%X,name=${field},name=constant`, comma separated */
  params: Type.String({ default: '' })
})
export type HttpRequest = Static<typeof HttpRequest>

export const Options = Type.Object({
  /** authentication at CONNECT; without it the plugin does not answer `auth` */
  authReq: Type.Optional(HttpRequest),
  /** superuser check after an allowed CONNECT: 200 = superuser, which skips ACL checks */
  superReq: Type.Optional(HttpRequest),
  /** authorization of each PUBLISH and each SUBSCRIBE topic filter */
  aclReq: Type.Optional(HttpRequest),
  /** @default 5000 — ms for sending the request and reading the response; 0 = none */
  timeout: Type.Integer({ minimum: 0, default: 5000 }),
  /** @default 5000 — ms for the TCP (and TLS) connect; 0 = none */
  connectTimeout: Type.Integer({ minimum: 0, default: 5000 }),
  /** @default 32 — keep-alive connections per auth server, the bound on concurrent requests */
  poolSize: Type.Integer({ minimum: 1, maximum: 10_000, default: 32 }),
  /** @default 10000 — requests waiting for a free connection beyond this fail at once (on_error) */
  maxPending: Type.Integer({ minimum: 0, default: 10_000 }),
  /** TLS towards an https:// auth server */
  ssl: Type.Object({
    cacertfile: Type.Optional(Type.String()),
    certfile: Type.Optional(Type.String()),
    keyfile: Type.Optional(Type.String()),
    /** @default true — verify the server certificate (EMQX 4 defaults to false) */
    verify: Type.Boolean({ default: true }),
    /** SNI / expected server name; default: the URL's host */
    serverName: Type.Optional(Type.String())
  }, { default: {} }),
  /** @default 'deny' — what timeouts, 5xx, network errors and unreadable responses mean */
  onError: Type.Union([Type.Literal('deny'), Type.Literal('ignore')], { default: 'deny' }),
  /** @default 'ignore' — a denied PUBLISH is dropped (`ignore`) or closes the connection */
  aclDenyAction: Type.Union([Type.Literal('ignore'), Type.Literal('disconnect')], { default: 'ignore' }),
  cache: Type.Object({
    /** @default false */
    enable: Type.Boolean({ default: false }),
    /** @default 60000 — ms an allow (or ignore) answer is reused */
    allowTtl: Type.Integer({ minimum: 1, default: 60_000 }),
    /** @default 5000 — ms a deny answer is reused */
    denyTtl: Type.Integer({ minimum: 1, default: 5_000 }),
    /** @default 0.1 — each TTL is shortened by a random fraction up to this */
    jitter: Type.Number({ minimum: 0, maximum: 1, default: 0.1 }),
    /** @default 10000 — least recently used answers are evicted beyond this */
    maxEntries: Type.Integer({ minimum: 1, default: 10_000 })
  }, { default: {} }),
  /** @default 65536 — bytes of a response body read; a larger body is an error */
  maxBodyBytes: Type.Integer({ minimum: 1, default: 65_536 })
})
export type Options = Static<typeof Options>

/** `content_type` (NanoMQ 0.8 release notes) and `content-type` (shipped file) are the same header. */
export function headerName (name: string): string {
  return name.toLowerCase() === 'content_type' ? 'content-type' : name
}

function readRequest (conf: Conf, kind: RequestKind): HttpRequest | undefined {
  const base = `auth.http.${kind}_req`
  // EMQX 4 spells the URL key without `.url`
  const urlKey = conf.has(`${base}.url`) ? `${base}.url` : base
  const url = conf.url(urlKey, ['http', 'https'])
  const method = conf.oneOf(`${base}.method`, ['post', 'get', 'put'], 'post').toUpperCase() as HttpRequest['method']
  const headers: Record<string, string> = {}
  for (const entry of conf.prefixed(`${base}.headers.`)) {
    // one value per header name, whatever its case; the last line wins as in every .conf
    const name = headerName(entry.key)
    for (const existing of Object.keys(headers)) if (existing.toLowerCase() === name.toLowerCase()) delete headers[existing]
    headers[name] = entry.value
  }
  const params = conf.string(`${base}.params`, '')
  try {
    compileParams(params, kind)
  } catch (err) {
    if (!(err instanceof ParamError)) throw err
    conf.invalid(`${base}.params`, `${err.message}; use ${err.allowed}`)
  }
  if (!url) return undefined
  return { url: url.href, method, headers, params }
}

function percent (conf: Conf, key: string, fallback: number): number {
  const value = conf.string(key)
  if (value === undefined) return fallback
  const match = /^(\d{1,3})%$/.exec(value)
  if (!match || Number(match[1]) > 100) return conf.invalid(key, 'a percentage from 0% to 100%')
  return Number(match[1]) / 100
}

/** auth_http.conf (NanoMQ 0.8 / EMQX 4.3 keys plus tapmq's extensions) → Options. */
export function parseConf (conf: Conf): Options {
  conf.bool('auth.http.enable', false)
  // EMQX 4.3 key, accepted for compatibility: the keep-alive pool replaces pipelining
  conf.bool('auth.http.enable_pipelining', true)
  const sni = conf.string('auth.http.ssl.server_name_indication')
  return {
    authReq: readRequest(conf, 'auth'),
    superReq: readRequest(conf, 'super'),
    aclReq: readRequest(conf, 'acl'),
    timeout: conf.duration('auth.http.timeout', 5000),
    connectTimeout: conf.duration('auth.http.connect_timeout', 5000),
    poolSize: conf.int('auth.http.pool_size', 32, { min: 1, max: 10_000 }),
    maxPending: conf.int('auth.http.max_pending', 10_000, { min: 0 }),
    ssl: {
      cacertfile: conf.readableFile('auth.http.ssl.cacertfile'),
      certfile: conf.readableFile('auth.http.ssl.certfile'),
      keyfile: conf.readableFile('auth.http.ssl.keyfile'),
      verify: conf.bool('auth.http.ssl.verify', true),
      serverName: sni === undefined || sni === '' || sni.toLowerCase() === 'disable' ? undefined : sni
    },
    onError: conf.oneOf('auth.http.on_error', ['deny', 'ignore'], 'deny'),
    aclDenyAction: conf.oneOf('auth.http.acl_deny_action', ['ignore', 'disconnect'], 'ignore'),
    cache: {
      enable: conf.bool('auth.http.cache.enable', false),
      allowTtl: positiveDuration(conf, 'auth.http.cache.allow_ttl', 60_000),
      denyTtl: positiveDuration(conf, 'auth.http.cache.deny_ttl', 5_000),
      jitter: percent(conf, 'auth.http.cache.jitter', 0.1),
      maxEntries: conf.int('auth.http.cache.max_entries', 10_000, { min: 1 })
    },
    maxBodyBytes: conf.int('auth.http.max_body_size', 65_536, { min: 1 })
  }
}

function positiveDuration (conf: Conf, key: string, fallback: number): number {
  const ms = conf.duration(key, fallback)
  return ms > 0 ? ms : conf.invalid(key, 'a duration above zero, e.g. 30s')
}
