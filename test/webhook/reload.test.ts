// `tapmq reload` (SIGHUP): a changed web_hook.conf applies without restarting the worker
// where it can; new events restart the plugin after a drain; a bad file changes nothing.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { connectClient, settle, until } from '../helpers/mqtt.ts'
import { bootFiles, Receiver } from './receiver.ts'

const logged = (lines: readonly string[], msg: string) => lines.map((line) => JSON.parse(line) as { msg: string }).filter((line) => line.msg === msg).length

test('in place: new URL, headers, encoding and topic filter apply to the next events, queue and worker kept', async (t) => {
  const receiver = await Receiver.start(t)
  const conf = (lines: string[]) => ['web.hook.enable=true', ...lines].join('\n')
  const { dir, port, start, reload, lines } = await bootFiles(t, conf([
    `web.hook.url=${receiver.url('/v1')}`,
    'web.hook.rule.message.publish.1={"action": "on_message_publish", "topic": "a/#"}'
  ]))
  const booted = await start()
  t.teardown(() => booted.tapmq.stop())
  const client = await connectClient(t, `mqtt://127.0.0.1:${port}`, { clientId: 'r' })
  await client.publishAsync('a/1', 'one')
  await client.publishAsync('b/1', 'not yet')
  await receiver.body('"topic":"a/1"')

  await writeFile(join(dir, 'web_hook.conf'), conf([
    `web.hook.url=${receiver.url('/v2')}`,
    'web.hook.headers.x-version=2',
    'web.hook.body.encoding_of_payload_field=base64',
    'web.hook.rule.message.publish.1={"action": "on_message_publish", "topic": "b/#"}'
  ]))
  await reload(booted)
  await client.publishAsync('a/2', 'no longer')
  await client.publishAsync('b/2', 'two')
  const body = await receiver.body('"topic":"b/2"')
  t.is((JSON.parse(body) as { payload: string }).payload, Buffer.from('two').toString('base64'))
  const second = receiver.requests.find((request) => request.body === body)!
  t.is(second.url, '/v2')
  t.is(second.headers['x-version'], '2')
  t.deepEqual(receiver.events().map((event) => event.topic), ['a/1', 'b/2'])
  t.is(logged(lines, 'plugin reconfigured'), 1)
  t.is(logged(lines, 'plugin started'), 1)
  await until(() => booted.tapmq.plugins.status('webhook').counters.sent_total === 2, 'sent_total 2')
})

test('a new event needs a new tap: the plugin restarts (after a drain) and sends it', async (t) => {
  const receiver = await Receiver.start(t)
  const { dir, port, start, reload, lines } = await bootFiles(t, [
    'web.hook.enable=true', `web.hook.url=${receiver.url()}`, 'web.hook.rule.client.connack.1={"action": "on_client_connack"}'
  ].join('\n'))
  const booted = await start()
  t.teardown(() => booted.tapmq.stop())
  await connectClient(t, `mqtt://127.0.0.1:${port}`, { clientId: 'before' })
  await receiver.body('"clientid":"before"')

  await writeFile(join(dir, 'web_hook.conf'), [
    'web.hook.enable=true', `web.hook.url=${receiver.url()}`,
    'web.hook.rule.client.connack.1={"action": "on_client_connack"}',
    'web.hook.rule.client.connected.1={"action": "on_client_connected"}'
  ].join('\n'))
  await reload(booted)
  t.deepEqual([...booted.tapmq.plugins.status('webhook').hooks].sort(), ['client.connack', 'client.connected'])
  await connectClient(t, `mqtt://127.0.0.1:${port}`, { clientId: 'after' })
  await receiver.find((event) => event.action === 'client_connected' && event.clientid === 'after')
  await receiver.find((event) => event.action === 'client_connack' && event.clientid === 'after')
  // one body per event: the old instance's taps are off
  t.is(receiver.events().filter((event) => event.clientid === 'after').length, 2)
  t.is(logged(lines, 'plugin started'), 2)
  t.is(logged(lines, 'webhook stopped; every queued event was sent'), 1)
})

test('a bad file at reload is refused with its file:line; the running config stays', async (t) => {
  const receiver = await Receiver.start(t)
  const good = ['web.hook.enable=true', `web.hook.url=${receiver.url()}`, 'web.hook.rule.client.connack.1={"action": "on_client_connack"}']
  const { dir, port, start, reload } = await bootFiles(t, good.join('\n'))
  const booted = await start()
  t.teardown(() => booted.tapmq.stop())
  await writeFile(join(dir, 'web_hook.conf'), [...good, 'web.hook.body.encoding_of_payload_field=rot13'].join('\n'))
  await t.throwsAsync(reload(booted), { message: `${join(dir, 'web_hook.conf')}:4: invalid value for web.hook.body.encoding_of_payload_field: "rot13" (allowed: plain | base64 | base62 | base62_nanomq08)` })
  await connectClient(t, `mqtt://127.0.0.1:${port}`, { clientId: 'still' })
  await receiver.body('"clientid":"still"')
  t.is(booted.tapmq.plugins.status('webhook').state, 'running')
})

test('switched off at reload: drained and idle', async (t) => {
  const receiver = await Receiver.start(t)
  const { dir, port, start, reload } = await bootFiles(t, [
    'web.hook.enable=true', `web.hook.url=${receiver.url()}`, 'web.hook.rule.client.connack.1={"action": "on_client_connack"}'
  ].join('\n'))
  const booted = await start()
  t.teardown(() => booted.tapmq.stop())
  await connectClient(t, `mqtt://127.0.0.1:${port}`, { clientId: 'on' })
  await receiver.body('"clientid":"on"')
  await writeFile(join(dir, 'web_hook.conf'), `web.hook.enable=false\nweb.hook.url=${receiver.url()}\n`)
  await reload(booted)
  t.is(booted.tapmq.plugins.status('webhook').state, 'disabled')
  const client = await connectClient(t, `mqtt://127.0.0.1:${port}`, { clientId: 'off' })
  await client.endAsync()
  // a connect that would have matched came and went; the receiver heard nothing of it
  await settle(300)
  t.false(receiver.bodies().some((body) => body.includes('"clientid":"off"')))
})
