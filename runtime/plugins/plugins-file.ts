// etc/plugins.conf: which plugins load, in which order, from where, with which config.
//
//   plugin.webhook = on                   # on | off; the order of these lines is the load order
//   plugin.webhook.conf = web_hook.conf   # the plugin's own .conf file, relative to this file
//   plugin.audit.source = ./audit.ts      # first-party short name, npm package, or relative path
//   plugin.audit.optional = true          # a failure to load only warns
//   plugin.audit.file = /var/log/a.log    # any other key is an option for the plugin
import { dirname, resolve } from 'node:path'
import { Conf, type ConfEntry, readConfFile } from '../../sdk/conf.ts'
import type { SourceLocation } from '../../sdk/errors.ts'
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

export function readPluginsFile (file: string): PluginEntry[] {
  return pluginEntries(readConfFile(file), dirname(resolve(file)), file)
}

export function pluginEntries (entries: readonly ConfEntry[], baseDir: string, file: string): PluginEntry[] {
  const order: string[] = []
  const byId = new Map<string, ConfEntry[]>()
  for (const entry of entries) {
    const match = /^plugin\.([^.]+)(?:\.(.+))?$/.exec(entry.key)
    if (!match || !ID.test(match[1]!)) {
      new Conf([entry], file).invalid(entry.key, 'keys of the form plugin.<id> or plugin.<id>.<key>', entry.value)
    }
    const id = match![1]!
    if (!byId.has(id)) {
      byId.set(id, [])
      order.push(id)
    }
    byId.get(id)!.push(match![2] === undefined ? { ...entry, key: '' } : { ...entry, key: match![2] })
  }

  return order.map((id) => {
    const own = new Conf(byId.get(id)!.map((entry) => ({ ...entry, key: entry.key === '' ? '@enabled' : entry.key })), file)
    const switchLine = own.entry('@enabled')
    if (!switchLine) {
      const first = byId.get(id)![0]!
      new Conf([first], file).invalid(`plugin.${id}.${first.key}`, `a "plugin.${id} = on" line before it`, first.value)
    }
    const enabled = own.oneOf('@enabled', ['on', 'off', 'true', 'false'] as const, 'on')
    const confFile = own.string('conf')
    return {
      id,
      enabled: enabled === 'on' || enabled === 'true',
      source: own.string('source', id),
      confFile: confFile ? resolve(baseDir, confFile) : undefined,
      optional: own.bool('optional', false),
      inline: own.entries().filter((entry) => entry.key !== '@enabled' && !RESERVED.has(entry.key)),
      location: switchLine!.location,
      baseDir
    }
  })
}
