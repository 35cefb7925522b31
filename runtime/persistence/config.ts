// The persistence keys of tapmq.conf.
import type { Conf } from '../../sdk/conf.ts'
import { ERR_CONF_VALUE } from '../../sdk/errors.ts'

export type PersistenceType = 'memory' | 'embedded'
export type PersistenceSync = 'full' | 'normal'

export interface PersistenceConfig {
  /** `memory`: aedes' in-process store, gone at exit; `embedded`: SQLite file `tapmq.db` in data_dir */
  readonly type: PersistenceType
  /** embedded only: `full` fsyncs every commit (survives power loss), `normal` survives a crash of the process */
  readonly sync: PersistenceSync
}

export const PERSISTENCE_FILE = 'tapmq.db'

export function readPersistenceConfig (conf: Conf): PersistenceConfig {
  const entry = conf.entry('persistence')
  if (entry && entry.value.toLowerCase() === 'redis') {
    throw ERR_CONF_VALUE(['persistence', entry.value, 'memory | embedded; redis is not yet available, it arrives with cluster support'],
      { location: entry.location })
  }
  return {
    type: conf.oneOf('persistence', ['memory', 'embedded'] as const, 'memory'),
    sync: conf.oneOf('persistence.sync', ['full', 'normal'] as const, 'full')
  }
}
