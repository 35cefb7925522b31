// Plugin isolation, done once for every hook with a register interceptor: each tap is
// wrapped so that a throwing, rejecting or hanging plugin is logged, counted and answered
// by the hook's fail policy, and so that a disabled plugin's taps do nothing (tapable has
// no untap).
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Logger } from 'pino'
import { ERR_HOOK_TIMEOUT } from '../sdk/errors.ts'
import { type AnyHook, DECISION_HOOKS, type Hooks, listHooks } from './hooks.ts'
import type { MetricsRegistry } from './metrics.ts'

/** Whose taps are being registered; set while a plugin's setup runs. */
export interface TapOwner {
  readonly name: string
  /** false once the plugin instance is disabled, closed or replaced */
  active: boolean
}

type TapFn = (...args: unknown[]) => unknown
interface RegisteredTap { name: string, type: string, fn: TapFn, timeout?: number }

/** What a failed decision tap answers: auth fails closed with CONNACK 3, authorization denies. */
function failDecision (hook: string, plugin: string, err: Error): unknown {
  if (hook === 'auth') return { result: 'deny', code: 3, reason: `plugin ${plugin} failed: ${err.message}` }
  return { result: 'deny', reason: `plugin ${plugin} failed: ${err.message}` }
}

export class HookIsolation {
  readonly #owners = new AsyncLocalStorage<TapOwner>()
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

  /** Runs a plugin's setup so that the taps it registers belong to `owner`. */
  runAs<T> (owner: TapOwner, fn: () => T): T {
    return this.#owners.run(owner, fn)
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
    const owner: TapOwner = this.#owners.getStore() ?? { name: tap.name, active: true }
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

    if (tap.type === 'sync') {
      return {
        ...tap,
        fn: (...args: unknown[]) => {
          if (!owner.active) return undefined
          try {
            return normalize(fn(...args))
          } catch (err) {
            return fail(err as Error)
          }
        }
      }
    }

    const call: (args: unknown[]) => Promise<unknown> = tap.type === 'promise'
      ? async (args) => fn(...args)
      : (args) => new Promise((resolve, reject) => {
          fn(...args, (err: Error | null | undefined, result?: unknown) => (err ? reject(err) : resolve(result)))
        })
    const guarded = (args: unknown[]): Promise<unknown> => {
      if (!owner.active) return Promise.resolve(undefined)
      let timer: NodeJS.Timeout | undefined
      const answer = call(args).then(normalize, (err: Error) => fail(err))
      if (timeout <= 0) return answer
      const expiry = new Promise((resolve) => {
        timer = setTimeout(() => resolve(fail(ERR_HOOK_TIMEOUT([owner.name, hookName, timeout]), true)), timeout)
        timer.unref()
      })
      return Promise.race([answer, expiry]).finally(() => clearTimeout(timer))
    }
    // tapable checks the tap type when it compiles the call; keep each kind's calling convention
    if (tap.type === 'promise') return { ...tap, fn: (...args: unknown[]) => guarded(args) }
    return {
      ...tap,
      fn: (...args: unknown[]) => {
        const callback = args.pop() as (err: Error | null, result?: unknown) => void
        guarded(args).then((result) => callback(null, result))
      }
    }
  }
}
