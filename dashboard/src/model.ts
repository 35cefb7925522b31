// The dashboard's logic without the DOM: topic matching, rates from counter samples, the
// tree search, and formatting. Node tests import this file directly.

/** A node of `GET /api/v4/topic-tree?format=tree`. */
export interface TreeNode {
  readonly topic: string
  /** the whole filter from the root; `""` at the root */
  readonly filter: string
  readonly clientid: readonly string[]
  readonly retained: number
  readonly children: readonly TreeNode[]
}

/** MQTT 3.1.1 section 4.7: `+` one level, `#` the rest (and the parent), no wildcard on `$` topics at level 0. */
export function topicMatches (filter: string, topic: string): boolean {
  if (filter === '') return false
  const f = filter.split('/')
  const t = topic.split('/')
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

/** Cumulative counters at one moment. */
export interface Sample {
  /** milliseconds, any monotonic clock */
  readonly at: number
  readonly counts: ReadonlyMap<string, number>
}

/**
 * Per-key rates (per second) between two samples of cumulative counters. A key that is new,
 * or whose counter went down (the broker restarted or forgot it), counts from zero.
 */
export function ratesBetween (previous: Sample, next: Sample): Map<string, number> {
  const seconds = (next.at - previous.at) / 1000
  const rates = new Map<string, number>()
  if (seconds <= 0) return rates
  for (const [key, count] of next.counts) {
    const before = previous.counts.get(key)
    const delta = before === undefined || count < before ? count : count - before
    rates.set(key, delta / seconds)
  }
  return rates
}

/** Messages per second matching `filter`, summed over the topics the broker counts; the root gets them all. */
export function filterRate (filter: string, topicRates: ReadonlyMap<string, number>): number {
  let sum = 0
  for (const [topic, rate] of topicRates) if (filter === '' || topicMatches(filter, topic)) sum += rate
  return sum
}

export interface TreeSearch {
  /** filters of the nodes to draw: the matches and their ancestors */
  readonly visible: ReadonlySet<string>
  /** filters of the nodes that match themselves */
  readonly matched: ReadonlySet<string>
}

/**
 * Nodes whose filter or one of whose subscribers contains `query` (case-insensitive), plus
 * their ancestors; a match also shows everything below it. An empty query shows everything.
 */
export function searchTree (root: TreeNode, query: string): TreeSearch {
  const visible = new Set<string>()
  const matched = new Set<string>()
  const needle = query.trim().toLowerCase()
  const all = (node: TreeNode): void => {
    visible.add(node.filter)
    node.children.forEach(all)
  }
  if (needle === '') {
    all(root)
    return { visible, matched }
  }
  const walk = (node: TreeNode): boolean => {
    const self = node !== root && (node.filter.toLowerCase().includes(needle) ||
      node.clientid.some((id) => id.toLowerCase().includes(needle)))
    if (self) {
      matched.add(node.filter)
      all(node)
      return true
    }
    let any = false
    for (const child of node.children) if (walk(child)) any = true
    if (any) visible.add(node.filter)
    return any
  }
  walk(root)
  return { visible, matched }
}

/** Filters somebody subscribes to, in the whole tree. */
export function subscribedFilters (node: TreeNode): number {
  return (node.clientid.length > 0 ? 1 : 0) + node.children.reduce((sum, child) => sum + subscribedFilters(child), 0)
}

/** Subscriptions in the whole subtree (a node's own plus its descendants'). */
export function subtreeSubscribers (node: TreeNode): number {
  return node.clientid.length + node.children.reduce((sum, child) => sum + subtreeSubscribers(child), 0)
}

export function formatRate (perSecond: number | undefined): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return '–'
  if (perSecond === 0) return '0'
  if (perSecond < 0.1) return '<0.1'
  if (perSecond < 10) return perSecond.toFixed(1)
  return formatCount(Math.round(perSecond))
}

export function formatCount (n: number): string {
  if (n < 10_000) return String(n)
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 100_000 ? 1 : 0)}k`
  return `${(n / 1_000_000).toFixed(1)}M`
}

export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`
}

/** `3d 4h`, `2h 5m`, `4m 10s`, `12s` */
export function formatDuration (ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  const d = Math.floor(s / 86_400)
  const h = Math.floor(s / 3600) % 24
  const m = Math.floor(s / 60) % 60
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${m}m`
  if (m > 0) return `${m}m ${s % 60}s`
  return `${s}s`
}

/** MQTT protocol level as people name it. */
export function protocolName (protoName: string, protoVer: number): string {
  const version = protoVer === 5 ? '5.0' : protoVer === 4 ? '3.1.1' : protoVer === 3 ? '3.1' : String(protoVer)
  return `${protoName === 'MQIsdp' ? 'MQTT' : protoName} ${version}`
}

export interface CounterRow {
  readonly label: string
  readonly value: string
  /** a computed figure, not a raw counter */
  readonly derived?: boolean
  /** one of the figures people look for first (queue depth, sent, allow, ...); the rest can fold away */
  readonly key?: boolean
}

const LABELS: Record<string, string> = {
  queue_depth: 'queue depth',
  queue_length: 'queue depth',
  sent_total: 'sent',
  failed_total: 'failed',
  dropped_total: 'dropped',
  allow_total: 'allow',
  deny_total: 'deny',
  ignore_total: 'ignore',
  errors_total: 'errors',
  timeouts_total: 'timeouts',
  cache_hits_total: 'cache hits',
  cache_misses_total: 'cache misses',
  requests_total: 'requests',
  retries_total: 'retries',
  retried_total: 'retried',
  auth_failures_total: 'auth failures'
}

/** A plugin's counters for people: known ones first with short labels, then the rest; hit rates computed. */
export function counterRows (counters: Readonly<Record<string, number>>): CounterRow[] {
  const rows: CounterRow[] = []
  const order = Object.keys(LABELS)
  const names = Object.keys(counters).sort((a, b) => {
    const ia = order.indexOf(a)
    const ib = order.indexOf(b)
    return (ia < 0 ? order.length : ia) - (ib < 0 ? order.length : ib) || a.localeCompare(b)
  })
  for (const name of names) {
    const known = LABELS[name]
    rows.push({ label: known ?? name.replace(/_total$/, '').replaceAll('_', ' '), value: formatCount(counters[name]!), ...(known ? { key: true } : {}) })
  }
  const hits = counters.cache_hits_total
  if (hits !== undefined) {
    // a decision comes from the cache, or from a request (possibly shared by several callers)
    const misses = counters.cache_misses_total ?? (counters.requests_total ?? 0) + (counters.coalesced_total ?? 0)
    const total = hits + misses
    rows.push({ label: 'cache hit rate', value: total === 0 ? '–' : `${Math.round((hits / total) * 1000) / 10}%`, derived: true, key: true })
  }
  return rows
}
