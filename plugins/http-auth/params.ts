// Request parameters: `clientid=%c,username=%u,password=%P` (NanoMQ / EMQX 4) or
// `clientid=${clientid}` (EMQX 5), compiled once at start-up and rendered per request.
import type { AuthorizeRequest, ClientInfo } from '../../sdk/index.ts'

/** What a request is rendered from: the connecting client, plus the password or the ACL question. */
export interface RenderInput {
  readonly client: ClientInfo
  /** only on `auth_req` and `super_req` */
  readonly password?: Buffer
  /** only on `acl_req` */
  readonly access?: AuthorizeRequest['access']
  readonly topic?: string
  readonly qos?: number
}

export type RequestKind = 'auth' | 'super' | 'acl'

type Field = (input: RenderInput) => string | undefined

/** A placeholder: its value, where it may appear, and whether it depends on the ACL question (not only on the client). */
interface Placeholder { readonly field: Field, readonly kinds: readonly RequestKind[], readonly perRequest?: true }

/** `%X` placeholders of NanoMQ 0.8 / EMQX 4, by letter. */
const PERCENT: Record<string, Placeholder & { meaning: string }> = {
  u: { field: (i) => i.client.username, kinds: ['auth', 'super', 'acl'], meaning: 'username' },
  c: { field: (i) => i.client.clientId, kinds: ['auth', 'super', 'acl'], meaning: 'client id' },
  a: { field: (i) => i.client.peer.address, kinds: ['auth', 'super', 'acl'], meaning: 'client IP address' },
  r: { field: (i) => protocolOf(i.client), kinds: ['auth', 'super', 'acl'], meaning: 'protocol' },
  P: { field: (i) => i.password?.toString('utf8'), kinds: ['auth', 'super'], meaning: 'password' },
  p: { field: (i) => String(i.client.peer.listenerPort), kinds: ['auth', 'super', 'acl'], meaning: 'listener port' },
  C: { field: (i) => i.client.peer.certificate?.commonName, kinds: ['auth', 'super', 'acl'], meaning: 'TLS certificate common name' },
  d: { field: (i) => i.client.peer.certificate?.subject, kinds: ['auth', 'super', 'acl'], meaning: 'TLS certificate subject' },
  A: { field: (i) => (i.access === undefined ? undefined : i.access === 'subscribe' ? '1' : '2'), kinds: ['acl'], perRequest: true, meaning: 'access (1 subscribe, 2 publish)' },
  t: { field: (i) => i.topic, kinds: ['acl'], perRequest: true, meaning: 'topic' },
  m: { field: () => '', kinds: ['auth', 'super', 'acl'], meaning: 'mountpoint' }
}

/** EMQX 5 `${name}` placeholders, mapped onto the same fields. */
const NAMED: Record<string, Placeholder> = {
  clientid: PERCENT.c!,
  username: PERCENT.u!,
  password: PERCENT.P!,
  peerhost: PERCENT.a!,
  peerport: { field: (i) => String(i.client.peer.port), kinds: ['auth', 'super', 'acl'] },
  protocol: PERCENT.r!,
  proto_name: { field: (i) => i.client.protoName, kinds: ['auth', 'super', 'acl'] },
  listener_port: PERCENT.p!,
  cert_common_name: PERCENT.C!,
  cert_subject: PERCENT.d!,
  mountpoint: PERCENT.m!,
  action: { field: (i) => i.access, kinds: ['acl'], perRequest: true },
  topic: PERCENT.t!,
  qos: { field: (i) => (i.qos === undefined ? undefined : String(i.qos)), kinds: ['acl'], perRequest: true }
}

export const PLACEHOLDER_LETTERS = Object.keys(PERCENT)
export const PLACEHOLDER_NAMES = Object.keys(NAMED)

/**
 * `%r`: `mqtt5` for an MQTT 5 client (issue 11; EMQX says `mqtt` whatever the version), else
 * `ws` over WebSocket and `mqtt` over TCP/TLS.
 */
function protocolOf (client: ClientInfo): string {
  if (client.protoVer === 5) return 'mqtt5'
  const transport = client.peer.transport
  return transport === 'ws' || transport === 'wss' ? 'ws' : 'mqtt'
}

export interface CompiledParam {
  readonly name: string
  /** undefined when the value is missing for this client (the parameter is then left out) */
  readonly render: Field
  /** the placeholders of the client (not of the ACL question) that the value is made from */
  readonly clientFields: readonly Field[]
}

/** Thrown by compileParams; the caller turns it into a file:line error. */
export class ParamError extends Error {
  constructor (message: string, readonly allowed: string) {
    super(message)
  }
}

