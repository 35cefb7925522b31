// Publish a test message through POST /api/v4/mqtt/publish. The broker publishes it as
// itself, so subscribers receive it like any other message (and plugins' message.publish
// taps do not see it).
import { useState } from 'preact/hooks'
import type { Api, PublishForm } from '../api.ts'
import { Card } from '../ui.tsx'

export function Publish ({ api, onUnauthorized }: { api: Api, onUnauthorized: () => void }) {
  const [form, setForm] = useState<PublishForm>({ topic: 'tapmq/test', payload: 'hello from the dashboard', qos: 0, retain: false })
  const [busy, setBusy] = useState(false)
  const [result, setResult] = useState<{ tone: 'ok' | 'error', text: string }>()
  const topicProblem = form.topic === '' ? 'A topic is required.' : /[+#]/.test(form.topic) ? 'No wildcards (+ or #) in a topic name.' : undefined

  const submit = async (event: Event) => {
    event.preventDefault()
    if (topicProblem) return
    setBusy(true)
    try {
      await api.publish(form)
      setResult({ tone: 'ok', text: `Published ${new TextEncoder().encode(form.payload).length} bytes to ${form.topic} (QoS ${form.qos}${form.retain ? ', retained' : ''}).` })
    } catch (err) {
      const error = err as Error & { unauthorized?: boolean }
      if (error.unauthorized) onUnauthorized()
      setResult({ tone: 'error', text: `Not published: ${error.message}` })
    } finally {
      setBusy(false)
    }
  }

  return (
    <div class="stack narrow">
      <Card title="Publish a message">
        <p class="muted help">
          The broker publishes the message as itself: subscribers get it like any other, and
          retained messages replace the topic's current one.
        </p>
        <form class="form" onSubmit={(e) => void submit(e)}>
          <label class="field">
            <span>Topic</span>
            <input class="mono" value={form.topic} required onInput={(e) => setForm({ ...form, topic: e.currentTarget.value })} />
            {topicProblem && form.topic !== '' && <span class="field-error">{topicProblem}</span>}
          </label>
          <label class="field">
            <span>Payload</span>
            <textarea class="mono" rows={5} value={form.payload} onInput={(e) => setForm({ ...form, payload: e.currentTarget.value })} />
          </label>
          <div class="row">
            <label class="field">
              <span>QoS</span>
              <select value={String(form.qos)} onChange={(e) => setForm({ ...form, qos: Number(e.currentTarget.value) as 0 | 1 | 2 })}>
                <option value="0">0 – at most once</option>
                <option value="1">1 – at least once</option>
                <option value="2">2 – exactly once</option>
              </select>
            </label>
            <label class="check">
              <input type="checkbox" checked={form.retain} onChange={(e) => setForm({ ...form, retain: e.currentTarget.checked })} />
              <span>Retain</span>
            </label>
          </div>
          <div class="form-actions">
            <button type="submit" class="btn btn-primary" disabled={busy || topicProblem !== undefined}>{busy ? 'Publishing…' : 'Publish'}</button>
          </div>
          {result && <div class={`banner banner-${result.tone}`} role="status">{result.text}</div>}
        </form>
      </Card>
    </div>
  )
}
