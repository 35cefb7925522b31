// NanoMQ's Prometheus names (docs/en_US/api/v4.md, "GET /api/v4/prometheus") as aliases of
// tapmq's own metrics, in a registry of this plugin's, appended to the broker's exposition.
// `_max` is the peak this plugin has seen when it was scraped or asked (NanoMQ's is a
// process-lifetime peak of its own sampling too).
import { Counter, Gauge, Registry } from 'prom-client'
import type { BrokerView } from '../../sdk/index.ts'
import { CpuSampler } from './views.ts'

export class Peaks {
  readonly #peaks = new Map<string, number>()

  observe (name: string, value: number): number {
    const peak = Math.max(this.#peaks.get(name) ?? 0, value)
    this.#peaks.set(name, peak)
    return peak
  }
}

/** NanoMQ's metric families, sampled once per call of the returned function. */
export function nanomqMetrics (broker: BrokerView, peaks: Peaks, cpu: CpuSampler): () => Promise<string> {
  const registry = new Registry()
  const registers = [registry]
  let sample: { connections: number, sessions: number, topics: number, subscribers: number, memory: number, cpu: number } | undefined
  const current = () => {
    if (!sample) {
      const stats = broker.stats()
      sample = {
        connections: stats.connections,
        sessions: stats.sessions,
        topics: stats.topics,
        subscribers: stats.subscriptions,
        memory: process.memoryUsage().rss,
        cpu: cpu.percent()
      }
    }
    return sample
  }
  const pair = (what: 'connections' | 'sessions' | 'topics' | 'subscribers', help: string) => {
    new Gauge({ name: `nanomq_${what}_count`, help, registers, collect () { this.set(current()[what]) } })
    new Gauge({ name: `nanomq_${what}_max`, help: `Peak of nanomq_${what}_count`, registers, collect () { this.set(peaks.observe(what, current()[what])) } })
  }
  pair('connections', 'Number of connections')
  pair('sessions', 'Number of sessions')
  pair('topics', 'Number of topics (subscription trie nodes)')
  pair('subscribers', 'Number of subscriptions')
  const counter = (name: string, help: string, read: () => number) => {
    new Counter({ name, help, registers, collect () { this.reset(); this.inc(read()) } })
  }
  counter('nanomq_messages_received', 'The counter of messages received', () => broker.stats().messagesReceived)
  counter('nanomq_messages_sent', 'The counter of messages sent', () => broker.stats().messagesSent)
  counter('nanomq_messages_dropped', 'The counter of messages dropped', () => broker.stats().messagesDropped)
  new Gauge({ name: 'nanomq_memory_usage', help: 'Memory usage (b)', registers, collect () { this.set(current().memory) } })
  new Gauge({ name: 'nanomq_memory_usage_max', help: 'Peak memory usage (b)', registers, collect () { this.set(peaks.observe('memory', current().memory)) } })
  new Gauge({ name: 'nanomq_cpu_usage', help: 'CPU usage since the previous scrape (%)', registers, collect () { this.set(current().cpu) } })
  new Gauge({ name: 'nanomq_cpu_usage_max', help: 'Peak CPU usage (%)', registers, collect () { this.set(peaks.observe('cpu', current().cpu)) } })
  return () => {
    sample = undefined
    return registry.metrics()
  }
}
