// The harness as a library, for benchmark scripts beyond bench/run.ts (bench/webhook*, ...):
//
//   import { LoadGenerator, tapmqTarget, aedesTarget, summarize, ratios, textTable } from './lib/index.ts'
//   const generator = new LoadGenerator({ cpu: 1 })
//   const broker = await tapmqTarget('tapmq', 'stock').start({ cpu: 0 })
//   const result = await generator.run('fanin0', broker.address, { duration: 5, warmup: 1, payload: 64, prefix: 'x', pid: broker.pid })
//   await broker.stop(); await generator.close()
export { DEFAULT_TARGETS, defaultTargets } from './catalog.ts'
export { LoadGenerator } from './generator.ts'
export { startReceiver, type Receiver } from './receivers.ts'
export { formatValue, median, type MetricSummary, type Ratio, type RatioSpec, ratios, type RunRecord, summarize, svgChart, textTable } from './report.ts'
export { type Metric, percentile, processCpuSeconds, processRssKb, SCENARIOS, threadCpuSeconds, threadNice, type ScenarioParams, type ScenarioResult } from './scenarios.ts'
export { freePort, machineInfo, pinToCpu, waitForPort } from './system.ts'
export { aedesTarget, MOSQUITTO_INSTALL, mosquittoTarget, REPO_ROOT, type RunningTarget, type StartOptions, type Target, tapmqTarget, type TapmqTargetOptions } from './targets.ts'
export { type Address, PublishEncoder, WireClient } from './wire.ts'
