// plugins.conf: loading by first-party short name, by path and by npm package name, in
// order, with errors that name the plugin, the file and the line.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import mqtt from 'mqtt'
import { pino } from 'pino'
import { boot } from '../../runtime/boot.ts'

const EXAMPLE = new URL('../../examples/audit-log/index.ts', import.meta.url).pathname
const quiet = pino({ level: 'silent' })

interface Files { [name: string]: string }

async function etc (t: { teardown (fn: () => unknown): void }, files: Files): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapmq-plugins-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const all: Files = {
    'tapmq.conf': 'url = nmq-tcp://127.0.0.1:0\nlog.level = silent\ndata_dir = data\npid_file = data/tapmq.pid\n',
    ...files
  }
  for (const [name, text] of Object.entries(all)) {
    await mkdir(join(dir, name, '..'), { recursive: true })
    await writeFile(join(dir, name), text)
  }
  return dir
}

/** A tiny CommonJS plugin package, installed in node_modules beside plugins.conf. */
const PACKAGE_PLUGIN = {
  'node_modules/tapmq-plugin-stamp/package.json': JSON.stringify({ name: 'tapmq-plugin-stamp', version: '2.0.0', main: 'index.js' }),
  'node_modules/tapmq-plugin-stamp/index.js': `
    module.exports = {
      name: 'stamp', version: '2.0.0',
      setup (host, options) {
        host.hooks.message.publish.tap('stamp', (message, control) => {
          control.rewrite({ payload: Buffer.concat([message.payload, Buffer.from(options.suffix || '!')]) })
        })
      }
    }`
}

