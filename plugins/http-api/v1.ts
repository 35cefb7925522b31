// NanoMQ 0.8's API v1: one RPC endpoint, `POST /api/v1` with `{"req": N, "seq": S}`
// (nanomq 0.8.0 rest_api.c). Replies `{"code":0,"seq":S,"rep":N,"data":...}`; errors
// `{"code":C,"seq":S}` plus `"rep"` once the request code is known.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { checkBasicAuth } from './auth.ts'
import { ApiError, CODE, isPlainObject, parseJson } from './codes.ts'
import { afterResponse, type ApiContext, controlAction } from './context.ts'
import { flatTopicTree, nestedTopicTree } from './topic-tree.ts'
import { nanomqConfiguration, v1Client, v1Subscriptions } from './views.ts'

export const V1_PATH = '/api/v1'

const REQ = Object.freeze({
  BROKER: 2,
  SUBSCRIPTIONS: 4,
  CLIENTS: 5,
  CTRL: 10,
  GET_CONFIG: 11,
  SET_CONFIG: 12,
  TOPIC_TREE: 13
})

export function v1Handler (ctx: ApiContext) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    let seq = 0
    let rep: number | undefined
    try {
      const settings = ctx.settings()
      // NanoMQ's order, on request only (Q24): parse, then authenticate
      const body = parseJson(request.body)
      if (!isPlainObject(body)) throw new ApiError(400, CODE.BAD_JSON)
      if (typeof body.seq === 'number') seq = body.seq
      if (settings.v1ParseBeforeAuth) {
        const code = checkBasicAuth(request.headers.authorization, settings)
        if (code !== CODE.SUCCESS) throw new ApiError(401, code)
      }
      if (body.req === undefined) throw new ApiError(400, CODE.MISSING_PARAMS, '"req" is required')
      if (typeof body.req !== 'number' || !Number.isInteger(body.req)) throw new ApiError(400, CODE.PARAM_ERROR, '"req" must be an integer')
      rep = body.req
      const data = await dispatch(ctx, request, reply, body.req, body)
      const ok: Record<string, unknown> = { code: CODE.SUCCESS, seq, rep }
      if (data !== undefined) ok.data = data
      return reply.send(ok)
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      if (err.status === 401) reply.header('www-authenticate', 'Basic realm="tapmq"')
      const body: Record<string, unknown> = { code: err.code, seq }
      if (rep !== undefined) body.rep = rep
      if (err.detail) body.message = err.detail
      return reply.code(err.status).send(body)
    }
  }
}

async function dispatch (ctx: ApiContext, request: FastifyRequest, reply: FastifyReply, req: number, body: Record<string, unknown>): Promise<unknown> {
  const { broker } = ctx.host
  switch (req) {
    case REQ.BROKER: {
      const stats = broker.stats()
      return {
        client_size: stats.connections,
        message_in: stats.messagesReceived,
        message_out: stats.messagesSent,
        message_drop: stats.messagesDropped
      }
    }
    case REQ.SUBSCRIPTIONS:
      return v1Subscriptions(broker)
    case REQ.CLIENTS:
      return broker.clients().map(v1Client)
    case REQ.CTRL: {
      if (typeof body.action !== 'string') throw new ApiError(400, CODE.MISSING_PARAMS, '"action" (stop or restart) is required')
      const action = controlAction(ctx, body.action)
      afterResponse(ctx, reply, `ctrl ${body.action}`, action)
      return undefined
    }
    case REQ.GET_CONFIG:
      return nanomqConfiguration(ctx.host.config, ctx.settings())
    case REQ.SET_CONFIG:
      throw new ApiError(501, CODE.WRITE_CONFIG_FAILED, 'tapmq does not write config files; edit them and reload (POST /api/v4/reload)')
    case REQ.TOPIC_TREE:
      return topicTree(ctx, (request.query as Record<string, string | undefined>).format, 'client_id')
    default:
      throw new ApiError(404, CODE.PARAM_ERROR)
  }
}

/** NanoMQ's flat levels; `nanomq08` adds 0.8's trailing empty level (Q15); `tree` is nested. */
export async function topicTree (ctx: ApiContext, format: string | undefined, key: 'client_id' | 'clientid'): Promise<unknown> {
  const { broker } = ctx.host
  if (format === undefined || format === 'levels') return flatTopicTree(broker.topicTree(), key)
  if (format === 'nanomq08') return flatTopicTree(broker.topicTree(), key, true)
  if (format === 'tree') return nestedTopicTree(broker.topicTree(), await broker.retainedTopics())
  throw new ApiError(400, CODE.PARAM_ERROR, `unknown format "${format}": expected levels, nanomq08 or tree`)
}
