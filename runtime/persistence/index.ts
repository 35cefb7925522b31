// The session store the host gives aedes: `persistence = memory` (aedes' default, in
// process) or `persistence = embedded` (SQLite in data_dir, durable). What the host does
// with it: pass it to aedes, hold acknowledgements until writes are durable, publish the
// wills a crashed run left behind, and close the file on stop.
import { join } from 'node:path'
import type { Aedes, PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import { ackAfterStore } from './ack-after-store.ts'
import { PERSISTENCE_FILE, type PersistenceConfig } from './config.ts'
import { SqliteStore, type StoredPacket } from './sqlite-store.ts'
import { type ClusterConfig, type ClusterNode, createRedisBackend } from '../cluster/index.ts'
import type { MetricsRegistry } from '../metrics.ts'

export { PERSISTENCE_FILE, type PersistenceConfig } from './config.ts'

export interface Persistence {
  /** what to spread into aedes' options */
  readonly aedesOptions: { persistence?: SqliteStore | object, id?: string, mq?: object }
  /** the durable store, when there is one */
  readonly store?: SqliteStore
  /** wraps the broker's publish path (after tapmq's handlers are installed) */
  install (broker: Aedes): void
  /** after broker.listen(), before clients connect: finish what a crashed run left */
  recover (broker: Aedes): Promise<void>
  /** before broker.listen(): connect to an external store (Redis); throws when it is unreachable */
  open? (): Promise<void>
  /** persistence = redis: the nodes sharing the store (this one alone without cluster.enable) */
  nodes? (broker: Aedes): ClusterNode[]
  close (): Promise<void>
}

/** what tapmq's aedes patch (004) adds to the broker for sessions kept in a durable store */
interface RestoringBroker {
  restoreSessions (): Promise<{ kept: number, expired: number, willsArmed: number, willsPublished: number }>
  readonly delayedWills: Map<string, unknown>
}

const MEMORY: Persistence = Object.freeze({
  aedesOptions: {},
  install: () => {},
  recover: async () => {},
  close: async () => {}
})

/** `onFatal`: the store can no longer keep what it acknowledges (a failed fdatasync); the broker must stop */
export function createPersistence (config: { persistence: PersistenceConfig, dataDir: string, cluster?: ClusterConfig, aedes?: { heartbeatInterval: number } }, log: Logger,
  metrics?: MetricsRegistry, onFatal: (err: Error) => void = () => {}): Persistence {
  if (config.persistence.type === 'memory') return MEMORY
  if (config.persistence.type === 'redis') {
    const redis = createRedisBackend(config.cluster ?? { enable: false, redisUrl: 'redis://127.0.0.1:6379', nodeName: 'tapmq' }, log, metrics, config.aedes?.heartbeatInterval)
    return { aedesOptions: redis.aedesOptions, install: () => {}, recover: async () => {}, open: redis.open, nodes: redis.nodes, close: redis.close }
  }
  const store = new SqliteStore({ file: join(config.dataDir, PERSISTENCE_FILE), sync: config.persistence.sync, commitWindow: config.persistence.commitWindow })
  store.onError = (err) => log.error({ err, file: store.file }, 'message store commit failed; the writes of this turn are lost')
  store.onSyncFailure = onFatal
  return {
    aedesOptions: { persistence: store },
    store,
    install: (broker) => ackAfterStore(broker, store),
    recover: async (broker) => {
      log.info({ file: store.file, sync: store.sync, commitWindow: store.commitWindow, ...store.stats() }, 'message store opened')
      // MQTT 5: session expiries and delayed wills kept across the restart (aedes patch 004)
      const sessions = await (broker as unknown as RestoringBroker).restoreSessions()
      if (sessions.kept + sessions.expired + sessions.willsArmed + sessions.willsPublished > 0) {
        log.info(sessions, 'MQTT 5 sessions restored: expiries re-armed, sessions expired while tapmq was down wiped, delayed wills re-armed or published')
      }
      const published = await publishOrphanWills(broker, store)
      if (published > 0) log.info({ wills: published }, 'published the wills of clients that were connected when tapmq last stopped without a shutdown')
    },
    close: async () => {
      await store.close()
      log.info({ file: store.file, ...store.counts }, 'message store closed')
    }
  }
}

/**
 * The file is locked to this process, so every will in it belongs to a run that ended
 * without closing its clients (a crash, a kill, a power cut): those clients went away
 * without DISCONNECT, and their wills are due now. aedes would publish them only after
 * 4 heartbeat intervals (its sweep of dead brokers); a restarted broker does it at once.
 */
async function publishOrphanWills (broker: Aedes, store: SqliteStore): Promise<number> {
  const wills: StoredPacket[] = []
  // a delayed will restoreSessions() re-armed waits for its time (or for its client to come back)
  const delayed = (broker as unknown as RestoringBroker).delayedWills
  for await (const will of store.streamWill({ [broker.id]: true })) if (!delayed.has((will as StoredPacket).clientId!)) wills.push(will as StoredPacket)
  for (const will of wills) {
    const packet = will as unknown as PublishPacket
    const allowed = await new Promise<boolean>((resolve) => broker.authorizePublish(null, packet, (err) => resolve(!err)))
    if (allowed) await new Promise<void>((resolve, reject) => broker.publish(packet, (err) => (err ? reject(err) : resolve())))
    await store.delWill({ id: will.clientId! })
  }
  return wills.length
}
