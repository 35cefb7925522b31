// Turning runs into medians, ratios, a text table and an SVG chart.
import type { Better, ScenarioResult } from './scenarios.ts'

export interface RunRecord {
  readonly scenario: string
  readonly target: string
  readonly repeat: number
  readonly result?: ScenarioResult
  /** the run crashed or the target did not start */
  readonly error?: string
}

export interface MetricSummary {
  readonly scenario: string
  readonly metric: string
  readonly unit: string
  readonly better: Better
  /** per target: median over valid runs, the runs it came from, and whether any run was invalid */
  readonly targets: Record<string, { median: number, values: number[], valid: number, invalid: number, generatorBound: number }>
}

export interface Ratio {
  readonly scenario: string
  readonly metric: string
  readonly of: string
  readonly to: string
  /** relative performance: > 1 means `of` did better than `to` (inverted for lower-is-better metrics) */
  readonly performance: number
  /** the plain quotient of the medians, of / to */
  readonly quotient: number
  readonly goal?: number
  readonly met?: boolean
}

export function median (values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Medians per scenario, metric and target. Invalid runs only count when a target has no valid run. */
export function summarize (runs: readonly RunRecord[]): MetricSummary[] {
  const out = new Map<string, MetricSummary>()
  const pending = new Map<string, Map<string, { valid: number[], invalid: number[], bound: number }>>()
  for (const run of runs) {
    if (!run.result) continue
    for (const metric of run.result.metrics) {
      const key = `${run.scenario}\u0000${metric.name}`
      if (!out.has(key)) {
        out.set(key, { scenario: run.scenario, metric: metric.name, unit: metric.unit, better: metric.better, targets: {} })
        pending.set(key, new Map())
      }
      const byTarget = pending.get(key) as Map<string, { valid: number[], invalid: number[], bound: number }>
      const slot = byTarget.get(run.target) ?? { valid: [], invalid: [], bound: 0 }
      byTarget.set(run.target, slot)
      if (!Number.isFinite(metric.value)) continue
      ;(run.result.valid ? slot.valid : slot.invalid).push(metric.value)
      if (run.result.generatorBound) slot.bound++
    }
  }
  for (const [key, summary] of out) {
    for (const [target, slot] of pending.get(key) ?? []) {
      const values = slot.valid.length > 0 ? slot.valid : slot.invalid
      summary.targets[target] = { median: median(values), values, valid: slot.valid.length, invalid: slot.invalid.length, generatorBound: slot.bound }
    }
  }
  return [...out.values()]
}

export interface RatioSpec {
  readonly of: string
  readonly to: string
  /** the goal for relative performance, per metric name, or one for all (undefined: none) */
  readonly goal?: number | ((metric: string, scenario: string) => number | undefined)
}

export function ratios (summaries: readonly MetricSummary[], specs: readonly RatioSpec[]): Ratio[] {
  const out: Ratio[] = []
  for (const summary of summaries) {
    for (const spec of specs) {
      const a = summary.targets[spec.of]?.median
      const b = summary.targets[spec.to]?.median
      if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || a === 0 || b === 0) continue
      const quotient = a / b
      const performance = summary.better === 'higher' ? quotient : 1 / quotient
      const goal = typeof spec.goal === 'function' ? spec.goal(summary.metric, summary.scenario) : spec.goal
      out.push({ scenario: summary.scenario, metric: summary.metric, of: spec.of, to: spec.to, performance, quotient, goal, met: goal === undefined ? undefined : performance >= goal })
    }
  }
  return out
}

export function formatValue (value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (unit === 'ms') return value < 10 ? value.toFixed(2) : value.toFixed(1)
  if (unit === 'KB' || unit === 'µs/op') return value.toFixed(1)
  return Math.round(value).toLocaleString('en-US')
}

