// Summarises V8 .cpuprofile files (from `npm run bench -- --profile DIR`): self time by
// function and by origin (a package, tapmq's own code, node internals, GC, native).
//
//   node --import tsx bench/profile.ts DIR_OR_FILE... [--top 30]
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
  hitCount?: number
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, inclusive: { type: 'string' } }
})

function files (paths: string[]): string[] {
  return paths.flatMap((p) => (statSync(p).isDirectory()
    ? readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f))
    : [p]))
}

function origin (url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC'
  if (name === '(idle)' || name === '(program)') return name
  if (url === '') return 'native / builtins'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`
  const own = /\/(runtime|sdk|plugins|bench)\//.exec(url)
  if (own) return `tapmq ${own[1]}/`
  return url
}

for (const file of files(positionals)) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  let total = 0
  const byFunction = new Map<string, number>()
  const byOrigin = new Map<string, number>()
  for (const [id, time] of self) {
    const node = byId.get(id)
    if (!node) continue
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)' || functionName === '(program)') continue
    total += time
    const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(runtime|sdk|plugins|bench)\//, '$1/')
    const key = `${functionName || '(anonymous)'}  ${short}${url ? `:${lineNumber + 1}` : ''}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + time)
    const o = origin(url, functionName)
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + time)
  }
  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`
  // inclusive time of named functions: self time of every node with such a frame on its stack (counted once)
  const inclusive = new Map<string, number>()
  if (values.inclusive) {
    const names = new Set(values.inclusive.split(','))
    const parent = new Map<number, number>()
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
    for (const [id, time] of self) {
      const seen = new Set<string>()
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const name = byId.get(at)?.callFrame.functionName ?? ''
        if (names.has(name) && !seen.has(name)) {
          seen.add(name)
          inclusive.set(name, (inclusive.get(name) ?? 0) + time)
        }
      }
    }
  }
  console.log(`\n${file}: ${(total / 1e6).toFixed(2)} s busy`)
  console.log('\nby origin (self time):')
  for (const [o, t] of [...byOrigin].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${pct(t)}  ${o}`)
  if (inclusive.size > 0) {
    console.log('\ninclusive:')
    for (const [name, t] of [...inclusive].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(t)}  ${name}`)
  }
  console.log(`\ntop ${values.top} functions (self time):`)
  for (const [f, t] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`  ${pct(t)}  ${f}`)
}