/**
 * Compiles `k1=v1,k2=v2`. A value is a whole `%X` placeholder, a template with `${name}`
 * placeholders, or a constant (EMQX 4 passes constants through; NanoMQ 0.8 dropped them).
 */
export function compileParams (text: string, kind: RequestKind): CompiledParam[] {
  const params: CompiledParam[] = []
  if (text.trim() === '') return params
  for (const raw of text.split(',')) {
    const part = raw.trim()
    const eq = part.indexOf('=')
    if (eq <= 0) throw new ParamError(`parameter ${JSON.stringify(part)} is not name=value`, 'name=value pairs separated by commas, e.g. clientid=%c,username=%u')
    const name = part.slice(0, eq).trim()
    const value = part.slice(eq + 1).trim()
    params.push({ name, ...compileValue(value, kind) })
  }
  return params
}

function compileValue (value: string, kind: RequestKind): Omit<CompiledParam, 'name'> {
  if (value.startsWith('%')) {
    const letter = value.slice(1)
    const known = PERCENT[letter]
    const allowedHere = PLACEHOLDER_LETTERS.filter((l) => PERCENT[l]!.kinds.includes(kind)).map((l) => '%' + l).join(' ')
    if (!known) throw new ParamError(`unknown placeholder ${value}`, `one of ${allowedHere}, a \${name} template or a constant`)
    if (!known.kinds.includes(kind)) {
      throw new ParamError(`placeholder ${value} (${known.meaning}) is not available in ${kind}_req`, `one of ${allowedHere}`)
    }
    return { render: known.field, clientFields: known.perRequest ? [] : [known.field] }
  }
  if (!value.includes('${')) return { render: () => value, clientFields: [] }
  // a template: literal text with ${name} placeholders; missing values render as ''
  const pieces: Array<string | Field> = []
  const pattern = /\$\{([^}]*)\}/g
  let last = 0
  const clientFields: Field[] = []
  for (let match = pattern.exec(value); match; match = pattern.exec(value)) {
    const found = NAMED[match[1]!]
    const allowedHere = PLACEHOLDER_NAMES.filter((n) => NAMED[n]!.kinds.includes(kind)).map((n) => '${' + n + '}').join(' ')
    if (!found) throw new ParamError(`unknown placeholder ${match[0]}`, `one of ${allowedHere}`)
    if (!found.kinds.includes(kind)) throw new ParamError(`placeholder ${match[0]} is not available in ${kind}_req`, `one of ${allowedHere}`)
    if (match.index > last) pieces.push(value.slice(last, match.index))
    pieces.push(found.field)
    if (!found.perRequest) clientFields.push(found.field)
    last = match.index + match[0].length
  }
  if (value.slice(last).includes('${')) throw new ParamError(`unterminated placeholder in ${JSON.stringify(value)}`, '${name}')
  if (last < value.length) pieces.push(value.slice(last))
  // a value that is exactly one placeholder keeps "missing" (left out), like %X
  if (pieces.length === 1 && typeof pieces[0] === 'function') return { render: pieces[0], clientFields }
  return { render: (input) => pieces.map((piece) => (typeof piece === 'string' ? piece : piece(input) ?? '')).join(''), clientFields }
}

/** Renders the parameters, leaving out those whose value is missing (NanoMQ; quirk Q22). */
export function renderParams (params: readonly CompiledParam[], input: RenderInput): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const param of params) {
    const value = param.render(input)
    if (value !== undefined) out.push([param.name, value])
  }
  return out
}

/** Percent-encodes everything but RFC 3986 unreserved characters (later NanoMQ; quirk Q11). */
export function encodeComponent (text: string): string {
  const encoded = encodeURIComponent(text)
  return LEFT_BY_ENCODE_URI.test(encoded) ? encoded.replace(LEFT_BY_ENCODE_URI_ALL, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()) : encoded
}
/** reserved characters that encodeURIComponent leaves as they are */
const LEFT_BY_ENCODE_URI = /[!'()*]/
const LEFT_BY_ENCODE_URI_ALL = /[!'()*]/g

export function formEncode (pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs.map(([name, value]) => `${encodeComponent(name)}=${encodeComponent(value)}`).join('&')
}

/** A flat JSON object, every value a string, keys in config order (NanoMQ / EMQX). */
export function jsonEncode (pairs: ReadonlyArray<readonly [string, string]>): string {
  const body: Record<string, string> = {}
  for (const [name, value] of pairs) body[name] = value
  return JSON.stringify(body)
}
