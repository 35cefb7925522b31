// Command-line flags: NanoMQ 0.8's (`nanomq broker start --url ... --conf ...`) plus
// tapmq's. Flags that set config keys become the top config layer.
import { parseArgs } from 'node:util'
import { TapmqError } from '../../sdk/errors.ts'

export const COMMANDS = ['start', 'stop', 'restart', 'reload', 'passwd', 'help'] as const
export type Command = typeof COMMANDS[number]

const OPTIONS = {
  conf: { type: 'string' },
  plugins: { type: 'string' },
  webhook: { type: 'string' },
  auth_http: { type: 'string' },
  auth: { type: 'string' },
  bridge: { type: 'string' },
  gateway: { type: 'string' },
  url: { type: 'string' },
  http: { type: 'boolean' },
  port: { type: 'string', short: 'p' },
  log_level: { type: 'string' },
  log_format: { type: 'string' },
  data_dir: { type: 'string' },
  pid_file: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string', short: 'E' },
  key: { type: 'string' },
  keypass: { type: 'string' },
  verify: { type: 'boolean' },
  fail: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  // NanoMQ tuning flags with no meaning here; accepted so that NanoMQ scripts keep working
  daemon: { type: 'boolean', short: 'd' },
  tq_thread: { type: 'string', short: 't' },
  max_tq_thread: { type: 'string', short: 'T' },
  parallel: { type: 'string', short: 'n' },
  qos_duration: { type: 'string', short: 'D' },
  property_size: { type: 'string', short: 's' },
  msq_len: { type: 'string', short: 'S' }
} as const

export const IGNORED_FLAGS = ['daemon', 'tq_thread', 'max_tq_thread', 'parallel', 'qos_duration', 'property_size', 'msq_len'] as const

/** flag → config key, for flags that simply set a key */
const FLAG_KEYS: Record<string, string> = {
  url: 'url',
  port: 'http_server.port',
  log_level: 'log.level',
  log_format: 'log.format',
  data_dir: 'data_dir',
  pid_file: 'pid_file',
  cacert: 'tls.cacertfile',
  cert: 'tls.certfile',
  key: 'tls.keyfile',
  keypass: 'tls.key_password'
}

export interface ParsedArgs {
  readonly command: Command
  readonly values: { -readonly [K in keyof typeof OPTIONS]?: typeof OPTIONS[K]['type'] extends 'boolean' ? boolean : string }
  readonly positionals: readonly string[]
  /** the config keys that flags set */
  readonly overrides: ReadonlyArray<{ key: string, value: string, flag: string }>
}

export function parseCommandLine (argv: readonly string[]): ParsedArgs {
  const { values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true })
  // `nanomq broker start` and `tapmq start` both work
  const words = positionals[0] === 'broker' ? positionals.slice(1) : positionals
  const word = words[0] ?? (values.help ? 'help' : 'start')
  if (!(COMMANDS as readonly string[]).includes(word)) {
    throw new TapmqError('TAPMQ_ERR_USAGE', `unknown command "${word}"; expected one of ${COMMANDS.join(', ')} (see tapmq --help)`)
  }
  const overrides: Array<{ key: string, value: string, flag: string }> = []
  for (const [flag, key] of Object.entries(FLAG_KEYS)) {
    const value = values[flag as keyof typeof values]
    if (typeof value === 'string') overrides.push({ key, value, flag: `--${flag}` })
  }
  if (values.http) overrides.push({ key: 'http_server.enable', value: 'true', flag: '--http' })
  if (values.verify) overrides.push({ key: 'tls.verify_peer', value: 'true', flag: '--verify' })
  if (values.fail) overrides.push({ key: 'tls.fail_if_no_peer_cert', value: 'true', flag: '--fail' })
  return { command: word as Command, values, positionals: words.slice(1), overrides }
}

export const HELP = `tapmq: an MQTT edge broker built as a plugin host (NanoMQ 0.8 compatible)

Usage:
  tapmq start   [options]   run the broker in the foreground (the default command)
  tapmq stop    [options]   stop the broker named by the pid file (SIGTERM, then wait)
  tapmq restart [options]   stop the running broker, then start in the foreground
  tapmq reload  [options]   re-read configs and reconfigure plugins without dropping clients (SIGHUP)
  tapmq passwd <file> <user> [password]
                            add a user to a password file, or change its password (an scrypt
                            hash); without [password] it is read from stdin (prompted on a terminal)
  tapmq help                this text
  NanoMQ's form "tapmq broker start ..." works too.

Files:
  --conf <file>        main config, NanoMQ nanomq.conf keys (default: ./etc/tapmq.conf,
                       then $TAPMQ_CONF or $NANOMQ_CONF_PATH)
  --plugins <file>     plugin list (default: plugins.conf beside the main config)
  --webhook <file>     enable the webhook plugin with this web_hook.conf (NanoMQ flag)
  --auth_http <file>   enable the http-auth plugin with this auth_http.conf (NanoMQ flag)
  --auth <file>        enable the password-file plugin with this user/password file
                       (NanoMQ flag, nanomq_auth_username.conf; also $NANOMQ_AUTH_CONF_PATH)
  --bridge <file>      enable the bridge plugin with this nanomq_bridge.conf (NanoMQ flag;
                       also $NANOMQ_BRIDGE_CONF_PATH)
  --gateway <file>     enable the zmq-gateway plugin with this nanomq_gateway.conf
  --pid_file <file>    pid file for stop/restart/reload (key pid_file)
  --data_dir <dir>     data directory (key data_dir)

Listeners and logging:
  --url <url>          main listener: nmq-tcp://host:port, tls+nmq-tcp://..., nmq-ws://host:port/path
  --http               enable the HTTP API (key http_server.enable)
  -p, --port <n>       HTTP API port (key http_server.port)
  --log_level <l>      trace | debug | info | warn | error | fatal | silent (key log.level)
  --log_format <f>     json | pretty (key log.format)

TLS (NanoMQ flags):
  --cacert <file>      CA certificate (tls.cacertfile)
  -E, --cert <file>    server certificate (tls.certfile)
  --key <file>         server key (tls.keyfile)
  --keypass <pass>     key password (tls.key_password)
  --verify             request and verify client certificates (tls.verify_peer)
  --fail               refuse clients without a certificate (tls.fail_if_no_peer_cert)

Accepted for NanoMQ compatibility, without effect: -d/--daemon, -t, -T, -n, -D, -s, -S.

Precedence, lowest first: defaults < ~/.tapmqrc and friends (rc) < the conf file <
environment (TAPMQ_<KEY>, e.g. TAPMQ_HTTP_SERVER_PORT; NanoMQ's NANOMQ_* names) < flags.
Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads.
`
