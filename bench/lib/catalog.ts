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

/**
 * tapmq with the first-party webhook and http-auth plugins on, pointed at fast local
 * receivers in the harness process: the webhook posts connect/disconnect and every publish;
 * http-auth checks CONNECT (cached) and every publish/subscribe ACL (cached).
 */
function tapmqWithPlugins (): Target {
  return tapmqTarget('tapmq-plugins', 'tapmq + webhook + http-auth (local receivers, cached)', {
    requires: pluginsMissing,
    plugins: [
      'plugin.webhook = on', 'plugin.webhook.conf = web_hook.conf',
      'plugin.http_auth = on', 'plugin.http_auth.conf = auth_http.conf', ''
    ].join('\n'),
    sidecar: async () => {
      const receiver = await startReceiver()
      const files = {
        'web_hook.conf': [
          'web.hook.enable = true',
          `web.hook.url = ${receiver.url}/hook`,
          'web.hook.headers.content-type = application/json',
          'web.hook.body.encoding_of_payload_field = plain',
          'web.hook.pool_size = 32',
          'web.hook.rule.client.connected.1 = {"action": "on_client_connected"}',
          'web.hook.rule.client.disconnected.1 = {"action": "on_client_disconnected"}',
          'web.hook.rule.message.publish.1 = {"action": "on_message_publish"}',
          ''
        ].join('\n'),
        'auth_http.conf': [
          'auth.http.enable = true',
          `auth.http.auth_req.url = ${receiver.url}/mqtt/auth`,
          'auth.http.auth_req.method = post',
          'auth.http.auth_req.params = clientid=%c,username=%u,password=%P',
          `auth.http.acl_req.url = ${receiver.url}/mqtt/acl`,
          'auth.http.acl_req.method = post',
          'auth.http.acl_req.params = access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t',
          'auth.http.timeout = 5s',
          'auth.http.connect_timeout = 5s',
          ''
        ].join('\n')
      }
      return { files, close: () => receiver.close() }
    }
  })
}

export function defaultTargets (): Record<string, Target> {
  return {
    tapmq: tapmqTarget('tapmq', 'tapmq, no plugins (defaults: write_coalescing on)'),
    'tapmq-plugins': tapmqWithPlugins(),
    aedes: aedesTarget(),
    mosquitto: mosquittoTarget(),
    // for measuring the write path: tapmq with aedes' own per-delivery writes
    'tapmq-nocoalesce': tapmqTarget('tapmq-nocoalesce', 'tapmq, no plugins, write_coalescing = false', {
      conf: { write_coalescing: 'false' }
    })
  }
}

export const DEFAULT_TARGETS = ['tapmq', 'tapmq-plugins', 'aedes', 'mosquitto']
