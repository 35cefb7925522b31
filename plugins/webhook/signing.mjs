// Standard Webhooks signatures (https://www.standardwebhooks.com, spec v1):
//   webhook-id         a unique id per message, the same on every retry of it
//   webhook-timestamp  integer seconds since the epoch, of this attempt
//   webhook-signature  "v1,<base64 HMAC-SHA256 of `${id}.${timestamp}.${body}`>", one per
//                      secret, space-separated, so receivers can rotate keys
//
// Plain JavaScript: it runs in the delivery worker (see protocol.ts).
import { createHmac, randomBytes } from 'node:crypto'

export class Signer {
  /** @type {Buffer[]} */
  #keys

  /** @param {readonly string[]} secrets `whsec_<base64>`; the key is the decoded part */
  constructor (secrets) {
    this.#keys = secrets.map((secret) => Buffer.from(secret.slice('whsec_'.length), 'base64'))
  }

  /** @returns {boolean} */
  get enabled () {
    return this.#keys.length > 0
  }

  /** @returns {string} `msg_` and 24 random base64url characters */
  static newId () {
    return 'msg_' + randomBytes(18).toString('base64url')
  }

  /**
   * The three headers of one attempt.
   * @param {string} id
   * @param {string | Buffer} body
   * @param {number} [now]
   * @returns {Record<string, string>}
   */
  headers (id, body, now = Date.now()) {
    const timestamp = String(Math.floor(now / 1000))
    const prefix = `${id}.${timestamp}.`
    const signatures = this.#keys.map((key) => 'v1,' + createHmac('sha256', key).update(prefix).update(body).digest('base64'))
    return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') }
  }
}