/** A plain-text table: one row per metric, one column per target, then the ratios. */
export function textTable (summaries: readonly MetricSummary[], targets: readonly string[], ratioList: readonly Ratio[], specs: readonly RatioSpec[]): string {
  const ratioHeads = specs.map((s) => `${s.of}/${s.to}`)
  const head = ['scenario', 'metric', 'unit', ...targets, ...ratioHeads]
  const rows = summaries.map((summary) => {
    const cells = targets.map((target) => {
      const t = summary.targets[target]
      if (!t) return '-'
      const flags = (t.invalid > 0 ? ` !${t.invalid}` : '') + (t.generatorBound > 0 ? ' g' : '')
      return formatValue(t.median, summary.unit) + flags
    })
    const ratioCells = specs.map((spec) => {
      const r = ratioList.find((x) => x.scenario === summary.scenario && x.metric === summary.metric && x.of === spec.of && x.to === spec.to)
      if (!r) return '-'
      return `${r.performance.toFixed(2)}x${r.met === undefined ? '' : r.met ? ' ok' : ' MISS'}`
    })
    return [summary.scenario, summary.metric, summary.unit, ...cells, ...ratioCells]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

const PALETTE = ['#2563eb', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#dc2626', '#4b5563']

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/**
 * Horizontal grouped bars: one group per metric, one bar per target, bar length = the median
 * scaled to the largest value in its group (each group says whether higher or lower is
 * better). Each bar is labelled with its median and its ratios (relative performance, > 1 =
 * better than the other target).
 */
export function svgChart (summaries: readonly MetricSummary[], targets: readonly string[], ratioList: readonly Ratio[], title: string, subtitle: string): string {
  const barHeight = 14
  const gap = 3
  const groupGap = 16
  const labelWidth = 230
  const plotWidth = 430
  const right = 320
  const width = labelWidth + plotWidth + right
  const top = 64
  const legendHeight = 28
  const colors = new Map(targets.map((t, i) => [t, PALETTE[i % PALETTE.length]]))
  const parts: string[] = []
  let y = top + legendHeight
  for (const summary of summaries) {
    const present = targets.filter((t) => summary.targets[t] && Number.isFinite(summary.targets[t].median))
    if (present.length === 0) continue
    const max = Math.max(...present.map((t) => summary.targets[t].median))
    const groupHeight = present.length * (barHeight + gap)
    const arrow = summary.better === 'higher' ? 'higher is better' : 'lower is better'
    parts.push(`<text x="8" y="${y + groupHeight / 2 - 2}" class="metric">${escape(`${summary.scenario}: ${summary.metric}`)}</text>`)
    parts.push(`<text x="8" y="${y + groupHeight / 2 + 12}" class="unit">${escape(`${summary.unit}, ${arrow}`)}</text>`)
    for (const target of present) {
      const t = summary.targets[target]
      const w = max > 0 ? Math.max(1, (t.median / max) * plotWidth) : 1
      const color = colors.get(target) ?? '#888'
      const own = ratioList.filter((r) => r.scenario === summary.scenario && r.metric === summary.metric && r.of === target)
      const flags = (t.invalid > 0 && t.valid === 0 ? ' (invalid: losses)' : '') + (t.generatorBound > 0 ? ' (generator-bound)' : '')
      const ratioText = own.length > 0 ? `  ${own.map((r) => `${r.performance.toFixed(2)}x vs ${r.to}`).join(', ')}` : ''
      parts.push(`<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${color}" rx="2"><title>${escape(`${target}: ${t.values.map((v) => formatValue(v, summary.unit)).join(', ')}`)}</title></rect>`)
      parts.push(`<text x="${labelWidth + w + 4}" y="${y + barHeight - 3}" class="value">${escape(`${formatValue(t.median, summary.unit)}${ratioText}${flags}`)}</text>`)
      y += barHeight + gap
    }
    y += groupGap
    parts.push(`<line x1="8" x2="${width - 8}" y1="${y - groupGap / 2}" y2="${y - groupGap / 2}" class="rule"/>`)
  }
  const legend = targets.map((t, i) => `<rect x="${labelWidth + i * 150}" y="${top}" width="12" height="12" fill="${colors.get(t)}"/><text x="${labelWidth + i * 150 + 16}" y="${top + 11}" class="legend">${escape(t)}</text>`).join('')
  const height = y + 10
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    '<style>.title{font-size:17px;font-weight:600}.sub{font-size:11px;fill:#555}.metric{font-size:12px;font-weight:600}.unit{font-size:10px;fill:#666}.value{font-size:11px}.legend{font-size:12px}.rule{stroke:#e5e7eb}</style>',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="8" y="24" class="title">${escape(title)}</text>`,
    `<text x="8" y="44" class="sub">${escape(subtitle)}</text>`,
    legend,
    ...parts,
    '</svg>',
    ''
  ].join('\n')
}
