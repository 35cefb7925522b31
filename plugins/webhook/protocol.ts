// What the broker thread (channel.ts) and the delivery worker (worker.mjs, sender.mjs)
// exchange. The worker side is plain JavaScript: a worker thread does not inherit tsx, and
// loading tsx in it would triple its start-up time and add a loader thread per worker.
import type { Options } from './config.ts'

/** The options the sender uses: everything but what the broker side does (rules, encoding). */
export type SenderConfig = Pick<Options,
  'url' | 'headers' | 'poolSize' | 'pipelining' | 'ssl' | 'connectTimeoutMs' | 'requestTimeoutMs' | 'retry' | 'queue' | 'batch' | 'signingSecrets' | 'workerNice'>

/** Why the worker dropped events; keep in step with `dropped` in sender.mjs. */
export const DROP_REASONS = ['queue_full', 'too_large', 'shutdown', 'malformed'] as const
export type DropReason = typeof DROP_REASONS[number]

/** The worker's running totals and current state. */
export interface SenderStats {
  /** events handed to the sender */
  readonly received: number
  /** events a receiver answered with 2xx */
  readonly sent: number
  /** events given up on: a 4xx or other non-retriable answer, or retries exhausted */
  readonly failed: number
  /** event deliveries tried again */
  readonly retried: number
  /** HTTP requests made, retries included */
  readonly requests: number
  readonly dropped: Readonly<Record<DropReason, number>>
  /** events waiting */
  readonly depth: number
  /** bytes waiting, as queued (records.mjs) */
  readonly bytes: number
  /** requests under way or waiting to retry */
  readonly inflight: number
  /** the events those requests carry */
  readonly inflightEvents: number
  /** requests in a row that failed; 0 after a success */
  readonly consecutiveFailures: number
  readonly lastError?: string
}

export type ToWorker =
  /** `count` events packed by records.mjs in the first `byteLength` bytes of `data` (transferred) */
  | { readonly type: 'events', readonly data: ArrayBuffer, readonly byteLength: number, readonly count: number }
  | { readonly type: 'configure', readonly config: SenderConfig }
  /** send what is queued until `deadline` (epoch ms), then give up on the rest */
  | { readonly type: 'drain', readonly deadline: number }

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'fatal', readonly message: string }
  | { readonly type: 'stats', readonly stats: SenderStats, readonly receivedBytes: number }
  | { readonly type: 'log', readonly level: 'info' | 'warn' | 'error', readonly message: string, readonly data?: Record<string, unknown> }
  | { readonly type: 'drained', readonly lost: number }

export interface WorkerData {
  readonly config: SenderConfig
}
