// NanoMQ listener URLs: `nmq-tcp://0.0.0.0:1883`, `tls+nmq-tcp://0.0.0.0:8883`,
// `nmq-ws://0.0.0.0:8083/mqtt`, `nmq-wss://0.0.0.0:8084/mqtt`, and the plain schemes.
import type { Transport } from '../../sdk/events.ts'

export interface ListenAddress {
  readonly transport: Transport
  readonly host: string
  readonly port: number
  /** WebSocket path */
  readonly path: string
}

const SCHEMES: Record<string, Transport> = {
  'nmq-tcp': 'tcp',
  tcp: 'tcp',
  mqtt: 'tcp',
  'mqtt-tcp': 'tcp',
  'tls+nmq-tcp': 'tls',
  tls: 'tls',
  mqtts: 'tls',
  ssl: 'tls',
  'nmq-ws': 'ws',
  ws: 'ws',
  'nmq-wss': 'wss',
  wss: 'wss'
}

export const LISTENER_SCHEMES = Object.keys(SCHEMES)

/** Returns the address, or a sentence saying what is wrong with `text`. */
export function parseListenUrl (text: string): ListenAddress | string {
  const match = /^([a-z+-]+):\/\/(\[[^\]]+\]|[^:/]*)(?::(\d+))?(\/.*)?$/i.exec(text)
  if (!match) return 'expected scheme://host:port, for example nmq-tcp://0.0.0.0:1883'
  const transport = SCHEMES[match[1]!.toLowerCase()]
  if (!transport) return `unknown scheme ${match[1]}; use one of ${LISTENER_SCHEMES.join(', ')}`
  if (match[3] === undefined) return 'the port is missing'
  const port = Number(match[3])
  if (port > 65535) return `port ${port} is above 65535`
  const host = match[2]!.replace(/^\[|\]$/g, '') || '0.0.0.0'
  return { transport, host, port, path: match[4] ?? '/mqtt' }
}

export function formatListenUrl (address: ListenAddress, port = address.port): string {
  const scheme = { tcp: 'nmq-tcp', tls: 'tls+nmq-tcp', ws: 'nmq-ws', wss: 'nmq-wss' }[address.transport]
  const host = address.host.includes(':') ? `[${address.host}]` : address.host
  const path = address.transport === 'ws' || address.transport === 'wss' ? address.path : ''
  return `${scheme}://${host}:${port}${path}`
}
