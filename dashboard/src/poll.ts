// Polling: a view asks for data every few seconds while it is on screen, and the overview's
// history is sampled in the background for as long as someone is logged in.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { type Api, ApiError, type MetricsReply } from './api.ts'

/** How often views refresh: 2 s, or `?refresh=<seconds>` in the page URL (0.5 to 60). */
export const POLL_MS = ((): number => {
  const seconds = Number(new URLSearchParams(location.search).get('refresh') ?? '')
  return Number.isFinite(seconds) && seconds >= 0.5 ? Math.min(seconds, 60) * 1000 : 2000
})()

export interface Polled<T> {
  readonly data: T | undefined
  readonly error: ApiError | undefined
  /** fetch now, e.g. after an action */
  refresh (): void
}

/**
 * Calls `load` now and every `ms` while mounted; never two calls at once. A 401 goes to
 * `onUnauthorized` (the credentials were changed at the broker).
 */
export function usePoll<T> (load: () => Promise<T>, onUnauthorized: () => void, ms = POLL_MS): Polled<T> {
  const [data, setData] = useState<T>()
  const [error, setError] = useState<ApiError>()
  const loadRef = useRef(load)
  loadRef.current = load
  const busy = useRef(false)
  const alive = useRef(true)

  const run = useCallback(() => {
    if (busy.current) return
    busy.current = true
    loadRef.current().then((value) => {
      if (!alive.current) return
      setData(value)
      setError(undefined)
    }, (err: unknown) => {
      if (!alive.current) return
      const apiError = err instanceof ApiError ? err : new ApiError(0, undefined, String(err))
      if (apiError.unauthorized) onUnauthorized()
      setError(apiError)
    }).finally(() => { busy.current = false })
  }, [onUnauthorized])

  useEffect(() => {
    alive.current = true
    run()
    const timer = setInterval(run, ms)
    return () => {
      alive.current = false
      clearInterval(timer)
    }
  }, [run, ms])

  return { data, error, refresh: run }
}

export interface MetricPoint {
  /** seconds since the epoch, as uPlot wants */
  readonly t: number
  readonly connections: number
  /** per second since the previous point; undefined for the first */
  readonly inRate: number | undefined
  readonly outRate: number | undefined
  readonly droppedRate: number | undefined
}

export interface MonitorState {
  readonly points: readonly MetricPoint[]
  readonly latest: MetricsReply | undefined
  readonly error: ApiError | undefined
}

/** Samples /metrics every POLL_MS and keeps `windowMs` of history. */
export class Monitor {
  #points: MetricPoint[] = []
  #latest: MetricsReply | undefined
  #previous: { at: number, received: number, sent: number, dropped: number } | undefined
  #error: ApiError | undefined
  #timer: ReturnType<typeof setInterval> | undefined
  #busy = false
  readonly #listeners = new Set<() => void>()

  constructor (private readonly api: Api, private readonly onUnauthorized: () => void, readonly windowMs = 5 * 60_000) {}

  start (): void {
    if (this.#timer) return
    void this.#sample()
    this.#timer = setInterval(() => void this.#sample(), POLL_MS)
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  get state (): MonitorState {
    return { points: this.#points, latest: this.#latest, error: this.#error }
  }

  subscribe (listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async #sample (): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    try {
      const reply = await this.api.metrics()
      const m = reply.metrics[0]
      if (!m) return
      const at = Date.now()
      const now = { at, received: m['messages.received'], sent: m['messages.sent'], dropped: m['messages.dropped'] }
      const prev = this.#previous
      const rate = (key: 'received' | 'sent' | 'dropped') => {
        if (!prev || at <= prev.at) return undefined
        // a counter that went down means the broker restarted: no rate for this step
        return now[key] < prev[key] ? undefined : ((now[key] - prev[key]) * 1000) / (at - prev.at)
      }
      const point: MetricPoint = {
        t: at / 1000,
        connections: m.connections,
        inRate: rate('received'),
        outRate: rate('sent'),
        droppedRate: rate('dropped')
      }
      this.#previous = now
      this.#latest = reply
      this.#error = undefined
      const cutoff = at / 1000 - this.windowMs / 1000
      this.#points = [...this.#points.filter((p) => p.t >= cutoff), point]
    } catch (err) {
      this.#error = err instanceof ApiError ? err : new ApiError(0, undefined, String(err))
      if (this.#error.unauthorized) this.onUnauthorized()
    } finally {
      this.#busy = false
      for (const listener of this.#listeners) listener()
    }
  }
}

export function useMonitor (monitor: Monitor): MonitorState {
  const [state, setState] = useState(monitor.state)
  useEffect(() => {
    setState(monitor.state)
    return monitor.subscribe(() => setState(monitor.state))
  }, [monitor])
  return state
}
