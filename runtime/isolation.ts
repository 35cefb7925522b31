// Plugin isolation, done once for every hook with a register interceptor: each tap is
// wrapped so that a throwing, rejecting or hanging plugin is logged, counted and answered
// by the hook's fail policy, and so that a disabled plugin's taps do nothing (tapable has
// no untap).
import type { Logger } from 'pino'
import { isThenable, SYNC_DECISION } from '../sdk/decisions.ts'
import { ERR_HOOK_TIMEOUT } from '../sdk/errors.ts'
import { type AnyHook, DECISION_HOOKS, type Hooks, isHook, listHooks } from './hooks.ts'
import type { MetricsRegistry } from './metrics.ts'

/** The plugin instance a tap belongs to: the hooks view its host got (hooksFor) marks its taps. */
export interface TapOwner {
  readonly name: string
  /** false once the plugin instance is disabled, closed or replaced */
  active: boolean
  /**
   * set while the instance is being replaced by a new one (a reload), and kept if the new one
   * fails to start: its decision taps then deny (auth: CONNACK 3) instead of passing the
   * decision on, so that a reload never lets in a client the plugin would refuse
   */
  replacing?: boolean
  /**
   * bumped when the instance reconfigures in place (its reload()): answers its taps let the
   * broker remember before are no longer used
   */
  generation?: number
}

type TapFn = (...args: unknown[]) => unknown
interface RegisteredTap { name: string, type: string, fn: TapFn, timeout?: number }
/** A decision tap as the isolation layer leaves it: `decide` answers now, or with a promise; `live` while its plugin is enabled. */
interface DecisionTap extends RegisteredTap { decide?: (args: unknown[]) => unknown, live?: () => boolean, generation?: () => number }

/** What a failed decision tap answers: auth fails closed with CONNACK 3, authorization denies. */
function failDecision (hook: string, plugin: string, err: Error): unknown {
  return unavailable(hook, `plugin ${plugin} failed: ${err.message}`)
}

function unavailable (hook: string, reason: string): unknown {
  if (hook === 'auth') return { result: 'deny', code: 3, reason }
  return { result: 'deny', reason }
}

/**
 * where a tap's options carry its owner, put there by the plugin's hooks view; a string key
 * (tapable copies only the enumerable string keys of tap options)
 */
const TAP_OWNER = 'tapmqOwner'
const TAP_METHODS = new Set<PropertyKey>(['tap', 'tapAsync', 'tapPromise'])

export class HookIsolation {
  readonly #reported = new Map<string, number>()
  readonly #tapped = new WeakMap<TapOwner, Set<string>>()

  constructor (
    private readonly log: Logger,
    private readonly metrics: MetricsRegistry,
    private readonly decisionTimeout: number,
    private readonly lifecycleTimeout: number
  ) {}