test('plugins load in order by path and by package name, with inline options', async (t) => {
  const dir = await etc(t, {
    ...PACKAGE_PLUGIN,
    'plugins.conf': [
      'plugin.audit = on',
      `plugin.audit.source = ${EXAMPLE}`,
      'plugin.audit.file = audit.log',
      'plugin.stamp = on',
      'plugin.stamp.source = tapmq-plugin-stamp',
      'plugin.stamp.suffix = [stamped]',
      ''
    ].join('\n')
  })
  const { tapmq } = await boot({ confFile: join(dir, 'tapmq.conf'), env: {}, log: quiet })
  t.teardown(() => tapmq.stop())
  t.deepEqual(tapmq.plugins.list().map((p) => [p.id, p.name, p.version, p.state]), [
    ['audit', 'example:audit-log', '1.0.0', 'running'],
    ['stamp', 'stamp', '2.0.0', 'running']
  ])
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${tapmq.listeners[0]!.port}`)
  t.teardown(() => client.endAsync())
  await client.subscribeAsync('t')
  const received = new Promise<string>((resolve) => client.once('message', (_topic, payload) => resolve(String(payload))))
  await client.publishAsync('t', 'hello')
  t.is(await received, 'hello[stamped]')
})

test('"off" plugins are loaded but idle, and say where they were switched off', async (t) => {
  const dir = await etc(t, { 'plugins.conf': `plugin.audit = off\nplugin.audit.source = ${EXAMPLE}\n` })
  const { tapmq } = await boot({ confFile: join(dir, 'tapmq.conf'), env: {}, log: quiet })
  t.teardown(() => tapmq.stop())
  const [status] = tapmq.plugins.list()
  t.is(status!.state, 'disabled')
  t.is(status!.detail, `off in ${join(dir, 'plugins.conf')}:1`)
  t.deepEqual(status!.hooks, [])
})

test('a missing plugin stops start-up naming the plugin, file and line', async (t) => {
  const dir = await etc(t, { 'plugins.conf': '# first line\nplugin.ghost = on\nplugin.ghost.source = ./nowhere.ts\n' })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), env: {}, log: quiet }), {
    code: 'TAPMQ_ERR_PLUGIN_NOT_FOUND',
    message: `${join(dir, 'plugins.conf')}:2: plugin "ghost": cannot find "./nowhere.ts" (no file ${join(dir, 'nowhere.ts')}); use a first-party short name, an installed npm package or a path relative to the plugins file`
  })
})

test('an unknown package name and a module that is no plugin are errors too', async (t) => {
  const dir = await etc(t, {
    'plugins.conf': 'plugin.nope = on\nplugin.nope.source = no-such-tapmq-plugin\n',
    'other.conf': 'plugin.bad = on\nplugin.bad.source = ./bad.js\n',
    'bad.js': 'export default { hello: 1 }\n',
    'broken.conf': 'plugin.broken = on\nplugin.broken.source = ./broken.js\n',
    'broken.js': 'throw new Error("exploded at import")\n'
  })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), env: {}, log: quiet }), { code: 'TAPMQ_ERR_PLUGIN_NOT_FOUND', message: /plugins\.conf:1: plugin "nope": cannot find "no-such-tapmq-plugin"/ })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), pluginsFile: join(dir, 'other.conf'), env: {}, log: quiet }), { code: 'TAPMQ_ERR_PLUGIN_INVALID', message: /other\.conf:1: plugin "bad" is not a tapmq plugin/ })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), pluginsFile: join(dir, 'broken.conf'), env: {}, log: quiet }), { code: 'TAPMQ_ERR_PLUGIN_INVALID', message: /broken\.conf:1: .*exploded at import/ })
})

test('invalid options stop start-up with the plugin, file and line', async (t) => {
  const dir = await etc(t, { 'plugins.conf': `\nplugin.audit = on\nplugin.audit.source = ${EXAMPLE}\nplugin.audit.denied = perhaps\n` })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), env: {}, log: quiet }), {
    code: 'TAPMQ_ERR_PLUGIN_OPTIONS',
    message: /plugins\.conf:2: plugin "audit" has invalid options: \/denied Expected boolean/
  })
})

test('an optional plugin that fails only warns, and the broker starts', async (t) => {
  const dir = await etc(t, { 'plugins.conf': 'plugin.ghost = on\nplugin.ghost.source = ./nowhere.ts\nplugin.ghost.optional = true\n' })
  const lines: string[] = []
  const log = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } })
  const { tapmq } = await boot({ confFile: join(dir, 'tapmq.conf'), env: {}, log })
  t.teardown(() => tapmq.stop())
  t.is(tapmq.listeners.length, 1)
  t.true(lines.some((line) => line.includes('optional plugin not loaded') && line.includes('ghost')))
})

test('plugins.conf syntax errors name the line', async (t) => {
  const dir = await etc(t, {
    'plugins.conf': `plugin.audit.source = ${EXAMPLE}\n`,
    'badkey.conf': 'plugins.audit = on\n',
    'badswitch.conf': 'plugin.audit = maybe\n'
  })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), env: {}, log: quiet }), { message: /plugins\.conf:1: invalid value for plugin\.audit\.source: .*a "plugin\.audit = on" line before it/ })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), pluginsFile: join(dir, 'badkey.conf'), env: {}, log: quiet }), { message: /badkey\.conf:1: invalid value for plugins\.audit/ })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), pluginsFile: join(dir, 'badswitch.conf'), env: {}, log: quiet }), { message: /badswitch\.conf:1: invalid value for plugin\.audit: "maybe" \(allowed: on \| off \| true \| false\)/ })
})

test('a plugin whose setup throws stops start-up before any listener opens', async (t) => {
  const dir = await etc(t, {
    'plugins.conf': 'plugin.fail = on\nplugin.fail.source = ./fail.js\n',
    'fail.js': 'export default { name: "fail", version: "1.0.0", setup () { throw new Error("no database") } }\n'
  })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), env: {}, log: quiet }), {
    code: 'TAPMQ_ERR_PLUGIN_SETUP', message: /plugins\.conf:1: plugin "fail" failed to start: no database/
  })
})

test('a plugin for another tapmq version, or with a missing dependency, is refused', async (t) => {
  const dir = await etc(t, {
    'plugins.conf': 'plugin.future = on\nplugin.future.source = ./future.js\n',
    'future.js': 'export default { name: "future", version: "1.0.0", tapmq: ">=99", setup () {} }\n',
    'dep.conf': 'plugin.needy = on\nplugin.needy.source = ./needy.js\n',
    'needy.js': 'export default { name: "needy", version: "1.0.0", dependencies: ["tapmq:webhook"], setup () {} }\n'
  })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), env: {}, log: quiet }), { code: 'TAPMQ_ERR_PLUGIN_VERSION', message: /plugin "future" needs tapmq >=99/ })
  await t.throwsAsync(boot({ confFile: join(dir, 'tapmq.conf'), pluginsFile: join(dir, 'dep.conf'), env: {}, log: quiet }), { code: 'TAPMQ_ERR_PLUGIN_DEPENDENCY', message: /plugin "needy" depends on "tapmq:webhook"/ })
})
