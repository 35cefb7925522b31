// npm run bench -- [--only fanin0,fanout] [--targets tapmq,aedes,mosquitto] [--repeat 3] [--duration 5]
//
// Starts each target broker in its own process, runs every scenario against the targets in
// alternating order from one load-generator process, and prints medians and ratios. Writes
// bench/results/<date>.json, bench/results/latest.json and bench/results/latest.svg.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { DEFAULT_TARGETS, defaultTargets } from './lib/catalog.ts'
import { LoadGenerator } from './lib/generator.ts'
import { type RatioSpec, ratios, type RunRecord, summarize, svgChart, textTable } from './lib/report.ts'
import { SCENARIOS, type ScenarioParams } from './lib/scenarios.ts'
import { machineInfo, pinToCpu } from './lib/system.ts'
import { mosquittoVersion, REPO_ROOT, type RunningTarget, type Target } from './lib/targets.ts'

const HELP = `usage: npm run bench -- [options]
  --only <scenario,...>   ${Object.keys(SCENARIOS).join(', ')} (default: all)
  --targets <name,...>    ${Object.keys(defaultTargets()).join(', ')} (default: ${DEFAULT_TARGETS.join(',')})
  --repeat N              runs per scenario and target (default 3)
  --duration S            measured seconds per throughput/latency run (default 5)
  --warmup S              seconds of load before measuring (default 1)
  --param key=value       override a scenario parameter (e.g. rate=5000, clients=5000, window=1000)
  --profile DIR           run Node targets with --cpu-prof, profiles written to DIR
  --no-pin                do not pin broker and generator to separate cores
  --out DIR               results directory (default bench/results)
  --no-latest             do not overwrite latest.json / latest.svg`

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    targets: { type: 'string' },
    repeat: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    param: { type: 'string', multiple: true },
    profile: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    out: { type: 'string', default: join(REPO_ROOT, 'bench/results') },
    'no-latest': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' }
  }
})
if (values.help) {
  console.log(HELP)
  process.exit(0)
}

