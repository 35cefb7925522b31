// Plugins: state, health and counters, with the runtime switches of the plugin API.
// Changes made here are not written to plugins.conf (the API says `persisted: false`).
import { useState } from 'preact/hooks'
import type { Api, PluginStatus } from '../api.ts'
import { type CounterRow, counterRows } from '../model.ts'
import { usePoll } from '../poll.ts'
import { Badge, Card, Empty, ErrorBanner, Loading, type Tone } from '../ui.tsx'

/** the plugin serving this page cannot switch itself off */
const SELF = 'tapmq:http-api'

const STATE_TONE: Record<PluginStatus['state'], Tone> = { running: 'ok', disabled: 'muted', failed: 'bad' }
const HEALTH_TONE: Record<PluginStatus['health']['status'], Tone> = { ok: 'ok', degraded: 'warn', down: 'bad' }

type Action = 'enable' | 'disable' | 'reload'

export function Plugins ({ api, onUnauthorized }: { api: Api, onUnauthorized: () => void }) {
  const { data, error, refresh } = usePoll(() => api.plugins(), onUnauthorized)
  const [pending, setPending] = useState<ReadonlySet<string>>(new Set())
  const [notice, setNotice] = useState<{ tone: 'ok' | 'error', text: string }>()

  const act = async (plugin: PluginStatus, action: Action) => {
    setPending((prev) => new Set(prev).add(plugin.id))
    try {
      const status = await api.pluginAction(plugin.id, action)
      const done = action === 'reload' ? `reloaded; it is ${status.state}` : `is now ${status.state}`
      setNotice({ tone: 'ok', text: `${plugin.id} ${done}. This lasts until the broker restarts: plugins.conf is unchanged.` })
    } catch (err) {
      setNotice({ tone: 'error', text: `${plugin.id}: ${action} failed: ${(err as Error).message}` })
    } finally {
      setPending((prev) => {
        const next = new Set(prev)
        next.delete(plugin.id)
        return next
      })
      refresh()
    }
  }

  return (
    <div class="stack">
      <ErrorBanner error={error} />
      {notice && <div class={`banner banner-${notice.tone}`} role="status">{notice.text}</div>}
      {!data
        ? <Loading />
        : data.length === 0
          ? <Card><Empty title="No plugins loaded">Plugins are listed in etc/plugins.conf.</Empty></Card>
          : (
            <div class="plugin-grid">
              {data.map((plugin) => (
                <PluginCard key={plugin.id} plugin={plugin} busy={pending.has(plugin.id)} onAction={(action) => void act(plugin, action)} />
              ))}
            </div>
            )}
    </div>
  )
}

function PluginCard ({ plugin, busy, onAction }: { plugin: PluginStatus, busy: boolean, onAction: (action: Action) => void }) {
  const running = plugin.state === 'running'
  const self = plugin.name === SELF
  const rows = counterRows(plugin.counters)
  const key = rows.filter((row) => row.key)
  const more = rows.filter((row) => !row.key)
  const health = plugin.health
  return (
    <div data-plugin={plugin.id}>
      <Card
        class="plugin"
        title={
          <span class="plugin-title">
            <span class="plugin-name">{plugin.id}</span>
            <span class="muted small">v{plugin.version}</span>
          </span>
        }
        actions={
          <label class={`switch ${busy || self ? 'switch-disabled' : ''}`} title={self ? 'The HTTP API cannot disable itself: set it off in plugins.conf' : undefined}>
            <input
              type="checkbox"
              role="switch"
              aria-label={`Enable ${plugin.id}`}
              checked={running}
              disabled={busy || self}
              onChange={() => onAction(running ? 'disable' : 'enable')}
            />
            <span class="switch-track"><span class="switch-thumb" /></span>
            <span class="switch-label">{running ? 'On' : 'Off'}</span>
          </label>
        }
      >
        <div class="plugin-meta">
          {plugin.name !== plugin.id && <div class="muted small mono">{plugin.name}</div>}
          <div class="badges">
            <Badge tone={STATE_TONE[plugin.state]} title={plugin.detail}>{plugin.state}</Badge>
            <Badge tone={running ? HEALTH_TONE[health.status] : 'muted'} title={health.detail}>health: {health.status}</Badge>
            <button type="button" class="btn btn-ghost btn-small" disabled={busy} onClick={() => onAction('reload')}
              title="Re-read the plugin's config files and apply them">Reload</button>
          </div>
          {(health.detail ?? plugin.detail) && <div class="plugin-detail">{health.detail ?? plugin.detail}</div>}
        </div>
        {rows.length === 0
          ? <div class="muted small">No counters.</div>
          : key.length === 0
            ? <Counters rows={rows} />
            : (
              <>
                <Counters rows={key} />
                {more.length > 0 && (
                  <details class="more-counters">
                    <summary>{more.length} more counter{more.length === 1 ? '' : 's'}</summary>
                    <Counters rows={more} />
                  </details>
                )}
              </>
              )}
        {plugin.hooks.length > 0 && (
          <div class="hooks small muted" title="hooks this plugin taps">
            taps {plugin.hooks.map((hook) => <code key={hook}>{hook}</code>)}
          </div>
        )}
      </Card>
    </div>
  )
}

function Counters ({ rows }: { rows: readonly CounterRow[] }) {
  return (
    <dl class="counters">
      {rows.map((row) => (
        <div class={`counter ${row.derived ? 'counter-derived' : ''}`} key={row.label}>
          <dt>{row.label}</dt>
          <dd>{row.value}</dd>
        </div>
      ))}
    </dl>
  )
}
