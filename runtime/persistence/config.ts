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
}

export const PERSISTENCE_FILE = 'tapmq.db'

export function readPersistenceConfig (conf: Conf): PersistenceConfig {
  if (conf.bool('cluster.enable', false)) {
    const entry = conf.entry('persistence')
    if (entry && entry.value.toLowerCase() !== 'redis') {
      throw ERR_CONF_VALUE(['persistence', entry.value, 'redis (or no persistence key) when cluster.enable = true'], { location: entry.location })
    }
    return { type: 'redis', sync: conf.oneOf('persistence.sync', ['full', 'normal'] as const, 'full') }
  }
  return {
    type: conf.oneOf('persistence', ['memory', 'embedded', 'redis'] as const, 'memory'),
    sync: conf.oneOf('persistence.sync', ['full', 'normal'] as const, 'full')
  }
}
