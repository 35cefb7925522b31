// How events travel from the broker thread to the delivery worker: records packed in a
// buffer, copied once per hand-off into an ArrayBuffer of their exact size, which
// postMessage transfers without a further copy.
//
// Most events travel as their finished JSON body. message.publish, the one event that can
// fire for every message, travels as its raw fields (topic, ids, payload bytes): the broker
// thread pays for a few buffer writes, and the worker builds the JSON, in its own thread,
// only for the events it sends, straight into the request body (RequestBody), byte for byte
// what bodies.ts gives (tested). Events dropped in front of a dead receiver are never
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
 * MQTT bounds topics, client ids and user names to 65,535 bytes, hence u16. That bound is on
 * the bytes a client sent: aedes decodes ill-formed UTF-8 to U+FFFD (3 bytes each), so the
 * string can re-encode longer. publish() refuses such strings, and strings with lone UTF-16
 * surrogates (which JSON.stringify escapes and UTF-8 cannot carry); the caller then sends
 * the event as a JSON record.
 */
const JSON_TEXT = 0
const PUBLISH = 1

const RETAIN = 4
const HAS_USERNAME = 8

/** @type {Record<PayloadEncoding, number>} */
const ENCODING_INDEX = /** @type {Record<PayloadEncoding, number>} */ (Object.fromEntries(ENCODINGS.map((name, index) => [name, index])))

const INITIAL_BYTES = 16 * 1024
/** a buffer grown past this by one large event goes back to its initial size once used */
const KEEP_BYTES = 1024 * 1024

/** Packs records on the broker thread. */
export class RecordWriter {
  /** @type {Buffer} */
  #buffer
  #length = 0
  /** records written since the last take() */
  count = 0

