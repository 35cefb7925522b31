// Plugin lifecycle: load (import, metadata checks, options) in plugins.conf order, set up,
// and later enable, disable, reload and close. Checks run in a fixed order and fail with
// TAPMQ_ERR_PLUGIN_* errors that name the plugin and the line that loaded it.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import type { Logger } from 'pino'
import semver from 'semver'
import { Conf } from '../../sdk/conf.ts'
import {
  ERR_PLUGIN_DEPENDENCY, ERR_PLUGIN_OPTIONS, formatLocation, ERR_PLUGIN_SETUP, ERR_PLUGIN_UNKNOWN, ERR_PLUGIN_VERSION, TapmqError
} from '../../sdk/errors.ts'
import type { PluginHealth, PluginHost, PluginInstance, PluginsControl, PluginState, PluginStatus, TapmqPlugin } from '../../sdk/plugin.ts'
import type { TapOwner } from '../isolation.ts'
import type { PluginEntry } from './plugins-file.ts'
import { importPlugin } from './resolve.ts'


interface Loaded {
  entry: PluginEntry
  readonly plugin: TapmqPlugin
  state: PluginState
  detail?: string
  owner?: TapOwner
  /** the owner of an instance a reload replaced while its successor did not start: its decision taps deny */
  replaced?: TapOwner
  instance?: PluginInstance | void
  options?: unknown
}

export interface RegistryDeps {
  readonly version: string
  readonly log: Logger
  /** the host a plugin's setup receives; the taps made through its hooks belong to `owner` */
  hostFor (plugin: TapmqPlugin, owner: TapOwner): PluginHost
  /** the hooks `owner` has tapped, by dotted name */
  hooksOf (owner: TapOwner): string[]
  /** the plugin's counters and gauges, by short name */
  countersOf (plugin: TapmqPlugin): Record<string, number>
  /** bound for setup and close */
  readonly timeout: number
}

/** Resolves `work` or rejects with `onTimeout()` after `ms`. */
function within<T> (ms: number, work: Promise<T>, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expiry = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  return Promise.race([work, expiry]).finally(() => clearTimeout(timer))
}

export class PluginRegistry implements PluginsControl {
  readonly #loaded = new Map<string, Loaded>()

  constructor (private readonly deps: RegistryDeps) {}

  /** Loads and starts every entry in order; a non-optional failure throws. */
  async start (entries: readonly PluginEntry[]): Promise<void> {
    for (const entry of entries) {
      try {
        const loaded = await this.#load(entry)
        this.#loaded.set(entry.id, loaded)
        if (loaded.state === 'running') await this.#setup(loaded)
        else this.deps.log.info({ plugin: entry.id, detail: loaded.detail }, 'plugin off')
      } catch (err) {
        if (!entry.optional) throw err
        this.deps.log.warn({ plugin: entry.id, err: (err as Error).message }, 'optional plugin not loaded')
      }
    }
  }

  async #load (entry: PluginEntry): Promise<Loaded> {
    const plugin = entry.preloaded?.plugin ?? await importPlugin(entry)
    const location = { location: entry.location }
    if (plugin.tapmq && !semver.satisfies(this.deps.version, plugin.tapmq, { includePrerelease: true })) {
      throw ERR_PLUGIN_VERSION([entry.id, plugin.tapmq, this.deps.version], location)
    }
    for (const dependency of plugin.dependencies ?? []) {
      const running = [...this.#loaded.values()].some((other) =>
        other.state === 'running' && (other.plugin.name === dependency || other.entry.id === dependency))
      if (!running) throw ERR_PLUGIN_DEPENDENCY([entry.id, dependency], location)
    }
    if (!entry.enabled) return { entry, plugin, state: 'disabled', detail: `off in ${formatLocation(entry.location)}` }

