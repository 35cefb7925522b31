// The example plugin's own test, written the way a plugin author would: the SDK test kit
// starts a real broker with the plugin, and a real MQTT client drives it.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import mqtt from 'mqtt'
import { startTestBroker } from 'tapmq/sdk/testing'
import auditLog from './index.ts'

test('writes one line per connect, subscribe, unsubscribe and disconnect', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapmq-audit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const broker = await startTestBroker({
    config: { data_dir: dir },
    plugins: [{ plugin: auditLog, options: { file: 'audit/events.log' } }]
  })
  t.teardown(() => broker.close())

  const client = await mqtt.connectAsync(broker.url, { clientId: 'sensor-1', username: 'alice' })
  await client.subscribeAsync('rooms/+/temp', { qos: 1 })
  await client.unsubscribeAsync('rooms/+/temp')
  await client.endAsync()
  await broker.close()

  const lines = (await readFile(join(dir, 'audit/events.log'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line))
  t.deepEqual(lines.map(({ at: _at, ...rest }) => rest), [
    { event: 'connack', clientId: 'sensor-1', username: 'alice', result: 'success', address: '127.0.0.1' },
    { event: 'subscribed', clientId: 'sensor-1', topic: 'rooms/+/temp', qos: 1 },
    { event: 'unsubscribed', clientId: 'sensor-1', topic: 'rooms/+/temp' },
    { event: 'disconnected', clientId: 'sensor-1', reason: 'normal' }
  ])
})

test('records denied connects unless told not to', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapmq-audit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const denied of [true, false]) {
    const broker = await startTestBroker({
      config: { data_dir: dir, allow_anonymous: 'false' },
      plugins: [{ plugin: auditLog, options: { file: `denied-${denied}.log`, denied } }]
    })
    await t.throwsAsync(mqtt.connectAsync(broker.url, { clientId: 'intruder', reconnectPeriod: 0 }))
    await broker.close()
    const text = await readFile(join(dir, `denied-${denied}.log`), 'utf8')
    t.is(text.includes('"result":"bad_username_or_password"'), denied)
  }
})

test('invalid options are refused before setup', async (t) => {
  await t.throwsAsync(startTestBroker({ plugins: [{ plugin: auditLog, options: { file: '' } }] }), {
    code: 'TAPMQ_ERR_PLUGIN_OPTIONS',
    message: /example:audit-log.*file/
  })
})
