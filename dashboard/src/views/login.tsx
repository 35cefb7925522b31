// The login form: the credentials of the HTTP API (http_server.username / password). They are
// checked against the API, then kept in sessionStorage for this tab only.
import { useState } from 'preact/hooks'
import { Api, ApiError, type Credentials } from '../api.ts'

export function Login ({ onLogin, reason }: { onLogin: (credentials: Credentials) => void, reason?: string }) {
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(reason)

  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(undefined)
    const credentials = { username, password }
    try {
      await new Api(credentials).brokers()
      onLogin(credentials)
    } catch (err) {
      setError(err instanceof ApiError && err.unauthorized ? 'Wrong user name or password.' : (err as Error).message)
      setBusy(false)
    }
  }

  return (
    <div class="login-page">
      <form class="login card" onSubmit={(e) => void submit(e)} aria-label="Log in">
        <div class="brand brand-large"><span class="brand-mark" />tapmq</div>
        <p class="muted">Sign in with the HTTP API's credentials.</p>
        <label class="field">
          <span>User name</span>
          <input name="username" autocomplete="username" value={username} required autofocus
            onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        <label class="field">
          <span>Password</span>
          <input name="password" type="password" autocomplete="current-password" value={password} required
            onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        {error && <div class="banner banner-error" role="alert">{error}</div>}
        <button type="submit" class="btn btn-primary btn-block" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </div>
  )
}
