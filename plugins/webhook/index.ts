// NanoMQ 0.8's WebHook, as a tapmq plugin: broker events that match a rule are POSTed as
// JSON to web.hook.url. Taps only build the body and enqueue it; a worker thread does the
// HTTP (channel.ts → worker.mjs → sender.mjs). See docs/webhook.md.
import { definePlugin, type Hooks, type PluginHost, type PluginMetrics, type PublishEvent, STAGE } from '../../sdk/index.ts'
import * as bodies from './bodies.ts'
import { WebhookChannel, WebhookMetrics } from './channel.ts'
import { Options, parse } from './config.ts'
import { compileRules, EVENTS, type RuleTable, type WebhookEvent } from './rules.ts'
import type { SenderConfig } from './protocol.ts'

const PLUGIN_NAME = 'tapmq:webhook'
/** Health turns degraded after this many failed requests in a row ... */
const FAILURES_DEGRADED = 5
/** ... or when the queue is this full. */
const QUEUE_DEGRADED = 0.8

export { Options, parse }

export default definePlugin({
  name: PLUGIN_NAME,
  version: '1.0.0',
  description: 'POSTs broker events that match web.hook.rule.* to an HTTP endpoint (NanoMQ 0.8 / EMQX 4 WebHook)',
  tapmq: '>=0.1.0',
  options: Options,
  conf: { file: 'web_hook.conf', aliases: ['nanomq_web_hook.conf'], enableKey: 'web.hook.enable', parse },

  setup (host, options: Options) {
    logWarnings(host, options)
    const slot = metricsFor(host.metrics)
    const channel = WebhookChannel.start(senderConfig(options), host.log, slot.metrics)
    slot.channel = channel

    // what the taps read; replaced whole on reload, so a tap sees one config or the other
    let state: TapState = { rules: compileRules(options.rules), encoding: options.encoding }
    let drainTimeoutMs = options.drainTimeoutMs
    let closed = false
    const tapped = new Set<WebhookEvent>()
    const send = (body: string) => {
      if (!closed) channel.enqueue(body)
    }
    const sendPublish = (message: PublishEvent) => {
      if (!closed) channel.enqueuePublish(message, state.encoding)
    }
    for (const event of EVENTS) {
      if (state.rules[event]) {
        tapEvent(host.hooks, event, () => state, send, sendPublish)
        tapped.add(event)
      }
    }
    host.log.info({ url: redact(options.url), events: [...tapped], poolSize: options.poolSize, batch: options.batch.maxEvents }, 'webhook ready')

    return {
      async close () {
        closed = true
        const lost = await channel.drain(boundedDrain(host, drainTimeoutMs))
        if (slot.channel === channel) slot.channel = undefined
        if (lost > 0) host.log.warn({ lost }, 'webhook stopped; queued events were lost')
        else host.log.info('webhook stopped; every queued event was sent')
      },

      health () {
        if (!channel.running) return { status: 'down', detail: 'the delivery worker is not running; it restarts shortly' }
        const { stats } = channel
        if (stats.consecutiveFailures >= FAILURES_DEGRADED) {
          return { status: 'degraded', detail: `${stats.consecutiveFailures} requests in a row failed; last: ${stats.lastError}` }
        }
        const { maxEvents, maxBytes } = options.queue
        const fill = Math.max(stats.depth / maxEvents, stats.bytes / maxBytes)
        if (fill >= QUEUE_DEGRADED) return { status: 'degraded', detail: `queue ${Math.round(fill * 100)}% full` }
        return channel.ready ? { status: 'ok' } : { status: 'ok', detail: 'the delivery worker is starting' }
      },

      async reload (next: Options) {
        const rules = compileRules(next.rules)
        const missing = EVENTS.filter((event) => rules[event] && !tapped.has(event))
        if (missing.length > 0) {
          // tapable has no untap and taps belong to setup: start over with the new options
          host.log.info({ events: missing }, 'webhook: new events need new taps; restarting the plugin')
          await host.plugins.disable(PLUGIN_NAME)
          await host.plugins.enable(PLUGIN_NAME)
          return
        }
        logWarnings(host, next)
        options = next
        state = { rules, encoding: next.encoding }
        drainTimeoutMs = next.drainTimeoutMs
        channel.configure(senderConfig(next))
      }
    }
  }
})

interface TapState {
  readonly rules: RuleTable
  readonly encoding: Options['encoding']
}

/** $SYS/ messages are the broker's own; EMQX skips them for message events. */
const isSys = (topic: string) => topic.startsWith('$SYS/')

