// QoS 1 throughput to persistent subscribers (clean = false) with the embedded store against
// the memory store, brokers in their own processes, load from bench/lib's generator process.
//
//   node --import tsx bench/persistence.ts [--repeat 3] [--duration 5] [--stores] [--no-pin]
//
// Targets (each a fresh broker per case, runs alternate between targets):
//   tapmq-memory     persistence = memory                          (the baseline)
//   tapmq-embedded   persistence = embedded, persistence.sync = full  (the stock config)
//   tapmq-normal     persistence = embedded, persistence.sync = normal
//   tapmq-window     persistence = embedded, sync = full, persistence.commit_window = --window (default 2ms)
// With --stores, bare aedes 1.2 on each store too (bench/persistence-aedes-server.ts):
//   aedes-memory, aedes-sqlite (tapmq's store alone), and aedes-level (aedes-persistence-level 9 on
//   LevelDB, when installed: npm install --no-save aedes-persistence-level@9 level@10, or
//   installed in another directory named by LEVEL_MODULES=<dir>/node_modules).
// The goal of issue #7: tapmq-embedded / tapmq-memory >= 0.5 on the persistent QoS 1 cases.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LoadGenerator } from './lib/generator.ts'
import { type RatioSpec, ratios, type RunRecord, summarize, textTable } from './lib/report.ts'
import { SCENARIOS, type ScenarioParams } from './lib/scenarios.ts'
import { freePort, machineInfo, pinToCpu, waitForPort } from './lib/system.ts'
import { REPO_ROOT, type RunningTarget, type StartOptions, type Target, tapmqTarget } from './lib/targets.ts'

const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    stores: { type: 'boolean', default: false },
    window: { type: 'string', default: '2ms' },
    'no-pin': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' }
  }
})
if (values.help) {
  console.log('usage: node --import tsx bench/persistence.ts [--repeat N] [--duration S] [--warmup S] [--window 2ms|none] [--stores] [--no-pin]')
  process.exit(0)
}

/** The cases: a scenario of bench/lib with its subscriber on a persistent session. */
const CASES: Array<{ label: string, scenario: string, params: Partial<ScenarioParams> }> = [
  { label: 'fan-in 10->1 persistent', scenario: 'fanin1', params: { persistent: true } },
  { label: '1->1 persistent', scenario: 'fanin1', params: { persistent: true, publishers: 1, inflight: 100 } },
  { label: 'fan-in 10->1 clean', scenario: 'fanin1', params: {} }
]

const SERVER = join(REPO_ROOT, 'bench/persistence-aedes-server.ts')

function resolvable (name: string): boolean {
  try {
    createRequire(join(REPO_ROOT, 'package.json')).resolve(name)
    return true
  } catch {
    return false
  }
}

/** bare aedes on one store, in its own process */
function storeTarget (store: string, description: string): Target {
  const name = `aedes-${store}`
  return {
    name,
    description,
    unavailable: () => (store === 'level' && !process.env.LEVEL_MODULES && !(resolvable('aedes-persistence-level') && resolvable('level'))
      ? 'aedes-persistence-level and level are not installed (npm install --no-save aedes-persistence-level@9 level@10, or LEVEL_MODULES=<their node_modules>)'
      : undefined),
    async start (options: StartOptions = {}): Promise<RunningTarget> {
      const dir = mkdtempSync(join(tmpdir(), `tapmq-bench-${name}-`))
      const port = await freePort()
      const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', SERVER, String(port), store, dir], {
        cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe']
      })
      let output = ''
      child.stdout?.on('data', (chunk) => { output += chunk })
      child.stderr?.on('data', (chunk) => { output += chunk })
      let exited: string | undefined
      const exit = new Promise<void>((resolve) => child.once('exit', (code) => { exited = `${name} exited (${code}):\n${output}`; resolve() }))
      const stop = async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM')
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
          await exit
          clearTimeout(timer)
        }
        rmSync(dir, { recursive: true, force: true })
      }
      try {
        await waitForPort('127.0.0.1', port, 30_000, () => exited)
      } catch (err) {
        await stop()
        throw err
      }
      if (options.cpu !== undefined && child.pid) pinToCpu(child.pid, options.cpu)
      return { name, address: { host: '127.0.0.1', port }, pid: child.pid!, output: () => output, stop }
    }
  }
}

