// The plugin's options (a TypeBox schema with every default) and the parser that turns a
// NanoMQ 0.8 / EMQX 4.3 web_hook.conf into them. Every bad value stops start-up with the
// file and line to edit.
import { type Conf, type ConfEntry, isValidTopicFilter, type Static, Type } from '../../sdk/index.ts'
import { ENCODINGS } from './encoding.mjs'
import { actionOf, EVENTS, type Rule, TOPIC_EVENTS, type WebhookEvent } from './rules.ts'

export const Options = Type.Object({
  /** web.hook.url (alias web.hook.api.url): http:// or https://; the path is the request path */
  url: Type.String({ pattern: '^https?://' }),
  /** web.hook.headers.<name>, in file order, names as written */
  headers: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), value: Type.String() }), { default: [] }),
  /** web.hook.body.encoding_of_payload_field (alias web.hook.encode_payload) */
  encoding: Type.Union(ENCODINGS.map((name) => Type.Literal(name)), { default: 'plain' }),
  /** web.hook.pool_size: concurrent requests and keep-alive connections (NanoMQ ships 32) */
  poolSize: Type.Integer({ minimum: 1, maximum: 1024, default: 32 }),
  /** web.hook.enable_pipelining (EMQX 4.3): requests in flight per connection; 1 = no pipelining */
  pipelining: Type.Integer({ minimum: 1, maximum: 100, default: 1 }),
  /** web.hook.rule.<event>.<n> */
  rules: Type.Array(Type.Object({
    event: Type.Union(EVENTS.map((name) => Type.Literal(name))),
    topic: Type.Optional(Type.String({ minLength: 1 }))
  }), { default: [] }),
  /** web.hook.ssl.*: TLS to an https:// receiver */
  ssl: Type.Object({
    cacertfile: Type.Optional(Type.String()),
    certfile: Type.Optional(Type.String()),
    keyfile: Type.Optional(Type.String()),
    /** verify the receiver's certificate chain (EMQX 4 defaults to false; tapmq to true) */
    verify: Type.Boolean({ default: true }),
    /** a host name to send and verify instead of the URL's, or `disable`: no SNI, no name check */
    serverNameIndication: Type.Optional(Type.String({ minLength: 1 }))
  }, { default: {} }),
  /** web.hook.connect_timeout */
  connectTimeoutMs: Type.Integer({ minimum: 1, default: 5000 }),
  /** web.hook.request_timeout: how long an attempt waits for the answer's headers, and for each part of its body */
  requestTimeoutMs: Type.Integer({ minimum: 1, default: 5000 }),
  retry: Type.Object({
    /** web.hook.retry.max_retries: attempts after the first; 0 = never retry */
    maxRetries: Type.Integer({ minimum: 0, default: 5 }),
    /** web.hook.retry.initial_backoff */
    initialBackoffMs: Type.Integer({ minimum: 1, default: 500 }),
    /** web.hook.retry.max_backoff: also the most a Retry-After header can ask for */
    maxBackoffMs: Type.Integer({ minimum: 1, default: 30_000 })
  }, { default: {} }),
  queue: Type.Object({
    /** web.hook.queue.max_events */
    maxEvents: Type.Integer({ minimum: 1, default: 10_000 }),
    /** web.hook.queue.max_bytes: JSON text of the queued bodies */
    maxBytes: Type.Integer({ minimum: 1024, default: 64 * 1024 * 1024 })
  }, { default: {} }),
  batch: Type.Object({
    /** web.hook.batch.max_events: 1 = one event per request, no array */
    maxEvents: Type.Integer({ minimum: 1, maximum: 10_000, default: 1 }),
    /** web.hook.batch.max_delay: how long a partial batch waits for more events */
    maxDelayMs: Type.Integer({ minimum: 0, default: 100 }),
    /** web.hook.batch.max_bytes */
    maxBytes: Type.Integer({ minimum: 1024, default: 1024 * 1024 })
  }, { default: {} }),
  /** web.hook.signing.secrets: Standard Webhooks `whsec_<base64>` secrets; empty = unsigned */
  signingSecrets: Type.Array(Type.String({ pattern: '^whsec_' }), { default: [] }),
  /**
   * web.hook.worker_nice: scheduling priority of the delivery thread (Linux nice, 0 to 19).
   * Above 0, MQTT traffic wins the CPU when both want it; webhooks then fall behind and the
   * queue's bounds apply.
   */
  workerNice: Type.Integer({ minimum: 0, maximum: 19, default: 5 }),
  /** web.hook.drain_timeout: at shutdown or reload, how long queued events may take to go out */
  drainTimeoutMs: Type.Integer({ minimum: 0, default: 5000 }),
  /** findings of the parser to log at start-up (rule actions that disagree with their key) */
  warnings: Type.Array(Type.String(), { default: [] })
})
export type Options = Static<typeof Options>

