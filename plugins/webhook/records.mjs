// How events travel from the broker thread to the delivery worker: records packed in one
// ArrayBuffer per hand-off, which postMessage transfers without copying.
//
// Most events travel as their finished JSON body. message.publish, the one event that can
// fire for every message, travels as its raw fields (topic, ids, payload bytes): the broker
// thread pays for a few buffer writes, and the worker builds the JSON, in its own thread,
// only for the events it sends. Events dropped in front of a dead receiver are never
// formatted at all.
//
// Plain JavaScript with JSDoc types: the worker runs without tsx (see protocol.ts).
import { ENCODINGS, encodePayload } from './encoding.mjs'

/**
 * @typedef {import('./encoding.mjs').PayloadEncoding} PayloadEncoding
 *
 * Layout, little-endian. Every record starts with its kind (u8).
 *   JSON       u32 length, UTF-8 body
 *   PUBLISH    f64 ts, u8 flags (qos | retain << 2 | has username << 3), u8 encoding index,
 *              u16 topic length, topic, u16 client id length, client id,
 *              u16 username length, username, u32 payload length, payload
 * MQTT bounds topics, client ids and user names to 65,535 bytes, hence u16.
 */
const JSON_TEXT = 0
const PUBLISH = 1

const RETAIN = 4
const HAS_USERNAME = 8

const INITIAL_BYTES = 16 * 1024

/**
 * The message.publish body: NanoMQ 0.8's fields in its order, and its `"undefined"` for a
 * missing user name (nanomq 0.8.0 webhook_post.c). `payload` is already encoded.
 * @param {number} ts
 * @param {string} topic
 * @param {boolean} retain
 * @param {number} qos
 * @param {string | undefined} username
 * @param {string} clientId
 * @param {string} payload
 * @returns {string}
 */
export function publishBody (ts, topic, retain, qos, username, clientId, payload) {
  // concatenated rather than JSON.stringify of an object (half the cost); byte for byte
  // what JSON.stringify would give, tested
  return '{"ts":' + ts + // real milliseconds; NanoMQ 0.8 sends whole seconds times 1000 (Q8)
    ',"topic":' + JSON.stringify(topic) +
    ',"retain":' + retain +
    ',"qos":' + qos +
    ',"action":"message_publish","from_username":' + JSON.stringify(username ?? 'undefined') +
    ',"from_client_id":' + JSON.stringify(clientId) +
    ',"payload":' + JSON.stringify(payload) + '}'
}

/** Packs records on the broker thread. */
export class RecordWriter {
  /** @type {Buffer} */
  #buffer
  #length = 0
  /** records written since the last take() */
  count = 0

  constructor () {
    this.#buffer = Buffer.allocUnsafeSlow(INITIAL_BYTES)
  }

  /** bytes written since the last take() */
  get byteLength () {
    return this.#length
  }

  /**
   * An event whose body is finished.
   * @param {string} body
   */
  json (body) {
    this.#reserve(5 + body.length * 3)
    const buffer = this.#buffer
    const at = this.#length
    buffer[at] = JSON_TEXT
    const length = buffer.write(body, at + 5)
    buffer.writeUInt32LE(length, at + 1)
    this.#length = at + 5 + length
    this.count++
  }

  /**
   * A message.publish event, as its fields.
   * @param {number} ts
   * @param {string} topic
   * @param {boolean} retain
   * @param {number} qos
   * @param {string | undefined} username
   * @param {string} clientId
   * @param {Buffer} payload
   * @param {PayloadEncoding} encoding
   */
  publish (ts, topic, retain, qos, username, clientId, payload, encoding) {
    this.#reserve(23 + (topic.length + clientId.length + (username?.length ?? 0)) * 3 + payload.length)
    const buffer = this.#buffer
    let at = this.#length
    buffer[at] = PUBLISH
    buffer.writeDoubleLE(ts, at + 1)
    buffer[at + 9] = qos | (retain ? RETAIN : 0) | (username === undefined ? 0 : HAS_USERNAME)
    buffer[at + 10] = ENCODINGS.indexOf(encoding)
    at = writeString(buffer, at + 11, topic)
    at = writeString(buffer, at, clientId)
    at = writeString(buffer, at, username ?? '')
    buffer.writeUInt32LE(payload.length, at)
    payload.copy(buffer, at + 4)
    this.#length = at + 4 + payload.length
    this.count++
  }

  /**
   * The records written so far, in a buffer of their own to transfer; the writer starts
   * over with a fresh one, sized by what this one held.
   * @returns {{ buffer: ArrayBuffer, byteLength: number, count: number }}
   */
  take () {
    const taken = { buffer: /** @type {ArrayBuffer} */ (this.#buffer.buffer), byteLength: this.#length, count: this.count }
    this.#buffer = Buffer.allocUnsafeSlow(Math.max(INITIAL_BYTES, this.#length))
    this.#length = 0
    this.count = 0
    return taken
  }

  /** @param {number} bytes */
  #reserve (bytes) {
    if (this.#length + bytes <= this.#buffer.length) return
    const grown = Buffer.allocUnsafeSlow(Math.max(this.#buffer.length * 2, this.#length + bytes))
    this.#buffer.copy(grown, 0, 0, this.#length)
    this.#buffer = grown
  }
}

/**
 * @param {Buffer} buffer
 * @param {number} at
 * @param {string} text
 * @returns {number} where the next field starts
 */
function writeString (buffer, at, text) {
  const length = text.length === 0 ? 0 : buffer.write(text, at + 2)
  buffer.writeUInt16LE(length, at)
  return at + 2 + length
}

/**
 * The end offset of the record that starts at `at`.
 * @param {Buffer} buffer
 * @param {number} at
 * @returns {number}
 */
export function recordEnd (buffer, at) {
  if (buffer[at] === JSON_TEXT) return at + 5 + buffer.readUInt32LE(at + 1)
  let end = at + 11
  for (let field = 0; field < 3; field++) end += 2 + buffer.readUInt16LE(end)
  return end + 4 + buffer.readUInt32LE(end)
}

/**
 * The JSON body of the record at `at`.
 * @param {Buffer} buffer
 * @param {number} at
 * @param {number} end
 * @returns {string}
 */
export function recordBody (buffer, at, end) {
  if (buffer[at] === JSON_TEXT) return buffer.toString('utf8', at + 5, end)
  const ts = buffer.readDoubleLE(at + 1)
  const flags = buffer[at + 9]
  const encoding = ENCODINGS[buffer[at + 10]] ?? 'plain'
  let field = at + 11
  /** @returns {string} */
  const text = () => {
    const length = buffer.readUInt16LE(field)
    field += 2 + length
    return buffer.toString('utf8', field - length, field)
  }
  const topic = text()
  const clientId = text()
  const username = text()
  const payload = buffer.subarray(field + 4, end)
  return publishBody(ts, topic, (flags & RETAIN) !== 0, flags & 3, (flags & HAS_USERNAME) !== 0 ? username : undefined,
    clientId, encodePayload(payload, encoding))
}
