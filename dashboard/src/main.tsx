// The dashboard shell: login, the navigation (hash routes, so any server path works), and the
// background sampler that feeds the overview's charts.
import { render } from 'preact'
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks'
import { Api, type BrokerInfo, type Credentials, loadCredentials, saveCredentials } from './api.ts'
import { Monitor, usePoll } from './poll.ts'
import './style.css'
import { Clients } from './views/clients.tsx'
import { Login } from './views/login.tsx'
import { Overview } from './views/overview.tsx'
import { Plugins } from './views/plugins.tsx'
import { Publish } from './views/publish.tsx'
import { Topics } from './views/topics.tsx'

const ROUTES = [
  { path: 'overview', title: 'Overview' },
  { path: 'topics', title: 'Topic tree' },
  { path: 'clients', title: 'Clients' },
  { path: 'plugins', title: 'Plugins' },
  { path: 'publish', title: 'Publish' }
] as const
type Route = typeof ROUTES[number]['path']

function currentRoute (): Route {
  const path = location.hash.replace(/^#\/?/, '')
  return ROUTES.find((route) => route.path === path)?.path ?? 'overview'
}

function useRoute (): Route {
  const [route, setRoute] = useState(currentRoute)
  useEffect(() => {
    const onChange = () => setRoute(currentRoute())
    addEventListener('hashchange', onChange)
    return () => removeEventListener('hashchange', onChange)
  }, [])
  return route
}

function App () {
  const [credentials, setCredentials] = useState(loadCredentials)
  const [reason, setReason] = useState<string>()
  const login = (next: Credentials) => {
    saveCredentials(next)
    setReason(undefined)
    setCredentials(next)
  }
  const logout = useCallback((why?: string) => {
    saveCredentials(undefined)
    setReason(why)
    setCredentials(undefined)
  }, [])
  if (!credentials) return <Login onLogin={login} reason={reason} />
  return <Shell credentials={credentials} logout={logout} />
}

function Shell ({ credentials, logout }: { credentials: Credentials, logout: (why?: string) => void }) {
  const route = useRoute()
  const api = useMemo(() => new Api(credentials), [credentials])
  const expired = useCallback(() => logout('The broker refused the saved credentials; sign in again.'), [logout])
  const monitor = useMemo(() => new Monitor(api, expired), [api, expired])
  useEffect(() => {
    monitor.start()
    return () => monitor.stop()
  }, [monitor])
  const broker = usePoll<BrokerInfo | undefined>(async () => (await api.brokers())[0], expired, 10_000)
  const title = ROUTES.find((r) => r.path === route)!.title

  return (
    <div class="layout">
      <aside class="sidebar">
        <div class="sidebar-inner">
          <div class="brand"><span class="brand-mark" />tapmq</div>
          <nav aria-label="Sections">
            {ROUTES.map((r) => (
              <a key={r.path} href={`#/${r.path}`} class={r.path === route ? 'active' : ''} aria-current={r.path === route ? 'page' : undefined}>
                {r.title}
              </a>
            ))}
          </nav>
          <div class="sidebar-foot">
            {broker.data
              ? (
                <>
                  <div><span class={`dot ${broker.error ? 'dot-bad' : 'dot-ok'}`} />{broker.error ? 'unreachable' : broker.data.node_status}</div>
                  <div class="muted">version {broker.data.version}</div>
                </>
                )
              : <div class="muted">connecting…</div>}
          </div>
        </div>
      </aside>
      <main class="content">
        <header class="page-header">
          <h1>{title}</h1>
          <div class="user">
            <span class="muted">{credentials.username}</span>
            <button type="button" class="btn btn-ghost" onClick={() => logout()}>Log out</button>
          </div>
        </header>
        {route === 'overview' && <Overview monitor={monitor} />}
        {route === 'topics' && <Topics api={api} onUnauthorized={expired} />}
        {route === 'clients' && <Clients api={api} onUnauthorized={expired} />}
        {route === 'plugins' && <Plugins api={api} onUnauthorized={expired} />}
        {route === 'publish' && <Publish api={api} onUnauthorized={expired} />}
      </main>
    </div>
  )
}

render(<App />, document.getElementById('app')!)
