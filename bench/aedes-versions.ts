// Bare aedes releases against each other under the same MQTT 3.1.1 load, in one invocation:
// each version runs bench/aedes-server.mjs (default options, nothing of tapmq) in its own
// process, the shared load generator drives the same scenarios at each in turn (the order
// rotates every repeat), and the table gives each version's median and its ratio to the
// baseline. Written for issue 11: aedes 1.2.0 against the 2.0.0-beta.1 tapmq installs with
// its patches (docs/mqtt5.md).
//
//   mkdir -p /tmp/aedes12 && cd /tmp/aedes12 && npm init -y && npm install aedes@1.2.0
//   flock /tmp/tapmq-bench.lock node --import tsx bench/aedes-versions.ts \
//     --baseline 1.2.0=/tmp/aedes12/node_modules/aedes [--target name=path ...] \
//     [--only fanin0,fanin1,fanout,connect] [--repeat 3] [--duration 3]
//
// A path is an aedes package directory or its entry file. The aedes this repository installed
// is always a target too (`installed`), unless --no-installed.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  freePort, LoadGenerator, machineInfo, pinToCpu, type RatioSpec, ratios, REPO_ROOT, type RunRecord,
  SCENARIOS, type ScenarioParams, summarize, textTable, waitForPort
} from './lib/index.ts'

const HELP = `usage: node --import tsx bench/aedes-versions.ts --baseline name=path [options]
  --baseline name=path    the aedes the others are compared with (package dir or entry file)
  --target name=path      another aedes to measure (repeatable)
  --no-installed          leave out the aedes this repository installed (node_modules/aedes)
  --only <scenario,...>   default fanin0,fanin1,fanout,connect (any of ${Object.keys(SCENARIOS).join(', ')})
  --repeat N              runs per scenario and version (default 3)
  --duration S            measured seconds per throughput run (default 3)
  --warmup S              seconds of load before measuring (default 1)
  --no-pin                do not pin broker and generator to separate cores`

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    target: { type: 'string', multiple: true },
    'no-installed': { type: 'boolean', default: false },
    only: { type: 'string', default: 'fanin0,fanin1,fanout,connect' },
    repeat: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'no-pin': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' }
  }
})
if (values.help || !values.baseline) {
  console.log(HELP)
  process.exit(values.help ? 0 : 2)
}

interface Version {
  readonly name: string
  /** the module bench/aedes-server.mjs imports */
  readonly entry: string
  readonly version: string
}

/** `name=path`, path a package directory or a file inside one; the entry file and package version. */
function version (spec: string): Version {
  const at = spec.indexOf('=')
  if (at <= 0) throw new Error(`expected name=path, got ${spec}`)
  const name = spec.slice(0, at)
  const path = resolve(spec.slice(at + 1))
  let dir = statSync(path).isDirectory() ? path : dirname(path)
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error(`no package.json at or above ${path}`)
    dir = dirname(dir)
  }
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string, main?: string, exports?: unknown }
  let entry = path
  if (statSync(path).isDirectory()) {
    const exported = (pkg.exports as Record<string, { default?: string } | string> | undefined)?.['.']
    entry = join(dir, (typeof exported === 'string' ? exported : exported?.default) ?? pkg.main ?? 'index.js')
  }
  return { name, entry, version: pkg.version }
}

const versions: Version[] = [version(values.baseline)]
if (!values['no-installed']) versions.push(version(`installed=${join(REPO_ROOT, 'node_modules/aedes')}`))
for (const spec of values.target ?? []) versions.push(version(spec))
const names = versions.map((v) => v.name)
if (new Set(names).size !== names.length) throw new Error(`target names must differ: ${names.join(', ')}`)

