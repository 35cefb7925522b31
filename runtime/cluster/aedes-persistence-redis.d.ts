// aedes-persistence-redis 12 ships no types; tapmq passes the result straight to aedes.
declare module 'aedes-persistence-redis' {
  import type { Redis, RedisOptions } from 'ioredis'
  function aedesPersistenceRedis (options?: RedisOptions & { conn?: Redis, cluster?: unknown, maxSessionDelivery?: number }): object
  export default aedesPersistenceRedis
}
