// What every route handler gets: the plugin host, the live settings, and the few helpers
// shared by API v1 and v4.
import type { FastifyReply } from 'fastify'
import type { PluginHost } from '../../sdk/index.ts'
import { ApiError, CODE } from './codes.ts'
import type { Peaks } from './metrics.ts'
import type { Settings } from './settings.ts'
import type { CpuSampler } from './views.ts'

export const PLUGIN_NAME = 'tapmq:http-api'

export interface ApiContext {
  readonly host: PluginHost
  /** the settings in force; reload swaps them */
  settings (): Settings
  readonly peaks: Peaks
  readonly cpu: CpuSampler
  /** NanoMQ's metric families, in text format */
  nanomqMetrics (): Promise<string>
}

/**
 * Runs `action` once the response is out (or the client went away), as NanoMQ does for
 * ctrl requests: stopping closes this server, which waits for open requests.
 */
export function afterResponse (ctx: ApiContext, reply: FastifyReply, what: string, action: () => Promise<void>): void {
  reply.raw.once('close', () => {
    setImmediate(() => {
      action().catch((err: Error) => ctx.host.log.error({ err: err.message }, `${what} failed`))
    })
  })
}

/** stop | restart, checked before the reply so that an impossible restart is an error, not a silent no-op. */
export function controlAction (ctx: ApiContext, action: string): () => Promise<void> {
  const { control } = ctx.host
  if (action === 'stop') return () => control.stop()
  if (action === 'restart') {
    if (!control.canRestart) {
      throw new ApiError(501, CODE.RPC_ERROR, 'restart needs a broker started by the tapmq command line; stop it and start it again')
    }
    return () => control.restart()
  }
  throw new ApiError(400, CODE.PARAM_ERROR, `unknown action "${action}": expected stop or restart`)
}
