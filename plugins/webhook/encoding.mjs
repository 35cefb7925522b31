// The `payload` field of message bodies: web.hook.body.encoding_of_payload_field.
//
// "base62" names different algorithms in different brokers (notes §1.6, quirk Q14). The
// `web.hook.*` keys come from EMQX 4.3, so `base62` is EMQX's `emqx_base62`; NanoMQ 0.8's
// reversible variant is offered as `base62_nanomq08` for receivers written against it.
//
// Plain JavaScript with JSDoc types, so that the delivery worker (which runs without tsx)
// encodes payloads with the same code as the broker thread.

export const ENCODINGS = /** @type {const} */ (['plain', 'base64', 'base62', 'base62_nanomq08'])
/** @typedef {typeof ENCODINGS[number]} PayloadEncoding */

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/**
 * emqx_base62: 6-bit groups in the base64 alphabet, but 61, 62, 63 become 9A, 9B, 9C.
 * @param {number} index
 */
function emqxChar (index) {
  return index < 61 ? BASE64[index] : '9' + 'ABC'[index - 61]
}

/**
 * EMQX 4's base62 (src/emqx_base62.erl): the payload is read in 6-bit groups, most
 * significant first; a final partial group of 2 or 4 bits is emitted as its value (not
 * shifted left as base64 would), and nothing pads the end.
 * @param {Uint8Array} data
 * @returns {string}
 */
export function base62Emqx (data) {
  let out = ''
  const whole = data.length - (data.length % 3)
  for (let i = 0; i < whole; i += 3) {
    const n = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2]
    out += emqxChar(n >> 18) + emqxChar((n >> 12) & 63) + emqxChar((n >> 6) & 63) + emqxChar(n & 63)
  }
  const rest = data.length - whole
  if (rest === 1) {
    const b = data[whole]
    out += emqxChar(b >> 2) + emqxChar(b & 3)
  } else if (rest === 2) {
    const n = (data[whole] << 8) | data[whole + 1]
    out += emqxChar(n >> 10) + emqxChar((n >> 4) & 63) + emqxChar(n & 15)
  }
  return out
}

/**
 * NanoMQ 0.8.0's base62 (nanomq/webhook_post.c): base64 without `=` padding, then `i`, `+`
 * and `/` escaped as `ia`, `ib`, `ic`.
 * @param {Uint8Array} data
 * @returns {string}
 */
export function base62NanoMQ08 (data) {
  const base64 = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')
  let out = ''
  for (const char of base64) {
    if (char === '=') break
    out += char === 'i' ? 'ia' : char === '+' ? 'ib' : char === '/' ? 'ic' : char
  }
  return out
}

/**
 * The `payload` value. `plain` decodes UTF-8 (invalid sequences become U+FFFD, NULs are kept
 * and escaped by JSON): NanoMQ copies raw bytes up to the first NUL (quirk Q12). An empty
 * payload is `""` in every encoding; NanoMQ omits the key or sends `null` (Q12, Q13).
 * @param {Buffer} payload
 * @param {PayloadEncoding} encoding
 * @returns {string}
 */
export function encodePayload (payload, encoding) {
  if (payload.length === 0) return ''
  switch (encoding) {
    case 'plain': return payload.toString('utf8')
    case 'base64': return payload.toString('base64')
    case 'base62': return base62Emqx(payload)
    case 'base62_nanomq08': return base62NanoMQ08(payload)
  }
}
