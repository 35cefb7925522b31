// The host: one aedes broker, the hook table, the listeners and the plugins, with a
// start and a graceful stop. Everything MQTT-specific lives in broker/handlers/.
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { Aedes } from 'aedes'
import type { Logger } from 'pino'
import { Conf } from '../sdk/conf.ts'
import type { BrokerControl, BrokerView, ConfigView, PluginHost, TapmqPlugin, Telemetry } from '../sdk/plugin.ts'
import { ERR_LISTEN, TapmqError } from '../sdk/errors.ts'
import { connectedClients } from './broker/aedes-internals.ts'
import { ClientStates } from './broker/client-state.ts'
import { LIMIT_NAMES, Limits } from './broker/limits.ts'
import { BrokerCounters, type BridgeContext } from './broker/context.ts'
import { authenticate, preConnect } from './broker/handlers/connect.ts'
import { onClientReady, onConnackSent } from './broker/handlers/connack.ts'
import { authorizeForward, onOutboundDropped } from './broker/handlers/deliver.ts'
import { onClientDisconnect, onClientError, onKeepaliveTimeout, onSessionExpired } from './broker/handlers/disconnect.ts'
import { authorizePublish, skipDroppedPackets } from './broker/handlers/publish.ts'
import { authorizeSubscribe, onSubscribe, onUnsubscribe } from './broker/handlers/subscribe.ts'
import { createBrokerView } from './broker/introspection.ts'
import { assertSecurityPatches } from './broker/aedes-patches.ts'
import type { BrokerConfig } from './config/broker-config.ts'
import { formatListenUrl } from './config/listener-url.ts'
import { createHooks, type Hooks } from './hooks.ts'
import { HookIsolation, type TapOwner } from './isolation.ts'
import { listenTcp } from './listeners/tcp.ts'
import { listenTls } from './listeners/tls.ts'
import { listenWebSocket } from './listeners/websocket.ts'
import type { Listener, ListenerContext } from './listeners/listener.ts'
import { WriteCoalescer } from './broker/write-coalescing.ts'
import { MetricsRegistry } from './metrics.ts'
import { createPersistence, type Persistence } from './persistence/index.ts'
import type { PluginEntry } from './plugins/plugins-file.ts'
import { PluginRegistry } from './plugins/registry.ts'

export const TAPMQ_VERSION: string = JSON.parse(
  readFileSync(createRequire(import.meta.url).resolve('../package.json'), 'utf8')).version

export interface TapmqOptions {
  readonly config: BrokerConfig
  readonly plugins: readonly PluginEntry[]
  readonly log: Logger
  /** every config entry, for plugins' ConfigView */
  readonly conf?: Conf
  /** how to re-read the config files; without it, reload only re-reads plugin files */
  readonly readConfigs?: () => { config: { broker: BrokerConfig, conf?: Conf }, plugins: readonly PluginEntry[] }
  /** how to restart the process (the CLI re-executes itself) */
  readonly restart?: () => Promise<void>
}

const SECRET_KEY = /password|secret|passphrase|token|key_password/i

export class Tapmq {
  readonly hooks: Hooks = createHooks()
  readonly metrics = new MetricsRegistry()
  readonly broker: Aedes
  readonly plugins: PluginRegistry
  readonly log: Logger
  readonly config: BrokerConfig
  /** the same read-only view plugins get */
  readonly brokerView: BrokerView
  readonly #ctx: BridgeContext
  readonly #isolation: HookIsolation
  readonly #persistence: Persistence
  #listeners: Listener[] = []
  #stopping?: Promise<void>
  /** the merged config behind every ConfigView; reload replaces it */
  #conf: Conf

