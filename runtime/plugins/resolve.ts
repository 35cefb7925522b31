// Finding and importing a plugin: a first-party short name (plugins/<name>/), a path
// relative to plugins.conf, or an npm package resolved from plugins.conf's directory.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { ERR_PLUGIN_INVALID, ERR_PLUGIN_NOT_FOUND } from '../../sdk/errors.ts'
import type { TapmqPlugin } from '../../sdk/plugin.ts'
import type { PluginEntry } from './plugins-file.ts'

const FIRST_PARTY_DIR = fileURLToPath(new URL('../../plugins/', import.meta.url))

function firstPartyPath (name: string): string | undefined {
  for (const candidate of [name, name.replace(/_/g, '-')]) {
    const file = join(FIRST_PARTY_DIR, candidate, 'index.ts')
    if (/^[a-z0-9-]+$/.test(candidate) && existsSync(file)) return file
  }
  return undefined
}

function specifierFor (entry: PluginEntry): string {
  const { source, baseDir } = entry
  const location = { location: entry.location }
  if (source.startsWith('.') || isAbsolute(source)) {
    const file = resolve(baseDir, source)
    if (!existsSync(file)) throw ERR_PLUGIN_NOT_FOUND([entry.id, source, `no file ${file}`], location)
    return pathToFileURL(file).href
  }
  const firstParty = firstPartyPath(source)
  if (firstParty) return pathToFileURL(firstParty).href
  try {
    return pathToFileURL(createRequire(join(baseDir, 'plugins.conf')).resolve(source)).href
  } catch {
    // ESM-only packages have no `require` export condition; let import() resolve them
    return source
  }
}

export function isPlugin (value: unknown): value is TapmqPlugin {
  const plugin = value as TapmqPlugin | undefined
  return typeof plugin?.name === 'string' && typeof plugin.version === 'string' && typeof plugin.setup === 'function'
}

export async function importPlugin (entry: PluginEntry): Promise<TapmqPlugin> {
  const specifier = specifierFor(entry)
  let module: { default?: unknown }
  try {
    module = await import(specifier)
  } catch (err) {
    const error = err as NodeJS.ErrnoException
    const notFound = error.code === 'ERR_MODULE_NOT_FOUND' && specifier === entry.source
    if (notFound) throw ERR_PLUGIN_NOT_FOUND([entry.id, entry.source, 'not a first-party plugin, a file or an installed package'], { location: entry.location })
    throw ERR_PLUGIN_INVALID([entry.id, `importing ${entry.source} failed: ${error.message}`], { location: entry.location, cause: err })
  }
  // CommonJS modules arrive as `default`, and may nest their own `default`
  const candidate = isPlugin(module.default) ? module.default : (module.default as { default?: unknown } | undefined)?.default
  if (!isPlugin(candidate)) {
    throw ERR_PLUGIN_INVALID([entry.id, 'its default export has no name, version and setup()'], { location: entry.location })
  }
  return candidate
}
