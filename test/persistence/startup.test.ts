// Start-up of the embedded store: a locked or damaged file stops tapmq with an error that
// names it (never an empty store in its place); the config keys; a graceful restart.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import mqtt from 'mqtt'
import { loadConfig } from '../../runtime/config/load.ts'
import { openDatabase, SqliteStore } from '../../runtime/persistence/sqlite-store.ts'
import { freePort, startTapmq, tapmq, workspace } from '../helpers/cli.ts'
import { connectClient, nextMessage, tmpDir, until } from '../helpers/mqtt.ts'
import { testBroker } from '../helpers/broker.ts'

const WAIT = 10_000

test('a second broker on the same data_dir exits non-zero naming the locked store', async (t) => {
  const ws = await workspace('persistence = embedded')
  t.teardown(() => ws.remove())
  const first = await startTapmq(t, ws, WAIT)

  // its own port and pid file, so that only the store is shared
  const port = await freePort()
  const second = tapmq(['start', '--conf', ws.conf, '--plugins', join(ws.dir, 'plugins.conf'),
    '--url', `nmq-tcp://127.0.0.1:${port}`, '--pid_file', join(ws.dir, 'second.pid')])
  t.teardown(() => { if (second.child.exitCode === null) second.child.kill('SIGKILL') })
  const code = await second.exited(WAIT)
  t.not(code, 0)
  const store = join(ws.dir, 'data', 'tapmq.db')
  t.true(second.stderr().includes(`the message store ${store} is locked by another process`), second.stderr())
  t.false(second.output().includes('tapmq started'))
  t.is(first.child.exitCode, null, 'the first broker keeps running')
})

test('a garbage file in place of the store: exit non-zero naming it, and the file is left as it was', async (t) => {
  const ws = await workspace('persistence = embedded')
  t.teardown(() => ws.remove())
  const store = join(ws.dir, 'data', 'tapmq.db')
  await mkdir(join(ws.dir, 'data'))
  const garbage = Buffer.from('this is not an SQLite database, but it is somebody\'s data\n'.repeat(200))
  await writeFile(store, garbage)
  const run = tapmq(['start', '--conf', ws.conf, '--plugins', join(ws.dir, 'plugins.conf')])
  t.teardown(() => { if (run.child.exitCode === null) run.child.kill('SIGKILL') })
  t.not(await run.exited(WAIT), 0)
  t.true(run.stderr().includes(`the message store ${store} is damaged`), run.stderr())
  t.true(run.stderr().includes('will not start with an empty store'))
  t.false(run.output().includes('tapmq started'))
  t.deepEqual(await readFile(store), garbage, 'not overwritten')
})

test('a store with a damaged page is refused by the integrity check', async (t) => {
  const dir = await tmpDir(t)
  const file = join(dir, 'tapmq.db')
  const store = new SqliteStore({ file })
  await store.setup({ id: 'b1' })
  // enough retained messages for several pages, then a clean close (checkpointed into the file)
  for (let i = 0; i < 200; i++) await store.storeRetained({ topic: `t/${i}`, payload: Buffer.alloc(200, i), qos: 0, retain: true })
  await store.flush()
  await store.destroy()
  const bytes = await readFile(file)
  t.true(bytes.length >= 8 * 4096)
  // scribble over pages 3 to 5 (page 1 holds the header and the schema)
  bytes.fill(0xA5, 2 * 4096 + 100, 5 * 4096)
  await writeFile(file, bytes)
  const err = t.throws(() => openDatabase(file, 'full'))
  t.is((err as Error & { code?: string }).code, 'TAPMQ_ERR_PERSISTENCE_CORRUPT')
  t.true(err!.message.includes(file))
})

test('an SQLite file that is not a tapmq store is refused, not reused', async (t) => {
  const dir = await tmpDir(t)
  const file = join(dir, 'tapmq.db')
  const { default: Database } = await import('better-sqlite3')
  const other = new Database(file)
  other.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY)')
  other.close()
  const err = t.throws(() => openDatabase(file, 'full'))
  t.is((err as Error & { code?: string }).code, 'TAPMQ_ERR_PERSISTENCE_OPEN')
  t.regex(err!.message, /not a tapmq message store/)
})

