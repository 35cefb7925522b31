// The persistence keys of tapmq.conf.
import type { Conf } from '../../sdk/conf.ts'
import { ERR_CONF_VALUE } from '../../sdk/errors.ts'

export type PersistenceType = 'memory' | 'embedded' | 'redis'
export type PersistenceSync = 'full' | 'normal'

export interface PersistenceConfig {
  /** `memory`: aedes' in-process store, gone at exit; `embedded`: SQLite file `tapmq.db` in data_dir; `redis`: cluster.redis.url (implied by cluster.enable) */
  readonly type: PersistenceType
  /** embedded only: `full` fsyncs every commit (survives power loss), `normal` survives a crash of the process */
  readonly sync: PersistenceSync
  /**
   * embedded only: ms from the first write of a batch to its COMMIT (`persistence.commit_window`);
   * 0 commits at the end of each event-loop turn
   */
  readonly commitWindow: number
}

/** the default of persistence.commit_window, ms */
export const DEFAULT_COMMIT_WINDOW = 0
/** its upper bound: it delays acknowledgements by up to this much */
export const MAX_COMMIT_WINDOW = 1000

export const PERSISTENCE_FILE = 'tapmq.db'

export function readPersistenceConfig (conf: Conf): PersistenceConfig {
  if (conf.bool('cluster.enable', false)) {
    const entry = conf.entry('persistence')
    if (entry && entry.value.toLowerCase() !== 'redis') {
      throw ERR_CONF_VALUE(['persistence', entry.value, 'redis (or no persistence key) when cluster.enable = true'], { location: entry.location })
    }
    return { type: 'redis', sync: conf.oneOf('persistence.sync', ['full', 'normal'] as const, 'full'), commitWindow: commitWindow(conf) }
  }
  return {
    type: conf.oneOf('persistence', ['memory', 'embedded', 'redis'] as const, 'memory'),
    sync: conf.oneOf('persistence.sync', ['full', 'normal'] as const, 'full'),
    commitWindow: commitWindow(conf)
  }
}

function commitWindow (conf: Conf): number {
  const ms = conf.duration('persistence.commit_window', DEFAULT_COMMIT_WINDOW)
  if (ms > MAX_COMMIT_WINDOW) conf.invalid('persistence.commit_window', `a duration from 0ms to ${MAX_COMMIT_WINDOW}ms`)
  return ms
}

/** The MQTT 5 session keys of tapmq.conf, as aedes options (docs/mqtt5.md, Session expiry). */
export interface SessionExpiryConfig {
  /** seconds; the most Session Expiry Interval a client gets (`max_session_expiry_interval`), 0 = no cap */
  readonly sessionExpiryIntervalLimit: number
  /** sessions waiting to expire (and, apart, delayed wills) held at once (`max_pending_sessions`), 0 = no cap */
  readonly pendingSessionsLimit: number
}

/** the largest Session Expiry Interval MQTT 5 can carry (0xFFFFFFFF s, "never"), in ms */
const MAX_SESSION_EXPIRY_MS = 0xFFFFFFFF * 1000

export function readSessionExpiryConfig (conf: Conf): SessionExpiryConfig {
  const ms = conf.duration('max_session_expiry_interval', 0)
  // whole seconds: a cap under one second would round to 0, which means no cap at all
  if (ms > MAX_SESSION_EXPIRY_MS || (ms > 0 && ms % 1000 !== 0)) {
    conf.invalid('max_session_expiry_interval', 'a whole number of seconds from 0 (no cap) to 4294967295s, for example 2h')
  }
  return {
    sessionExpiryIntervalLimit: ms / 1000,
    pendingSessionsLimit: conf.int('max_pending_sessions', 0, { min: 0 })
  }
}
