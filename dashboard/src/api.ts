// The broker's HTTP API (docs/http-api.md) as the dashboard uses it. Every call carries
// `Authorization: Basic ...`; the credentials live in sessionStorage, so they last as long as
// the tab. `credentials: 'omit'` keeps the browser's own basic-auth prompt from showing on a 401.
import type { TreeNode } from './model.ts'

export interface Credentials {
  readonly username: string
  readonly password: string
}

const STORAGE_KEY = 'tapmq.dashboard.auth'

export function loadCredentials (): Credentials | undefined {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY)
    if (!raw) return undefined
    const value = JSON.parse(raw) as Partial<Credentials>
    return typeof value.username === 'string' && typeof value.password === 'string'
      ? { username: value.username, password: value.password }
      : undefined
  } catch {
    return undefined
  }
}

export function saveCredentials (credentials: Credentials | undefined): void {
  try {
    if (credentials) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials))
    else sessionStorage.removeItem(STORAGE_KEY)
  } catch {
    // storage can be off (private modes); the credentials then last until the page reloads
  }
}

/** base64 of UTF-8, which `btoa` alone cannot do */
function basic ({ username, password }: Credentials): string {
  const bytes = new TextEncoder().encode(`${username}:${password}`)
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return `Basic ${btoa(binary)}`
}

export class ApiError extends Error {
  constructor (readonly status: number, readonly code: number | undefined, message: string) {
    super(message)
  }

  get unauthorized (): boolean {
    return this.status === 401
  }
}

export interface MetricsReply {
  readonly metrics: ReadonlyArray<{
    readonly connections: number
    readonly sessions: number
    readonly subscriptions: number
    readonly topics: number
    readonly 'messages.received': number
    readonly 'messages.sent': number
    readonly 'messages.dropped': number
    /** milliseconds */
    readonly uptime: number
  }>
  readonly cpuinfo: string
  readonly memory: string
}

export interface BrokerInfo {
  readonly datetime: string
  readonly node_status: string
  readonly sysdescr: string
  readonly uptime: string
  readonly version: string
}

export interface Client {
  readonly client_id: string
  readonly username: string
  readonly keepalive: number
  readonly conn_state: string
  readonly clean_start: boolean
  readonly proto_name: string
  readonly proto_ver: number
  readonly ip_address: string
  readonly port: number
  /** epoch milliseconds */
  readonly connected_at: number
}

export interface Subscription {
  readonly clientid: string
  readonly topic: string
  readonly qos: number
}

export type PluginHealth =
  | { readonly status: 'ok', readonly detail?: string }
  | { readonly status: 'degraded' | 'down', readonly detail: string }

export interface PluginStatus {
  readonly id: string
  readonly name: string
  readonly version: string
  readonly state: 'running' | 'disabled' | 'failed'
  readonly detail?: string
  readonly health: PluginHealth
  readonly hooks: readonly string[]
  readonly counters: Record<string, number>
}

export interface TopicStats {
  /** cumulative messages published by clients, per topic */
  readonly topics: ReadonlyArray<{ readonly topic: string, readonly messages: number }>
  /** most topics counted at once; the least recently published are forgotten first */
  readonly limit: number
}

export interface PublishForm {
  readonly topic: string
  readonly payload: string
  readonly qos: 0 | 1 | 2
  readonly retain: boolean
}

export class Api {
  constructor (readonly credentials: Credentials, private readonly base = '/api/v4') {}

  async #call<T> (method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: basic(this.credentials), accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    let response: Response
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
        signal: AbortSignal.timeout(10_000)
      })
    } catch (err) {
      throw new ApiError(0, undefined, `the broker did not answer (${(err as Error).message})`)
    }
    const text = await response.text()
    let json: any
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    if (!response.ok || (json && typeof json.code === 'number' && json.code !== 0)) {
      const code = json && typeof json.code === 'number' ? json.code as number : undefined
      const message = response.status === 401
        ? 'wrong user name or password'
        : json?.message ?? `HTTP ${response.status}${code === undefined ? '' : ` (code ${code})`}`
      throw new ApiError(response.status, code, message)
    }
    return json as T
  }

  async brokers (): Promise<BrokerInfo[]> {
    return (await this.#call<{ data: BrokerInfo[] }>('GET', '/brokers')).data
  }

  metrics (): Promise<MetricsReply> {
    return this.#call<MetricsReply>('GET', '/metrics')
  }

  async topicTree (): Promise<TreeNode> {
    return (await this.#call<{ data: TreeNode }>('GET', '/topic-tree?format=tree')).data
  }

  async topicStats (): Promise<TopicStats> {
    return (await this.#call<{ data: TopicStats }>('GET', '/topic-stats')).data
  }

  async clients (): Promise<Client[]> {
    return (await this.#call<{ data: Client[] }>('GET', '/clients')).data
  }

  async subscriptions (): Promise<Subscription[]> {
    return (await this.#call<{ data: Subscription[] }>('GET', '/subscriptions')).data
  }

  async disconnect (clientId: string): Promise<void> {
    await this.#call('DELETE', `/clients/${encodeURIComponent(clientId)}`)
  }

  async plugins (): Promise<PluginStatus[]> {
    return (await this.#call<{ data: PluginStatus[] }>('GET', '/plugins')).data
  }

  async pluginAction (name: string, action: 'enable' | 'disable' | 'reload'): Promise<PluginStatus> {
    return (await this.#call<{ data: PluginStatus }>('PUT', `/plugins/${encodeURIComponent(name)}/${action}`)).data
  }

  async publish (form: PublishForm): Promise<void> {
    await this.#call('POST', '/mqtt/publish', { topic: form.topic, payload: form.payload, qos: form.qos, retain: form.retain, encoding: 'plain' })
  }
}
