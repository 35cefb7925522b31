// The plugin contract: metadata checked at load (fastify-plugin), an options schema
// validated before setup (webpack's schema-first options), and a setup function that
// only wires taps (webpack's apply). Everything a plugin may touch is on PluginHost.
import type { Static, TSchema } from '@sinclair/typebox'
import type { Logger } from 'pino'
import type { Hooks } from '../runtime/hooks.ts'
import type { Conf } from './conf.ts'
import type { ClientInfo, Message, MessageProperties, QoS } from './events.ts'

export type { Hooks } from '../runtime/hooks.ts'
export type { DecisionTapOptions } from '../runtime/hooks.ts'
export type { Logger } from 'pino'

export interface Counter {
  /** adds `value` (default 1) */
  inc (value?: number): void
  readonly value: number
}

export interface Gauge {
  set (value: number): void
  readonly value: number
}

export interface Histogram {
  /** records one observation, in the unit the name says (`_seconds`, `_bytes`) */
  observe (value: number): void
}

/**
 * Per-plugin metrics. Names are prefixed with `tapmq_<plugin>_`, so `counter('sent_total')`
 * in the webhook plugin appears as `tapmq_webhook_sent_total`.
 */
export interface PluginMetrics {
  counter (name: string, help: string): Counter
  /** `collect` is called at scrape time, for values the plugin already keeps (a queue depth) */
  gauge (name: string, help: string, collect?: () => number): Gauge
  histogram (name: string, help: string, buckets?: number[]): Histogram
  /** current values of this plugin's counters and gauges, by short name */
  snapshot (): Record<string, number>
}

export interface ClientSummary extends ClientInfo {
  readonly connectedAt: number
  readonly subscriptions: ReadonlyArray<{ readonly topic: string, readonly qos: QoS }>
}

export interface SubscriptionInfo {
  readonly clientId: string
  readonly topic: string
  readonly qos: QoS
}

/** One level of the subscription trie: `+` first, then `#`, then literals in byte order. */
export interface TopicTreeNode {
  readonly topic: string
  /** clients subscribed to exactly the filter that ends at this node */
  readonly clientIds: readonly string[]
  readonly children: readonly TopicTreeNode[]
}

export interface BrokerStats {
  readonly connections: number
  readonly subscriptions: number
  readonly messagesReceived: number
  readonly messagesSent: number
  readonly messagesDropped: number
  readonly uptimeMs: number
  /** connected clients plus persistent sessions (clean session false) of offline clients */
  readonly sessions: number
  /** nodes of the subscription trie, the root excluded */
  readonly topics: number
}

export interface PublishRequest {
  readonly topic: string
  readonly payload: Buffer | string
  readonly qos?: QoS
  readonly retain?: boolean
  /** MQTT 5 PUBLISH properties (§3.3.2.3), e.g. user properties; MQTT 5 subscribers get them */
  readonly properties?: MessageProperties
}

/** Read access to the broker's state, and the few actions a plugin may take. */
/** A broker node: this one, or another node of the cluster (cluster.enable, docs/cluster.md). */
export interface BrokerNode {
  /** the aedes broker id */
  readonly id: string
  /** `cluster.node_name`; without a cluster, the broker id */
  readonly name: string
  /** ms since the epoch of its last heartbeat seen here; for this node, now */
  readonly lastHeartbeat: number
  /** this node */
  readonly self: boolean
}

export interface BrokerView {
  /** the aedes broker id of this process */
  readonly id: string
  readonly version: string
  clients (): ClientSummary[]
  client (clientId: string): ClientSummary | undefined
  subscriptions (clientId?: string): SubscriptionInfo[]
  topicTree (): TopicTreeNode
  /** topics that hold a retained message, sorted */
  retainedTopics (): Promise<string[]>
  stats (): BrokerStats
  /** Publishes as the broker itself; `message.publish` does not fire for it. */
  publish (message: PublishRequest): Promise<void>
  /**
   * Subscribes inside the broker, without a connection: `handler` sees every message routed
   * to `filter` (QoS as published), from clients, wills and `publish` alike, but no retained
   * messages at subscribe time. Wildcards at the first level do not match `$` topics
   * [MQTT-4.7.2-1]. Resolves, once the subscription is in place, with the unsubscribe function.
   */
  subscribe (filter: string, handler: (message: Message) => void): Promise<() => Promise<void>>
  /** Closes a client's connection; its disconnect reason is `kicked`. */
  disconnect (clientId: string): boolean
  /** The live nodes (a heartbeat within 3 intervals), sorted by name; this node alone without a cluster. */
  nodes (): BrokerNode[]
}

export type PluginState = 'running' | 'disabled' | 'failed'

export interface PluginStatus {
  /** the id in plugins.conf */
  readonly id: string
  readonly name: string
  readonly version: string
  readonly state: PluginState
  /** why a plugin is disabled or failed */
  readonly detail?: string
  readonly health: PluginHealth
  /** dotted names of the hooks it taps */
  readonly hooks: readonly string[]
  readonly counters: Record<string, number>
}

