// Small building blocks shared by the views.
import type { ComponentChildren } from 'preact'
import type { ApiError } from './api.ts'

export function Card ({ title, actions, children, class: className }: {
  title?: ComponentChildren
  actions?: ComponentChildren
  children: ComponentChildren
  class?: string
}) {
  return (
    <section class={`card ${className ?? ''}`}>
      {(title !== undefined || actions !== undefined) && (
        <header class="card-header">
          <h2>{title}</h2>
          {actions !== undefined && <div class="card-actions">{actions}</div>}
        </header>
      )}
      <div class="card-body">{children}</div>
    </section>
  )
}

export type Tone = 'ok' | 'warn' | 'bad' | 'muted' | 'info'

export function Badge ({ tone, children, title }: { tone: Tone, children: ComponentChildren, title?: string }) {
  return <span class={`badge badge-${tone}`} title={title}>{children}</span>
}

export function Empty ({ title, children }: { title: string, children?: ComponentChildren }) {
  return (
    <div class="empty">
      <div class="empty-title">{title}</div>
      {children !== undefined && <div class="empty-text">{children}</div>}
    </div>
  )
}

export function ErrorBanner ({ error }: { error: ApiError | string | undefined }) {
  if (error === undefined) return null
  const text = typeof error === 'string' ? error : error.message
  return <div class="banner banner-error" role="alert">{text}</div>
}

export function Stat ({ label, value, hint }: { label: string, value: ComponentChildren, hint?: string }) {
  return (
    <div class="stat" title={hint}>
      <div class="stat-value">{value}</div>
      <div class="stat-label">{label}</div>
    </div>
  )
}

export function Loading () {
  return <div class="loading">Loading…</div>
}
