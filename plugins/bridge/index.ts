// NanoMQ's MQTT bridge (nanomq_bridge.conf): local messages on the `forwards` topics are
// published to an upstream broker, and the upstream's messages on `subscription.<n>.topic`
// are published locally. Several named bridges may run side by side.
//
// Messages that came from the upstream are published locally by the broker itself, so
// `message.publish` never sees them and they are never forwarded back up, whatever
// `forwards` says. Echoes of our own forwards (MQTT 3.x has no no-local) are recognised by
// fingerprint and dropped; MQTT 5 bridges subscribe with no-local.
import { join } from 'node:path'
import { definePlugin, type PluginHealth, type PluginHost, STAGE } from '../../sdk/index.ts'
import { type Bridge, defaultClientId, Options, parseConf } from './config.ts'
import { BridgeConnection, bridgeMetrics } from './connection.ts'
import { BridgeQueue } from './queue.ts'

const PLUGIN_NAME = 'tapmq:bridge'

export default definePlugin({
  name: PLUGIN_NAME,
  version: '1.0.0',
  description: 'Bridges local topics to an upstream MQTT broker and back (NanoMQ nanomq_bridge.conf)',
  tapmq: '>=0.1.0',
  options: Options,
  conf: { file: 'bridge.conf', aliases: ['nanomq_bridge.conf'], parse: parseConf },

  async setup (host, options: Options) {
    const bridges = new Bridges(host)
    await bridges.apply(options.bridges)
    // an idle bridge (none on, or none with forwards) leaves the publish path untapped
    const forwarding = options.bridges.some((bridge) => bridge.forwards.length > 0)
    if (forwarding) {
      host.hooks.message.publish.tap({ name: PLUGIN_NAME, stage: STAGE.OBSERVE }, (event, control) => {
        if (control.dropped !== undefined) return
        const message = control.current
        for (const bridge of bridges.running) {
          if (bridge.matches(message.topic)) bridge.forward({ ...message, qos: event.qos })
        }
      })
    }
    return {
      health: () => bridges.health(),
      // without the tap, a reload sets the plugin up again, which taps if it needs to; nothing
      // is lost, as a bridge without forwards buffers nothing
      reload: forwarding ? (next: Options) => bridges.apply(next.bridges) : undefined,
      close: () => bridges.closeAll(),
      api: { state: (name: string) => bridges.running.find((bridge) => bridge.name === name)?.state }
    }
  }
})

/** The running bridges; `apply` brings them in line with a new set of options. */
class Bridges {
  running: BridgeConnection[] = []

  constructor (private readonly host: PluginHost) {}

  async apply (configs: readonly Bridge[]): Promise<void> {
    const next: BridgeConnection[] = []
    const previous = new Map(this.running.map((bridge) => [bridge.name, bridge]))
    for (const config of configs) {
      const old = previous.get(config.name)
      previous.delete(config.name)
      if (old && JSON.stringify(old.config) === JSON.stringify(config)) {
        next.push(old)
        continue
      }
      // a changed bridge keeps its buffer when the buffer's kind did not change
      let queue: BridgeQueue | undefined
      if (old) {
        await old.close()
        if (old.queue.durable === this.#durable(config)) {
          queue = old.queue
          queue.setLimits(config.queue)
        } else {
          this.#release(old)
        }
      }
      next.push(await this.#start(config, queue))
    }
    for (const old of previous.values()) {
      await old.close()
      this.#release(old)
    }
    this.running = next
    if (configs.length === 0) this.host.log.info('no bridge has bridge_mode = true; the bridge plugin is idle')
  }

  async #start (config: Bridge, reuse?: BridgeQueue): Promise<BridgeConnection> {
    const { host } = this
    const queue = reuse ?? (this.#durable(config)
      ? await BridgeQueue.durable(config.queue, join(host.paths.data, 'bridge', `${config.name}.sqlite`))
      : BridgeQueue.memory(config.queue))
    const clientId = config.clientId ?? defaultClientId(config.name, host.paths.data)
    const bridge = new BridgeConnection(host, config, clientId, queue, bridgeMetrics(host, config.name))
    host.log.info({
      bridge: config.name, address: config.address, clientId, protoVer: config.protoVer, forwards: config.forwards,
      subscriptions: config.subscriptions, durable: queue.durable, queued: queue.size
    }, 'bridge starting')
    bridge.start()
    return bridge
  }

  #durable (config: Bridge): boolean {
    const { durable } = config.queue
    return durable === 'auto' ? this.host.config.get('persistence') === 'embedded' : durable
  }

  #release (bridge: BridgeConnection): void {
    if (!bridge.queue.durable && bridge.queue.size > 0) {
      this.host.log.warn({ bridge: bridge.name, lost: bridge.queue.size }, 'bridge removed with messages in its memory buffer; they are dropped')
    }
    bridge.queue.close()
  }

  async closeAll (): Promise<void> {
    const closing = this.running
    this.running = []
    await Promise.all(closing.map((bridge) => bridge.close()))
    for (const bridge of closing) this.#release(bridge)
  }

  health (): PluginHealth {
    if (this.running.length === 0) return { status: 'ok', detail: 'no bridge enabled' }
    const parts = this.running.map((bridge) => {
      const error = bridge.state !== 'connected' && bridge.lastError ? `, last error: ${bridge.lastError}` : ''
      return `${bridge.name}: ${bridge.state}, ${bridge.queue.size} queued${error}`
    })
    const up = this.running.filter((bridge) => bridge.state === 'connected').length
    const detail = parts.join('; ')
    if (up === this.running.length) return { status: 'ok', detail }
    return { status: up === 0 ? 'down' : 'degraded', detail }
  }
}
