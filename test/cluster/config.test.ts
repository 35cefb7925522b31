// The cluster keys of tapmq.conf, read through the real loader.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import { loadConfig } from '../../runtime/config/load.ts'

async function confFile (t: import('ava').ExecutionContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapmq-cluster-conf-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'tapmq.conf')
  await writeFile(file, text)
  return file
}

test('cluster keys: off by default; defaults for url and node name; cluster.enable implies persistence = redis', async (t) => {
  const plain = loadConfig({ file: await confFile(t, 'url = nmq-tcp://127.0.0.1:1999\n'), env: {} }).broker
  t.deepEqual(plain.cluster, { enable: false, redisUrl: 'redis://127.0.0.1:6379', nodeName: `${hostname()}-1999` })
  t.is(plain.persistence.type, 'memory')
  const on = loadConfig({ file: await confFile(t, 'cluster.enable = true\ncluster.redis.url = redis://:pw@10.0.0.5:6380/2\ncluster.node_name = edge-1\n'), env: {} })
  t.deepEqual(on.broker.cluster, { enable: true, redisUrl: 'redis://:pw@10.0.0.5:6380/2', nodeName: 'edge-1' })
  t.is(on.broker.persistence.type, 'redis')
  t.deepEqual(on.unknown, [])
})

test('cluster keys: bad values are file:line errors', async (t) => {
  const url = await confFile(t, '\ncluster.redis.url = http://10.0.0.5\n')
  t.throws(() => loadConfig({ file: url, env: {} }), {
    code: 'TAPMQ_ERR_CONF_VALUE',
    message: `${url}:2: invalid value for cluster.redis.url: "http://10.0.0.5" (allowed: redis://[user:password@]host:port[/db] or rediss://)`
  })
  const name = await confFile(t, 'cluster.node_name = a/b\n')
  t.throws(() => loadConfig({ file: name, env: {} }), { message: `${name}:1: invalid value for cluster.node_name: "a/b" (allowed: 1 to 64 of A-Z a-z 0-9 . _ : -)` })
  const embedded = await confFile(t, 'persistence = embedded\ncluster.enable = true\n')
  t.throws(() => loadConfig({ file: embedded, env: {} }), {
    message: `${embedded}:1: invalid value for persistence: "embedded" (allowed: redis (or no persistence key) when cluster.enable = true)`
  })
})
