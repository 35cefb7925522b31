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
