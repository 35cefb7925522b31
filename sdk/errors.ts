// One table of coded errors (Fastify's lib/errors.js shape): every error a user can
// meet carries a stable `code`, and its message says what to do about it.

export interface SourceLocation {
  file: string
  line: number
}

/** `file:line`, or just the source for values without a line (an environment variable, a flag). */
export function formatLocation (location: SourceLocation): string {
  return location.line > 0 ? `${location.file}:${location.line}` : location.file
}

export class TapmqError extends Error {
  readonly code: string
  readonly location?: SourceLocation

  constructor (code: string, message: string, options: { location?: SourceLocation, cause?: unknown } = {}) {
    super(options.location ? `${formatLocation(options.location)}: ${message}` : message, { cause: options.cause })
    this.name = 'TapmqError'
    this.code = code
    this.location = options.location
  }

  override toString (): string {
    return `TapmqError [${this.code}]: ${this.message}`
  }
}

type MessageArgs = readonly unknown[]

function defineError<A extends MessageArgs> (code: string, format: (...args: A) => string) {
  const make = (args: A, options?: { location?: SourceLocation, cause?: unknown }) =>
    new TapmqError(code, format(...args), options)
  return Object.assign(make, { code })
}

/** config files */
export const ERR_CONF_SYNTAX = defineError('TAPMQ_ERR_CONF_SYNTAX',
  (text: string) => `expected "key = value" or a "#" comment, got ${JSON.stringify(text)}`)
export const ERR_CONF_VALUE = defineError('TAPMQ_ERR_CONF_VALUE',
  (key: string, value: string, allowed: string) => `invalid value for ${key}: ${JSON.stringify(value)} (allowed: ${allowed})`)
export const ERR_CONF_MISSING = defineError('TAPMQ_ERR_CONF_MISSING',
  (key: string, file: string) => `${key} is required in ${file}`)
export const ERR_CONF_FILE = defineError('TAPMQ_ERR_CONF_FILE',
  (file: string, reason: string) => `cannot read config file ${file}: ${reason}`)

/** plugins */
export const ERR_PLUGIN_NOT_FOUND = defineError('TAPMQ_ERR_PLUGIN_NOT_FOUND',
  (id: string, source: string, reason: string) =>
    `plugin "${id}": cannot find ${JSON.stringify(source)} (${reason}); use a first-party short name, an installed npm package or a path relative to the plugins file`)
export const ERR_PLUGIN_INVALID = defineError('TAPMQ_ERR_PLUGIN_INVALID',
  (id: string, reason: string) => `plugin "${id}" is not a tapmq plugin: ${reason}; export default definePlugin({ ... }) from 'tapmq/sdk'`)
export const ERR_PLUGIN_VERSION = defineError('TAPMQ_ERR_PLUGIN_VERSION',
  (id: string, range: string, version: string) => `plugin "${id}" needs tapmq ${range}, but this is tapmq ${version}`)
export const ERR_PLUGIN_DEPENDENCY = defineError('TAPMQ_ERR_PLUGIN_DEPENDENCY',
  (id: string, dependency: string) => `plugin "${id}" depends on "${dependency}", which is not loaded before it; list "${dependency}" earlier in the plugins file`)
export const ERR_PLUGIN_OPTIONS = defineError('TAPMQ_ERR_PLUGIN_OPTIONS',
  (id: string, details: string) => `plugin "${id}" has invalid options: ${details}`)
export const ERR_PLUGIN_SETUP = defineError('TAPMQ_ERR_PLUGIN_SETUP',
  (id: string, reason: string) => `plugin "${id}" failed to start: ${reason}`)
export const ERR_PLUGIN_UNKNOWN = defineError('TAPMQ_ERR_PLUGIN_UNKNOWN',
  (id: string) => `no plugin named "${id}" is loaded`)

/** runtime */
export const ERR_LISTEN = defineError('TAPMQ_ERR_LISTEN',
  (url: string, reason: string) => `cannot listen on ${url}: ${reason}`)
export const ERR_HOOK_TIMEOUT = defineError('TAPMQ_ERR_HOOK_TIMEOUT',
  (plugin: string, hook: string, ms: number) => `plugin "${plugin}" did not answer hook ${hook} within ${ms} ms`)
