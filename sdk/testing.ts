// The plugin author's test kit: a real tapmq broker, in this process, on an ephemeral
// port of 127.0.0.1, running the plugins you give it.
//
//   const broker = await startTestBroker({ plugins: [{ plugin: myPlugin, options: { ... } }] })
//   const client = await mqtt.connectAsync(broker.url)
//   ...
//   await broker.close()
import { Writable } from 'node:stream'
import { loadConfig } from '../runtime/config/load.ts'
import { createLogger } from '../runtime/logger.ts'
import type { PluginEntry } from '../runtime/plugins/plugins-file.ts'
import { Tapmq } from '../runtime/tapmq.ts'
import type { BrokerView, Hooks, TapmqPlugin } from './plugin.ts'

export interface TestPlugin {
  readonly plugin: TapmqPlugin
  /** options as setup receives them (validated against the plugin's schema) */
  readonly options?: unknown
}

export interface TestBrokerOptions {
  readonly plugins?: ReadonlyArray<TapmqPlugin | TestPlugin>
  /** broker config keys as in tapmq.conf, e.g. `{ allow_anonymous: 'false' }` */
  readonly config?: Readonly<Record<string, string>>
  /** also open a WebSocket listener */
  readonly websocket?: boolean
}

export interface TestBroker {
  /** `mqtt://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  /** `ws://127.0.0.1:<port>/mqtt`, when asked for */
  readonly wsUrl?: string
  readonly hooks: Hooks
  readonly broker: BrokerView
  /** every log line the broker wrote, parsed */
  readonly logs: ReadonlyArray<Record<string, unknown>>
  readonly tapmq: Tapmq
  close (): Promise<void>
}

export async function startTestBroker (options: TestBrokerOptions = {}): Promise<TestBroker> {
  const settings: Record<string, string> = {
    url: 'nmq-tcp://127.0.0.1:0',
    'log.level': 'info',
    shutdown_timeout: '5s',
    ...(options.websocket ? { 'websocket.enable': 'true', 'websocket.url': 'nmq-ws://127.0.0.1:0/mqtt' } : {}),
    ...options.config
  }
  const { broker: config, conf } = loadConfig({
    env: {},
    cli: Object.entries(settings).map(([key, value]) => ({ key, value, flag: 'startTestBroker' }))
  })
  const logs: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write (chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line))
      done()
    }
  })
  const plugins: PluginEntry[] = (options.plugins ?? []).map((item, i) => {
    const { plugin, options: pluginOptions } = 'plugin' in item ? item : { plugin: item, options: undefined }
    return {
      id: plugin.name,
      enabled: true,
      source: plugin.name,
      optional: false,
      inline: [],
      location: { file: 'startTestBroker', line: i + 1 },
      baseDir: process.cwd(),
      preloaded: { plugin, options: pluginOptions ?? {} }
    }
  })
  const tapmq = new Tapmq({ config, conf, plugins, log: createLogger(config.log, sink) })
  await tapmq.start()
  const [main, ws] = tapmq.listeners
  return {
    url: `mqtt://127.0.0.1:${main!.port}`,
    port: main!.port,
    wsUrl: options.websocket ? `ws://127.0.0.1:${ws!.port}/mqtt` : undefined,
    hooks: tapmq.hooks,
    broker: tapmq.brokerView,
    logs,
    tapmq,
    close: () => tapmq.stop()
  }
}
