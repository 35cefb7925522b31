// Options of the password-file plugin: the schema (every default) and `parse`, which reads
// NanoMQ's nanomq_auth_username.conf format, `auth.<n>.login` / `auth.<n>.password`, with
// file:line errors for anything it cannot use.
import { type Conf, type ConfEntry, formatLocation, type Static, Type } from '../../sdk/index.ts'
import { isHashed, parseHash } from './hash.ts'

const User = Type.Object({
  login: Type.String({ minLength: 1 }),
  /** a `$scrypt$...` hash from `tapmq passwd`, or (as NanoMQ has it) the password itself */
  password: Type.String({ minLength: 1 }),
  /** where it was read, `file:line`, for start-up warnings */
  at: Type.String({ default: '' })
})

export const Options = Type.Object({
  /** the users, in file order */
  users: Type.Array(User, { default: [] }),
  /**
   * @default 600000 — ms a password that checked out is remembered (keyed by user, stored
   * hash and a keyed digest of the password), so that a reconnecting client does not pay
   * for scrypt again; wrong passwords are never remembered. 0 = check every time.
   */
  cacheTtl: Type.Integer({ minimum: 0, default: 600_000 })
})
export type Options = Static<typeof Options>

const USER_KEY = /^(\d+)\.(login|password)$/

export function parseConf (conf: Conf): Options {
  const slots = new Map<number, { login?: ConfEntry, password?: ConfEntry }>()
  for (const entry of conf.prefixed('auth.')) {
    if (entry.key === 'cache_ttl') continue
    const match = USER_KEY.exec(entry.key)
    if (!match) return conf.invalid(`auth.${entry.key}`, 'auth.<n>.login, auth.<n>.password or auth.cache_ttl')
    const slot = slots.get(Number(match[1])) ?? {}
    slot[match[2] as 'login' | 'password'] = { ...entry, key: `auth.${entry.key}` }
    slots.set(Number(match[1]), slot)
  }
  const users: Options['users'] = []
  const seen = new Map<string, ConfEntry>()
  for (const [n, slot] of [...slots].sort(([a], [b]) => a - b)) {
    if (!slot.login) return conf.invalid(`auth.${n}.password`, `a password with an auth.${n}.login line`, '******')
    if (!slot.password) return conf.invalid(`auth.${n}.login`, `a login with an auth.${n}.password line`)
    const login = slot.login.value
    const password = slot.password.value
    if (login === '') return conf.invalid(slot.login.key, 'a user name')
    const earlier = seen.get(login)
    if (earlier) return conf.invalid(slot.login.key, `a user name not already given at ${formatLocation(earlier.location)}`)
    seen.set(login, slot.login)
    if (password === '') return conf.invalid(slot.password.key, 'a password or a hash from "tapmq passwd"', '')
    if (isHashed(password)) {
      const parsed = parseHash(password)
      if (typeof parsed === 'string') return conf.invalid(slot.password.key, `a hash from "tapmq passwd" (this one is ${parsed})`, '$scrypt$…')
    }
    users.push({ login, password, at: formatLocation(slot.password.location) })
  }
  return { users, cacheTtl: conf.duration('auth.cache_ttl', 600_000) }
}
