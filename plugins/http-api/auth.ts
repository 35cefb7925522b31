// HTTP basic auth with NanoMQ's result codes: a missing or unreadable Authorization header,
// or an empty user name or password, is 104; wrong credentials are 103. Both are HTTP 401.
import { createHash, timingSafeEqual } from 'node:crypto'
import { CODE } from './codes.ts'

export interface Credentials {
  readonly username: string
  readonly password: string
}

/** Compares digests, so that neither the length nor the content leaks through timing. */
function same (a: string, b: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(a), digest(b))
}

/** 0 when `header` carries the expected credentials, else NanoMQ's code. */
export function checkBasicAuth (header: string | undefined, expected: Credentials): number {
  const match = /^basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header ?? '')
  if (!match) return CODE.EMPTY_CREDENTIALS
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return CODE.EMPTY_CREDENTIALS
  const username = decoded.slice(0, colon)
  const password = decoded.slice(colon + 1)
  if (username === '' || password === '') return CODE.EMPTY_CREDENTIALS
  // evaluate both, so that a wrong user name costs as much as a wrong password
  const userOk = same(username, expected.username)
  const passwordOk = same(password, expected.password)
  return userOk && passwordOk ? CODE.SUCCESS : CODE.WRONG_CREDENTIALS
}
