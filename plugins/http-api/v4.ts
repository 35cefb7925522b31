// API v4 (NanoMQ 0.8.3+, docs/en_US/api/v4.md): REST under /api/v4, `{"code":0,"data":...}`
// on success, `{"code":C}` (plus tapmq's `"message"`) with HTTP 400/401/404/5xx otherwise.
// tapmq adds /plugins, DELETE /clients/:clientid and the nested topic tree.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { PluginStatus, PublishRequest, QoS } from '../../sdk/index.ts'
import { ApiError, CODE, isPlainObject, parseJson } from './codes.ts'
import { afterResponse, type ApiContext, controlAction, PLUGIN_NAME } from './context.ts'
import { topicTree } from './v1.ts'
import {
  brokerInfo, clientFilter, nanomqConfiguration, nodeInfo, subscriptionFilter, v4Client, v4Subscription
} from './views.ts'

export const V4_PREFIX = '/api/v4'

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'
type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>
type Query = Record<string, string | undefined>

export interface Endpoint {
  readonly path: string
  readonly name: string
  readonly method: Method
  readonly descr: string
}

const params = (request: FastifyRequest) => request.params as Record<string, string>
const query = (request: FastifyRequest) => request.query as Query

export function registerV4 (app: FastifyInstance, ctx: ApiContext): void {
  const endpoints: Endpoint[] = []
  const route = (method: Method, path: string, name: string, descr: string, handler: Handler) => {
    endpoints.push({ path, name, method, descr })
    app.route({ method, url: V4_PREFIX + path, handler })
  }
  const { broker } = ctx.host
  const ok = (data?: unknown) => (data === undefined ? { code: CODE.SUCCESS } : { code: CODE.SUCCESS, data })

  route('GET', '/', 'list_endpoints', 'A list of the endpoints of this API', async () => ok(endpoints))

  route('GET', '/brokers/', 'list_brokers', 'A list of brokers in the cluster', async () => ok([brokerInfo(broker)]))
  route('GET', '/nodes/', 'list_nodes', 'A list of nodes in the cluster', async () =>
    ok(broker.nodes().map((node) => ({ ...(node.self ? nodeInfo(broker) : { node_status: 'Running' }), node_name: node.name, node_id: node.id, last_heartbeat: node.lastHeartbeat }))))

  route('GET', '/clients/', 'list_clients', 'A list of clients on current node', async (request) => {
    const keep = clientFilter(query(request))
    return ok(broker.clients().filter(keep).map(v4Client))
  })
  route('GET', '/clients/:clientid', 'lookup_client', 'Lookup a client in the cluster', async (request) => {
    const client = broker.client(params(request).clientid!)
    if (!client) throw new ApiError(404, CODE.CLIENT_OFFLINE, `no client "${params(request).clientid}" is connected`)
    return ok([v4Client(client)])
  })
  route('GET', '/clients/username/:username', 'lookup_client_via_username', 'Lookup a client via username in the cluster', async (request) =>
    ok(broker.clients().filter((client) => client.username === params(request).username).map(v4Client)))
  route('DELETE', '/clients/:clientid', 'kick_client', 'Disconnect a client (reason "kicked")', async (request) => {
    if (!broker.disconnect(params(request).clientid!)) {
      throw new ApiError(404, CODE.CLIENT_OFFLINE, `no client "${params(request).clientid}" is connected`)
    }
    return ok()
  })

  route('GET', '/subscriptions/', 'list_subscriptions', 'A list of subscriptions in the cluster', async (request) => {
    const keep = subscriptionFilter(query(request))
    return ok(broker.subscriptions().filter(keep).map(v4Subscription))
  })
  route('GET', '/subscriptions/:clientid', 'lookup_client_subscriptions', 'A list of subscriptions of a client', async (request) =>
    ok(broker.subscriptions(params(request).clientid).map(v4Subscription)))

  route('GET', '/topic-tree/', 'list_topic-tree', 'A list of topic-tree in the cluster (?format=levels|nanomq08|tree)', async (request) =>
    ok(await topicTree(ctx, query(request).format, 'clientid')))

  route('GET', '/metrics/', 'list_metrics', 'Statistics, CPU and memory use of the node', async () => {
    const stats = broker.stats()
    return {
      code: CODE.SUCCESS,
      metrics: [{
        connections: stats.connections,
        sessions: stats.sessions,
        subscriptions: stats.subscriptions,
        topics: stats.topics,
        'messages.received': stats.messagesReceived,
        'messages.sent': stats.messagesSent,
        'messages.dropped': stats.messagesDropped,
        uptime: stats.uptimeMs
      }],
      cpuinfo: `${ctx.cpu.percent().toFixed(2)}%`,
      memory: String(process.memoryUsage().rss)
    }
  })
  route('GET', '/prometheus/', 'get_prometheus', 'Metrics in Prometheus text format', async (_request, reply) => {
    const { contentType, body } = await ctx.host.telemetry.exposition()
    const extra = ctx.settings().nanomqMetrics ? await ctx.nanomqMetrics() : ''
    const text = body.endsWith('\n') || body === '' ? body : body + '\n'
    return reply.type(contentType).send(extra ? `${text}\n${extra}` : text)
  })

  route('POST', '/mqtt/publish', 'mqtt_publish', 'Publish an MQTT message', async (request) => {
    const item = parseJson(request.body)
    for (const message of publishRequests(item)) await broker.publish(message)
    return ok()
  })
  route('POST', '/mqtt/publish_batch', 'mqtt_publish_batch', 'Publish MQTT messages in batch', async (request) => {
    const items = parseJson(request.body)
    if (!Array.isArray(items)) throw new ApiError(400, CODE.PARAM_ERROR, 'expected a JSON array of messages')
    const data: Array<{ topic: unknown, code: number, message?: string }> = []
    for (const item of items) {
      const topic = isPlainObject(item) ? item.topic ?? item.topics : undefined
      try {
        for (const message of publishRequests(item)) await broker.publish(message)
        data.push({ topic, code: CODE.SUCCESS })
      } catch (err) {
        const error = err instanceof ApiError ? err : new ApiError(500, CODE.UNKNOWN_ERROR, (err as Error).message)
        data.push({ topic, code: error.code, ...(error.detail ? { message: error.detail } : {}) })
      }
    }
    return { data, code: CODE.SUCCESS }
  })

  route('GET', '/reload/', 'get_reload', 'What a reload applies: log level and plugins', async () => ok({
    'log.level': ctx.host.config.get('log.level') ?? 'info',
    plugins: Object.fromEntries(ctx.host.plugins.list().map((plugin) => [plugin.id, plugin.state]))
  }))
  route('POST', '/reload/', 'reload', 'Re-read the config files and apply them without dropping clients', async (request) => {
    if (typeof request.body === 'string' && request.body.trim() !== '') {
      const body = parseJson(request.body)
      if (isPlainObject(body) && body.data !== undefined) {
        throw new ApiError(400, CODE.PARAM_ERROR, 'tapmq reloads from its config files: edit them, then POST without "data"')
      }
    }
    try {
      await ctx.host.control.reload()
    } catch (err) {
      throw new ApiError(500, CODE.UNKNOWN_ERROR, `reload failed, the running config is unchanged: ${(err as Error).message}`)
    }
    return ok()
  })

  route('GET', '/configuration/', 'get_broker_configuration', 'show broker configuration (secrets redacted; ?format=flat for every key)', async (request) => {
    if (query(request).format === 'flat') {
      return ok(Object.fromEntries(ctx.host.config.entries().map(({ key, value }) => [key, value])))
    }
    return ok(nanomqConfiguration(ctx.host.config, ctx.settings()))
  })
  route('GET', '/configuration/:section', 'get_broker_configuration_section', 'show one section: basic, tls, websocket or http_server', async (request) => {
    const { tls, websocket, http_server: httpServer, ...basic } = nanomqConfiguration(ctx.host.config, ctx.settings())
    const sections: Record<string, unknown> = { basic, tls, websocket, http_server: httpServer }
    const section = params(request).section!
    if (!(section in sections)) throw new ApiError(404, CODE.PARAM_ERROR, `unknown section "${section}": expected basic, tls, websocket or http_server`)
    return ok(sections[section])
  })
  route('POST', '/configuration/', 'set_broker_configuration', 'set broker configuration (not supported: edit the files and reload)', async () => {
    throw new ApiError(501, CODE.WRITE_CONFIG_FAILED, 'tapmq does not write config files; edit them and reload (POST /api/v4/reload)')
  })

  route('POST', '/ctrl/:action', 'ctrl_broker', 'Control broker stop or restart', async (request, reply) => {
    const action = controlAction(ctx, params(request).action!)
    afterResponse(ctx, reply, `ctrl ${params(request).action}`, action)
    return ok()
  })

  route('GET', '/plugins/', 'list_plugins', 'Plugins with state, health, hooks tapped and counters', async () =>
    ok(ctx.host.plugins.list()))
  route('GET', '/plugins/:name', 'lookup_plugin', 'One plugin, by plugins.conf id or name', async (request) =>
    ok(pluginStatus(ctx, params(request).name!)))
  for (const action of ['enable', 'disable', 'reload'] as const) {
    route('PUT', `/plugins/:name/${action}`, `${action}_plugin`, `${action[0]!.toUpperCase()}${action.slice(1)} a plugin now (runtime only; edit plugins.conf to make it stick)`, async (request) => {
      const status = pluginStatus(ctx, params(request).name!)
      if (action === 'disable' && status.name === PLUGIN_NAME) {
        throw new ApiError(400, CODE.PARAM_ERROR, 'the HTTP API cannot disable itself; set it off in plugins.conf and reload')
      }
      try {
        await ctx.host.plugins[action](status.id)
      } catch (err) {
        throw new ApiError(500, CODE.UNKNOWN_ERROR, (err as Error).message)
      }
      return { code: CODE.SUCCESS, data: ctx.host.plugins.status(status.id), persisted: false }
    })
  }
}

