// Resource limits a client can hit, each configurable (0 = unlimited) and each counted,
// so that one client or a reconnect storm cannot take the broker down.
import type { ConnectPacket } from 'aedes'
import type { ConnackRejectCode } from '../../sdk/events.ts'

export interface LimitsConfig {
  /** open connections, all listeners together */
  readonly maxConnections: number
  /** new connections per second (token bucket with one second of burst) */
  readonly maxConnectionRate: number
  /** subscriptions per client */
  readonly maxSubscriptions: number
  /** seconds; a CONNECT asking for more (or for none, 0) is refused, as Mosquitto does */
  readonly maxKeepalive: number
  readonly maxClientIdLength: number
}

export const LIMIT_NAMES = ['max_connections', 'max_connection_rate', 'max_subscriptions', 'max_keepalive', 'max_client_id_length'] as const
export type LimitName = typeof LIMIT_NAMES[number]

export class Limits {
  readonly refusals: Record<LimitName, number> = {
    max_connections: 0, max_connection_rate: 0, max_subscriptions: 0, max_keepalive: 0, max_client_id_length: 0
  }

  #open = 0
  #tokens: number
  #refilledAt = Date.now()

  constructor (private readonly config: LimitsConfig) {
    this.#tokens = config.maxConnectionRate
  }

  get openConnections (): number {
    return this.#open
  }

  /** Called for each accepted socket, before aedes allocates anything for it. */
  admitConnection (): LimitName | undefined {
    const { maxConnections, maxConnectionRate } = this.config
    if (maxConnections > 0 && this.#open >= maxConnections) return this.#refuse('max_connections')
    if (maxConnectionRate > 0) {
      const now = Date.now()
      this.#tokens = Math.min(maxConnectionRate, this.#tokens + (now - this.#refilledAt) * maxConnectionRate / 1000)
      this.#refilledAt = now
      if (this.#tokens < 1) return this.#refuse('max_connection_rate')
      this.#tokens -= 1
    }
    this.#open++
    return undefined
  }

  connectionClosed (): void {
    this.#open--
  }

  /**
   * The keepalive an MQTT 5 client is told to use instead of its own (CONNACK Server Keep
   * Alive, [MQTT-3.2.2-21]): max_keepalive when it asked for none or for more. MQTT 5 clients
   * are not refused for their keepalive.
   */
  serverKeepAlive (keepalive: number | undefined): number | undefined {
    const { maxKeepalive } = this.config
    return maxKeepalive > 0 && (!keepalive || keepalive > maxKeepalive) ? maxKeepalive : undefined
  }

  /** CONNECT-time limits; the answer is a MQTT 3.1.1 CONNACK code. */
  checkConnect (packet: Pick<ConnectPacket, 'keepalive' | 'clientId' | 'protocolVersion'>): { code: ConnackRejectCode, reason: string } | undefined {
    const { maxKeepalive, maxClientIdLength } = this.config
    const keepalive = packet.keepalive ?? 0
    if (maxKeepalive > 0 && packet.protocolVersion !== 5 && (keepalive === 0 || keepalive > maxKeepalive)) {
      this.#refuse('max_keepalive')
      // 3.1.1 cannot tell a client which keepalive to use; Mosquitto answers "identifier rejected" too
      return { code: 2, reason: `keepalive ${keepalive} s is outside 1..${maxKeepalive} s (max_keepalive)` }
    }
    if (maxClientIdLength > 0 && packet.clientId.length > maxClientIdLength) {
      this.#refuse('max_client_id_length')
      return { code: 2, reason: `client id longer than ${maxClientIdLength} characters (max_client_id_length)` }
    }
    return undefined
  }

  /** Whether a client holding `current` subscriptions may add one more. */
  admitSubscription (current: number): boolean {
    const { maxSubscriptions } = this.config
    if (maxSubscriptions > 0 && current >= maxSubscriptions) {
      this.#refuse('max_subscriptions')
      return false
    }
    return true
  }

  #refuse (limit: LimitName): LimitName {
    this.refusals[limit]++
    return limit
  }
}
