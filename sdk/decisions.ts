// Decision taps that may answer synchronously. A decision hook (`auth`, `authorize.publish`,
// `authorize.subscribe`) is an AsyncSeriesBailHook, so a plain `tapPromise` costs a promise
// and a timeout race on every call, even when the plugin knows the answer at once (a cache
// hit). A tap registered with `tapDecision` returns either the decision or a promise of it;
// while every tap of a hook answers synchronously, the host decides without a promise or a
// timer, on the same tick. Real asynchronous answers keep the tap's timeout and fail policy.
import type { AsyncSeriesBailHook } from 'tapable'
import type { DecisionTapOptions, Hooks } from '../runtime/hooks.ts'

export type MaybePromise<T> = T | Promise<T>

/** Marks a registered promise function with its maybe-synchronous original (read by the host). */
export const SYNC_DECISION: unique symbol = Symbol.for('tapmq.syncDecision')

/** The tap options of a decision hook: a name, optionally a stage and a timeout in ms. */
export type DecisionTap = string | { name: string, stage?: number, before?: string } & DecisionTapOptions

/** The decision hooks: `auth`, `authorize.publish`, `authorize.subscribe`. */
export type DecisionHook = Hooks['auth'] | Hooks['authorize']['publish'] | Hooks['authorize']['subscribe']
/** The request type of a decision hook (`AuthRequest`, `AuthorizeRequest`). */
export type RequestOf<H> = H extends AsyncSeriesBailHook<[infer Req], infer _Res, DecisionTapOptions> ? Req : never
/** What a decision hook's taps answer (`AuthDecision | undefined`, `AuthorizeDecision | undefined`). */
export type DecisionOf<H> = H extends AsyncSeriesBailHook<[infer _Req], infer Res, DecisionTapOptions> ? Res : never

export function isThenable<T> (value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function'
}

/**
 * `hook.tapPromise(options, fn)` for a decision hook, where `fn` may return the decision
 * itself instead of a promise (for example from a cache). Same order, bail, `ignore`,
 * timeout and fail-closed semantics as `tapPromise`; the timeout applies only to answers
 * that are promises. Returning `undefined` or `{ result: 'ignore' }` asks the next tap.
 */
export function tapDecision<H extends DecisionHook> (
  hook: H,
  options: DecisionTap,
  fn: (request: RequestOf<H>) => MaybePromise<DecisionOf<H>>
): void {
  // a promise for anyone calling the tap the tapable way; the host calls `fn` directly
  const promised = (request: RequestOf<H>): Promise<DecisionOf<H>> => {
    try {
      const answer = fn(request)
      return isThenable(answer) ? answer : Promise.resolve(answer)
    } catch (err) {
      return Promise.reject(err)
    }
  }
  (hook as unknown as AsyncSeriesBailHook<[RequestOf<H>], DecisionOf<H>, DecisionTapOptions>).tapPromise(options, Object.assign(promised, { [SYNC_DECISION]: fn }))
}