test('persistence keys: memory by default, embedded with sync full or normal and a commit window, redis (and implied by cluster.enable)', async (t) => {
  const dir = await tmpDir(t)
  const conf = async (text: string) => {
    const file = join(dir, `c${Math.random().toString(16).slice(2)}.conf`)
    await writeFile(file, text)
    return file
  }
  t.deepEqual(loadConfig({ file: await conf(''), env: {} }).broker.persistence, { type: 'memory', sync: 'full', commitWindow: 0 })
  t.deepEqual(loadConfig({ file: await conf('persistence = embedded\npersistence.sync = normal\n'), env: {} }).broker.persistence,
    { type: 'embedded', sync: 'normal', commitWindow: 0 })
  t.deepEqual(loadConfig({ file: await conf('persistence = embedded\npersistence.commit_window = 2ms\n'), env: {} }).broker.persistence,
    { type: 'embedded', sync: 'full', commitWindow: 2 })
  t.is(loadConfig({ file: await conf('persistence = embedded\npersistence.commit_window = 10ms\n'), env: {} }).broker.persistence.commitWindow, 10)
  const tooLong = await conf('persistence.commit_window = 2s\n')
  t.throws(() => loadConfig({ file: tooLong, env: {} }), { message: `${tooLong}:1: invalid value for persistence.commit_window: "2s" (allowed: a duration from 0ms to 1000ms)` })
  // persistence = redis: test/cluster/
  t.is(loadConfig({ file: await conf('persistence = redis\n'), env: {} }).broker.persistence.type, 'redis')
  t.is(loadConfig({ file: await conf('cluster.enable = true\n'), env: {} }).broker.persistence.type, 'redis')
  const typo = await conf('persistence = sqlite\n')
  t.throws(() => loadConfig({ file: typo, env: {} }), { message: `${typo}:1: invalid value for persistence: "sqlite" (allowed: memory | embedded | redis)` })
  const sync = await conf('persistence.sync = off\n')
  t.throws(() => loadConfig({ file: sync, env: {} }), { message: `${sync}:1: invalid value for persistence.sync: "off" (allowed: full | normal)` })
})

test('the stock etc/tapmq.conf uses the embedded store in data_dir', (t) => {
  const { broker } = loadConfig({ file: new URL('../../etc/tapmq.conf', import.meta.url).pathname, env: {} })
  t.deepEqual(broker.persistence, { type: 'embedded', sync: 'full', commitWindow: 0 })
})

test('a graceful stop and start keeps sessions, queues and retained messages', async (t) => {
  const dir = await tmpDir(t)
  const config = { persistence: 'embedded', data_dir: dir }
  const first = await testBroker(t, { config })
  const sub = await connectClient(t, first.url, { clientId: 'keeper', clean: false })
  await sub.subscribeAsync('kept/#', { qos: 1 })
  await sub.endAsync()
  const pub = await connectClient(t, first.url, { clientId: 'pub' })
  await pub.publishAsync('kept/queued', 'while offline', { qos: 1 })
  await pub.publishAsync('kept/retained', 'retained', { qos: 1, retain: true })
  await pub.endAsync()
  await first.close()
  t.is((await stat(join(dir, 'tapmq.db'))).mode & 0o777, 0o600, 'the store is readable by its owner only')

  const second = await testBroker(t, { config })
  t.like(second.logs.find((line) => line.msg === 'message store opened'), { retained: 1, sessions: 1, queued: 2 })
  // the handler goes on before CONNACK: the queue is flushed right after it
  const back = mqtt.connect(second.url, { clientId: 'keeper', clean: false, reconnectPeriod: 0 })
  t.teardown(() => { back.end(true) })
  const received: string[] = []
  back.on('message', (_topic, payload) => received.push(payload.toString()))
  await until(() => received.length >= 2, 'the queued messages', WAIT)
  t.deepEqual(received.sort(), ['retained', 'while offline'])
  const reader = await connectClient(t, second.url, { clientId: 'reader' })
  const message = nextMessage(reader, WAIT)
  await reader.subscribeAsync('kept/retained')
  t.is((await message)[1].toString(), 'retained')
})