/** Runtime plugin management (the HTTP API's /plugins). Changes are not written to plugins.conf. */
export interface PluginsControl {
  list (): PluginStatus[]
  /** by plugins.conf id or plugin name; throws TAPMQ_ERR_PLUGIN_UNKNOWN */
  status (id: string): PluginStatus
  enable (id: string): Promise<void>
  disable (id: string): Promise<void>
  /** re-reads the plugin's config files and applies them */
  reload (id: string): Promise<void>
}

/** The broker process, for management plugins. */
export interface BrokerControl {
  /** re-read every config file and apply what can change without dropping clients */
  reload (): Promise<void>
  /** graceful stop; the process exits afterwards when run from the CLI */
  stop (): Promise<void>
  /** graceful stop, then a fresh start with the same command line (CLI only) */
  restart (): Promise<void>
  /** false when the broker was not started from the tapmq command line: restart() rejects */
  readonly canRestart: boolean
}

/** The merged broker config (tapmq.conf, environment, flags), secrets redacted. */
export interface ConfigView {
  get (key: string): string | undefined
  entries (): ReadonlyArray<{ readonly key: string, readonly value: string }>
  /**
   * The real value of a secret key (a password), for the plugin that owns it: only keys the
   * plugin lists in its `secrets` are readable; others throw TAPMQ_ERR_PLUGIN_SECRET.
   */
  secret (key: string): string | undefined
}

/** The broker's whole metrics registry, for exporters. */
export interface Telemetry {
  /** every metric of the broker, its plugins and the process, in Prometheus text format */
  exposition (): Promise<{ readonly contentType: string, readonly body: string }>
}

export interface PluginHost {
  /** the typed hook table; tap it with your plugin's name */
  readonly hooks: Hooks
  /** a pino logger bound to this plugin */
  readonly log: Logger
  readonly metrics: PluginMetrics
  readonly broker: BrokerView
  /** directories from the broker config, absolute */
  readonly paths: { readonly etc: string, readonly data: string }
  /** NanoMQ-style `.conf` reading, with file:line errors */
  readConf (file: string): Conf
  readonly plugins: PluginsControl
  readonly control: BrokerControl
  readonly config: ConfigView
  readonly telemetry: Telemetry
}

export type PluginHealth =
  | { readonly status: 'ok', readonly detail?: string }
  | { readonly status: 'degraded' | 'down', readonly detail: string }

/** What setup may return: the running instance's lifecycle. */
export interface PluginInstance<O = unknown, A = unknown> {
  /** flush and release; called on shutdown, disable and reload. Bounded by the host. */
  close? (): void | Promise<void>
  health? (): PluginHealth
  /** apply new options without a restart; without it the host closes and sets up again */
  reload? (options: O): void | Promise<void>
  /** a typed surface for other plugins */
  readonly api?: A
}

export interface PluginConfFile<O> {
  /** file name looked up beside the plugins file when plugins.conf names none, e.g. `web_hook.conf` */
  readonly file?: string
  /** other names accepted for it, e.g. NanoMQ's `nanomq_web_hook.conf` */
  readonly aliases?: readonly string[]
  /** a boolean key that switches the plugin off when false, e.g. `web.hook.enable` */
  readonly enableKey?: string
  /** turns the conf entries (the plugin's file plus inline keys from plugins.conf) into options */
  parse? (conf: Conf): O
}

export interface TapmqPlugin<S extends TSchema = TSchema, A = unknown> {
  /** unique, namespaced for first-party plugins (`tapmq:webhook`); also the name of every tap */
  readonly name: string
  readonly version: string
  readonly description?: string
  /** semver range of tapmq this plugin works with */
  readonly tapmq?: string
  /** plugin names that must be set up before this one */
  readonly dependencies?: readonly string[]
  /** main-config keys holding secrets this plugin may read with `host.config.secret(key)` */
  readonly secrets?: readonly string[]
  /** TypeBox schema of the options; validated (with defaults applied) before setup */
  readonly options?: S
  readonly conf?: PluginConfFile<Static<S>>
  setup (host: PluginHost, options: Static<S>): void | PluginInstance<Static<S>, A> | Promise<void | PluginInstance<Static<S>, A>>
}

/** Identity function that gives a plugin literal its types. */
export function definePlugin<S extends TSchema, A = unknown> (plugin: TapmqPlugin<S, A>): TapmqPlugin<S, A> {
  return plugin
}

/** Stage numbers for `tap({ name, stage })`: lower runs first. */
export const STAGE = Object.freeze({
  /** rewriting topics and payloads, before anyone judges them */
  REWRITE: -200,
  /** authentication and authorization */
  AUTH: -100,
  DEFAULT: 0,
  /** observers that export events (webhooks, audit logs) see the final message */
  OBSERVE: 100
})

export type { Message }