  constructor () {
    this.#buffer = Buffer.allocUnsafe(INITIAL_BYTES)
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
   * A message.publish event, as its fields. Returns false, writing nothing, when a string
   * cannot travel as a record (see the layout above).
   * @param {number} ts
   * @param {string} topic
   * @param {boolean} retain
   * @param {number} qos
   * @param {string | undefined} username
   * @param {string} clientId
   * @param {Buffer} payload
   * @param {PayloadEncoding} encoding
   * @returns {boolean}
   */
  publish (ts, topic, retain, qos, username, clientId, payload, encoding) {
    this.#reserve(23 + (topic.length + clientId.length + (username?.length ?? 0)) * 3 + payload.length)
    const buffer = this.#buffer
    let at = this.#length
    buffer[at] = PUBLISH
    buffer.writeDoubleLE(ts, at + 1)
    buffer[at + 9] = qos | (retain ? RETAIN : 0) | (username === undefined ? 0 : HAS_USERNAME)
    buffer[at + 10] = ENCODING_INDEX[encoding]
    at = writeString(buffer, at + 11, topic)
    if (at >= 0) at = writeString(buffer, at, clientId)
    if (at >= 0) at = writeString(buffer, at, username ?? '')
    if (at < 0) return false
    buffer.writeUInt32LE(payload.length, at)
    buffer.set(payload, at + 4)
    this.#length = at + 4 + payload.length
    this.count++
    return true
  }

  /**
   * The records written so far, copied into a buffer of their own, exactly their size, to
   * transfer: the worker may hold a hand-off until its last event goes, and a small one
   * must not keep a large buffer alive. The writer keeps its buffer for the next ones.
   * @returns {{ buffer: ArrayBuffer, byteLength: number, count: number }}
   */
  take () {
    const out = Buffer.allocUnsafeSlow(this.#length)
    this.#buffer.copy(out, 0, 0, this.#length)
    const taken = { buffer: /** @type {ArrayBuffer} */ (out.buffer), byteLength: this.#length, count: this.count }
    this.#length = 0
    this.count = 0
    if (this.#buffer.length > KEEP_BYTES) this.#buffer = Buffer.allocUnsafe(INITIAL_BYTES)
    return taken
  }

  /** @param {number} bytes */
  #reserve (bytes) {
    if (this.#length + bytes <= this.#buffer.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + bytes))
    this.#buffer.copy(grown, 0, 0, this.#length)
    this.#buffer = grown
  }
}

/**
 * @param {Buffer} buffer
 * @param {number} at
 * @param {string} text
 * @returns {number} where the next field starts; -1 when `text` cannot be a field (more than
 *   65,535 bytes of UTF-8, or lone surrogates)
 */
function writeString (buffer, at, text) {
  // topics and ids are mostly short ASCII: a loop beats Buffer#write's set-up (with it the
  // writer took half the time per event in an A/B micro-benchmark)
  const length = text.length
  let i = 0
  if (length <= 64) {
    for (; i < length; i++) {
      const code = text.charCodeAt(i)
      if (code >= 0x80) break
      buffer[at + 2 + i] = code
    }
  }
  if (i < length && !text.isWellFormed()) return -1
  const bytes = i === length ? length : buffer.write(text, at + 2)
  if (bytes > 0xffff) return -1
  buffer[at] = bytes & 0xff
  buffer[at + 1] = bytes >>> 8
  return at + 2 + bytes
}

/**
 * The end offset of the record that starts at `at`.
 * @param {Buffer} buffer
 * @param {number} at
 * @returns {number}
 */
export function recordEnd (buffer, at) {
  // a record cut short ends past the buffer, without reading past it (which would throw):
  // the caller checks the result against the buffer's length
  const size = buffer.length
  if (buffer[at] === JSON_TEXT) return at + 5 <= size ? at + 5 + buffer.readUInt32LE(at + 1) : size + 1
  let end = at + 11
  for (let field = 0; field < 3; field++) {
    if (end + 2 > size) return size + 1
    end += 2 + buffer.readUInt16LE(end)
  }
  return end + 4 <= size ? end + 4 + buffer.readUInt32LE(end) : size + 1
}

const QUOTE = 0x22

/**
 * JSON.stringify's escapes of the ASCII characters it escapes (controls, '"' and '\'), as
 * flat tables: ESCAPE_LENGTH[byte] is 0 for a byte copied as it is, else the length of its
 * escape (2 or 6 bytes), whose bytes are ESCAPE_HEAD[byte] (the first four, little-endian)
 * and ESCAPE_TAIL[byte] (the last two, if any). Two stores through a DataView write an
 * escape (six single-byte stores took 8–16 % longer per binary event); typed arrays keep the
 * loop monomorphic (an array of Buffers took twice as long per escaped byte).
 */
const ESCAPE_LENGTH = new Uint8Array(0x80)
const ESCAPE_HEAD = new Uint32Array(0x80)
const ESCAPE_TAIL = new Uint16Array(0x80)
for (let byte = 0; byte < 0x80; byte++) {
  const char = String.fromCharCode(byte)
  const escaped = JSON.stringify(char).slice(1, -1)
  if (escaped === char) continue
  const bytes = Buffer.alloc(6)
  bytes.write(escaped, 'latin1')
  ESCAPE_LENGTH[byte] = escaped.length
  ESCAPE_HEAD[byte] = bytes.readUInt32LE(0)
  ESCAPE_TAIL[byte] = bytes.readUInt16LE(4)
}

/**
 * @typedef {{ words: Uint32Array, length: number }} Part
 *   bytes to copy as 32-bit little-endian words, the last one padded: a fourth of the stores
 *   of a byte loop, and no native call (the constant parts are about 130 bytes per event)
 */

/**
 * @param {string} text ASCII
 * @returns {Part}
 */
function part (text) {
  const bytes = Buffer.alloc(Math.ceil(text.length / 4) * 4)
  bytes.write(text, 'latin1')
  const words = new Uint32Array(bytes.length / 4)
  for (let i = 0; i < words.length; i++) words[i] = bytes.readUInt32LE(i * 4)
  return { words, length: text.length }
}

/**
 * The constant bytes of a message.publish body. MIDDLE[flags & 15] is all of them from the
 * topic to the user name, for each qos, retain and whether there is a user name (a record's
 * flags byte): one copy instead of four. (The bytes before the topic go with ts: #setTs.)
 */
const MIDDLE = Array.from({ length: 16 }, (_, flags) => part(
  `,"retain":${(flags & RETAIN) !== 0},"qos":${flags & 3},"action":"message_publish","from_username":` +
  ((flags & HAS_USERNAME) !== 0 ? '' : '"undefined"')))
const CLIENT_ID = part(',"from_client_id":')
const PAYLOAD = part(',"payload":')
/** '{"ts":' + 24 characters (String of a double, at most) + ',"topic":', in whole words */
const HEAD_BYTES = 40
/**
 * Room for everything of a message.publish body but the contents of its strings: the parts
 * (the longest middle one), the quotes of four strings, the closing brace, and 3 bytes that
 * the last word of a part may write past its end (the next write covers them).
 */
const PUBLISH_FIXED_BYTES = HEAD_BYTES + MIDDLE[0].words.length * 4 + CLIENT_ID.length + PAYLOAD.length + 8 + 1 + 3
const PLAIN = ENCODINGS.indexOf('plain')

const BODY_INITIAL_BYTES = 16 * 1024
/** scratch buffers kept for later bodies, at most */
const SPARE_BUFFERS = 8

/** @param {Buffer} buffer */
function viewOf (buffer) {
  return new DataView(buffer.buffer, buffer.byteOffset, buffer.length)
}

/**
 * Builds request bodies from records in a reused scratch buffer: one event's JSON, or a
 * batch as a JSON array. For message.publish it writes the bytes the record carries,
 * escaped where JSON needs it, instead of making strings of them; the result is byte for
 * byte bodies.ts's messagePublish, tested.
 */
export class RequestBody {
  /** @type {Buffer} */
  #scratch = Buffer.allocUnsafe(BODY_INITIAL_BYTES)
  /** the scratch buffer, for jsonString's multi-byte stores */
  #view = viewOf(this.#scratch)
  length = 0
  #batched = false
  #events = 0
  /** @type {Buffer[]} scratch buffers of bodies whose deliveries are over (recycle()) */
  #spare = []
  /** @type {WeakSet<ArrayBufferLike>} the memory of the bodies finish() handed out */
  #taken = new WeakSet()
  /**
   * The last `ts` written, and its digits: consecutive events mostly share their
   * millisecond, so most events copy the digits instead of computing them.
   */
  #ts = Number.NaN
  /** '{"ts":<ts>,"topic":' */
  #head = { words: new Uint32Array(HEAD_BYTES / 4), length: 0 }
  #headBytes = Buffer.alloc(HEAD_BYTES)

  /** @param {boolean} batched whether the body is a JSON array */
  start (batched) {
    this.#batched = batched
    this.#events = 0
    this.length = 0
    if (batched) this.#byte(0x5b) // [
  }

  /** bytes the body has once finished */
  get finishedLength () {
    return this.length + (this.#batched ? 1 : 0)
  }

  /**
   * Appends the event of the record at buffer[at, end); returns the length before it, for
   * truncate().
   * @param {Buffer} buffer
   * @param {number} at
   * @param {number} end
   * @returns {number}
   */
  append (buffer, at, end) {
    const mark = this.length
    if (this.#events++ > 0) this.#byte(0x2c) // ,
    if (buffer[at] === JSON_TEXT) {
      this.#reserve(end - at)
      this.length = copy(this.#scratch, this.length, buffer, at + 5, end)
    } else this.#publish(buffer, at, end)
    return mark
  }

  /**
   * Takes back the event appended at `mark`.
   * @param {number} mark
   */
  truncate (mark) {
    this.length = mark
    this.#events--
  }

  /**
   * The body, in memory of its own: a small one is copied out of the scratch buffer; one
   * that fills at least half of it takes the scratch buffer along (copying a batch's tens of
   * kB, into a buffer allocated for it, was 7 % of the delivery thread's time in a profile
   * of the batched benchmark). A buffer taken along is never written again, and at most half
   * of it is unused (recycle() may take it back later). The next scratch buffer (a spare
   * one if it is large enough) has room for a body an eighth larger (in 4 kB steps), so
   * that batches of a similar size neither grow it nor are copied, and no more:
   * every 64 MB of ArrayBuffers allocated costs the worker a full GC (V8's external memory
   * limit), and bodies are most of them (with room for half as large again, 23 full GCs in a
   * 5 s batched benchmark run instead of 19).
   * @returns {Buffer}
   */
  finish () {
    if (this.#batched) this.#byte(0x5d) // ]
    const scratch = this.#scratch
    const length = this.length
    if (length * 2 < scratch.length) {
      const body = Buffer.from(scratch.subarray(0, length))
      if (scratch.length > KEEP_BYTES) this.#use(Buffer.allocUnsafe(BODY_INITIAL_BYTES))
      return body
    }
    const next = Math.ceil(length * 1.125 / 4096) * 4096
    const size = next > KEEP_BYTES ? BODY_INITIAL_BYTES : Math.max(BODY_INITIAL_BYTES, next)
    const spare = this.#spare.pop()
    this.#use(spare !== undefined && spare.length >= size ? spare : Buffer.allocUnsafe(size))
    this.#taken.add(scratch.buffer)
    return scratch.subarray(0, length)
  }

  /**
   * Takes back the memory of a body from finish() once its delivery is over and no socket
   * holds it any more (the sender knows which), for a later body: allocating tens of kB per
   * request cost the worker a full GC per 64 MB (V8's external memory limit), about 20 in a
   * 5 s batched benchmark run. Only memory that finish() handed out comes back (a small
   * body's copy may share its memory with other buffers), once.
   * @param {Buffer} body
   */
  recycle (body) {
    const memory = body.buffer
    if (!this.#taken.delete(memory)) return
    if (memory.byteLength <= KEEP_BYTES && this.#spare.length < SPARE_BUFFERS) this.#spare.push(Buffer.from(memory))
  }

  /**
   * @param {Buffer} buffer
   * @param {number} at
   * @param {number} end
   */
  #publish (buffer, at, end) {
    const flags = buffer[at + 9]
    const encoding = buffer[at + 10]
    const topic = at + 11
    const clientId = topic + 2 + (buffer[topic] | (buffer[topic + 1] << 8))
    const username = clientId + 2 + (buffer[clientId] | (buffer[clientId + 1] << 8))
    const payload = username + 2 + (buffer[username] | (buffer[username + 1] << 8))
    const ts = buffer.readDoubleLE(at + 1)
    if (ts !== this.#ts) this.#setTs(ts)
    // one reservation for the whole event, so that the writes below need no checks: a byte
    // of a string becomes at most 6 (an escape); end - topic counts a little more than the
    // strings' bytes (their length fields too)
    this.#reserve(PUBLISH_FIXED_BYTES + (end - topic) * 6)
    const out = this.#scratch
    const view = this.#view
    let length = copyPart(view, this.length, this.#head)
    length = jsonString(out, view, length, buffer, topic + 2, clientId)
    length = copyPart(view, length, MIDDLE[flags & 15])
    if ((flags & HAS_USERNAME) !== 0) length = jsonString(out, view, length, buffer, username + 2, payload)
    length = copyPart(view, length, CLIENT_ID)
    length = jsonString(out, view, length, buffer, clientId + 2, username)
    length = copyPart(view, length, PAYLOAD)
    const start = payload + 4
    if (encoding === PLAIN) length = jsonString(out, view, length, buffer, start, end)
    else {
      this.length = length
      this.#string(JSON.stringify(encodePayload(buffer.subarray(start, end), ENCODINGS[encoding] ?? 'plain')))
      this.#reserve(1)
      length = this.length
    }
    this.#scratch[length++] = 0x7d // }
    this.length = length
  }

  /**
   * Keeps the start of the body for `ts`, its digits as String(ts) gives them (what bodies.ts
   * writes).
   * @param {number} ts
   */
  #setTs (ts) {
    this.#ts = ts
    const bytes = this.#headBytes
    let length = bytes.write('{"ts":', 0, 'latin1')
    if (Number.isSafeInteger(ts) && ts >= 0) {
      // the usual case, a whole number of milliseconds: its digits without a string
      let count = 1
      for (let rest = ts; rest >= 10; rest = (rest - (rest % 10)) / 10) count++
      let rest = ts
      for (let i = length + count - 1; i >= length; i--) {
        const digit = rest % 10
        bytes[i] = 0x30 + digit
        rest = (rest - digit) / 10
      }
      length += count
    } else length += bytes.write(String(ts), length, 'latin1')
    length += bytes.write(',"topic":', length, 'latin1')
    const words = this.#head.words
    for (let i = 0; i < words.length; i++) words[i] = bytes.readUInt32LE(i * 4)
    this.#head.length = length
  }

  /** @param {number} byte */
  #byte (byte) {
    this.#reserve(1)
    this.#scratch[this.length++] = byte
  }

  /** @param {string} text */
  #string (text) {
    this.#reserve(text.length * 3)
    this.length += this.#scratch.write(text, this.length)
  }

  /** @param {Buffer} buffer the new scratch buffer */
  #use (buffer) {
    this.#scratch = buffer
    this.#view = viewOf(buffer)
  }

  /** @param {number} bytes */
  #reserve (bytes) {
    if (this.length + bytes <= this.#scratch.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.#scratch.length * 2, this.length + bytes))
    this.#scratch.copy(grown, 0, 0, this.length)
    this.#use(grown)
  }
}

/**
 * Copies from[start, end) to out at `length`, which has room; returns the new length.
 * @param {Buffer} out
 * @param {number} length
 * @param {Uint8Array} from
 * @param {number} start
 * @param {number} end
 */
function copy (out, length, from, start, end) {
  // short runs (the parts of a body) copy faster by hand than through a native call
  if (end - start <= 64) {
    for (let i = start; i < end; i++) out[length++] = from[i]
    return length
  }
  out.set(from.subarray(start, end), length)
  return length + end - start
}

/**
 * Copies `part` to the view at `length`, which has room for its words; returns the new
 * length (the padding of its last word is left for the next write to cover).
 * @param {DataView} view
 * @param {number} length
 * @param {Part} part
 */
function copyPart (view, length, part) {
  const words = part.words
  for (let i = 0; i < words.length; i++) view.setUint32(length + i * 4, words[i], true)
  return length + part.length
}

/**
 * Writes bytes[start, end) to out at `length` as the JSON string JSON.stringify gives for
 * their text decoded as UTF-8 (Buffer#toString): ASCII controls, '"' and '\\' escaped,
 * well-formed sequences copied, and each maximal ill-formed subpart replaced by U+FFFD, as
 * the WHATWG decoder does (tested against it). Returns the new length.
 *
 * `out` must have room for 6 bytes per input byte plus the quotes (`view` is over the same
 * memory; a store past its end throws). An escape is written as 6 bytes whatever its length
 * (no branch on the length per escaped byte: the benchmark's binary payloads are mostly
 * NULs); after a 2-byte one the next write covers the other 4.
 * @param {Buffer} out
 * @param {DataView} view
 * @param {number} length
 * @param {Uint8Array} bytes
 * @param {number} start
 * @param {number} end
 */
function jsonString (out, view, length, bytes, start, end) {
  out[length++] = QUOTE
  for (let i = start; i < end;) {
    const byte = bytes[i]
    if (byte < 0x80) {
      const escaped = ESCAPE_LENGTH[byte]
      if (escaped === 0) out[length++] = byte
      else {
        view.setUint32(length, ESCAPE_HEAD[byte], true)
        view.setUint16(length + 4, ESCAPE_TAIL[byte], true)
        length += escaped
      }
      i++
      continue
    }
    // Unicode table 3-7: the lead byte sets how many continuation bytes follow and the
    // range of the first one
    let follow = 0
    let low = 0x80
    let high = 0xbf
    if (byte >= 0xc2 && byte <= 0xdf) follow = 1
    else if (byte >= 0xe0 && byte <= 0xef) {
      follow = 2
      if (byte === 0xe0) low = 0xa0
      else if (byte === 0xed) high = 0x9f
    } else if (byte >= 0xf0 && byte <= 0xf4) {
      follow = 3
      if (byte === 0xf0) low = 0x90
      else if (byte === 0xf4) high = 0x8f
    }
    let next = i + 1
    let whole = follow > 0
    for (let k = 0; k < follow; k++, next++) {
      const continuation = next < end ? bytes[next] : -1
      if (continuation < low || continuation > high) {
        whole = false
        break
      }
      low = 0x80
      high = 0xbf
    }
    if (whole) {
      while (i < next) out[length++] = bytes[i++]
    } else {
      // the bytes read so far become one U+FFFD; the offending byte is read again
      out[length++] = 0xef
      out[length++] = 0xbf
      out[length++] = 0xbd
      i = next
    }
  }
  out[length++] = QUOTE
  return length
}
