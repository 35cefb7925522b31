// Control for bench/http-auth.ts: an auth plugin that allows every client after the same
// delay as the slow auth server, without any HTTP. A connect storm against it shows what
// pending connects cost the broker by themselves, apart from the HTTP requests.
import { definePlugin, STAGE, Type } from '../sdk/index.ts'

const PLUGIN_NAME = 'bench:auth-delay'

export default definePlugin({
  name: PLUGIN_NAME,
  version: '1.0.0',
  options: Type.Object({ delay: Type.Integer({ minimum: 0, default: 200 }) }),
  setup (host, options) {
    host.hooks.auth.tapPromise({ name: PLUGIN_NAME, stage: STAGE.AUTH }, () =>
      new Promise((resolve) => setTimeout(() => resolve({ result: 'allow' }), options.delay)))
  }
})