/** Registers the one tap of `event`; it reads the rules and encoding current at each call. */
function tapEvent (hooks: Hooks, event: WebhookEvent, current: () => TapState, send: (body: string) => void,
  sendPublish: (message: PublishEvent) => void): void {
  // observers run after plugins that rewrite or drop, so bodies show the final message
  const tap = { name: PLUGIN_NAME, stage: STAGE.OBSERVE }
  /** whether a rule of `event` takes this event (its topic, for the events that have one) */
  const wanted = (topic = '') => current().rules[event]?.(topic) === true
  switch (event) {
    case 'client.connect':
      return hooks.client.connect.tap(tap, (e) => { if (wanted()) send(bodies.clientConnect(e)) })
    case 'client.connack':
      return hooks.client.connack.tap(tap, (e) => { if (wanted()) send(bodies.clientConnack(e)) })
    case 'client.connected':
      return hooks.client.connected.tap(tap, (e) => { if (wanted()) send(bodies.clientConnected(e)) })
    case 'client.disconnected':
      return hooks.client.disconnected.tap(tap, (e) => { if (wanted()) send(bodies.clientDisconnected(e)) })
    case 'client.subscribe':
      return hooks.client.subscribe.tap(tap, (e, control) => {
        // as earlier taps left it (they may rewrite the filter or QoS)
        const subscription = control.current === e ? e : { ...e, ...control.current }
        if (wanted(subscription.topic)) send(bodies.clientSubscribe(subscription))
      })
    case 'client.unsubscribe':
      return hooks.client.unsubscribe.tap(tap, (e) => { if (wanted(e.topic)) send(bodies.clientUnsubscribe(e)) })
    case 'session.subscribed':
      return hooks.session.subscribed.tap(tap, (e) => { if (wanted(e.topic)) send(bodies.sessionSubscribed(e)) })
    case 'session.unsubscribed':
      return hooks.session.unsubscribed.tap(tap, (e) => { if (wanted(e.topic)) send(bodies.sessionUnsubscribed(e)) })
    case 'session.terminated':
      return hooks.session.terminated.tap(tap, (e) => { if (wanted()) send(bodies.sessionTerminated(e)) })
    case 'message.publish':
      return hooks.message.publish.tap(tap, (e, control) => {
        // earlier taps may have rewritten topic, payload or retain
        const message = control.current === e ? e : { ...e, ...control.current }
        if (!isSys(message.topic) && wanted(message.topic)) sendPublish(message)
      })
    case 'message.delivered':
      return hooks.message.delivered.tap(tap, (e) => {
        if (!isSys(e.topic) && wanted(e.topic)) send(bodies.messageDelivered(e, current().encoding))
      })
    case 'message.acked':
      return hooks.message.acked.tap(tap, (e) => {
        if (!isSys(e.topic) && wanted(e.topic)) send(bodies.messageAcked(e, current().encoding))
      })
    case 'message.dropped':
      return hooks.message.dropped.tap(tap, (e) => {
        if (!isSys(e.topic) && wanted(e.topic)) send(bodies.messageDropped(e, current().encoding))
      })
  }
}

function senderConfig (options: Options): SenderConfig {
  const { url, headers, poolSize, pipelining, ssl, connectTimeoutMs, requestTimeoutMs, retry, queue, batch, signingSecrets, workerNice } = options
  return { url, headers, poolSize, pipelining, ssl, connectTimeoutMs, requestTimeoutMs, retry, queue, batch, signingSecrets, workerNice }
}

function logWarnings (host: PluginHost, options: Options): void {
  for (const warning of options.warnings) host.log.warn(warning)
}

/** The URL without a query string, which may carry a token. */
function redact (url: string): string {
  const parsed = new URL(url)
  return parsed.origin + parsed.pathname + (parsed.search ? '?…' : '')
}

/**
 * The host stops waiting for close() after shutdown_timeout; drain for a second less, so
 * the count of lost events still reaches the log.
 */
function boundedDrain (host: PluginHost, drainTimeoutMs: number): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(host.config.get('shutdown_timeout') ?? '')
  if (!match) return drainTimeoutMs
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const shutdownMs = Number(match[1]) * unit[match[2]!]!
  return Math.min(drainTimeoutMs, Math.max(0, shutdownMs - 1000))
}

/** Counters and gauges live as long as the broker; the gauges read the running channel. */
const slots = new WeakMap<PluginMetrics, { metrics: WebhookMetrics, channel?: WebhookChannel }>()

function metricsFor (metrics: PluginMetrics): { metrics: WebhookMetrics, channel?: WebhookChannel } {
  let slot = slots.get(metrics)
  if (!slot) {
    const created: { metrics?: WebhookMetrics, channel?: WebhookChannel } = {}
    created.metrics = new WebhookMetrics(metrics, () => created.channel)
    slot = created as { metrics: WebhookMetrics, channel?: WebhookChannel }
    slots.set(metrics, slot)
  }
  return slot
}
