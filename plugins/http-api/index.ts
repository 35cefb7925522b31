// The HTTP management API: NanoMQ 0.8's API v1 and its later API v4, plus runtime plugin
// control and Prometheus metrics, as a first-party plugin on the public SDK.
//
//   plugin.http_api = on                  # in plugins.conf
//   http_server.enable = true             # in tapmq.conf (or --http, NANOMQ_HTTP_SERVER_ENABLE)
//
// The server keys (http_server.*) are read from the main config; see docs/http-api.md.
import { definePlugin } from '../../sdk/index.ts'
import { PLUGIN_NAME } from './context.ts'
import { HttpApi } from './server.ts'
import { Options, PASSWORD_KEY } from './settings.ts'

export interface HttpApiSurface {
  /** `http://host:port` while the server listens */
  readonly url: string | undefined
}

export default definePlugin({
  name: PLUGIN_NAME,
  version: '1.0.0',
  description: 'HTTP management API: NanoMQ API v1 and v4, topic tree, Prometheus metrics, runtime plugin control',
  tapmq: '>=0.1.0',
  secrets: [PASSWORD_KEY],
  options: Options,

  async setup (host, options) {
    const api = new HttpApi(host, options)
    await api.start()
    const surface: HttpApiSurface = { get url () { return api.url } }
    return {
      health: () => api.health(),
      reload: (next) => api.reconfigure(next),
      close: () => api.close(),
      api: surface
    }
  }
})