  constructor (options: TapmqOptions) {
    const { config, log } = options
    this.config = config
    this.log = log
    this.#isolation = new HookIsolation(log, this.metrics, config.hookTimeout, config.shutdownTimeout)
    this.#isolation.install(this.hooks)

    this.#persistence = createPersistence(config, log, this.metrics, (err) => this.#fail(err))
    this.broker = new Aedes({ ...config.aedes, ...this.#persistence.aedesOptions })
    assertSecurityPatches(this.broker)
    this.#ctx = Object.freeze({
      broker: this.broker,
      hooks: this.hooks,
      config,
      log,
      clients: new ClientStates(),
      counters: new BrokerCounters(),
      limits: new Limits(config.limits)
    })
    // aedes reads its handlers from the instance on every call
    Object.assign(this.broker, {
      preConnect: preConnect(this.#ctx),
      authenticate: authenticate(this.#ctx),
      authorizePublish: authorizePublish(this.#ctx),
      authorizeSubscribe: authorizeSubscribe(this.#ctx),
      authorizeForward: authorizeForward(this.#ctx)
    })
    this.#wireEvents()
    this.#persistence.install(this.broker)
    this.#registerBrokerMetrics()

    const persistence = this.#persistence
    const view = createBrokerView(this.#ctx, this.broker, TAPMQ_VERSION, persistence.nodes && (() => persistence.nodes!(this.broker)))
    this.brokerView = view
    const control: BrokerControl = {
      reload: () => this.reload(options.readConfigs ?? (() => ({ config: { broker: config }, plugins: options.plugins }))),
      stop: () => this.stop(),
      restart: options.restart ?? (() => Promise.reject(new Error('restart needs the tapmq command line; stop and start instead'))),
      canRestart: options.restart !== undefined
    }
    this.#conf = options.conf ?? new Conf([])
    const configViewFor = (plugin: TapmqPlugin): ConfigView => Object.freeze({
      get: (key: string) => (SECRET_KEY.test(key) ? (this.#conf.has(key) ? '******' : undefined) : this.#conf.string(key)),
      entries: () => this.#conf.entries().map(({ key, value }) => ({ key, value: SECRET_KEY.test(key) ? '******' : value })),
      secret: (key: string) => {
        if (!plugin.secrets?.includes(key)) {
          throw new TapmqError('TAPMQ_ERR_PLUGIN_SECRET', `plugin "${plugin.name}" may not read ${key}: only keys listed in its "secrets"`)
        }
        return this.#conf.string(key)
      }
    })
    const telemetry: Telemetry = Object.freeze({
      exposition: async () => ({ contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() })
    })
    const hostFor = (plugin: TapmqPlugin, owner: TapOwner): PluginHost => Object.freeze({
      hooks: this.#isolation.hooksFor(this.hooks, owner),
      log: log.child({ plugin: plugin.name }),
      metrics: this.metrics.forPlugin(plugin.name),
      broker: view,
      paths: { etc: config.etcDir, data: config.dataDir },
      readConf: (file: string) => Conf.fromFile(file),
      plugins: this.plugins,
      control,
      config: configViewFor(plugin),
      telemetry
    })
    this.plugins = new PluginRegistry({
      version: TAPMQ_VERSION,
      log,
      hostFor,
      hooksOf: (owner) => this.#isolation.hooksOf(owner),
      countersOf: (plugin) => this.metrics.forPlugin(plugin.name).snapshot(),
      timeout: config.shutdownTimeout
    })
    this.#pluginEntries = options.plugins
  }

  readonly #pluginEntries: readonly PluginEntry[]

  #wireEvents (): void {
    const { broker } = this
    const ctx = this.#ctx
    skipDroppedPackets(broker)
    broker.on('connackSent', onConnackSent(ctx))
    broker.on('clientReady', onClientReady(ctx))
    broker.on('keepaliveTimeout', onKeepaliveTimeout(ctx))
    broker.on('clientError', onClientError(ctx))
    broker.on('clientDisconnect', onClientDisconnect(ctx))
    ;(broker as unknown as NodeJS.EventEmitter).on('sessionExpired', onSessionExpired(ctx))
    ;(broker as unknown as NodeJS.EventEmitter).on('outboundDropped', onOutboundDropped(ctx))
    broker.on('subscribe', onSubscribe(ctx))
    broker.on('unsubscribe', onUnsubscribe(ctx))
    broker.on('connectionError', (_client, err) => this.log.debug({ err: err.message }, 'connection error before CONNECT'))
    // persistence errors arrive here; unhandled, they would crash the process
    ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => this.log.error({ err }, 'broker error'))
  }

  #registerBrokerMetrics (): void {
    const { counters } = this.#ctx
    const m = this.metrics
    m.gauge('tapmq_connections', 'Connected clients', () => this.broker.connectedClients)
    m.gauge('tapmq_messages_received_total', 'PUBLISH packets received from clients', () => counters.messagesReceived)
    m.gauge('tapmq_messages_sent_total', 'PUBLISH packets written to subscribers', () => counters.messagesSent)
    m.gauge('tapmq_messages_dropped_total', 'Messages acknowledged but not routed', () => counters.messagesDropped)
    m.gauge('tapmq_outbound_queue_dropped_total', 'QoS 1/2 deliveries not queued: the MQTT 5 subscriber\'s Receive Maximum window and max_outbound_queue were full', () => counters.outboundQueueDropped)
    m.gauge('tapmq_connects_accepted_total', 'CONNACKs with return code 0', () => counters.connectsAccepted)
    m.gauge('tapmq_connects_rejected_total', 'CONNACKs with a non-zero return code', () => counters.connectsRejected)
    const { limits } = this.#ctx
    for (const limit of LIMIT_NAMES) {
      m.gauge(`tapmq_limit_${limit}_refusals_total`, `Connections, CONNECTs or subscriptions refused by ${limit}`, () => limits.refusals[limit])
    }
    m.gauge('tapmq_sessions', 'Connected clients plus persistent sessions of offline clients', () => this.brokerView.stats().sessions)
    m.gauge('tapmq_subscriptions', 'Subscriptions of connected clients', () => this.brokerView.stats().subscriptions)
    m.gauge('tapmq_topics', 'Nodes of the subscription trie', () => this.brokerView.stats().topics)
  }

  /** the open listeners, with their real ports */
  get listeners (): readonly Listener[] {
    return this.#listeners
  }

  async start (): Promise<void> {
    if (this.#persistence.open) {
      try {
        await this.#persistence.open()
      } catch (err) {
        await this.#persistence.close()
        throw err
      }
    }
    await this.broker.listen()
    try {
      await this.plugins.start(this.#pluginEntries)
      await this.#persistence.recover(this.broker)
      this.#listeners = await this.#openListeners()
    } catch (err) {
      await this.stop()
      throw err
    }
    const info = Object.freeze({ id: this.broker.id, version: TAPMQ_VERSION, listeners: Object.freeze(this.#listeners.map((l) => l.url)) })
    await this.hooks.broker.started.promise(info)
    this.log.info(info, 'tapmq started')
  }

  async #openListeners (): Promise<Listener[]> {
    const { config } = this
    const ctx: ListenerContext = {
      broker: this.broker, clients: this.#ctx.clients, maxPacketSize: config.maxPacketSize, limits: this.#ctx.limits,
      coalescer: config.writeCoalescing ? new WriteCoalescer(this.broker) : undefined
    }
    const opened: Listener[] = []
    try {
      const main = config.tcp
      if (main.transport === 'tcp') opened.push(await listenTcp(ctx, main))
      else if (main.transport === 'ws') opened.push(await listenWebSocket(ctx, main))
      else if (main.transport === 'tls' && config.tls) opened.push(await listenTls(ctx, { ...config.tls, address: main }))
      // never run without the main listener
      else throw ERR_LISTEN([formatListenUrl(main), main.transport === 'tls' ? 'a TLS url needs tls.enable = true' : `${main.transport} is not supported for url`])
      if (config.websocket) opened.push(await listenWebSocket(ctx, config.websocket))
      if (config.tls) opened.push(await listenTls(ctx, config.tls))
    } catch (err) {
      await Promise.all(opened.map((listener) => listener.close()))
      throw err
    }
    return opened
  }

  /**
   * Re-reads configs and applies what can change without dropping connections: log level,
   * plugins and their files. Listener changes need a restart and are reported. A config
   * error throws before anything changed.
   */
  async reload (read: () => { config: { broker: BrokerConfig, conf?: Conf }, plugins: readonly PluginEntry[] }): Promise<void> {
    const next = read()
    if (next.config.conf) this.#conf = next.config.conf
    const { broker } = next.config
    const listenersOf = (c: BrokerConfig) => JSON.stringify([c.tcp, c.websocket, c.tls])
    if (listenersOf(broker) !== listenersOf(this.config)) {
      this.log.warn('listener settings changed; they apply at the next restart')
    }
    this.log.level = broker.log.level
    await this.plugins.apply(next.plugins)
    this.log.info({ plugins: this.plugins.list().map((p) => `${p.id}:${p.state}`) }, 'configuration reloaded')
  }

  /**
   * Graceful shutdown: stop accepting, close clients (their disconnect events still reach
   * plugins), let plugins flush within shutdown_timeout, close plugins. Idempotent.
   */
  stop (): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = this.#stop()
      this.#stopping.then(() => (this.#failure ? this.#stopped.reject(this.#failure) : this.#stopped.resolve()), this.#stopped.reject)
    }
    return this.#stopping
  }

  /** what made the broker stop itself, if anything: stopped() rejects with it (the CLI exits 1) */
  #failure?: Error

  /** An error the broker cannot run on (the message store cannot sync): a graceful stop that ends in failure. */
  #fail (err: Error): void {
    this.#failure ??= err
    this.log.fatal({ err }, 'tapmq cannot go on; stopping')
    this.stop().catch(() => {})
  }

  /** Resolves once a stop finished, whoever asked for it (a signal, the HTTP API, a plugin). */
  stopped (): Promise<void> {
    return this.#stopped.promise
  }

  readonly #stopped = deferred()

  async #stop (): Promise<void> {
    this.log.info('tapmq stopping')
    const closing = this.#listeners.map((listener) => listener.close())
    for (const client of Object.values(connectedClients(this.broker))) {
      if (client) this.#ctx.clients.markCause(client, 'shutdown')
    }
    await new Promise<void>((resolve) => this.broker.close(() => resolve()))
    await this.hooks.broker.stopping.promise()
    await this.plugins.closeAll()
    await Promise.all(closing)
    await this.#persistence.close()
    this.log.info('tapmq stopped')
  }
}

function deferred (): { promise: Promise<void>, resolve: () => void, reject: (err: Error) => void } {
  let resolve!: () => void
  let reject!: (err: Error) => void
  const promise = new Promise<void>((yes, no) => { resolve = yes; reject = no })
  promise.catch(() => {})
  return { promise, resolve, reject }
}
