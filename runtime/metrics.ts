// One prom-client registry per broker: the broker's own gauges and counters, the
// per-plugin ones, and hook failure counters. Hot paths bump plain numbers; the
// registry reads them when scraped.
import { Counter as PromCounter, Gauge as PromGauge, Histogram as PromHistogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Counter, Gauge, Histogram, PluginMetrics } from '../sdk/plugin.ts'

export function metricName (text: string): string {
  return text.replace(/[^a-zA-Z0-9_]/g, '_')
}

export class MetricsRegistry {
  readonly registry = new Registry()
  readonly #plugins = new Map<string, PluginMetrics>()
  readonly hookErrors: PromCounter<'plugin' | 'hook'>
  readonly hookTimeouts: PromCounter<'plugin' | 'hook'>

  constructor () {
    // prom-client's names already start with process_ / nodejs_: tapmq_process_cpu_seconds_total, ...
    collectDefaultMetrics({ register: this.registry, prefix: 'tapmq_' })
    this.hookErrors = new PromCounter({
      name: 'tapmq_hook_errors_total', help: 'Hook taps that threw or rejected, by plugin and hook', labelNames: ['plugin', 'hook'], registers: [this.registry]
    })
    this.hookTimeouts = new PromCounter({
      name: 'tapmq_hook_timeouts_total', help: 'Decision hook taps that did not answer in time, by plugin and hook', labelNames: ['plugin', 'hook'], registers: [this.registry]
    })
  }

  /** A gauge read from `collect` at scrape time. */
  gauge (name: string, help: string, collect: () => number): void {
    new PromGauge({ name, help, registers: [this.registry], collect () { this.set(collect()) } })
  }

  /** The same object for the same plugin across reloads, so metric names are registered once. */
  forPlugin (plugin: string): PluginMetrics {
    let metrics = this.#plugins.get(plugin)
    if (!metrics) {
      metrics = createPluginMetrics(this.registry, `tapmq_${metricName(plugin.replace(/^tapmq:/, ''))}_`)
      this.#plugins.set(plugin, metrics)
    }
    return metrics
  }
}

function createPluginMetrics (registry: Registry, prefix: string): PluginMetrics {
  const values = new Map<string, () => number>()
  const made = new Map<string, Counter | Gauge | Histogram>()
  const once = <T extends Counter | Gauge | Histogram>(name: string, make: () => T): T => {
    const existing = made.get(name)
    if (existing) return existing as T
    const metric = make()
    made.set(name, metric)
    return metric
  }
  return {
    counter (name, help) {
      return once(name, () => {
        let value = 0
        // a plain number on the hot path (prom-client's inc allocates); the registry reads it when scraped
        new PromCounter({ name: prefix + metricName(name), help, registers: [registry], collect () { this.reset(); this.inc(value) } })
        values.set(name, () => value)
        return {
          inc (n = 1) {
            if (!(n >= 0)) throw new TypeError(`counter ${name} can only go up (inc(${n}))`)
            value += n
          },
          get value () { return value }
        }
      })
    },
    gauge (name, help, collect) {
      return once(name, () => {
        let value = 0
        const read = () => (collect ? collect() : value)
        new PromGauge({ name: prefix + metricName(name), help, registers: [registry], collect () { this.set(read()) } })
        values.set(name, read)
        return {
          set (n: number) { value = n },
          get value () { return read() }
        }
      })
    },
    histogram (name, help, buckets) {
      return once(name, () => {
        const prom = new PromHistogram({ name: prefix + metricName(name), help, buckets, registers: [registry] })
        return { observe (n: number) { prom.observe(n) } }
      })
    },
    snapshot () {
      return Object.fromEntries([...values].map(([name, read]) => [name, read()]))
    }
  }
}