const scenarios = values.only.split(',').map((s) => s.trim()).filter(Boolean)
for (const name of scenarios) if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`)
const repeat = Number(values.repeat)
const duration = Number(values.duration)
const warmup = Number(values.warmup)
const pin = !values['no-pin']
const BROKER_CPU = 0
const GENERATOR_CPU = 1

const SERVER = join(REPO_ROOT, 'bench/aedes-server.mjs')

interface Running {
  readonly pid: number
  readonly port: number
  stop (): Promise<void>
}

async function start (v: Version): Promise<Running> {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, [SERVER, String(port), v.entry], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (chunk) => { output = (output + String(chunk)).slice(-8000) })
  child.stderr?.on('data', (chunk) => { output = (output + String(chunk)).slice(-8000) })
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exit
    clearTimeout(timer)
  }
  try {
    await waitForPort('127.0.0.1', port, 30_000, () => (child.exitCode !== null ? `${v.name} exited:\n${output}` : undefined))
  } catch (err) {
    await stop()
    throw err
  }
  if (pin) pinToCpu(child.pid!, BROKER_CPU)
  return { pid: child.pid!, port, stop }
}

const machine = machineInfo()
console.log(`aedes versions ${new Date().toISOString()}: ${machine.cpus} cpus (${machine.cpuModel}), node ${machine.node}, ` +
  `pinning ${pin && machine.taskset ? `broker->cpu${BROKER_CPU} generator->cpu${GENERATOR_CPU}` : 'off'}`)
for (const v of versions) console.log(`  ${v.name.padEnd(12)} aedes ${v.version}  ${v.entry}`)
console.log(`scenarios ${scenarios.join(',')}; ${repeat} x ${duration} s (+${warmup} s warm-up), MQTT 3.1.1, 64 B payloads`)
if (pin) pinToCpu(process.pid, GENERATOR_CPU)

const generator = new LoadGenerator({ cpu: pin ? GENERATOR_CPU : undefined })
const runs: RunRecord[] = []
try {
  for (const scenario of scenarios) {
    console.log(`\n== ${scenario}: ${SCENARIOS[scenario].description}`)
    for (let r = 0; r < repeat; r++) {
      // rotate the order so that no version always runs first (or right after the same one)
      const order = versions.map((_, i) => versions[(i + r) % versions.length])
      for (const v of order) {
        let record: RunRecord
        // a fresh broker per run: no version inherits another run's sessions or heap
        const broker = await start(v)
        try {
          const params: ScenarioParams = {
            ...SCENARIOS[scenario].defaults,
            duration,
            warmup,
            payload: 64,
            prefix: `aedes-versions/${scenario}/${v.name}/${r}`,
            pid: broker.pid
          }
          record = { scenario, target: v.name, repeat: r, result: await generator.run(scenario, { host: '127.0.0.1', port: broker.port }, params) }
        } catch (err) {
          record = { scenario, target: v.name, repeat: r, error: (err as Error).message }
        } finally {
          await broker.stop()
        }
        runs.push(record)
        const result = record.result
        const line = result
          ? `${result.metrics.map((m) => `${m.name} ${Math.round(m.value)} ${m.unit}`).join(', ')}` +
            `${result.sent !== undefined ? ` delivered/sent ${result.delivered}/${result.sent}` : ''}` +
            ` cpu broker ${result.brokerCpu?.toFixed(2) ?? '?'} gen ${result.generatorCpu.toFixed(2)}` +
            `${result.valid ? '' : ` INVALID: ${result.invalidReason}`}${result.generatorBound ? ' (generator-bound)' : ''}`
          : `ERROR ${record.error}`
        console.log(`  [${r + 1}/${repeat}] ${v.name.padEnd(12)} ${line}`)
      }
    }
  }
} finally {
  await generator.close()
}

const summaries = summarize(runs)
const specs: RatioSpec[] = versions.slice(1).map((v) => ({ of: v.name, to: versions[0].name }))
console.log(`\nmedians of ${repeat} runs; ratio = version / ${versions[0].name} (relative performance, > 1 is better)`)
console.log(textTable(summaries, names, ratios(summaries, specs), specs))
