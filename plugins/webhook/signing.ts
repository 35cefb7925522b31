// Standard Webhooks signatures (https://www.standardwebhooks.com, spec v1):
//   webhook-id         a unique id per message, the same on every retry of it
//   webhook-timestamp  integer seconds since the epoch, of this attempt
//   webhook-signature  "v1,<base64 HMAC-SHA256 of `${id}.${timestamp}.${body}`>", one per
//                      secret, space-separated, so receivers can rotate keys
import { createHmac, randomBytes } from 'node:crypto'

export class Signer {
  readonly #keys: Buffer[]

  /** `secrets` are `whsec_<base64>`; the key is the decoded part */
  constructor (secrets: readonly string[]) {
    this.#keys = secrets.map((secret) => Buffer.from(secret.slice('whsec_'.length), 'base64'))
  }

  get enabled (): boolean {
    return this.#keys.length > 0
  }

  /** `msg_` and 24 random base64url characters */
  static newId (): string {
    return 'msg_' + randomBytes(18).toString('base64url')
  }

  /** The three headers for one attempt. */
  headers (id: string, body: string, now = Date.now()): Record<string, string> {
    const timestamp = String(Math.floor(now / 1000))
    const content = `${id}.${timestamp}.${body}`
    const signatures = this.#keys.map((key) => 'v1,' + createHmac('sha256', key).update(content).digest('base64'))
    return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') }
  }
}
