// Where the server's settings come from. The NanoMQ keys live in the MAIN config
// (tapmq.conf / nanomq.conf), so CLI flags (--http, -p) and NANOMQ_HTTP_SERVER_* variables
// apply; host.config gives the merged view and host.config.secret the password. Options
// from plugins.conf (plugin.http_api.<key>) or an embedder override them.
import { type ConfigView, type Static, Type } from '../../sdk/index.ts'

export const Options = Type.Object({
  /** overrides http_server.enable */
  enable: Type.Optional(Type.Boolean()),
  /** overrides http_server.port; 0 picks a free port (tests) */
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  /** overrides http_server.bind */
  bind: Type.Optional(Type.String({ minLength: 1 })),
  /** overrides http_server.username */
  username: Type.Optional(Type.String({ minLength: 1 })),
  /** overrides http_server.password */
  password: Type.Optional(Type.String({ minLength: 1 })),
  /** largest accepted request body in bytes; NanoMQ caps /api/v1 bodies at 128 KiB */
  body_limit: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 128 * 1024 }),
  /** NanoMQ 0.8's order on /api/v1: parse the body before checking credentials (quirk Q24) */
  v1_parse_before_auth: Type.Boolean({ default: false }),
  /** also expose NanoMQ's metric names (nanomq_connections_count, ...) on /prometheus */
  nanomq_metrics: Type.Boolean({ default: true })
}, { additionalProperties: false })
export type Options = Static<typeof Options>

export interface Settings {
  readonly enable: boolean
  readonly port: number
  readonly bind: string
  readonly username: string
  readonly password: string
  readonly bodyLimit: number
  readonly v1ParseBeforeAuth: boolean
  readonly nanomqMetrics: boolean
}

export const PASSWORD_KEY = 'http_server.password'

/** The broker already validated these keys when it loaded the config. */
export function resolveSettings (options: Options, config: ConfigView): Settings {
  const flag = config.get('http_server.enable')
  const port = config.get('http_server.port')
  return {
    enable: options.enable ?? (flag !== undefined && flag.toLowerCase() === 'true'),
    port: options.port ?? (port === undefined ? 8081 : Number(port)),
    bind: options.bind ?? config.get('http_server.bind') ?? '127.0.0.1',
    username: options.username ?? config.get('http_server.username') ?? 'admin',
    password: options.password ?? config.secret(PASSWORD_KEY) ?? 'public',
    bodyLimit: options.body_limit,
    v1ParseBeforeAuth: options.v1_parse_before_auth,
    nanomqMetrics: options.nanomq_metrics
  }
}

export function sameListener (a: Settings, b: Settings): boolean {
  return a.enable === b.enable && a.port === b.port && a.bind === b.bind && a.bodyLimit === b.bodyLimit
}

export function isLoopback (address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.')
}
