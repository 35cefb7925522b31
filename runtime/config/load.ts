// Config layering, lowest first: built-in defaults < rc files (/etc/tapmqrc, ~/.tapmqrc,
// ./.tapmqrc) < the main conf file < environment (TAPMQ_*, NANOMQ_*, rc's tapmq_*) < CLI
// flags. rc finds the files and reads its own `tapmq_` variables; we keep every value's
// origin so that errors can name the file and line, the variable, or the flag.
import { dirname, resolve } from 'node:path'
import rc from 'rc'
import { Conf, type ConfEntry, parseConf } from '../../sdk/conf.ts'
import { type BrokerConfig, readBrokerConfig } from './broker-config.ts'

/** NanoMQ 0.8's environment variables (nanolib/include/env.h) and the keys they set. */
const NANOMQ_ENV: Record<string, string> = {
  NANOMQ_BROKER_URL: 'url',
  NANOMQ_ALLOW_ANONYMOUS: 'allow_anonymous',
  NANOMQ_WEBSOCKET_ENABLE: 'websocket.enable',
  NANOMQ_WEBSOCKET_URL: 'websocket.url',
  NANOMQ_HTTP_SERVER_ENABLE: 'http_server.enable',
  NANOMQ_HTTP_SERVER_PORT: 'http_server.port',
  NANOMQ_HTTP_SERVER_USERNAME: 'http_server.username',
  NANOMQ_HTTP_SERVER_PASSWORD: 'http_server.password',
  NANOMQ_TLS_ENABLE: 'tls.enable',
  NANOMQ_TLS_URL: 'tls.url',
  NANOMQ_TLS_CA_CERT_PATH: 'tls.cacertfile',
  NANOMQ_TLS_CERT_PATH: 'tls.certfile',
  NANOMQ_TLS_KEY_PATH: 'tls.keyfile',
  NANOMQ_TLS_KEY_PASSWORD: 'tls.key_password',
  NANOMQ_TLS_VERIFY_PEER: 'tls.verify_peer',
  NANOMQ_TLS_FAIL_IF_NO_PEER_CERT: 'tls.fail_if_no_peer_cert'
}

/** `http_server.port` is set by TAPMQ_HTTP_SERVER_PORT. */
export function envNameFor (key: string): string {
  return 'TAPMQ_' + key.toUpperCase().replace(/[.-]/g, '_')
}

function flatten (value: unknown, prefix: string, out: Map<string, string>): void {
  if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out)
  } else if (value !== undefined) {
    out.set(prefix, String(value))
  }
}

export interface LoadedConfig {
  readonly broker: BrokerConfig
  /** every layer merged, for plugins and the /configuration view */
  readonly conf: Conf
  /** the main conf file, if one was read */
  readonly file?: string
  /** keys no part of the broker reads: typos, or keys of a newer version */
  readonly unknown: readonly ConfEntry[]
}

export interface LoadOptions {
  /** path of the main conf file; `undefined` runs on defaults */
  file?: string
  /** keys set on the command line, with the flag that set each one */
  cli?: ReadonlyArray<{ key: string, value: string, flag: string }>
  env?: NodeJS.ProcessEnv
}

/** Reads and layers the config; throws a TapmqError naming the offending line, variable or flag. */
export function loadConfig (options: LoadOptions): LoadedConfig {
  const env = options.env ?? process.env
  const file = options.file ? resolve(options.file) : undefined

  // rc calls `parse` once per file it finds, in the order it lists them in `configs`.
  const texts: string[] = []
  const merged = rc('tapmq', {}, { _: [], ...(file ? { config: file } : {}) }, (text: string) => {
    texts.push(text)
    return {}
  }) as Record<string, unknown> & { configs?: string[] }
  const files = merged.configs ?? []
  if (file && !files.includes(file)) {
    // rc skips unreadable files silently; a missing main conf file is an error for us
    parseConfFileOrThrow(file)
  }

  const layers: ConfEntry[] = []
  files.forEach((name, i) => layers.push(...parseConf(texts[i]!, name)))

  const fromRcEnv = new Map<string, string>()
  for (const [key, value] of Object.entries(merged)) {
    if (key === '_' || key === 'configs' || key === 'config') continue
    flatten(value, key, fromRcEnv)
  }
  for (const [key, value] of fromRcEnv) layers.push({ key, value, location: { file: `environment tapmq_${key}`, line: 0 } })

  const known = new Conf(layers)
  for (const [name, key] of Object.entries(NANOMQ_ENV)) {
    const value = env[name]
    if (value !== undefined) layers.push({ key, value, location: { file: `environment ${name}`, line: 0 } })
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('TAPMQ_') || value === undefined) continue
    const key = keyForEnvName(name, known)
    if (key) layers.push({ key, value, location: { file: `environment ${name}`, line: 0 } })
  }
  for (const { key, value, flag } of options.cli ?? []) {
    layers.push({ key, value, location: { file: `command line ${flag}`, line: 0 } })
  }

  const conf = new Conf(layers, file ?? 'the config')
  const broker = readBrokerConfig(conf, file ? dirname(file) : process.cwd())
  return { broker, conf, file, unknown: conf.unread() }
}

const BROKER_KEYS = [
  'url', 'allow_anonymous', 'max_packet_size', 'data_dir', 'pid_file', 'hook_timeout', 'shutdown_timeout',
  'connect_timeout', 'drain_timeout', 'max_connections', 'max_connection_rate', 'max_subscriptions', 'max_keepalive',
  'max_client_id_length', 'max_inflight_inbound', 'max_topic_levels', 'heartbeat_interval',
  'max_topic_alias', 'max_topic_alias_length', 'receive_maximum', 'outbound_topic_alias', 'response_information',
  'shared_subscription', 'max_session_expiry_interval', 'max_pending_sessions', 'max_outbound_queue',
  'log.level', 'log.format', 'websocket.enable', 'websocket.url', 'tls.enable', 'tls.url', 'tls.keyfile',
  'tls.certfile', 'tls.cacertfile', 'tls.key_password', 'tls.verify_peer', 'tls.fail_if_no_peer_cert',
  'http_server.enable', 'http_server.port', 'http_server.bind', 'http_server.username', 'http_server.password',
  'cluster.enable', 'cluster.redis.url', 'cluster.node_name'
]

/** TAPMQ_HTTP_SERVER_PORT names `http_server.port`: match against the keys that exist. */
function keyForEnvName (name: string, conf: Conf): string | undefined {
  const candidates = new Set([...BROKER_KEYS, ...conf.entries().map((entry) => entry.key)])
  for (const key of candidates) if (envNameFor(key) === name) return key
  return undefined
}

function parseConfFileOrThrow (file: string): void {
  Conf.fromFile(file)
}