    const conf = this.#confFor(entry, plugin)
    const enableKey = plugin.conf?.enableKey
    if (enableKey && !entry.preloaded?.options && !conf.bool(enableKey, true)) {
      const at = conf.entry(enableKey)!.location
      return { entry, plugin, state: 'disabled', detail: `${enableKey} = false in ${formatLocation(at)}` }
    }
    const options = this.#options(entry, plugin, conf)
    if (plugin.conf?.parse) {
      for (const unknown of conf.unread()) {
        this.deps.log.warn({ plugin: entry.id, key: unknown.key, at: formatLocation(unknown.location) }, 'unknown key ignored')
      }
    }
    return { entry, plugin, state: 'running', options }
  }

  /** The plugin's own file (named in plugins.conf, or its default name beside it) plus inline keys. */
  #confFor (entry: PluginEntry, plugin: TapmqPlugin): Conf {
    const candidates = [plugin.conf?.file, ...(plugin.conf?.aliases ?? [])]
      .filter((name): name is string => name !== undefined)
      .map((name) => join(entry.baseDir, name))
    const file = entry.confFile ?? candidates.find((candidate) => existsSync(candidate))
    const base = file ? Conf.fromFile(file) : new Conf([], `plugin ${entry.id}`)
    return base.with(entry.inline)
  }

  #options (entry: PluginEntry, plugin: TapmqPlugin, conf: Conf): unknown {
    if (entry.preloaded && 'options' in entry.preloaded) return validateOptions(entry, plugin, entry.preloaded.options)
    const raw = plugin.conf?.parse
      ? plugin.conf.parse(conf)
      : Object.fromEntries(conf.entries().map((item) => [item.key, item.value]))
    return validateOptions(entry, plugin, raw)
  }

  async #setup (loaded: Loaded): Promise<void> {
    const { entry, plugin } = loaded
    const owner: TapOwner = { name: plugin.name, active: true }
    loaded.owner = owner
    try {
      const setup = plugin.setup(this.deps.hostFor(plugin, owner), loaded.options as never)
      loaded.instance = await within(this.deps.timeout, Promise.resolve(setup),
        () => new Error(`setup did not finish within ${this.deps.timeout} ms`))
      loaded.state = 'running'
      loaded.detail = undefined
      this.#forgetReplaced(loaded)
      this.deps.log.info({ plugin: entry.id, version: plugin.version }, 'plugin started')
    } catch (err) {
      owner.active = false
      loaded.state = 'failed'
      loaded.detail = (err as Error).message
      throw err instanceof TapmqError ? err : ERR_PLUGIN_SETUP([entry.id, (err as Error).message], { location: entry.location, cause: err })
    }
  }

  async #close (loaded: Loaded): Promise<void> {
    if (loaded.owner) loaded.owner.active = false
    const instance = loaded.instance
    loaded.instance = undefined
    if (!instance?.close) return
    try {
      await within(this.deps.timeout, Promise.resolve(instance.close()),
        () => new Error(`close did not finish within ${this.deps.timeout} ms`))
    } catch (err) {
      this.deps.log.error({ plugin: loaded.entry.id, err }, 'plugin close failed')
    }
  }

  #get (id: string): Loaded {
    const loaded = this.#loaded.get(id) ?? [...this.#loaded.values()].find((item) => item.plugin.name === id)
    if (!loaded) throw ERR_PLUGIN_UNKNOWN([id])
    return loaded
  }

  list (): PluginStatus[] {
    return [...this.#loaded.values()].map((loaded) => this.status(loaded.entry.id))
  }

  status (id: string): PluginStatus {
    const loaded = this.#get(id)
    const health: PluginHealth = loaded.state !== 'running'
      ? { status: 'down', detail: loaded.detail ?? loaded.state }
      : loaded.instance?.health?.() ?? { status: 'ok' }
    return {
      id: loaded.entry.id,
      name: loaded.plugin.name,
      version: loaded.plugin.version,
      state: loaded.state,
      detail: loaded.detail,
      health,
      hooks: loaded.owner && loaded.state === 'running' ? this.deps.hooksOf(loaded.owner) : [],
      counters: this.deps.countersOf(loaded.plugin)
    }
  }

  async enable (id: string): Promise<void> {
    const loaded = this.#get(id)
    if (loaded.state === 'running') return
    if (loaded.options === undefined) {
      const conf = this.#confFor(loaded.entry, loaded.plugin)
      loaded.options = this.#options(loaded.entry, loaded.plugin, conf)
    }
    await this.#setup(loaded)
  }

  async disable (id: string): Promise<void> {
    const loaded = this.#get(id)
    // switched off on purpose: a replaced instance stops denying too
    this.#forgetReplaced(loaded)
    if (loaded.state !== 'running') return
    await this.#close(loaded)
    loaded.state = 'disabled'
    loaded.detail = 'disabled at runtime'
    this.deps.log.info({ plugin: loaded.entry.id }, 'plugin disabled')
  }

  /** Re-reads the plugin's config; applies it in place if the plugin can, else restarts it. */
  async reload (id: string): Promise<void> {
    const loaded = this.#get(id)
    const conf = this.#confFor(loaded.entry, loaded.plugin)
    const enableKey = loaded.plugin.conf?.enableKey
    if (enableKey && !conf.bool(enableKey, true)) return this.disable(id)
    const options = this.#options(loaded.entry, loaded.plugin, conf)
    loaded.options = options
    if (loaded.state !== 'running') return this.enable(id)
    if (loaded.instance?.reload) {
      await loaded.instance.reload(options)
      // what its taps let the broker remember may no longer be what it would answer
      if (loaded.owner) loaded.owner.generation = (loaded.owner.generation ?? 0) + 1
      this.deps.log.info({ plugin: loaded.entry.id }, 'plugin reconfigured')
      return
    }
    // until the new instance runs, the old one's decision taps deny rather than pass
    const replaced = loaded.owner
    if (replaced) {
      replaced.replacing = true
      loaded.replaced = replaced
    }
    await this.#close(loaded)
    await this.#setup(loaded)
  }

  #forgetReplaced (loaded: Loaded): void {
    if (loaded.replaced) loaded.replaced.replacing = false
    loaded.replaced = undefined
  }

  /**
   * Applies a re-read plugins.conf: changed entries are reloaded, switched-off ones disabled,
   * new ones loaded and started, removed ones disabled.
   */
  async apply (entries: readonly PluginEntry[]): Promise<void> {
    const seen = new Set<string>()
    for (const entry of entries) {
      seen.add(entry.id)
      const loaded = this.#loaded.get(entry.id)
      if (!loaded) {
        await this.start([entry])
        continue
      }
      loaded.entry = entry
      if (!entry.enabled) await this.disable(entry.id)
      else await this.reload(entry.id)
    }
    for (const id of this.#loaded.keys()) if (!seen.has(id)) await this.disable(id)
  }

  /** Closes running plugins in reverse load order. */
  async closeAll (): Promise<void> {
    for (const loaded of [...this.#loaded.values()].reverse()) {
      if (loaded.state === 'running') await this.#close(loaded)
    }
  }
}

/** Applies schema defaults, converts strings from .conf files, and checks the result. */
export function validateOptions (entry: PluginEntry, plugin: TapmqPlugin, raw: unknown): unknown {
  const schema = plugin.options
  if (!schema) return raw
  const value = Value.Convert(schema, Value.Default(schema, Value.Clone(raw ?? {})))
  if (Value.Check(schema, value)) return value
  const details = [...Value.Errors(schema, value)].slice(0, 5)
    .map((error) => `${error.path || '/'} ${error.message}`).join('; ')
  throw ERR_PLUGIN_OPTIONS([entry.id, details], { location: entry.location })
}
