// An audit log: one JSON line per connect, disconnect, subscribe and unsubscribe, appended
// to a file. A third-party plugin in the shape the README walks through: it imports only
// `tapmq/sdk`, and it is loaded from a path in plugins.conf:
//
//   plugin.audit = on
//   plugin.audit.source = ../examples/audit-log/index.ts
//   plugin.audit.file = ../data/audit.log
import { createWriteStream, mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { definePlugin, STAGE, Type, type Static } from 'tapmq/sdk'

const PLUGIN_NAME = 'example:audit-log'

const Options = Type.Object({
  /** where to append; relative paths are relative to the broker's data directory */
  file: Type.String({ minLength: 1, default: 'audit.log' }),
  /** also record denied connects (CONNACK other than 0) */
  denied: Type.Boolean({ default: true })
})
type Options = Static<typeof Options>

export default definePlugin({
  name: PLUGIN_NAME,
  version: '1.0.0',
  description: 'Appends client lifecycle and subscription events to a JSON-lines file',
  tapmq: '>=0.1.0',
  options: Options,

  setup (host, options: Options) {
    const path = resolve(host.paths.data, options.file)
    mkdirSync(dirname(path), { recursive: true })
    const out = createWriteStream(path, { flags: 'a' })
    const lines = host.metrics.counter('lines_total', 'Audit lines written')
    const write = (record: Record<string, unknown>) => {
      out.write(JSON.stringify({ at: new Date().toISOString(), ...record }) + '\n')
      lines.inc()
    }

    // observers run after rewriting and auth plugins, so the log shows the final outcome
    const tap = { name: PLUGIN_NAME, stage: STAGE.OBSERVE }
    host.hooks.client.connack.tap(tap, (event) => {
      if (event.returnCode !== 0 && !options.denied) return
      write({ event: 'connack', clientId: event.clientId, username: event.username, result: event.result, address: event.peer.address })
    })
    host.hooks.client.disconnected.tap(tap, (event) => {
      write({ event: 'disconnected', clientId: event.clientId, reason: event.reason })
    })
    host.hooks.session.subscribed.tap(tap, (event) => {
      write({ event: 'subscribed', clientId: event.clientId, topic: event.topic, qos: event.qos })
    })
    host.hooks.session.unsubscribed.tap(tap, (event) => {
      write({ event: 'unsubscribed', clientId: event.clientId, topic: event.topic })
    })
    host.log.info({ file: path }, 'audit log open')

    return {
      health: () => (out.writable ? { status: 'ok' } : { status: 'down', detail: `cannot write ${path}` }),
      close: () => new Promise<void>((done) => out.end(done))
    }
  }
})