const list = (text: string | undefined, fallback: readonly string[]) => (text ? text.split(',').map((s) => s.trim()).filter(Boolean) : [...fallback])
const scenarios = list(values.only, Object.keys(SCENARIOS))
for (const name of scenarios) if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`)
const catalog = defaultTargets()
const requested = list(values.targets, DEFAULT_TARGETS)
for (const name of requested) if (!catalog[name]) throw new Error(`unknown target ${name}; known: ${Object.keys(catalog).join(', ')}`)
const repeat = Number(values.repeat)
const duration = Number(values.duration)
const warmup = Number(values.warmup)
const overrides: Record<string, number> = {}
for (const pair of values.param ?? []) {
  const [key, value] = pair.split('=')
  overrides[key] = Number(value)
}
const pin = !values['no-pin']
const BROKER_CPU = 0
const GENERATOR_CPU = 1

const targets: Target[] = []
const skipped: Array<{ name: string, reason: string }> = []
for (const name of requested) {
  const reason = catalog[name].unavailable()
  if (reason) {
    skipped.push({ name, reason })
    console.log(`skipping target ${name}: ${reason}`)
  } else {
    targets.push(catalog[name])
  }
}
if (targets.length === 0) throw new Error('no target can run')

const machine = machineInfo()
const started = new Date()
console.log(`tapmq bench ${started.toISOString()}: ${machine.cpus} cpus (${machine.cpuModel}), node ${machine.node}, ` +
  `mosquitto ${mosquittoVersion() ?? 'absent'}, pinning ${pin && machine.taskset ? `broker->cpu${BROKER_CPU} generator->cpu${GENERATOR_CPU}` : 'off'}`)
console.log(`scenarios ${scenarios.join(',')}; targets ${targets.map((t) => t.name).join(',')}; ${repeat} x ${duration} s (+${warmup} s warm-up)`)
if (pin) pinToCpu(process.pid, GENERATOR_CPU)

const startOptions = {
  cpu: pin ? BROKER_CPU : undefined,
  nodeArgs: values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile, '--cpu-prof-interval', '500'] : undefined
}
const generator = new LoadGenerator({ cpu: pin ? GENERATOR_CPU : undefined })
const runs: RunRecord[] = []
const running = new Map<string, RunningTarget>()

async function ensure (target: Target): Promise<RunningTarget> {
  const current = running.get(target.name)
  if (current && isAlive(current.pid)) return current
  if (current) {
    console.log(`  ${target.name} died; output:\n${current.output().slice(-2000)}`)
    await current.stop()
  }
  const fresh = await target.start(startOptions)
  running.set(target.name, fresh)
  return fresh
}

async function stopAll (): Promise<void> {
  await Promise.all([...running.values()].map((t) => t.stop()))
  running.clear()
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const describe = (record: RunRecord) => {
  if (!record.result) return `ERROR ${record.error}`
  const r = record.result
  const metrics = r.metrics.map((m) => `${m.name} ${m.unit === 'ms' || m.unit === 'KB' || m.unit === 'µs/op' ? m.value.toFixed(2) : Math.round(m.value)} ${m.unit}`).join(', ')
  const counts = r.sent !== undefined ? ` delivered/sent ${r.delivered}/${r.sent}` : ''
  const cpu = ` cpu broker ${r.brokerCpu?.toFixed(2) ?? '?'} gen ${r.generatorCpu.toFixed(2)}`
  return `${metrics}${counts}${cpu}${r.valid ? '' : ` INVALID: ${r.invalidReason}`}${r.generatorBound ? ' (generator-bound)' : ''}`
}

try {
  for (const scenario of scenarios) {
    const fresh = scenario === 'memory'
    const scenarioStarted = Date.now()
    console.log(`\n== ${scenario}: ${SCENARIOS[scenario].description}`)
    for (let r = 0; r < repeat; r++) {
      // alternate the order so that no target always runs first (or right after another)
      const order = targets.map((_, i) => targets[(i + r) % targets.length])
      for (const target of order) {
        let record: RunRecord
        try {
          const broker = await ensure(target)
          const params: ScenarioParams = {
            ...SCENARIOS[scenario].defaults,
            duration,
            warmup,
            payload: 64,
            prefix: `bench/${scenario}/${target.name}/${r}`.replace(/[+#]/g, '_'),
            pid: broker.pid,
            ...overrides
          }
          const result = await generator.run(scenario, broker.address, params)
          record = { scenario, target: target.name, repeat: r, result }
        } catch (err) {
          record = { scenario, target: target.name, repeat: r, error: (err as Error).message }
        }
        runs.push(record)
        console.log(`  [${r + 1}/${repeat}] ${target.name.padEnd(16)} ${describe(record)}`)
        if (fresh) await stopAll()
      }
    }
    // a fresh broker for every scenario: no state carried across
    await stopAll()
    console.log(`  (${scenario}: ${Math.round((Date.now() - scenarioStarted) / 1000)} s)`)
  }
} finally {
  await stopAll()
  await generator.close()
}

const names = targets.map((t) => t.name)
const isDiagnostic = (metric: string) => metric.endsWith('broker CPU')
const has = (name: string) => names.includes(name)
const ratioSpecs: RatioSpec[] = [
  // goals apply to the scenarios' own figures; the broker CPU rows are diagnostics
  ...(has('tapmq') && has('aedes') ? [{ of: 'tapmq', to: 'aedes', goal: (metric: string) => (isDiagnostic(metric) ? undefined : 0.97) }] : []),
  ...(has('tapmq') && has('mosquitto')
    ? [{
        of: 'tapmq',
        to: 'mosquitto',
        goal: (metric: string) => (metric === 'fan-in QoS 0' || metric === 'fan-out QoS 0' ? 1 : metric === 'CONNACK p50' ? 1 / 1.5 : undefined)
      }]
    : []),
  // every plugin variant against stock tapmq; the goal applies to the full plugin set
  ...(has('tapmq')
    ? names.filter((n) => n.startsWith('tapmq-') && n !== 'tapmq-nocoalesce')
      .map((n) => ({ of: n, to: 'tapmq', goal: (metric: string) => (n === 'tapmq-plugins' && !isDiagnostic(metric) ? 0.9 : undefined) }))
    : []),
  ...(has('tapmq-nocoalesce') && has('tapmq') ? [{ of: 'tapmq', to: 'tapmq-nocoalesce' }] : []),
  ...(has('aedes') && has('mosquitto') ? [{ of: 'aedes', to: 'mosquitto' }] : [])
]
const summaries = summarize(runs)
const ratioList = ratios(summaries, ratioSpecs)
console.log(`\nmedians of ${repeat} runs (x = relative performance, > 1 means the first is better; ` +
  '!n = n invalid runs, g = generator above 0.9 core)\n')
console.log(textTable(summaries, names, ratioList, ratioSpecs))

const finished = new Date()
const invalid = runs.filter((r) => !r.result || !r.result.valid)
if (invalid.length > 0) {
  console.log(`\n${invalid.length} invalid or failed runs:`)
  for (const r of invalid) console.log(`  ${r.scenario} ${r.target} #${r.repeat + 1}: ${r.error ?? r.result?.invalidReason}`)
}
const report = {
  date: started.toISOString(),
  seconds: Math.round((finished.getTime() - started.getTime()) / 1000),
  command: process.argv.length > 2 ? `npm run bench -- ${process.argv.slice(2).join(' ')}` : 'npm run bench',
  machine: { ...machine, mosquitto: mosquittoVersion() },
  options: { scenarios, targets: names, repeat, duration, warmup, overrides, pinned: pin && machine.taskset },
  targets: targets.map((t) => ({ name: t.name, description: t.description })),
  skipped,
  scenarios: scenarios.map((name) => ({ name, description: SCENARIOS[name].description, defaults: SCENARIOS[name].defaults })),
  summaries,
  ratios: ratioList,
  runs
}
mkdirSync(values.out, { recursive: true })
const stamp = started.toISOString().replace(/[:.]/g, '-')
const json = `${JSON.stringify(report, null, 2)}\n`
writeFileSync(join(values.out, `${stamp}.json`), json)
const subtitle = `${started.toISOString().slice(0, 16).replace('T', ' ')} UTC · ${machine.cpus} cpus ${machine.cpuModel} · node ${machine.node} · ` +
  `median of ${repeat} × ${duration} s · loopback, broker and generator pinned to separate cores`
const svg = svgChart(summaries, names, ratioList, 'tapmq vs bare aedes vs mosquitto', subtitle)
writeFileSync(join(values.out, `${stamp}.svg`), svg)
if (!values['no-latest']) {
  writeFileSync(join(values.out, 'latest.json'), json)
  writeFileSync(join(values.out, 'latest.svg'), svg)
}
console.log(`\nwrote ${join(values.out, `${stamp}.json`)}${values['no-latest'] ? '' : ', latest.json, latest.svg'} (${report.seconds} s)`)