function pluginStatus (ctx: ApiContext, name: string): PluginStatus {
  try {
    return ctx.host.plugins.status(name)
  } catch (err) {
    throw new ApiError(404, CODE.PARAM_ERROR, (err as Error).message)
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * One `/mqtt/publish` body: `topic` or comma-separated `topics`, `payload`, `encoding`
 * (plain | base64), `qos`, `retain`. `clientid` and MQTT 5 `properties` are accepted and
 * ignored: the broker publishes as itself, and aedes 1.2 speaks MQTT 3.1.1.
 */
export function publishRequests (item: unknown): PublishRequest[] {
  if (!isPlainObject(item)) throw new ApiError(400, CODE.PARAM_ERROR, 'expected a JSON object')
  const { topic, topics, payload, encoding = 'plain', qos = 0, retain = false } = item
  const names = typeof topic === 'string' ? [topic] : typeof topics === 'string' ? topics.split(',').map((name) => name.trim()) : []
  if (names.length === 0) throw new ApiError(400, CODE.MISSING_PARAMS, '"topic" or "topics" is required')
  for (const name of names) {
    if (name === '' || /[+#\u0000]/.test(name)) throw new ApiError(400, CODE.PARAM_ERROR, `invalid topic ${JSON.stringify(name)}: no wildcards, not empty`)
  }
  if (typeof payload !== 'string') throw new ApiError(400, CODE.MISSING_PARAMS, '"payload" (a string) is required')
  if (encoding !== 'plain' && encoding !== 'base64') throw new ApiError(400, CODE.PARAM_ERROR, '"encoding" must be plain or base64')
  if (encoding === 'base64' && !BASE64.test(payload)) throw new ApiError(400, CODE.PARAM_ERROR, '"payload" is not valid base64')
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new ApiError(400, CODE.PARAM_ERROR, '"qos" must be 0, 1 or 2')
  if (typeof retain !== 'boolean') throw new ApiError(400, CODE.PARAM_ERROR, '"retain" must be true or false')
  const bytes = encoding === 'base64' ? Buffer.from(payload, 'base64') : Buffer.from(payload, 'utf8')
  return names.map((name) => ({ topic: name, payload: bytes, qos: qos as QoS, retain }))
}