  install (hooks: Hooks): void {
    for (const [name, hook] of listHooks(hooks)) {
      hook.intercept({ register: (tap: RegisteredTap) => this.#wrap(name, hook, tap) })
    }
  }

  /** The hooks `owner` tapped, by dotted name. */
  hooksOf (owner: TapOwner): string[] {
    return [...(this.#tapped.get(owner) ?? [])]
  }

  /**
   * The hook table as one plugin instance sees it: the same hooks, whose tap methods mark
   * each tap as `owner`'s, whenever it is made (during setup, after an await in it, or
   * later). An AsyncLocalStorage around setup did this before; it kept Node's async hooks on
   * for good, which costs every promise in the broker (~90 ns per await on this machine).
   */
  hooksFor (hooks: Hooks, owner: TapOwner): Hooks {
    const view = (node: object): object => Object.freeze(Object.fromEntries(Object.entries(node).map(([key, value]) =>
      [key, isHook(value) ? ownedHook(value, owner) : view(value as object)])))
    return view(hooks) as Hooks
  }

  #report (owner: string, hook: string, err: Error, timedOut: boolean): void {
    (timedOut ? this.metrics.hookTimeouts : this.metrics.hookErrors).inc({ plugin: owner, hook })
    // a plugin failing on every message must not flood the log: the first 10, then every 1000th
    const key = `${owner}\0${hook}`
    const count = (this.#reported.get(key) ?? 0) + 1
    this.#reported.set(key, count)
    if (count <= 10 || count % 1000 === 0) {
      this.log.error({ plugin: owner, hook, err, occurrences: count }, timedOut ? 'plugin hook timed out' : 'plugin hook failed')
    }
  }

  #wrap (hookName: string, _hook: AnyHook, tap: RegisteredTap): RegisteredTap {
    const owner: TapOwner = (tap as RegisteredTap & { [TAP_OWNER]?: TapOwner })[TAP_OWNER] ?? { name: tap.name, active: true }
    const tapped = this.#tapped.get(owner) ?? new Set<string>()
    this.#tapped.set(owner, tapped.add(hookName))
    const fn = tap.fn
    const isDecision = DECISION_HOOKS.has(hookName)
    const isLifecycle = hookName.startsWith('broker.')
    const fail = (err: Error, timedOut = false) => {
      this.#report(owner.name, hookName, err, timedOut)
      return isDecision ? failDecision(hookName, owner.name, err) : undefined
    }
    // `ignore` must not bail out of the chain: it means "ask the next plugin"
    const normalize = isDecision
      ? (result: unknown) => ((result as { result?: string } | undefined)?.result === 'ignore' ? undefined : result)
      : (result: unknown) => result
    const timeout = tap.timeout ?? (isDecision ? this.decisionTimeout : isLifecycle ? this.lifecycleTimeout : 0)
    /** the answer of a tap whose instance is no longer active */
    const inactive = () => (isDecision && owner.replacing === true ? unavailable(hookName, `plugin ${owner.name} is restarting`) : undefined)
    /** what runDecision and remembered answers read from a decision tap */
    const asDecision = (wrapped: RegisteredTap, decide: (args: unknown[]) => unknown): DecisionTap =>
      Object.assign(wrapped, { decide, live: () => owner.active, generation: () => owner.generation ?? 0 })

    if (tap.type === 'sync') {
      const sync = (...args: unknown[]) => {
        if (!owner.active) return inactive()
        try {
          return normalize(fn(...args))
        } catch (err) {
          return fail(err as Error)
        }
      }
      return isDecision ? asDecision({ ...tap, fn: sync }, (args) => sync(...args)) : { ...tap, fn: sync }
    }

    // a tapDecision fn may answer synchronously; a plain promise tap is called as it is
    const direct = (fn as TapFn & { [SYNC_DECISION]?: TapFn })[SYNC_DECISION] ?? (tap.type === 'promise' ? fn : undefined)
    const call: (args: unknown[]) => unknown = direct
      ? (args) => direct(...args)
      : (args) => new Promise((resolve, reject) => {
          fn(...args, (err: Error | null | undefined, result?: unknown) => (err ? reject(err) : resolve(result)))
        })
    /** the normalized answer: a value when the tap answered synchronously, else a promise (raced with the timeout) */
    const settle = (args: unknown[]): unknown => {
      if (!owner.active) return inactive()
      let answer: unknown
      try {
        answer = call(args)
      } catch (err) {
        return fail(err as Error)
      }
      if (!isThenable(answer)) return normalize(answer)
      const normalized = answer.then(normalize, (err: Error) => fail(err))
      if (timeout <= 0) return normalized
      let timer: NodeJS.Timeout | undefined
      const expiry = new Promise((resolve) => {
        timer = setTimeout(() => resolve(fail(ERR_HOOK_TIMEOUT([owner.name, hookName, timeout]), true)), timeout)
        timer.unref()
      })
      return Promise.race([normalized, expiry]).finally(() => clearTimeout(timer))
    }
    const guarded = (args: unknown[]): Promise<unknown> => {
      const answer = settle(args)
      return isThenable(answer) ? answer : Promise.resolve(answer)
    }
    // tapable checks the tap type when it compiles the call; keep each kind's calling convention
    const wrapped: RegisteredTap = tap.type === 'promise'
      ? { ...tap, fn: (...args: unknown[]) => guarded(args) }
      : {
          ...tap,
          fn: (...args: unknown[]) => {
            const callback = args.pop() as (err: Error | null, result?: unknown) => void
            guarded(args).then((result) => callback(null, result))
          }
        }
    return isDecision ? asDecision(wrapped, settle) : wrapped
  }
}

/** `hook`, with taps made through it marked as `owner`'s; everything else is the hook's own (methods bound to it). */
function ownedHook (hook: AnyHook, owner: TapOwner): AnyHook {
  return new Proxy(hook, {
    get (target, property) {
      if (TAP_METHODS.has(property)) {
        const tap = (target as unknown as Record<PropertyKey, (options: unknown, fn: unknown) => void>)[property]!
        return (options: string | object, fn: unknown) =>
          tap.call(target, { ...(typeof options === 'string' ? { name: options } : options), [TAP_OWNER]: owner }, fn)
      }
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

type DecisionHookLike<Req, Res> = { readonly taps: readonly object[], promise (request: Req): Promise<Res> }

/**
 * Runs a decision hook's chain like `hook.promise(request)` (in order; the first allow or
 * deny wins; `ignore` asks the next tap; failures and timeouts answer by the fail policy),
 * but synchronously for as long as the taps answer synchronously: no promise and no timer
 * when, for example, every answer comes from a plugin's cache. Returns the decision (or
 * undefined when no tap decided), or a promise of it once a tap answers asynchronously.
 * Hooks whose taps were not wrapped by the isolation layer fall back to `hook.promise`.
 */
export function runDecision<Req, Res> (hook: DecisionHookLike<Req, Res>, request: Req): Res | Promise<Res> {
  return decideFrom(hook, [request], 0)
}

// a plain function, not a closure per call: under tsx every named closure also costs a __name() call
function decideFrom<Req, Res> (hook: DecisionHookLike<Req, Res>, args: [Req], first: number): Res | Promise<Res> {
  const taps = hook.taps as readonly DecisionTap[]
  for (let i = first; i < taps.length; i++) {
    const decide = taps[i]!.decide
    if (decide === undefined) return hook.promise(args[0])
    const answer = decide(args)
    if (isThenable(answer)) return answer.then((result) => (result !== undefined ? result as Res : decideFrom(hook, args, i + 1)))
    if (answer !== undefined) return answer as Res
  }
  return undefined as Res
}

/**
 * The hook's only live tap (taps of disabled or replaced plugin instances answer nothing), or
 * undefined when there are none or several. An answer that tap allowed the broker to
 * remember stays valid only while this returns the same tap.
 */
export function soleLiveTap (hook: { readonly taps: readonly object[] }): object | undefined {
  let sole: object | undefined
  for (const tap of hook.taps as readonly DecisionTap[]) {
    if (tap.live?.() === false) continue
    if (sole !== undefined || tap.live === undefined) return undefined
    sole = tap
  }
  return sole
}
