// startTestBroker, closed at teardown, plus a tiny plugin factory for tests that only tap.
//
//   const broker = await testBroker(t, { plugins: [tapping('recorder', (hooks) => { ... })] })
import { definePlugin, type Hooks, type PluginHost, type TapmqPlugin } from '../../sdk/index.ts'
import { startTestBroker, type TestBroker, type TestBrokerOptions } from '../../sdk/testing.ts'
import type { Teardown } from './mqtt.ts'

export async function testBroker (t: Teardown, options: TestBrokerOptions = {}): Promise<TestBroker> {
  const broker = await startTestBroker(options)
  t.teardown(() => broker.close())
  return broker
}

/** A plugin named `name` whose setup only runs `tap(hooks, host)`; taps use `name`. */
export function tapping (name: string, tap: (hooks: Hooks, host: PluginHost) => void): TapmqPlugin {
  return definePlugin({ name, version: '1.0.0', setup (host) { tap(host.hooks, host) } })
}
