// `tapmq start | stop | reload | restart | --help` as a user runs them: real processes,
// a real pid file, signals, and a real MQTT client that must stay connected on reload.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import mqtt from 'mqtt'
import { tapmq, workspace } from '../helpers/cli.ts'

const EXAMPLE = new URL('../../examples/audit-log/index.ts', import.meta.url).pathname

test('--help documents every command and flag', async (t) => {
  const run = tapmq(['--help'])
  t.is(await run.exited(), 0)
  for (const word of ['start', 'stop', 'restart', 'reload', '--conf', '--plugins', '--webhook', '--auth_http', '--url', '--http', '--port', '--log_level']) {
    t.true(run.output().includes(word), `help mentions ${word}`)
  }
})

test('start runs in the foreground; stop ends it gracefully and removes the pid file', async (t) => {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const broker = tapmq(['start', '--conf', ws.conf])
  t.teardown(() => broker.child.kill('SIGKILL'))
  await broker.waitFor(/"msg":"tapmq started"/)
  const pidFile = join(ws.dir, 'data/tapmq.pid')
  t.true(existsSync(pidFile))

  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${ws.port}`, { reconnectPeriod: 0 })
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))

  const second = tapmq(['start', '--conf', ws.conf])
  t.is(await second.exited(), 1, 'a second start on the same pid file is refused')
  t.regex(second.stderr(), /already running with pid \d+/)

  const stop = tapmq(['stop', '--conf', ws.conf])
  t.is(await stop.exited(), 0)
  t.regex(stop.output(), /tapmq \(pid \d+\) stopped/)
  t.is(await broker.exited(), 0)
  await closed
  t.false(existsSync(pidFile))
})

test('SIGTERM and SIGINT shut down gracefully with exit code 0', async (t) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const ws = await workspace()
    t.teardown(() => ws.remove())
    const broker = tapmq(['start', '--conf', ws.conf])
    t.teardown(() => broker.child.kill('SIGKILL'))
    await broker.waitFor(/"msg":"tapmq started"/)
    broker.child.kill(signal)
    t.is(await broker.exited(), 0, signal)
    t.regex(broker.output(), /"msg":"tapmq stopped"/)
  }
})

test('reload applies plugins.conf edits without dropping MQTT connections', async (t) => {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const plugins = await ws.write('plugins.conf', `plugin.audit = off\nplugin.audit.source = ${EXAMPLE}\n`)
  const broker = tapmq(['start', '--conf', ws.conf, '--plugins', plugins])
  t.teardown(() => broker.child.kill('SIGKILL'))
  await broker.waitFor(/"msg":"tapmq started"/)

  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${ws.port}`, { clientId: 'stays', reconnectPeriod: 0 })
  t.teardown(() => client.endAsync())
  let closes = 0
  client.on('close', () => closes++)

  await ws.write('plugins.conf', `plugin.audit = on\nplugin.audit.source = ${EXAMPLE}\n`)
  const reload = tapmq(['reload', '--conf', ws.conf, '--plugins', plugins])
  t.is(await reload.exited(), 0)
  t.regex(reload.output(), /is reloading its configuration/)
  await broker.waitFor(/"msg":"configuration reloaded"/)
  t.regex(broker.output(), /"plugins":\["audit:running"\]/)

  await client.subscribeAsync('still/here')
  await client.publishAsync('still/here', 'yes')
  t.is(closes, 0, 'the client was never disconnected')
  t.true(existsSync(join(ws.dir, 'data/audit.log')), 'the newly enabled plugin is running')

  broker.child.kill('SIGTERM')
  t.is(await broker.exited(), 0)
})

test('a bad reload keeps the running config and says why', async (t) => {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const broker = tapmq(['start', '--conf', ws.conf])
  t.teardown(() => broker.child.kill('SIGKILL'))
  await broker.waitFor(/"msg":"tapmq started"/)
  await ws.write('tapmq.conf', `url = nmq-tcp://127.0.0.1:${ws.port}\nallow_anonymous = sometimes\n`)
  broker.child.kill('SIGHUP')
  const line = await broker.waitFor(/reload failed/)
  t.regex(line, /tapmq\.conf:2: invalid value for allow_anonymous/)
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${ws.port}`, { reconnectPeriod: 0 })
  await client.endAsync()
  broker.child.kill('SIGTERM')
  t.is(await broker.exited(), 0)
})

test('restart stops the running broker and starts a new one', async (t) => {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const first = tapmq(['start', '--conf', ws.conf])
  t.teardown(() => first.child.kill('SIGKILL'))
  await first.waitFor(/"msg":"tapmq started"/)
  const second = tapmq(['restart', '--conf', ws.conf])
  t.teardown(() => second.child.kill('SIGKILL'))
  t.is(await first.exited(), 0)
  await second.waitFor(/"msg":"tapmq started"/)
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${ws.port}`, { reconnectPeriod: 0 })
  await client.endAsync()
  second.child.kill('SIGTERM')
  t.is(await second.exited(), 0)
})

test('config errors exit with code 2 and name file, line and key', async (t) => {
  const ws = await workspace('max_packet_size = huge')
  t.teardown(() => ws.remove())
  const run = tapmq(['start', '--conf', ws.conf])
  t.is(await run.exited(), 2)
  t.regex(run.stderr(), new RegExp(`^tapmq: ${ws.conf}:8: invalid value for max_packet_size: "huge"`))
})

test('NanoMQ command lines work: "broker start", --url, ignored tuning flags', async (t) => {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const port = ws.port
  const broker = tapmq(['broker', 'start', '--conf', ws.conf, '--url', `nmq-tcp://127.0.0.1:${port}`, '-t', '4', '-n', '32'])
  t.teardown(() => broker.child.kill('SIGKILL'))
  await broker.waitFor(/"msg":"tapmq started"/)
  t.regex(await broker.waitFor(/NanoMQ flag accepted for compatibility/), /"flag":"(tq_thread|parallel)"/)
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
  await client.endAsync()
  broker.child.kill('SIGTERM')
  t.is(await broker.exited(), 0)
})

test('stop and reload say so when no broker runs', async (t) => {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const stop = tapmq(['stop', '--conf', ws.conf])
  t.is(await stop.exited(), 0)
  t.regex(stop.output(), /not running/)
  const reload = tapmq(['reload', '--conf', ws.conf])
  t.is(await reload.exited(), 1)
  t.regex(reload.stderr(), /not running/)
})

test('unknown flags and commands are refused with exit code 2', async (t) => {
  const flag = tapmq(['start', '--colour'])
  t.is(await flag.exited(), 2)
  t.regex(flag.stderr(), /Unknown option '--colour'/)
  const command = tapmq(['launch'])
  t.is(await command.exited(), 2)
  t.regex(command.stderr(), /unknown command "launch"/)
})
