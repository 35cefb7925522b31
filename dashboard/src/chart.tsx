// A time-series chart (uPlot) that follows its container's width.
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'

export interface SeriesSpec {
  readonly label: string
  readonly color: string
  /** fill under the line */
  readonly fill?: string
  /** dash pattern, so that a line on top of another still shows both */
  readonly dash?: number[]
}

export interface ChartProps {
  readonly series: readonly SeriesSpec[]
  /** [times in seconds, ...one array per series] */
  readonly data: uPlot.AlignedData
  readonly height?: number
  /** formats y-axis ticks and legend values */
  readonly unit?: string
  readonly integer?: boolean
}

export function Chart ({ series, data, height = 220, unit = '', integer = false }: ChartProps) {
  const host = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | undefined>(undefined)

  useEffect(() => {
    const el = host.current
    if (!el) return
    const value = (v: number | null | undefined) =>
      v === null || v === undefined ? '–' : `${integer ? Math.round(v) : Math.round(v * 10) / 10}${unit}`
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      // away from the cursor, the legend shows the latest values
      hooks: { setCursor: [(u) => { if (u.cursor.idx == null) u.setLegend({ idx: u.data[0].length - 1 }) }] },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(integer ? 4 : 1, Math.ceil(max * 1.15))] } },
      axes: [
        { stroke: '#64748b', grid: { stroke: '#eef2f6' }, ticks: { stroke: '#e2e8f0' } },
        {
          stroke: '#64748b',
          grid: { stroke: '#eef2f6' },
          ticks: { stroke: '#e2e8f0' },
          size: 48,
          values: (_u, ticks) => ticks.map((t) => (integer && !Number.isInteger(t) ? '' : `${t}`))
        }
      ],
      series: [
        { label: 'time' },
        ...series.map((s) => ({ label: s.label, stroke: s.color, fill: s.fill, dash: s.dash, width: 2, points: { show: false }, value: (_u: uPlot, v: number | null) => value(v) }))
      ]
    }
    const chart = new uPlot(opts, data, el)
    plot.current = chart
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(200, el.clientWidth), height }))
    resize.observe(el)
    return () => {
      resize.disconnect()
      chart.destroy()
      plot.current = undefined
    }
    // the chart is rebuilt only when its shape changes; data goes through setData below
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [series, height, unit, integer])

  useEffect(() => {
    const chart = plot.current
    if (!chart) return
    chart.setData(data)
    if (chart.cursor.idx == null) chart.setLegend({ idx: data[0].length - 1 })
  }, [data])

  return <div class="chart" ref={host} />
}
