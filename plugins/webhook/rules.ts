// web.hook.rule.<event>.<n> = {"action": "on_<event>", "topic": "<filter>"}: which events
// become requests. Rules of one event are OR-ed and an event gives at most one request
// (notes §1.3). A rule without a topic matches every event of its kind.
import { compileTopicFilter } from '../../sdk/index.ts'

/** The 12 events NanoMQ 0.8's parser knows, plus EMQX 5's message.dropped. */
export const EVENTS = [
  'client.connect', 'client.connack', 'client.connected', 'client.disconnected',
  'client.subscribe', 'client.unsubscribe',
  'session.subscribed', 'session.unsubscribed', 'session.terminated',
  'message.publish', 'message.delivered', 'message.acked', 'message.dropped'
] as const
export type WebhookEvent = typeof EVENTS[number]

/**
 * Events whose rules may filter by topic: EMQX 4 matches the message topic, or the
 * subscription's topic filter for (un)subscribe events. NanoMQ 0.8 filters only
 * message.publish and ignores the topic elsewhere (quirk Q20).
 */
export const TOPIC_EVENTS: ReadonlySet<WebhookEvent> = new Set([
  'client.subscribe', 'client.unsubscribe', 'session.subscribed', 'session.unsubscribed',
  'message.publish', 'message.delivered', 'message.acked', 'message.dropped'
])

/** `client.connack` → `on_client_connack`, the action name NanoMQ's rules carry. */
export function actionOf (event: WebhookEvent): string {
  return 'on_' + event.replace('.', '_')
}

export interface Rule {
  readonly event: WebhookEvent
  /** an MQTT topic filter; absent matches everything */
  readonly topic?: string
}

/** Per event, whether a topic (or `undefined` for events without one) should be sent. */
export type RuleTable = Partial<Record<WebhookEvent, (topic: string) => boolean>>

const always = () => true

export function compileRules (rules: readonly Rule[]): RuleTable {
  const table: RuleTable = {}
  for (const event of EVENTS) {
    const mine = rules.filter((rule) => rule.event === event)
    if (mine.length === 0) continue
    if (!TOPIC_EVENTS.has(event) || mine.some((rule) => rule.topic === undefined)) {
      table[event] = always
      continue
    }
    const filters = [...new Set(mine.map((rule) => rule.topic!))].map(compileTopicFilter)
    table[event] = filters.length === 1
      ? filters[0]!
      : (topic) => {
          for (const matches of filters) if (matches(topic)) return true
          return false
        }
  }
  return table
}
