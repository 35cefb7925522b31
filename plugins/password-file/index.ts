// NanoMQ's user name/password file (nanomq_auth_username.conf): `auth.<n>.login` and
// `auth.<n>.password` lines, answered on the `auth` hook. Passwords are scrypt hashes
// written by `tapmq passwd <file> <user>`; NanoMQ's plain-text passwords are accepted too,
// with a warning at start-up. A user the file does not know is left to the next auth
// plugin (then allow_anonymous); a known user with a wrong password is refused (CONNACK 4).
import { createHmac, randomBytes } from 'node:crypto'
import { statSync } from 'node:fs'
import { LRUCache } from 'lru-cache'
import { type AuthDecision, type AuthRequest, definePlugin, type PluginHost, STAGE } from '../../sdk/index.ts'
import { Options, parseConf } from './config.ts'
import { isHashed, type ParsedHash, parseHash, verifyHash, verifyPlain } from './hash.ts'

const PLUGIN_NAME = 'tapmq:password-file'
const IGNORE: AuthDecision = Object.freeze({ result: 'ignore' })
const ALLOW: AuthDecision = Object.freeze({ result: 'allow' })
const BAD_PASSWORD: AuthDecision = Object.freeze({ result: 'deny', code: 4, reason: 'bad user name or password' })

type Entry = { readonly kind: 'hash', readonly stored: string, readonly parsed: ParsedHash } | { readonly kind: 'plain', readonly stored: string }

export default definePlugin({
  name: PLUGIN_NAME,
  version: '1.0.0',
  description: 'Authenticates CONNECTs against a user name/password file (NanoMQ nanomq_auth_username.conf), scrypt-hashed',
  tapmq: '>=0.1.0',
  options: Options,
  conf: { file: 'tapmq_passwd.conf', aliases: ['nanomq_auth_username.conf'], parse: parseConf },

  setup (host, options: Options) {
    const m = host.metrics
    const counters = {
      allow: m.counter('allow_total', 'CONNECTs allowed: user in the file, password right'),
      deny: m.counter('deny_total', 'CONNECTs refused: user in the file, password wrong or missing'),
      ignore: m.counter('ignore_total', 'CONNECTs of users not in the file, left to the next auth plugin'),
      hashChecks: m.counter('hash_checks_total', 'scrypt computations (checks not answered by the cache of passwords that checked out)')
    }
    const onHashCheck = () => counters.hashChecks.inc()
    let table = load(host, options, onHashCheck)
    host.hooks.auth.tapPromise({ name: PLUGIN_NAME, stage: STAGE.AUTH }, async (request) => {
      const decision = await table.check(request)
      counters[decision.result].inc()
      return decision
    })
    return {
      reload (next: Options) {
        table = load(host, next, onHashCheck)
      },
      health: () => ({ status: 'ok' as const, detail: `${table.size} users` })
    }
  }
})

function load (host: PluginHost, options: Options, onHashCheck: () => void): PasswordTable {
  const table = new PasswordTable(options, onHashCheck)
  const plain = options.users.filter((user) => !isHashed(user.password))
  if (plain.length > 0) {
    host.log.warn({ users: plain.map((user) => user.login), at: plain.map((user) => user.at) },
      'plain-text passwords in the password file; replace each with "tapmq passwd <file> <user>", which stores a scrypt hash')
  }
  for (const file of new Set(options.users.map((user) => user.at.replace(/:\d+$/, '')))) {
    try {
      // group or others may read it: hashes can be attacked offline, plain passwords just read
      if ((statSync(file).mode & 0o077) !== 0) host.log.warn({ file }, 'the password file is readable by other users; chmod 600 it')
    } catch {}
  }
  if (options.users.length === 0) host.log.warn('the password file has no users; every client is left to the next auth plugin or allow_anonymous')
  host.log.info({ users: options.users.length }, 'password file loaded')
  return table
}

class PasswordTable {
  readonly #users = new Map<string, Entry>()
  /** passwords that checked out: user + stored hash + HMAC(password) -> true */
  readonly #verified?: LRUCache<string, true>
  /** per process, so that cached keys say nothing about a password outside it */
  readonly #key = randomBytes(32)

  constructor (options: Options, private readonly onHashCheck: () => void) {
    for (const user of options.users) {
      if (isHashed(user.password)) {
        const parsed = parseHash(user.password)
        // parseConf rejected malformed hashes already; options given in code are checked here
        if (typeof parsed === 'string') throw new Error(`password of ${user.login}: ${parsed}`)
        this.#users.set(user.login, { kind: 'hash', stored: user.password, parsed })
      } else {
        this.#users.set(user.login, { kind: 'plain', stored: user.password })
      }
    }
    if (options.cacheTtl > 0) this.#verified = new LRUCache({ max: 10_000, ttl: options.cacheTtl })
  }

  get size (): number {
    return this.#users.size
  }

  async check (request: AuthRequest): Promise<AuthDecision> {
    if (request.username === undefined) return IGNORE
    const entry = this.#users.get(request.username)
    if (!entry) return IGNORE
    if (!request.password || request.password.length === 0) return BAD_PASSWORD
    if (entry.kind === 'plain') return verifyPlain(request.password, entry.stored) ? ALLOW : BAD_PASSWORD
    const cacheKey = this.#verified && `${request.username}\u0000${entry.stored}\u0000${createHmac('sha256', this.#key).update(request.password).digest('base64')}`
    if (cacheKey && this.#verified!.has(cacheKey)) return ALLOW
    this.onHashCheck()
    if (!(await verifyHash(request.password, entry.parsed))) return BAD_PASSWORD
    if (cacheKey) this.#verified!.set(cacheKey, true)
    return ALLOW
  }
}
