// NanoMQ 0.8 / EMQX 4.3 `key = value` files. Every entry keeps the file and line it came
// from, so that every error about a value can point at the line a user has to edit.
import { accessSync, constants, readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { ERR_CONF_FILE, ERR_CONF_MISSING, ERR_CONF_SYNTAX, ERR_CONF_VALUE, type SourceLocation } from './errors.ts'

export interface ConfEntry {
  readonly key: string
  readonly value: string
  /** where the value came from: a file and line, or a pseudo-file such as `env TAPMQ_URL` */
  readonly location: SourceLocation
}

const KEY = /^[A-Za-z0-9_$][A-Za-z0-9_.$\-]*$/

/** Parses the text of a `.conf` file. Later duplicates win, as in NanoMQ. */
export function parseConf (text: string, file: string): ConfEntry[] {
  const entries: ConfEntry[] = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim()
    if (raw === '' || raw.startsWith('#')) continue
    const location = { file, line: i + 1 }
    const eq = raw.indexOf('=')
    const key = eq > 0 ? raw.slice(0, eq).trim() : ''
    // NanoMQ deletes every blank inside a value (its quirk Q21); we only trim the ends.
    if (!KEY.test(key)) throw ERR_CONF_SYNTAX([raw], { location })
    entries.push({ key, value: raw.slice(eq + 1).trim(), location })
  }
  return entries
}

export function readConfFile (file: string): ConfEntry[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw ERR_CONF_FILE([file, (err as NodeJS.ErrnoException).code ?? String(err)], { cause: err })
  }
  return parseConf(text, file)
}

const DURATION = /^(\d+)(ms|s|m|h)$/
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * A typed view over conf entries. Every getter throws a TapmqError naming the file,
 * line, key, value and what is allowed.
 */
export class Conf {
  readonly #entries = new Map<string, ConfEntry>()
  readonly #read = new Set<string>()
  /** what to call this config in "is required in ..." errors */
  readonly name: string

  constructor (entries: Iterable<ConfEntry>, name = 'the config') {
    for (const entry of entries) this.#entries.set(entry.key, entry)
    this.name = name
  }

  static fromFile (file: string): Conf {
    return new Conf(readConfFile(file), file)
  }

  /** A copy with `overrides` layered on top (later layers win). */
  with (overrides: Iterable<ConfEntry>): Conf {
    return new Conf([...this.#entries.values(), ...overrides], this.name)
  }

  has (key: string): boolean {
    return this.#entries.has(key)
  }

  entry (key: string): ConfEntry | undefined {
    this.#read.add(key)
    return this.#entries.get(key)
  }

  entries (): ConfEntry[] {
    return [...this.#entries.values()]
  }

  /** Entries whose key starts with `prefix`, with the prefix removed from `key`. */
  prefixed (prefix: string): ConfEntry[] {
    const found: ConfEntry[] = []
    for (const entry of this.#entries.values()) {
      if (entry.key.startsWith(prefix) && entry.key.length > prefix.length) {
        this.#read.add(entry.key)
        found.push({ ...entry, key: entry.key.slice(prefix.length) })
      }
    }
    return found
  }

  /** Keys present but never read by any getter: candidates for "unknown key" warnings. */
  unread (): ConfEntry[] {
    return [...this.#entries.values()].filter((entry) => !this.#read.has(entry.key))
  }

  /** Throws a value error located at `key`'s line. */
  invalid (key: string, allowed: string, value?: string): never {
    const entry = this.#entries.get(key)
    throw ERR_CONF_VALUE([key, value ?? entry?.value ?? '', allowed], { location: entry?.location })
  }

  string (key: string): string | undefined
  string (key: string, fallback: string): string
  string (key: string, fallback?: string): string | undefined {
    return this.entry(key)?.value ?? fallback
  }

  required (key: string): string {
    const value = this.entry(key)?.value
    if (value === undefined || value === '') throw ERR_CONF_MISSING([key, this.name])
    return value
  }

  /** `true`/`false` in any case. NanoMQ reads anything but `true` as false; we reject the typo instead. */
  bool (key: string, fallback: boolean): boolean {
    const value = this.entry(key)?.value
    if (value === undefined) return fallback
    const lower = value.toLowerCase()
    if (lower === 'true') return true
    if (lower === 'false') return false
    return this.invalid(key, 'true | false')
  }

  int (key: string, fallback: number, range: { min?: number, max?: number } = {}): number {
    const value = this.entry(key)?.value
    if (value === undefined) return fallback
    const min = range.min ?? Number.MIN_SAFE_INTEGER
    const max = range.max ?? Number.MAX_SAFE_INTEGER
    const n = /^-?\d+$/.test(value) ? Number(value) : NaN
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      return this.invalid(key, `an integer from ${range.min ?? '-∞'} to ${range.max ?? '∞'}`)
    }
    return n
  }

  oneOf<T extends string> (key: string, allowed: readonly T[], fallback: T): T {
    const value = this.entry(key)?.value
    if (value === undefined) return fallback
    const match = allowed.find((candidate) => candidate.toLowerCase() === value.toLowerCase())
    return match ?? this.invalid(key, allowed.join(' | '))
  }

  /** A duration such as `5s`, `2m`, `1h` (NanoMQ) or `500ms` (tapmq), in milliseconds. */
  duration (key: string, fallbackMs: number): number {
    const value = this.entry(key)?.value
    if (value === undefined) return fallbackMs
    const match = DURATION.exec(value)
    if (!match) return this.invalid(key, 'a whole number with a unit: ms, s, m or h (for example 5s)')
    return Number(match[1]) * DURATION_UNIT_MS[match[2]!]!
  }

  /**
   * A readable file (a certificate, a key): relative paths resolve against the directory of
   * the file the key is in (the working directory for environment and command-line values).
   */
  readableFile (key: string): string | undefined {
    const entry = this.entry(key)
    if (!entry || entry.value === '') return undefined
    const base = entry.location.line > 0 ? dirname(entry.location.file) : process.cwd()
    const path = isAbsolute(entry.value) ? entry.value : resolve(base, entry.value)
    try {
      accessSync(path, constants.R_OK)
    } catch (err) {
      this.invalid(key, `a readable file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}: ${path})`)
    }
    return path
  }

  /** A URL whose scheme is one of `schemes` (without the trailing colon). */
  url (key: string, schemes: readonly string[]): URL | undefined {
    const value = this.entry(key)?.value
    if (value === undefined || value === '') return undefined
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return this.invalid(key, `a URL such as ${schemes[0]}://host:port`)
    }
    if (!schemes.includes(url.protocol.slice(0, -1))) {
      return this.invalid(key, `a URL with scheme ${schemes.join(', ')}`)
    }
    return url
  }
}
