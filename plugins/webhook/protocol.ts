// Messages between the broker thread (channel.ts) and the delivery worker (worker.ts).
import type { SenderConfig, SenderStats } from './sender.ts'

export type ToWorker =
  /** bodies separated by "\n" (compact JSON never contains a raw newline) */
  | { readonly type: 'events', readonly data: string }
  | { readonly type: 'configure', readonly config: SenderConfig }
  | { readonly type: 'drain', readonly timeoutMs: number }

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'fatal', readonly message: string }
  | { readonly type: 'stats', readonly stats: SenderStats, readonly receivedChars: number }
  | { readonly type: 'log', readonly level: 'info' | 'warn' | 'error', readonly message: string, readonly data?: Record<string, unknown> }
  | { readonly type: 'drained', readonly lost: number }

export interface WorkerData {
  readonly config: SenderConfig
}
