// Overview: the broker's figures now, and connections and message rates over the last minutes.
import { useMemo } from 'preact/hooks'
import type uPlot from 'uplot'
import { Chart, type SeriesSpec } from '../chart.tsx'
import { formatBytes, formatCount, formatDuration, formatRate } from '../model.ts'
import { type Monitor, POLL_MS, useMonitor } from '../poll.ts'
import { Card, ErrorBanner, Loading, Stat } from '../ui.tsx'

const CONNECTIONS: SeriesSpec[] = [{ label: 'connections', color: '#0f766e', fill: 'rgba(15,118,110,0.08)' }]
const MESSAGES: SeriesSpec[] = [
  { label: 'in', color: '#2563eb', fill: 'rgba(37,99,235,0.06)' },
  { label: 'out', color: '#d97706', dash: [6, 4] },
  { label: 'dropped', color: '#dc2626' }
]

export function Overview ({ monitor }: { monitor: Monitor }) {
  const { points, latest, error } = useMonitor(monitor)
  const connections = useMemo<uPlot.AlignedData>(() => [points.map((p) => p.t), points.map((p) => p.connections)], [points])
  const messages = useMemo<uPlot.AlignedData>(() => [
    points.map((p) => p.t),
    points.map((p) => p.inRate ?? null),
    points.map((p) => p.outRate ?? null),
    points.map((p) => p.droppedRate ?? null)
  ], [points])
  const m = latest?.metrics[0]
  const last = points[points.length - 1]
  const minutes = Math.round(monitor.windowMs / 60_000)

  return (
    <div class="stack">
      <ErrorBanner error={error} />
      {!m
        ? <Loading />
        : (
          <div class="stats" data-testid="overview-stats">
            <Stat label="connections" value={formatCount(m.connections)} />
            <Stat label="sessions" value={formatCount(m.sessions)} hint="connected clients plus persistent sessions" />
            <Stat label="subscriptions" value={formatCount(m.subscriptions)} />
            <Stat label="topic nodes" value={formatCount(m.topics)} hint="nodes of the subscription tree (one per level of every filter)" />
            <Stat label="messages in / s" value={formatRate(last?.inRate)} hint={`${m['messages.received']} received in all`} />
            <Stat label="messages out / s" value={formatRate(last?.outRate)} hint={`${m['messages.sent']} sent in all`} />
            <Stat label="dropped" value={formatCount(m['messages.dropped'])} hint="messages routed to nobody: dropped by a plugin or not authorized" />
            <Stat label="uptime" value={formatDuration(m.uptime)} />
            <Stat label="CPU" value={latest.cpuinfo} hint="of one core, since the previous sample" />
            <Stat label="memory (RSS)" value={formatBytes(Number(latest.memory))} />
          </div>
          )}
      <div class="grid-2">
        <Card title="Connections" actions={<span class="muted">last {minutes} minutes</span>}>
          <Chart series={CONNECTIONS} data={connections} integer />
        </Card>
        <Card title="Messages per second" actions={<span class="muted">sampled every {POLL_MS / 1000} s</span>}>
          <Chart series={MESSAGES} data={messages} unit="/s" />
        </Card>
      </div>
    </div>
  )
}
