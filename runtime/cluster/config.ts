// The cluster keys of tapmq.conf: `cluster.enable`, `cluster.redis.url`, `cluster.node_name`.
import { hostname } from 'node:os'
import type { Conf } from '../../sdk/conf.ts'
import { ERR_CONF_VALUE } from '../../sdk/errors.ts'

export interface ClusterConfig {
  /** several tapmq nodes share sessions, retained messages and routing through Redis */
  readonly enable: boolean
  /** the Redis server of `persistence = redis` and of the cluster */
  readonly redisUrl: string
  /** this node's name (unique in the cluster); the aedes id is `<name>~<run>` */
  readonly nodeName: string
}

const NODE_NAME = /^[A-Za-z0-9._:-]{1,64}$/

export function readClusterConfig (conf: Conf, port: number): ClusterConfig {
  const redisUrl = conf.string('cluster.redis.url', 'redis://127.0.0.1:6379')
  const urlEntry = conf.entry('cluster.redis.url')
  let parsed: URL | undefined
  try { parsed = new URL(redisUrl) } catch {}
  if (!parsed || !/^rediss?:$/.test(parsed.protocol)) {
    throw ERR_CONF_VALUE(['cluster.redis.url', redisUrl, 'redis://[user:password@]host:port[/db] or rediss://'], { location: urlEntry?.location })
  }
  const nodeName = conf.string('cluster.node_name', `${hostname()}-${port}`)
  if (!NODE_NAME.test(nodeName)) {
    throw ERR_CONF_VALUE(['cluster.node_name', nodeName, '1 to 64 of A-Z a-z 0-9 . _ : -'], { location: conf.entry('cluster.node_name')?.location })
  }
  return { enable: conf.bool('cluster.enable', false), redisUrl, nodeName }
}

/** the url without its password, for logs and errors */
export function redactedUrl (url: string): string {
  const parsed = new URL(url)
  if (parsed.password) parsed.password = '******'
  return parsed.toString()
}
