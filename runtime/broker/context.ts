// Everything the aedes handlers share. One instance per running broker.
import type { Aedes } from 'aedes'
import type { Logger } from 'pino'
import type { BrokerConfig } from '../config/broker-config.ts'
import type { Hooks } from '../hooks.ts'
import type { ClientStates } from './client-state.ts'
import type { Limits } from './limits.ts'

/** Plain numbers on the hot path; the metrics registry reads them at scrape time. */
export class BrokerCounters {
  messagesReceived = 0
  messagesSent = 0
  messagesDropped = 0
  /** QoS 1/2 deliveries not queued: the subscriber's Receive Maximum window and wait queue were full */
  outboundQueueDropped = 0
  connectsAccepted = 0
  connectsRejected = 0
  readonly startedAt = Date.now()
}

export interface BridgeContext {
  readonly broker: Aedes
  readonly hooks: Hooks
  readonly config: BrokerConfig
  readonly log: Logger
  readonly clients: ClientStates
  readonly counters: BrokerCounters
  readonly limits: Limits
}
