// NanoMQ's HTTP API result codes (nanomq 0.8 rest_api.h, plus 118 from later releases) and
// the one error type every handler throws. The JSON body is always `{"code": N, ...}`.

export const CODE = Object.freeze({
  SUCCESS: 0,
  RPC_ERROR: 101,
  UNKNOWN_ERROR: 102,
  WRONG_CREDENTIALS: 103,
  EMPTY_CREDENTIALS: 104,
  MISSING_PARAMS: 107,
  PARAM_ERROR: 108,
  BAD_JSON: 109,
  CLIENT_OFFLINE: 112,
  /** later NanoMQ: "write config file failed"; tapmq answers it for config writes it does not do */
  WRITE_CONFIG_FAILED: 118
})

/**
 * An answer other than success. `message` is tapmq's addition; NanoMQ's own errors
 * (auth, bad JSON, unknown request) leave it out so that their bodies stay byte-exact.
 */
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: number, message?: string) {
    super(message ?? '')
  }

  get detail (): string | undefined {
    return this.message === '' ? undefined : this.message
  }
}

/** JSON.parse for request bodies: anything unparsable is NanoMQ's 400 / 109. */
export function parseJson (body: unknown): unknown {
  if (typeof body !== 'string' || body.trim() === '') throw new ApiError(400, CODE.BAD_JSON)
  try {
    return JSON.parse(body)
  } catch {
    throw new ApiError(400, CODE.BAD_JSON)
  }
}

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
