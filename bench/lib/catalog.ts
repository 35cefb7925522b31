// The targets `npm run bench` knows by name. Other benchmark scripts can import these or
// build their own with tapmqTarget().
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startReceiver } from './receivers.ts'
import { aedesTarget, mosquittoTarget, REPO_ROOT, type Target, tapmqTarget } from './targets.ts'

const PLUGIN_DIRS = ['plugins/webhook', 'plugins/http-auth']

function pluginsMissing (): string | undefined {
  const missing = PLUGIN_DIRS.filter((dir) => !existsSync(join(REPO_ROOT, dir, 'index.ts')))
  return missing.length === 0 ? undefined : `first-party plugins not present yet: ${missing.join(', ')}`
}

interface PluginSetup {
  /** webhook rules (event names), none = webhook off */
  readonly webhook: readonly string[]
  /** http-auth: 'auth' = auth_req only, 'acl' = auth_req + acl_req, none = off */
  readonly httpAuth?: 'auth' | 'acl'
}

/**
 * tapmq with first-party plugins pointed at a fast local HTTP receiver in the harness
 * process. webhook events are batched up to 100 per request; http-auth has its decision
 * cache on (auth_req for CONNECT, acl_req for every PUBLISH and SUBSCRIBE).
 */
function tapmqWithPlugins (name: string, description: string, setup: PluginSetup): Target {
  const plugins = [
    ...(setup.webhook.length > 0 ? ['plugin.webhook = on', 'plugin.webhook.conf = web_hook.conf'] : []),
    ...(setup.httpAuth ? ['plugin.http_auth = on', 'plugin.http_auth.conf = auth_http.conf'] : []),
    ''
  ].join('\n')
  return tapmqTarget(name, description, {
    requires: pluginsMissing,
    plugins,
    sidecar: async () => {
      const receiver = await startReceiver()
      const files: Record<string, string> = {}
      if (setup.webhook.length > 0) {
        files['web_hook.conf'] = [
          'web.hook.enable = true',
          `web.hook.url = ${receiver.url}/hook`,
          'web.hook.headers.content-type = application/json',
          'web.hook.body.encoding_of_payload_field = plain',
          'web.hook.pool_size = 32',
          'web.hook.batch.max_events = 100',
          'web.hook.batch.max_delay = 100ms',
          ...setup.webhook.map((event) => `web.hook.rule.${event}.1 = {"action": "on_${event.replace('.', '_')}"}`),
          ''
        ].join('\n')
      }
      if (setup.httpAuth) {
        files['auth_http.conf'] = [
          'auth.http.enable = true',
          `auth.http.auth_req.url = ${receiver.url}/mqtt/auth`,
          'auth.http.auth_req.method = post',
          'auth.http.auth_req.headers.content-type = application/x-www-form-urlencoded',
          'auth.http.auth_req.params = clientid=%c,username=%u,password=%P',
          ...(setup.httpAuth === 'acl'
            ? [`auth.http.acl_req.url = ${receiver.url}/mqtt/acl`, 'auth.http.acl_req.method = post',
                'auth.http.acl_req.params = access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t']
            : []),
          'auth.http.cache.enable = true',
          'auth.http.timeout = 5s',
          'auth.http.connect_timeout = 5s',
          ''
        ].join('\n')
      }
      return { files, close: () => receiver.close() }
    }
  })
}

const CLIENT_EVENTS = ['client.connected', 'client.disconnected']

export function defaultTargets (): Record<string, Target> {
  return {
    tapmq: tapmqTarget('tapmq', 'tapmq, no plugins (defaults: write_coalescing on)'),
    'tapmq-plugins': tapmqWithPlugins('tapmq-plugins',
      'tapmq + webhook (connected, disconnected, every publish; batched) + http-auth (CONNECT + ACL, cached), local receiver',
      { webhook: [...CLIENT_EVENTS, 'message.publish'], httpAuth: 'acl' }),
    // the same plugins, one cost at a time
    'tapmq-plugins-connect': tapmqWithPlugins('tapmq-plugins-connect',
      'tapmq + webhook (connected, disconnected) + http-auth (CONNECT only, cached)', { webhook: CLIENT_EVENTS, httpAuth: 'auth' }),
    'tapmq-webhook-publish': tapmqWithPlugins('tapmq-webhook-publish', 'tapmq + webhook on every publish (batched)', { webhook: ['message.publish'] }),
    'tapmq-http-auth-acl': tapmqWithPlugins('tapmq-http-auth-acl', 'tapmq + http-auth CONNECT + ACL per PUBLISH/SUBSCRIBE, cached', { webhook: [], httpAuth: 'acl' }),
    aedes: aedesTarget(),
    mosquitto: mosquittoTarget(),
    // for measuring the write path: tapmq with aedes' own per-delivery writes
    'tapmq-nocoalesce': tapmqTarget('tapmq-nocoalesce', 'tapmq, no plugins, write_coalescing = false', {
      conf: { write_coalescing: 'false' }
    })
  }
}

export const DEFAULT_TARGETS = ['tapmq', 'tapmq-plugins', 'aedes', 'mosquitto']
