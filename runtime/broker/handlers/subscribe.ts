// SUBSCRIBE / UNSUBSCRIBE: `client.subscribe` (deny or rewrite), `authorize.subscribe`,
// then `session.subscribed` after SUBACK; `client.unsubscribe` and `session.unsubscribed`.
import type { Client, Subscription } from 'aedes'
import { isThenable } from '../../../sdk/decisions.ts'
import type { QoS, SubscribeControl, SubscriptionRequest } from '../../../sdk/events.ts'
import { isValidTopicFilter } from '../../../sdk/topic.ts'
import { internals } from '../aedes-internals.ts'
import { isTapped } from '../../hooks.ts'
import { runDecision } from '../../isolation.ts'
import type { BridgeContext } from '../context.ts'

class SubscribeVerdict implements SubscribeControl {
  denied: string | undefined
  current: SubscriptionRequest
  constructor (subscription: SubscriptionRequest) {
    this.current = subscription
  }

  deny (reason: string): void {
    this.denied ??= reason
  }

  rewrite (subscription: Partial<Pick<SubscriptionRequest, 'topic' | 'qos'>>): void {
    this.current = Object.freeze({ ...this.current, topic: subscription.topic ?? this.current.topic, qos: subscription.qos ?? this.current.qos })
  }
}

export function authorizeSubscribe (ctx: BridgeContext) {
  return (client: Client, subscription: Subscription, done: (error: Error | null, subscription?: Subscription | null) => void) => {
    // aedes also asks while restoring a persistent session; those were authorized when made
    if (!client.connected) return done(null, subscription)
    const { hooks } = ctx
    // MQTT 5 subscription options (§3.8.3.1) only for MQTT 5 clients: 3.1.1 payloads keep their keys
    let granted: SubscriptionRequest = client.version === 5
      ? { topic: subscription.topic, qos: subscription.qos as QoS, ...subscriptionOptions(subscription) }
      : { topic: subscription.topic, qos: subscription.qos as QoS }
    const state = ctx.clients.get(client)
    if (!admitted(ctx, client, subscription.topic)) return done(null, null)

    if (isTapped(hooks.client.subscribe)) {
      const verdict = new SubscribeVerdict(Object.freeze(granted))
      hooks.client.subscribe.call(Object.freeze({ ...granted, clientId: client.id, username: state.info?.username, ts: Date.now() }), verdict)
      if (verdict.denied !== undefined) {
        ctx.log.debug({ clientId: client.id, topic: granted.topic, reason: verdict.denied }, 'subscription denied by plugin')
        return refuse(client, subscription, verdict.denied, done)
      }
      granted = verdict.current
    }

    if (granted.topic !== subscription.topic && !isValidTopicFilter(granted.topic)) {
      ctx.log.warn({ clientId: client.id, topic: subscription.topic, rewritten: granted.topic }, 'subscription rewritten to an invalid filter; denied')
      return refuse(client, subscription, `subscription rewritten to an invalid filter ${JSON.stringify(granted.topic)}`, done)
    }
    // in place: aedes reads this entry of the SUBSCRIBE packet again for the stored session,
    // the retained messages and its subscribe event (QoS there stays the one requested)
    const grant = () => done(null, Object.assign(subscription, { topic: granted.topic, qos: granted.qos }))
    if (state.superuser || !isTapped(hooks.authorize.subscribe) || !state.info) return grant()
    const decision = runDecision(hooks.authorize.subscribe, Object.freeze({
      access: 'subscribe', topic: granted.topic, qos: granted.qos, client: state.info, superuser: state.superuser
    } as const))
    if (!isThenable(decision)) return decision?.result === 'deny' ? refuse(client, subscription, decision.reason, done) : grant()
    decision.then((answer) => {
      if (answer?.result === 'deny') return refuse(client, subscription, answer.reason, done)
      grant()
    }, (err: Error) => refuse(client, subscription, err.message, done))
  }
}

/**
 * Refuses one filter: SUBACK 0x80 (MQTT 5: 0x87 Not authorized). For an MQTT 5 client the
 * reason becomes the SUBACK's Reason String (§3.9.2.1.2; aedes, patched, reads it from the
 * subscription and leaves it out when the client set Request Problem Information to 0,
 * [MQTT-3.1.2-29]). Not enumerable: aedes stores and publishes the SUBSCRIBE's entries.
 */
function refuse (client: Client, subscription: Subscription, reason: string | undefined, done: (error: Error | null, subscription?: Subscription | null) => void): void {
  if (client.version === 5 && reason) Object.defineProperty(subscription, 'reasonString', { value: reason, configurable: true, writable: true, enumerable: false })
  done(null, null)
}

/** MQTT 5 subscription options (§3.8.3.1) as the hook payloads carry them. */
function subscriptionOptions (subscription: Subscription): { nl: boolean, rap: boolean, rh: 0 | 1 | 2 } {
  return { nl: subscription.nl === true, rap: subscription.rap === true, rh: (subscription.rh ?? 0) as 0 | 1 | 2 }
}

/** max_subscriptions: filters held, plus those granted earlier in the same SUBSCRIBE packet. */
function admitted (ctx: BridgeContext, client: Client, topic: string): boolean {
  const held = internals(client).subscriptions ?? {}
  const state = ctx.clients.get(client)
  const subscribing = state.subscribing
  if (topic in held || subscribing?.has(topic)) return true
  let count = subscribing?.size ?? 0
  for (const filter in held) if (!subscribing?.has(filter)) count++
  if (!ctx.limits.admitSubscription(count)) return false
  ;(state.subscribing ??= new Set()).add(topic)
  return true
}

export function onSubscribe (ctx: BridgeContext) {
  return (subscriptions: Subscription[], client: Client) => {
    ctx.clients.get(client).subscribing = undefined
    const hook = ctx.hooks.session.subscribed
    if (!isTapped(hook)) return
    const username = ctx.clients.get(client).info?.username
    const ts = Date.now()
    for (const sub of subscriptions) {
      // qos 128 marks a refused filter in aedes' event
      if (sub.qos > 2) continue
      hook.call(Object.freeze(client.version === 5
        // MQTT 5 subscription options (§3.8.3.1), as on client.subscribe
        ? { clientId: client.id, username, topic: sub.topic, qos: sub.qos as QoS, ...subscriptionOptions(sub), ts }
        : { clientId: client.id, username, topic: sub.topic, qos: sub.qos as QoS, ts }))
    }
  }
}

export function onUnsubscribe (ctx: BridgeContext) {
  return (topics: string[], client: Client) => {
    const { client: clientHooks, session } = ctx.hooks
    if (!isTapped(clientHooks.unsubscribe) && !isTapped(session.unsubscribed)) return
    const username = ctx.clients.get(client).info?.username
    const ts = Date.now()
    for (const topic of topics) {
      const event = Object.freeze({ clientId: client.id, username, topic, ts })
      clientHooks.unsubscribe.call(event)
      session.unsubscribed.call(event)
    }
  }
}
