// Password hashes: scrypt from node:crypto with a random 16-byte salt, written in the PHC
// string format, `$scrypt$ln=14,r=8,p=1$<salt>$<hash>` (base64 without padding), so that
// the cost can be raised later without breaking existing entries.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

export interface ScryptParams {
  /** log2 of scrypt's N (CPU/memory cost) */
  readonly ln: number
  /** block size */
  readonly r: number
  /** parallelisation */
  readonly p: number
}

/** N = 16384, r = 8: 16 MiB and tens of milliseconds per check on a small box */
export const DEFAULT_PARAMS: ScryptParams = Object.freeze({ ln: 14, r: 8, p: 1 })
export const HASH_PREFIX = '$scrypt$'
const SALT_BYTES = 16
const KEY_BYTES = 32
/** bounds for parameters read from a file: a typo must not make one check take minutes */
const LIMITS = { ln: [10, 20], r: [1, 32], p: [1, 16] } as const

export interface ParsedHash {
  readonly params: ScryptParams
  readonly salt: Buffer
  readonly hash: Buffer
}

const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '')

function derive (password: Buffer | string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  const N = 2 ** params.ln
  return new Promise((resolve, reject) => {
    // maxmem: scrypt needs 128 * N * r bytes; leave headroom
    scrypt(password, salt, length, { N, r: params.r, p: params.p, maxmem: 256 * N * params.r }, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

export async function hashPassword (password: Buffer | string, params: ScryptParams = DEFAULT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const hash = await derive(password, salt, params, KEY_BYTES)
  return `${HASH_PREFIX}ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(hash)}`
}

export function isHashed (stored: string): boolean {
  return stored.startsWith(HASH_PREFIX)
}

/** The parts of a `$scrypt$...` string, or a reason why it is not one tapmq can check. */
export function parseHash (stored: string): ParsedHash | string {
  const parts = stored.split('$')
  // ['', 'scrypt', 'ln=14,r=8,p=1', salt, hash]
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== 'scrypt') return 'not of the form $scrypt$ln=N,r=N,p=N$salt$hash'
  const params: Record<string, number> = {}
  for (const pair of parts[2]!.split(',')) {
    const match = /^(ln|r|p)=(\d+)$/.exec(pair)
    if (!match) return `unknown scrypt parameter "${pair}"`
    params[match[1]!] = Number(match[2])
  }
  for (const [name, [min, max]] of Object.entries(LIMITS)) {
    const value = params[name]
    if (value === undefined) return `scrypt parameter ${name} is missing`
    if (value < min || value > max) return `scrypt parameter ${name}=${value} is outside ${min}..${max}`
  }
  const salt = Buffer.from(parts[3]!, 'base64')
  const hash = Buffer.from(parts[4]!, 'base64')
  if (salt.length < 8) return 'the salt is shorter than 8 bytes'
  if (hash.length < 16) return 'the hash is shorter than 16 bytes'
  return { params: params as unknown as ScryptParams, salt, hash }
}

export async function verifyHash (password: Buffer, stored: ParsedHash): Promise<boolean> {
  const candidate = await derive(password, stored.salt, stored.params, stored.hash.length)
  return timingSafeEqual(candidate, stored.hash)
}

/** NanoMQ's plain-text entries; compared through SHA-256 so that neither length nor content leaks by timing. */
export function verifyPlain (password: Buffer, stored: string): boolean {
  const digest = (value: Buffer | string) => createHash('sha256').update(value).digest()
  return timingSafeEqual(digest(password), digest(stored))
}