const targets: Target[] = [
  tapmqTarget('tapmq-memory', 'tapmq, persistence = memory', { conf: { persistence: 'memory' } }),
  tapmqTarget('tapmq-embedded', 'tapmq, persistence = embedded, sync = full', { conf: { persistence: 'embedded', 'persistence.sync': 'full' } }),
  tapmqTarget('tapmq-normal', 'tapmq, persistence = embedded, sync = normal', { conf: { persistence: 'embedded', 'persistence.sync': 'normal' } })
]
if (values.window !== 'none') {
  targets.push(tapmqTarget('tapmq-window', `tapmq, persistence = embedded, sync = full, commit_window = ${values.window}`,
    { conf: { persistence: 'embedded', 'persistence.sync': 'full', 'persistence.commit_window': values.window } }))
}
if (values.stores) {
  targets.push(storeTarget('memory', 'bare aedes, memory store'), storeTarget('sqlite', 'bare aedes, tapmq SqliteStore (sync full), no ack wrapper'),
    storeTarget('level', 'bare aedes, aedes-persistence-level 9 on level 10'))
}
const runnable = targets.filter((target) => {
  const reason = target.unavailable()
  if (reason) console.log(`skipping ${target.name}: ${reason}`)
  return reason === undefined
})

const repeat = Number(values.repeat)
const duration = Number(values.duration)
const warmup = Number(values.warmup)
const pin = !values['no-pin']
const machine = machineInfo()
console.log(`tapmq persistence bench ${new Date().toISOString()}: ${machine.cpus} cpus (${machine.cpuModel}), node ${machine.node}; ` +
  `${repeat} x ${duration} s (+${warmup} s); pinning ${pin && machine.taskset ? 'broker->cpu0 generator->cpu1' : 'off'}`)
if (pin) pinToCpu(process.pid, 1)

const generator = new LoadGenerator({ cpu: pin ? 1 : undefined })
const runs: RunRecord[] = []
try {
  for (const item of CASES) {
    console.log(`\n== ${item.label}: ${SCENARIOS[item.scenario]!.description} ${JSON.stringify(item.params)}`)
    // one fresh broker per target and case
    const brokers = new Map<string, RunningTarget>()
    try {
      for (const target of runnable) brokers.set(target.name, await target.start({ cpu: pin ? 0 : undefined }))
      for (let r = 0; r < repeat; r++) {
        const order = runnable.map((_, i) => runnable[(i + r) % runnable.length]!)
        for (const target of order) {
          const broker = brokers.get(target.name)!
          let record: RunRecord
          try {
            const params: ScenarioParams = {
              ...SCENARIOS[item.scenario]!.defaults,
              duration,
              warmup,
              payload: 64,
              prefix: `bench/persist/${target.name}/${r}`,
              pid: broker.pid,
              ...item.params
            }
            record = { scenario: item.label, target: target.name, repeat: r, result: await generator.run(item.scenario, broker.address, params) }
          } catch (err) {
            record = { scenario: item.label, target: target.name, repeat: r, error: (err as Error).message }
          }
          runs.push(record)
          const result = record.result
          console.log(`  [${r + 1}/${repeat}] ${target.name.padEnd(15)} ` + (result
            ? `${result.metrics.map((m) => `${Math.round(m.value)} ${m.unit}`).join(', ')} delivered/sent ${result.delivered}/${result.sent} ` +
              `cpu broker ${result.brokerCpu?.toFixed(2) ?? '?'}${result.valid ? '' : ` INVALID: ${result.invalidReason}`}`
            : `ERROR ${record.error}`))
        }
      }
    } finally {
      await Promise.all([...brokers.values()].map((broker) => broker.stop()))
    }
  }
} finally {
  await generator.close()
}

const names = runnable.map((t) => t.name)
const has = (name: string) => names.includes(name)
const specs: RatioSpec[] = [
  { of: 'tapmq-embedded', to: 'tapmq-memory', goal: 0.5 },
  { of: 'tapmq-normal', to: 'tapmq-memory', goal: 0.5 },
  ...(has('tapmq-window') ? [{ of: 'tapmq-window', to: 'tapmq-memory', goal: 0.5 }] : []),
  ...(has('aedes-sqlite') && has('aedes-memory') ? [{ of: 'aedes-sqlite', to: 'aedes-memory' }] : []),
  ...(has('aedes-level') && has('aedes-memory') ? [{ of: 'aedes-level', to: 'aedes-memory' }] : [])
]
const summaries = summarize(runs)
console.log(`\nmedians of ${repeat} runs (x = relative performance; !n = n invalid runs, g = generator-bound)\n`)
console.log(textTable(summaries, names, ratios(summaries, specs), specs))