const PREFIX = 'web.hook.'
/** RFC 9110 token */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** visible ASCII and Latin-1, spaces and tabs; no CR, LF or other controls */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const SIZE = /^(\d+)\s*(b|kb|mb|gb)?$/i
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/** Parses web_hook.conf (and plugins.conf inline keys) into options. Throws with file:line. */
export function parse (conf: Conf): Options {
  const warnings: string[] = []
  const at = (key: string) => {
    const location = conf.entry(key)?.location
    return location ? `${location.file}:${location.line}` : key
  }

  // pre-4.3 EMQX aliases: web.hook.api.url, web.hook.encode_payload
  const urlKey = pick(conf, 'web.hook.url', 'web.hook.api.url', warnings)
  if (!conf.has(urlKey)) conf.required('web.hook.url')
  const url = conf.url(urlKey, ['http', 'https'])!
  if (url.username || url.password) conf.invalid(urlKey, 'a URL without user:password@ (use web.hook.headers.authorization)')
  if (url.hash) conf.invalid(urlKey, 'a URL without a #fragment')
  const encodingKey = pick(conf, 'web.hook.body.encoding_of_payload_field', 'web.hook.encode_payload', warnings)

  const tlsKeys = ['cacertfile', 'certfile', 'keyfile'] as const
  const ssl: Options['ssl'] = { verify: conf.bool('web.hook.ssl.verify', true) }
  for (const name of tlsKeys) {
    const path = conf.readableFile(`web.hook.ssl.${name}`)
    if (path !== undefined) ssl[name] = path
  }
  if ((ssl.certfile === undefined) !== (ssl.keyfile === undefined)) {
    conf.invalid(ssl.certfile ? 'web.hook.ssl.certfile' : 'web.hook.ssl.keyfile', 'web.hook.ssl.certfile and web.hook.ssl.keyfile together')
  }
  const sni = conf.string('web.hook.ssl.server_name_indication')
  if (sni !== undefined && sni !== '') {
    if (!/^[A-Za-z0-9.-]+$/.test(sni)) conf.invalid('web.hook.ssl.server_name_indication', 'a host name, or disable')
    ssl.serverNameIndication = sni.toLowerCase() === 'disable' ? 'disable' : sni
  }

  const options: Options = {
    url: url.href,
    headers: parseHeaders(conf),
    encoding: conf.oneOf(encodingKey, ENCODINGS, 'plain'),
    poolSize: conf.int('web.hook.pool_size', 32, { min: 1, max: 1024 }),
    pipelining: parsePipelining(conf),
    rules: parseRules(conf, warnings),
    ssl,
    connectTimeoutMs: positive(conf, 'web.hook.connect_timeout', 5000),
    requestTimeoutMs: positive(conf, 'web.hook.request_timeout', 5000),
    retry: {
      maxRetries: conf.int('web.hook.retry.max_retries', 5, { min: 0, max: 1000 }),
      initialBackoffMs: positive(conf, 'web.hook.retry.initial_backoff', 500),
      maxBackoffMs: positive(conf, 'web.hook.retry.max_backoff', 30_000)
    },
    queue: {
      maxEvents: conf.int('web.hook.queue.max_events', 10_000, { min: 1 }),
      maxBytes: size(conf, 'web.hook.queue.max_bytes', 64 * 1024 * 1024)
    },
    batch: {
      maxEvents: conf.int('web.hook.batch.max_events', 1, { min: 1, max: 10_000 }),
      maxDelayMs: conf.duration('web.hook.batch.max_delay', 100),
      maxBytes: size(conf, 'web.hook.batch.max_bytes', 1024 * 1024)
    },
    signingSecrets: parseSecrets(conf),
    workerNice: conf.int('web.hook.worker_nice', 5, { min: 0, max: 19 }),
    drainTimeoutMs: conf.duration('web.hook.drain_timeout', 5000),
    warnings
  }
  if (options.retry.initialBackoffMs > options.retry.maxBackoffMs) {
    conf.invalid('web.hook.retry.initial_backoff', `a duration no longer than web.hook.retry.max_backoff (${at('web.hook.retry.max_backoff')})`)
  }
  if (url.protocol === 'http:' && Object.keys(ssl).length > 1) {
    warnings.push(`web.hook.ssl.* is set but ${urlKey} (${at(urlKey)}) is http://; the TLS settings are unused`)
  }
  return options
}

/** The NanoMQ key, else its pre-4.3 alias; both set is allowed, the NanoMQ key wins. */
function pick (conf: Conf, key: string, alias: string, warnings: string[]): string {
  if (!conf.has(alias)) return key
  if (!conf.has(key)) return alias
  conf.entry(alias)
  warnings.push(`${alias} is ignored because ${key} is set`)
  return key
}

function parseHeaders (conf: Conf): Options['headers'] {
  const headers: Options['headers'] = []
  const seen = new Set<string>()
  for (const entry of conf.prefixed(`${PREFIX}headers.`)) {
    const key = `${PREFIX}headers.${entry.key}`
    // NanoMQ trims names and values at both ends and keeps the name's case
    const name = entry.key.trim()
    if (!HEADER_NAME.test(name)) conf.invalid(key, 'web.hook.headers.<name> with an HTTP header name (letters, digits, -)', name)
    if (!HEADER_VALUE.test(entry.value)) conf.invalid(key, 'a header value without control characters')
    const lower = name.toLowerCase()
    if (lower === 'content-length' || lower === 'host' || lower === 'transfer-encoding' || lower === 'connection') {
      conf.invalid(key, 'a header other than Host, Content-Length, Transfer-Encoding and Connection, which the sender sets')
    }
    if (seen.has(lower)) conf.invalid(key, `one line per header name (${name} is set twice with different case)`)
    seen.add(lower)
    headers.push({ name, value: entry.value })
  }
  return headers
}

