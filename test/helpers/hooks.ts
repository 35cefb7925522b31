// A plugin that records every hook of the table (walked with listHooks, so a hook added
// later is recorded too): `events.of('client.connack')` is a Recorder of first arguments.
//
//   const rec = recordingPlugin()
//   const broker = await testBroker(t, { plugins: [rec.plugin] })
//   const [connack] = await rec.of('client.connack').count(1)
import { listHooks } from '../../runtime/hooks.ts'
import { definePlugin, type TapmqPlugin } from '../../sdk/index.ts'
import { Recorder } from './mqtt.ts'

export interface HookRecording {
  readonly plugin: TapmqPlugin
  /** the recorder of one hook, by dotted name; throws for a name the table does not have */
  of<T = any> (hook: string): Recorder<T>
  /** every hook name that fired at least once */
  fired (): string[]
  /** `[hook, first argument]` of every call, in call order */
  readonly sequence: ReadonlyArray<readonly [string, any]>
}

export function recordingPlugin (name = 'test:recorder'): HookRecording {
  const recorders = new Map<string, Recorder<unknown>>()
  const sequence: Array<readonly [string, unknown]> = []
  const plugin = definePlugin({
    name,
    version: '1.0.0',
    setup (host) {
      for (const [hookName, hook] of listHooks(host.hooks)) {
        const recorder = new Recorder<unknown>()
        recorders.set(hookName, recorder)
        // every hook class accepts a sync tap; decision hooks read `undefined` as "no opinion"
        ;(hook as unknown as { tap (name: string, fn: (arg: unknown) => undefined): void }).tap(name, (arg) => {
          sequence.push([hookName, arg])
          return recorder.push(arg)
        })
      }
    }
  })
  return {
    plugin,
    of<T> (hook: string): Recorder<T> {
      const recorder = recorders.get(hook)
      if (!recorder) throw new Error(`no hook ${hook} (is the recording plugin started?)`)
      return recorder as Recorder<T>
    },
    sequence,
    fired: () => [...recorders].filter(([, r]) => r.list.length > 0).map(([hookName]) => hookName)
  }
}

/**
 * Checks that a hook payload is a plain data object and not (or does not wrap) an aedes
 * object: no `conn`/`broker`/`stream` anywhere, only plain objects, arrays, Buffers and
 * primitives. Returns the offending path, or undefined.
 */
export function foreignPart (value: unknown, path = 'payload'): string | undefined {
  if (value === null || typeof value !== 'object') return typeof value === 'function' ? path : undefined
  if (Buffer.isBuffer(value)) return undefined
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) return `${path} (${proto?.constructor?.name})`
  for (const key of ['conn', 'broker', 'stream'] as const) {
    if (key in value) return `${path}.${key}`
  }
  for (const [key, inner] of Object.entries(value)) {
    const found = foreignPart(inner, `${path}.${key}`)
    if (found) return found
  }
  return undefined
}
