// THE hook declaration. This frozen table is tapmq's public contract (webpack's
// Compiler#hooks): each entry's tapable class states its semantics, and the SDK
// re-exports its type. Add hooks at the end of their group; never change a class.
import { AsyncSeriesBailHook, AsyncSeriesHook, SyncHook } from 'tapable'
import type {
  AckedEvent, AuthDecision, AuthRequest, AuthorizeDecision, AuthorizeRequest, BrokerInfo, ConnackEvent,
  ConnectEvent, ConnectedEvent, DeliveredEvent, DisconnectEvent, DroppedEvent, PublishControl, PublishEvent,
  SessionSubscriptionEvent, SessionTerminatedEvent, SubscribeControl, SubscribeEvent, UnsubscribeEvent
} from '../sdk/events.ts'

/** Extra tap options of decision hooks: `tapPromise({ name, timeout: 15_000 }, fn)`. */
export interface DecisionTapOptions {
  /** milliseconds before the host gives up on this tap and applies the hook's fail policy */
  timeout?: number
}

export function createHooks () {
  return Object.freeze({
    /** Decision, async bail: the first plugin that allows or denies wins. Fails closed (deny, CONNACK 3). */
    auth: new AsyncSeriesBailHook<[AuthRequest], AuthDecision | undefined, DecisionTapOptions>(['request']),

    authorize: Object.freeze({
      /** Decision, async bail, per PUBLISH from a client. Fails closed: the message is dropped. */
      publish: new AsyncSeriesBailHook<[AuthorizeRequest], AuthorizeDecision | undefined, DecisionTapOptions>(['request']),
      /** Decision, async bail, per topic filter of a SUBSCRIBE. Fails closed: SUBACK 0x80. */
      subscribe: new AsyncSeriesBailHook<[AuthorizeRequest], AuthorizeDecision | undefined, DecisionTapOptions>(['request'])
    }),

    client: Object.freeze({
      /** A CONNECT arrived (before auth). */
      connect: new SyncHook<[ConnectEvent]>(['event']),
      /** A CONNACK was written, accepted or rejected. */
      connack: new SyncHook<[ConnackEvent]>(['event']),
      /** Authenticated, session open. */
      connected: new SyncHook<[ConnectedEvent]>(['event']),
      /** The connection of an authenticated client closed; carries the reason. */
      disconnected: new SyncHook<[DisconnectEvent]>(['event']),
      /** One filter of a SUBSCRIBE, before authorization; taps may deny or rewrite it. */
      subscribe: new SyncHook<[SubscribeEvent, SubscribeControl]>(['event', 'control']),
      /** One filter of an UNSUBSCRIBE. */
      unsubscribe: new SyncHook<[UnsubscribeEvent]>(['event'])
    }),

    session: Object.freeze({
      /** A subscription was granted and added to the session (after SUBACK). */
      subscribed: new SyncHook<[SessionSubscriptionEvent]>(['event']),
      /** A subscription was removed (after UNSUBACK). */
      unsubscribed: new SyncHook<[SessionSubscriptionEvent]>(['event']),
      /** A session ended for good. */
      terminated: new SyncHook<[SessionTerminatedEvent]>(['event'])
    }),

    message: Object.freeze({
      /** A client's message before routing; taps may drop or rewrite it. Never await here. */
      publish: new SyncHook<[PublishEvent, PublishControl]>(['message', 'control']),
      /** A message is written to a subscriber. */
      delivered: new SyncHook<[DeliveredEvent]>(['event']),
      /** A subscriber acknowledged a QoS 1/2 message. */
      acked: new SyncHook<[AckedEvent]>(['event']),
      /** A client's message was not routed (dropped by a plugin, or not authorized). */
      dropped: new SyncHook<[DroppedEvent]>(['event'])
    }),

    broker: Object.freeze({
      /** All listeners are open. */
      started: new AsyncSeriesHook<[BrokerInfo]>(['info']),
      /** Shutdown began: listeners are closed and clients disconnected (their events fired). Flush queues here. */
      stopping: new AsyncSeriesHook<[]>([])
    })
  })
}

export type Hooks = ReturnType<typeof createHooks>

/** Every hook with its dotted public name (`client.connack`), for interceptors and docs. */
export function listHooks (hooks: Hooks): Array<[name: string, hook: AnyHook]> {
  const found: Array<[string, AnyHook]> = []
  const walk = (node: object, prefix: string) => {
    for (const [key, value] of Object.entries(node)) {
      const name = prefix ? `${prefix}.${key}` : key
      if (isHook(value)) found.push([name, value])
      else walk(value as object, name)
    }
  }
  walk(hooks, '')
  return found
}

/** The part of a tapable hook that interceptors use; the class itself is not exported by tapable. */
export interface AnyHook {
  taps: Array<{ name: string, type: string, fn: Function }>
  intercept (interceptor: object): void
  isUsed (): boolean
}

export function isHook (value: unknown): value is AnyHook {
  return typeof (value as AnyHook).intercept === 'function' && Array.isArray((value as AnyHook).taps)
}

/**
 * Whether any plugin tapped `hook`: the hot paths' guard. Not tapable's isUsed(), which is
 * true for every hook here because the isolation layer intercepts them all.
 */
export function isTapped (hook: { readonly taps: readonly unknown[] }): boolean {
  return hook.taps.length > 0
}

/** Hooks whose taps decide something; they get a timeout and a fail policy. */
export const DECISION_HOOKS = new Set(['auth', 'authorize.publish', 'authorize.subscribe'])
