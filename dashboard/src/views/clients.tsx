// Connected clients with their subscriptions; a client can be disconnected from here.
import { useState } from 'preact/hooks'
import type { Api, Client, Subscription } from '../api.ts'
import { formatDuration, protocolName } from '../model.ts'
import { usePoll } from '../poll.ts'
import { Card, Empty, ErrorBanner, Loading } from '../ui.tsx'

interface ClientsData {
  readonly clients: readonly Client[]
  readonly subscriptions: ReadonlyMap<string, Subscription[]>
  /** epoch milliseconds of the answer, for "connected for" */
  readonly at: number
}

export function Clients ({ api, onUnauthorized }: { api: Api, onUnauthorized: () => void }) {
  const { data, error, refresh } = usePoll<ClientsData>(async () => {
    const [clients, subscriptions] = await Promise.all([api.clients(), api.subscriptions()])
    const byClient = new Map<string, Subscription[]>()
    for (const sub of subscriptions) byClient.set(sub.clientid, [...(byClient.get(sub.clientid) ?? []), sub])
    return { clients, subscriptions: byClient, at: Date.now() }
  }, onUnauthorized)
  const [query, setQuery] = useState('')
  const [confirming, setConfirming] = useState<string>()
  const [notice, setNotice] = useState<{ tone: 'ok' | 'error', text: string }>()

  const needle = query.trim().toLowerCase()
  const rows = (data?.clients ?? [])
    .filter((c) => needle === '' ||
      [c.client_id, c.username, `${c.ip_address}:${c.port}`].some((text) => text.toLowerCase().includes(needle)) ||
      (data?.subscriptions.get(c.client_id) ?? []).some((s) => s.topic.toLowerCase().includes(needle)))
    .sort((a, b) => a.client_id.localeCompare(b.client_id))

  const disconnect = async (clientId: string) => {
    setConfirming(undefined)
    try {
      await api.disconnect(clientId)
      setNotice({ tone: 'ok', text: `Disconnected ${clientId}.` })
    } catch (err) {
      setNotice({ tone: 'error', text: `Could not disconnect ${clientId}: ${(err as Error).message}` })
    }
    refresh()
  }

  return (
    <div class="stack">
      <ErrorBanner error={error} />
      {notice && <div class={`banner banner-${notice.tone}`} role="status">{notice.text}</div>}
      <Card
        title={<>Clients {data && <span class="count">{rows.length === data.clients.length ? data.clients.length : `${rows.length} of ${data.clients.length}`}</span>}</>}
        actions={
          <input type="search" class="search" placeholder="Filter by id, user, address, topic" aria-label="Filter clients"
            value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
        }
      >
        {!data
          ? <Loading />
          : data.clients.length === 0
            ? <Empty title="No clients connected">Connected MQTT clients are listed here with their subscriptions.</Empty>
            : (
              <div class="table-wrap">
                <table class="table" aria-label="Clients">
                  <thead>
                    <tr>
                      <th>Client id</th>
                      <th>User name</th>
                      <th>Address</th>
                      <th>Protocol</th>
                      <th class="num">Keepalive</th>
                      <th>Connected</th>
                      <th>Subscriptions</th>
                      <th />
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((c) => {
                      const subs = data.subscriptions.get(c.client_id) ?? []
                      return (
                        <tr key={c.client_id} data-client={c.client_id}>
                          <td class="mono strong">{c.client_id}</td>
                          <td>{c.username === '' ? <span class="muted">–</span> : c.username}</td>
                          <td class="mono">{c.ip_address}:{c.port}</td>
                          <td>
                            {protocolName(c.proto_name, c.proto_ver)}
                            {!c.clean_start && <div class="muted small" title="clean session false: the broker keeps its session while it is away">persistent session</div>}
                          </td>
                          <td class="num">{c.keepalive === 0 ? <span class="muted">off</span> : `${c.keepalive} s`}</td>
                          <td title={new Date(c.connected_at).toLocaleString()}>{formatDuration(data.at - c.connected_at)} ago</td>
                          <td>
                            {subs.length === 0
                              ? <span class="muted">none</span>
                              : subs.map((s) => <span class="chip" key={s.topic} title={`QoS ${s.qos}`}>{s.topic}<span class="qos">{s.qos}</span></span>)}
                          </td>
                          <td class="actions">
                            {confirming === c.client_id
                              ? (
                                <>
                                  <button type="button" class="btn btn-danger" onClick={() => void disconnect(c.client_id)}>Confirm</button>
                                  <button type="button" class="btn btn-ghost" onClick={() => setConfirming(undefined)}>Cancel</button>
                                </>
                                )
                              : <button type="button" class="btn btn-outline-danger" onClick={() => setConfirming(c.client_id)}>Disconnect</button>}
                          </td>
                        </tr>
                      )
                    })}
                    {rows.length === 0 && <tr><td colSpan={8} class="muted center">No client matches “{query.trim()}”.</td></tr>}
                  </tbody>
                </table>
              </div>
              )}
      </Card>
    </div>
  )
}