function parseRules (conf: Conf, warnings: string[]): Rule[] {
  const rules: Rule[] = []
  const allowed = `web.hook.rule.<event>.<n> with <event> one of ${EVENTS.join(', ')} and <n> a number from 1 to 65535`
  for (const entry of sorted(conf.prefixed(`${PREFIX}rule.`))) {
    const key = `${PREFIX}rule.${entry.key}`
    const dot = entry.key.lastIndexOf('.')
    const name = entry.key.slice(0, dot).toLowerCase()
    const number = entry.key.slice(dot + 1)
    const event = EVENTS.find((candidate) => candidate === name)
    // NanoMQ ignores a non-numeric <n>; such a line is almost always a typo, so we stop
    if (dot < 0 || event === undefined || !/^\d{1,5}$/.test(number) || Number(number) < 1 || Number(number) > 65535) {
      conf.invalid(key, allowed, entry.key)
    }
    rules.push(parseRule(conf, key, entry.value, event, warnings))
  }
  return rules
}

function parseRule (conf: Conf, key: string, text: string, event: WebhookEvent, warnings: string[]): Rule {
  const shape = '{"action": "<action>", "topic": "<topic filter>"} ("topic" is optional)'
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    // NanoMQ 0.8 turns unparseable JSON into a catch-all rule (quirk Q19)
    return conf.invalid(key, `JSON: ${shape}`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return conf.invalid(key, `a JSON object: ${shape}`)
  const { action, topic, ...rest } = json as Record<string, unknown>
  const where = conf.entry(key)!.location
  const at = `${where.file}:${where.line}`
  if (action !== undefined && typeof action !== 'string') conf.invalid(key, `"action" as a string: ${shape}`)
  if (topic !== undefined && (typeof topic !== 'string' || !isValidTopicFilter(topic))) {
    conf.invalid(key, `"topic" as an MQTT topic filter (+ and # only as whole levels, # last): ${shape}`)
  }
  // NanoMQ dispatches on the key and ignores "action" (quirk Q18): so do we, but say so
  const expected = actionOf(event)
  if (action === undefined) warnings.push(`${at}: ${key} has no "action"; it fires on ${event} (expected "${expected}")`)
  else if (action !== expected) warnings.push(`${at}: ${key} has "action": "${action}", but the key decides: it fires on ${event} (expected "${expected}")`)
  if (topic !== undefined && !TOPIC_EVENTS.has(event)) warnings.push(`${at}: ${key} has a "topic", but ${event} has no topic; the rule matches every ${event}`)
  for (const field of Object.keys(rest)) warnings.push(`${at}: ${key}: unknown field "${field}" ignored`)
  return topic === undefined || !TOPIC_EVENTS.has(event) ? { event } : { event, topic: topic as string }
}

function parsePipelining (conf: Conf): number {
  const key = 'web.hook.enable_pipelining'
  const value = conf.string(key)
  if (value === undefined) return 1
  const lower = value.toLowerCase()
  if (lower === 'false') return 1
  // EMQX 4.3 has a boolean here; a number is the depth
  if (lower === 'true') return 10
  return conf.int(key, 1, { min: 1, max: 100 })
}

function parseSecrets (conf: Conf): string[] {
  const key = 'web.hook.signing.secrets'
  const value = conf.string(key)
  if (value === undefined || value.trim() === '') return []
  return value.split(',').map((secret) => secret.trim()).filter((secret) => secret !== '').map((secret) => {
    const body = secret.slice('whsec_'.length)
    if (!secret.startsWith('whsec_') || !BASE64.test(body) || Buffer.from(body, 'base64').length < 16) {
      return conf.invalid(key, 'comma-separated Standard Webhooks secrets: whsec_ followed by the base64 of at least 16 random bytes', secret.slice(0, 10) + '…')
    }
    return secret
  })
}

function positive (conf: Conf, key: string, fallbackMs: number): number {
  const ms = conf.duration(key, fallbackMs)
  return ms > 0 ? ms : conf.invalid(key, 'a duration above zero, such as 5s or 500ms')
}

function size (conf: Conf, key: string, fallback: number): number {
  const value = conf.string(key)
  if (value === undefined) return fallback
  const match = SIZE.exec(value)
  const bytes = match ? Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]! : NaN
  return Number.isSafeInteger(bytes) && bytes >= 1024 ? bytes : conf.invalid(key, 'a size of at least 1KB: a number of bytes, or with KB, MB or GB')
}

/** Conf entries in file order, so rules and warnings come out as the user wrote them. */
function sorted (entries: ConfEntry[]): ConfEntry[] {
  return entries.sort((a, b) => a.location.file.localeCompare(b.location.file) || a.location.line - b.location.line)
}
