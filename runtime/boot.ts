// From files to a running broker, and back again on reload: the main conf, plugins.conf,
// and the NanoMQ flags that point at plugin files.
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { formatLocation } from '../sdk/errors.ts'
import { type LoadedConfig, loadConfig } from './config/load.ts'
import { createLogger } from './logger.ts'
import { type PluginEntry, readPluginsFile } from './plugins/plugins-file.ts'
import { Tapmq } from './tapmq.ts'

const PACKAGE_ETC = fileURLToPath(new URL('../etc/', import.meta.url))

export interface BootOptions {
  /** the main conf file; see defaultConfFile */
  readonly confFile?: string
  readonly pluginsFile?: string
  /** NanoMQ's `--webhook F`, `--auth_http F`, `--auth F`: enable that plugin with that file */
  readonly pluginFiles?: ReadonlyArray<{ id: string, aliases: readonly string[], file: string, flag: string }>
  readonly overrides?: ReadonlyArray<{ key: string, value: string, flag: string }>
  readonly env?: NodeJS.ProcessEnv
  readonly log?: Logger
  /** how the process restarts itself (the CLI's), for the HTTP API's ctrl/restart */
  readonly restart?: () => Promise<void>
}

/** --conf, else $TAPMQ_CONF / $NANOMQ_CONF_PATH, else ./etc/tapmq.conf, else the packaged one. */
export function defaultConfFile (env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.TAPMQ_CONF ?? env.NANOMQ_CONF_PATH
  if (fromEnv) return fromEnv
  const local = resolve('etc/tapmq.conf')
  return existsSync(local) ? local : join(PACKAGE_ETC, 'tapmq.conf')
}

export interface Booted {
  readonly tapmq: Tapmq
  readonly config: LoadedConfig
  readonly pluginsFile?: string
}

export function readConfigs (options: BootOptions): { config: LoadedConfig, plugins: PluginEntry[], pluginsFile?: string } {
  const config = loadConfig({ file: options.confFile ?? defaultConfFile(options.env), cli: options.overrides, env: options.env })
  const beside = config.file ? join(dirname(config.file), 'plugins.conf') : undefined
  const pluginsFile = options.pluginsFile ?? (beside && existsSync(beside) ? beside : undefined)
  const plugins = pluginsFile ? readPluginsFile(pluginsFile) : []
  for (const extra of options.pluginFiles ?? []) {
    const file = resolve(extra.file)
    const at = plugins.findIndex((entry) => entry.id === extra.id || extra.aliases.includes(entry.id))
    const entry: PluginEntry = at >= 0
      ? { ...plugins[at]!, enabled: true, confFile: file }
      : {
          id: extra.id,
          enabled: true,
          source: extra.id,
          confFile: file,
          optional: false,
          inline: [],
          location: { file: `command line ${extra.flag}`, line: 0 },
          baseDir: dirname(file)
        }
    if (at >= 0) plugins[at] = entry
    else plugins.push(entry)
  }
  return { config, plugins, pluginsFile }
}

export async function boot (options: BootOptions): Promise<Booted> {
  const { config, plugins, pluginsFile } = readConfigs(options)
  const log = options.log ?? createLogger(config.broker.log)
  for (const { key, location } of config.unknown) {
    log.warn({ key, at: formatLocation(location) }, 'unknown config key ignored')
  }
  const tapmq = new Tapmq({
    config: config.broker, conf: config.conf, plugins, log, readConfigs: () => readConfigs(options), restart: options.restart
  })
  await tapmq.start()
  return { tapmq, config, pluginsFile }
}
