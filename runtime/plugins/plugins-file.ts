// etc/plugins.conf: which plugins load, in which order, from where, with which config.
//
//   plugin.webhook = on                   # on | off; the order of these lines is the load order
//   plugin.webhook.conf = web_hook.conf   # the plugin's own .conf file, relative to this file
//   plugin.audit.source = ./audit.ts      # first-party short name, npm package, or relative path
//   plugin.audit.optional = true          # a failure to load only warns
//   plugin.audit.file = /var/log/a.log    # any other key is an option for the plugin
import { dirname, resolve } from 'node:path'
import { Conf, type ConfEntry, readConfFile } from '../../sdk/conf.ts'
import { ERR_CONF_VALUE, type SourceLocation } from '../../sdk/errors.ts'
import type { TapmqPlugin } from '../../sdk/plugin.ts'

export interface PluginEntry {
  readonly id: string
  readonly enabled: boolean
  readonly source: string
  /** absolute path of the plugin's .conf file, if plugins.conf names one */
  readonly confFile?: string
  readonly optional: boolean
  /** the remaining `plugin.<id>.<key>` lines, with `key` relative to the plugin */
  readonly inline: readonly ConfEntry[]
  /** the `plugin.<id> = on|off` line */
  readonly location: SourceLocation
  /** the directory relative sources and files resolve against */
  readonly baseDir: string
  /** set by embedders and the SDK test kit: the plugin itself, and options that skip its conf */
  readonly preloaded?: { readonly plugin: TapmqPlugin, readonly options?: unknown }
}

const RESERVED = new Set(['source', 'conf', 'optional'])
const ID = /^[a-z0-9][a-z0-9_-]*$/i
const SWITCH = ['on', 'off', 'true', 'false']

export function readPluginsFile (file: string): PluginEntry[] {
  return pluginEntries(readConfFile(file), dirname(resolve(file)), file)
}

export function pluginEntries (entries: readonly ConfEntry[], baseDir: string, file: string): PluginEntry[] {
  const reject = (entry: ConfEntry, key: string, allowed: string): never => {
    throw ERR_CONF_VALUE([key, entry.value, allowed], { location: entry.location })
  }
  const order: string[] = []
  const byId = new Map<string, { switchLine?: ConfEntry, settings: ConfEntry[] }>()
  for (const entry of entries) {
    const match = /^plugin\.([^.]+)(?:\.(.+))?$/.exec(entry.key)
    if (!match || !ID.test(match[1]!)) reject(entry, entry.key, 'keys of the form plugin.<id> or plugin.<id>.<key>')
    const [, id, setting] = match!
    let plugin = byId.get(id!)
    if (!plugin) {
      if (setting !== undefined) reject(entry, entry.key, `a "plugin.${id} = on" line before it`)
      plugin = { settings: [] }
      byId.set(id!, plugin)
      order.push(id!)
    }
    if (setting === undefined) plugin.switchLine = entry
    else plugin.settings.push({ ...entry, key: setting })
  }

  return order.map((id) => {
    const { switchLine, settings } = byId.get(id)!
    const state = switchLine!.value.toLowerCase()
    if (!SWITCH.includes(state)) reject(switchLine!, `plugin.${id}`, SWITCH.join(' | '))
    const own = new Conf(settings, file)
    const confFile = own.string('conf')
    return {
      id,
      enabled: state === 'on' || state === 'true',
      source: own.string('source', id),
      confFile: confFile ? resolve(baseDir, confFile) : undefined,
      optional: own.bool('optional', false),
      inline: settings.filter((entry) => !RESERVED.has(entry.key)),
      location: switchLine!.location,
      baseDir
    }
  })
}
