// `persistence = redis` and `cluster.enable = true`: aedes on Redis. aedes-persistence-redis
// holds sessions, subscriptions, retained messages, offline queues and wills; with the
// cluster on, mqemitter-redis carries every publish (and aedes' $SYS heartbeats, births and
// takeovers) through Redis pub/sub to every node. tapmq owns the three ioredis connections,
// so that it can check Redis before start, log and count outages, and report what was lost.
import { randomBytes } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import mqemitterRedis from 'mqemitter-redis'
import aedesPersistenceRedis from 'aedes-persistence-redis'
import type { Aedes } from 'aedes'
import type { Logger } from 'pino'
import { TapmqError } from '../../sdk/errors.ts'
import type { BrokerNode } from '../../sdk/plugin.ts'
import type { MetricsRegistry } from '../metrics.ts'
import { type ClusterConfig, redactedUrl } from './config.ts'

export { type ClusterConfig, readClusterConfig } from './config.ts'

export type ClusterNode = BrokerNode

export interface RedisBackend {
  readonly aedesOptions: { id?: string, persistence: object, mq?: object }
  /** resolves once Redis answers; a TapmqError naming the url when it does not */
  open (): Promise<void>
  /** the live nodes (cluster) or this node alone */
  nodes (broker: Aedes): ClusterNode[]
  close (): Promise<void>
}

const CONNECT_TIMEOUT = 5_000

export function createRedisBackend (config: ClusterConfig, log: Logger, metrics?: MetricsRegistry, heartbeatInterval = 60_000): RedisBackend {
  const url = redactedUrl(config.redisUrl)
  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT,
    // reconnect for ever, at most every 2 s; commands wait in the offline queue meanwhile
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    maxRetriesPerRequest: null
  }
  const main = new Redis(config.redisUrl, options)
  const connections: Array<[string, Redis]> = [['persistence', main]]
  let mq: ReturnType<typeof mqemitterRedis> | undefined
  if (config.enable) {
    const sub = main.duplicate()
    const pub = main.duplicate()
    connections.push(['subscriber', sub], ['publisher', pub])
    mq = mqemitterRedis({ subConn: sub, pubConn: pub })
    // errors on the emitter are logged by the connection watchers below
    ;(mq as unknown as { state: NodeJS.EventEmitter }).state.on('error', () => {})
  }
  const persistence = aedesPersistenceRedis({ conn: main })
  const id = config.enable ? `${config.nodeName}~${randomBytes(4).toString('hex')}` : undefined

  const counters = { disconnects: 0, reconnects: 0, lostPublishes: 0, outageMs: 0 }
  metrics?.gauge('tapmq_redis_disconnects_total', 'Redis connections lost at runtime', () => counters.disconnects)
  metrics?.gauge('tapmq_redis_reconnects_total', 'Redis connections restored', () => counters.reconnects)
  metrics?.gauge('tapmq_redis_lost_publishes_total', 'Publishes that could not be sent to other nodes through Redis', () => counters.lostPublishes)
  metrics?.gauge('tapmq_redis_outage_seconds_total', 'Time Redis connections were down', () => counters.outageMs / 1000)
  metrics?.gauge('tapmq_redis_up', '1 when every Redis connection is ready', () => (connections.every(([, c]) => c.status === 'ready') ? 1 : 0))

  let opened = false
  let lastError: Error | undefined
  let closing = false
  for (const [role, conn] of connections) {
    let downSince = 0
    let lostAtDown = 0
    conn.on('error', (err: Error) => { lastError = err; if (opened && !closing) log.debug({ err: err.message, role, url }, 'Redis connection error') })
    conn.on('close', () => {
      if (!opened || closing || downSince) return
      downSince = Date.now()
      lostAtDown = counters.lostPublishes
      counters.disconnects++
      log.error({ role, url }, 'Redis connection lost; reconnecting')
    })
    conn.on('ready', () => {
      if (!downSince) return
      const ms = Date.now() - downSince
      counters.outageMs += ms
      counters.reconnects++
      log.warn({ role, url, outageMs: ms, lostPublishes: counters.lostPublishes - lostAtDown },
        'Redis connection restored; messages published elsewhere during the outage were not delivered here, and lostPublishes were not sent to the other nodes')
      downSince = 0
    })
  }
  if (mq) {
    const emit = mq.emit.bind(mq)
    mq.emit = (message, done) => emit(message, (err?: Error) => {
      if (err && !closing) counters.lostPublishes++
      done?.(err)
    })
  }

  return {
    aedesOptions: { ...(id ? { id } : {}), persistence, ...(mq ? { mq } : {}) },
    async open () {
      try {
        await Promise.all(connections.map(async ([, conn]) => {
          await withTimeout(conn.connect(), CONNECT_TIMEOUT + 1_000)
          await conn.ping()
        }))
      } catch (err) {
        closing = true
        for (const [, conn] of connections) conn.disconnect()
        throw new TapmqError('TAPMQ_ERR_REDIS', `cannot reach Redis at ${url}: ${lastError?.message ?? (err as Error).message}`, { cause: err })
      }
      opened = true
      log.info({ url, cluster: config.enable, node: config.enable ? config.nodeName : undefined, id }, 'connected to Redis')
    },
    nodes (broker) {
      const now = Date.now()
      const seen: Record<string, number> = config.enable ? { ...(broker as unknown as { brokers: Record<string, number> }).brokers } : {}
      seen[broker.id] = now
      const alive = now - 3 * heartbeatInterval
      return Object.entries(seen).filter(([, last]) => last >= alive).map(([nodeId, last]) => ({
        id: nodeId, name: config.enable ? nodeId.replace(/~[0-9a-f]+$/, '') : nodeId, lastHeartbeat: nodeId === broker.id ? now : last, self: nodeId === broker.id
      })).sort((a, b) => a.name.localeCompare(b.name))
    },
    async close () {
      closing = true
      // the persistence's destroy() would unsubscribe through the emitter broker.close() already
      // closed (and waits for ever when setup never ran): close its connection directly
      for (const [, conn] of connections) if (conn.status !== 'end') conn.disconnect()
    }
  }
}

function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })
  ]).finally(() => clearTimeout(timer))
}
