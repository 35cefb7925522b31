// CPU profile of a tapmq broker under the persistent QoS 1 load of bench/persistence.ts:
//   node --import tsx bench/persistence-profile.ts [embedded|memory] [seconds] [publishers] [persistent|clean] [commit window] > top.txt
// Prints the functions with the most self time; the .cpuprofile stays in the printed directory.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LoadGenerator } from './lib/generator.ts'
import { SCENARIOS } from './lib/scenarios.ts'
import { tapmqTarget } from './lib/targets.ts'

const [store = 'embedded', seconds = '5', publishers = '10', clean = 'persistent', window] = process.argv.slice(2)
const dir = mkdtempSync(join(tmpdir(), 'tapmq-prof-'))
const target = tapmqTarget(`tapmq-${store}`, store, { conf: { persistence: store, ...(window ? { 'persistence.commit_window': window } : {}) } })
const broker = await target.start({ cpu: 0, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir] })
const generator = new LoadGenerator({ cpu: 1 })
const result = await generator.run('fanin1', broker.address, {
  ...SCENARIOS.fanin1!.defaults, duration: Number(seconds), warmup: 1, payload: 64, prefix: 'prof', pid: broker.pid, persistent: clean !== 'clean', publishers: Number(publishers)
})
await generator.close()
await broker.stop()
console.log(result.metrics.map((m) => `${m.name}: ${m.value.toFixed(1)} ${m.unit}`).join(', '))
interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))!
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: Node[] }
const self = new Map<string, number>()
let total = 0
for (const node of profile.nodes) {
  const key = `${node.callFrame.functionName || '(anon)'} ${node.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '')}:${node.callFrame.lineNumber}`
  self.set(key, (self.get(key) ?? 0) + (node.hitCount ?? 0))
  total += node.hitCount ?? 0
}
console.log(`profile ${join(dir, file)}; top self time:`)
for (const [key, hits] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${(100 * hits / total).toFixed(1).padStart(5)}%  ${key}`)
