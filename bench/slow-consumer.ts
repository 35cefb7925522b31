// Publish storm with one slow subscriber (issue #7): 100 publishers send to a topic that a
// few normal subscribers read at full speed and one more subscriber reads slowly or not at
// all. Reports the normal subscribers' delivered rate against a run without the slow one
// (same invocation), the broker's RSS over time, and when the broker dropped the slow one.
//
//   node --import tsx bench/slow-consumer.ts [--mode stop|slow] [--drain-timeout 3s] [--duration 10]
//        [--publishers 100] [--subscribers 3] [--qos 0|1] [--read-rate 16384] [--repeat 1] [--no-pin]
//
// Run it under the shared lock: flock /tmp/tapmq-bench.lock node --import tsx bench/slow-consumer.ts
//
// Processes: the broker (tapmq, fresh per run, pinned to core 0), bench/lib's load generator
// (publishers and normal subscribers, core 1, scenario `fanin0`/`fanin1` with more publishers
// and subscribers), and the slow subscriber in a process of its own (this file with
// --slow-subscriber): raw TCP, CONNECT + SUBSCRIBE to the scenario's topic, then
//   stop   never reads again (its socket buffers fill; the broker's writes stop draining)
//   slow   reads --read-rate bytes per second
// It writes a PINGREQ every 500 ms, which the kernel answers with a reset once the broker has
// closed the connection: that is how it learns it was dropped (a reader that does not read
// never sees the FIN).
import { type ChildProcess, fork } from 'node:child_process'
import { connect as netConnect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import mqttPacket from 'mqtt-packet'
import { LoadGenerator } from './lib/generator.ts'
import { processRssKb, SCENARIOS, type ScenarioParams, type ScenarioResult } from './lib/scenarios.ts'
import { machineInfo, pinToCpu } from './lib/system.ts'
import { type RunningTarget, tapmqTarget } from './lib/targets.ts'

const SELF = fileURLToPath(import.meta.url)

// ---- the slow subscriber (child process) --------------------------------------------------

interface SlowReport { type: 'ready' | 'dropped' | 'error', at: number, bytesRead: number, message?: string }

function slowSubscriber (host: string, port: number, topic: string, mode: string, rate: number, qos: number): void {
  const send = (report: Omit<SlowReport, 'at' | 'bytesRead'>) => process.send?.({ ...report, at: Date.now(), bytesRead })
  let bytesRead = 0
  let ready = false
  const socket = netConnect({ host, port })
  socket.on('error', (err) => {
    send(ready ? { type: 'dropped', message: err.message } : { type: 'error', message: err.message })
  })
  socket.on('close', () => {
    if (ready) send({ type: 'dropped', message: 'closed' })
    setTimeout(() => process.exit(0), 100)
  })
  socket.once('connect', () => {
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `slow-${process.pid}`, clean: true, keepalive: 0 }))
    socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: qos as 0 | 1 }] }))
  })
  // CONNACK (4 bytes) + SUBACK (5 bytes), then the slow part
  let head = Buffer.alloc(0)
  const onHead = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk])
    if (head.length < 9) return
    socket.off('data', onHead)
    socket.pause()
    ready = true
    send({ type: 'ready' })
    if (mode === 'slow') {
      const perTick = Math.max(1, Math.round(rate / 10))
      setInterval(() => {
        const available = socket.readableLength
        if (available === 0) return
        const chunk = socket.read(Math.min(perTick, available)) as Buffer | null
        if (chunk) bytesRead += chunk.length
      }, 100)
    }
    const ping = mqttPacket.generate({ cmd: 'pingreq' })
    setInterval(() => socket.write(ping), 500)
  }
  socket.on('data', onHead)
  process.on('disconnect', () => process.exit(0))
}

// ---- the harness ---------------------------------------------------------------------

interface SlowHandle {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  droppedAt?: number
  bytesRead: number
  stop (): Promise<void>
}

function startSlow (address: { host: string, port: number }, topic: string, mode: string, rate: number, qos: number): SlowHandle {
  const child = fork(SELF, ['--slow-subscriber', address.host, String(address.port), topic, mode, String(rate), String(qos)],
    { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const handle: SlowHandle = {
    child,
    bytesRead: 0,
    ready: new Promise((resolve, reject) => {
      child.on('message', (report: SlowReport) => {
        handle.bytesRead = report.bytesRead
        if (report.type === 'ready') resolve()
        else if (report.type === 'error') reject(new Error(`slow subscriber: ${report.message}`))
        else if (report.type === 'dropped' && handle.droppedAt === undefined) handle.droppedAt = report.at
      })
      child.once('exit', () => reject(new Error('slow subscriber exited')))
    }),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })
  }
  handle.ready.catch(() => {})
  return handle
}

interface RunOutcome {
  readonly label: string
  readonly result?: ScenarioResult
  readonly error?: string
  /** [seconds since the start of the load, broker RSS in MB] */
  readonly rss: Array<[number, number]>
  readonly droppedAfter?: number
  readonly slowBytes?: number
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string', default: 'stop' },
      'drain-timeout': { type: 'string', default: '3s' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '1' },
      publishers: { type: 'string', default: '100' },
      subscribers: { type: 'string', default: '3' },
      qos: { type: 'string', default: '0' },
      'read-rate': { type: 'string', default: '16384' },
      repeat: { type: 'string', default: '1' },
      'no-pin': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help) {
    console.log('usage: node --import tsx bench/slow-consumer.ts [--mode stop|slow] [--drain-timeout 3s] [--duration 10] [--publishers 100] ' +
      '[--subscribers 3] [--qos 0|1] [--read-rate 16384] [--repeat 1] [--no-pin]')
    return
  }
  if (values.mode !== 'stop' && values.mode !== 'slow') throw new Error('--mode is stop or slow')
  const qos = Number(values.qos) === 1 ? 1 : 0
  const scenario = qos === 1 ? 'fanin1' : 'fanin0'
  const pin = !values['no-pin']
  const machine = machineInfo()
  console.log(`tapmq slow-consumer bench ${new Date().toISOString()}: ${machine.cpus} cpus, node ${machine.node}; ` +
    `${values.publishers} publishers -> ${values.subscribers} subscribers + 1 ${values.mode === 'stop' ? 'stopped' : `slow (${values['read-rate']} B/s)`} ` +
    `subscriber, QoS ${qos}, drain_timeout ${values['drain-timeout']}, ${values.duration} s (+${values.warmup} s)`)
  if (pin) pinToCpu(process.pid, 1)
  const target = tapmqTarget('tapmq', `tapmq, drain_timeout = ${values['drain-timeout']}`, { conf: { drain_timeout: values['drain-timeout'] } })
  const generator = new LoadGenerator({ cpu: pin ? 1 : undefined })
  const outcomes: RunOutcome[] = []
  try {
    for (let r = 0; r < Number(values.repeat); r++) {
      for (const withSlow of [false, true]) {
        const label = withSlow ? `with the ${values.mode === 'stop' ? 'stopped' : 'slow'} subscriber` : 'without (baseline)'
        const broker: RunningTarget = await target.start({ cpu: pin ? 0 : undefined })
        const prefix = `bench/slow/${r}/${withSlow ? 's' : 'b'}`
        let slow: SlowHandle | undefined
        const rss: Array<[number, number]> = []
        const t0 = Date.now()
        const sampler = setInterval(() => {
          const kb = processRssKb(broker.pid)
          if (kb !== undefined) rss.push([(Date.now() - t0) / 1000, kb / 1024])
        }, 250)
        try {
          if (withSlow) {
            slow = startSlow(broker.address, `${prefix}/flow`, values.mode, Number(values['read-rate']), qos)
            await slow.ready
          }
          const params: ScenarioParams = {
            ...SCENARIOS[scenario]!.defaults,
            duration: Number(values.duration),
            warmup: Number(values.warmup),
            payload: 64,
            prefix,
            pid: broker.pid,
            publishers: Number(values.publishers),
            subscribers: Number(values.subscribers),
            drainTimeout: 10
          }
          const result = await generator.run(scenario, broker.address, params)
          outcomes.push({ label, result, rss, droppedAfter: slow?.droppedAt !== undefined ? (slow.droppedAt - t0) / 1000 : undefined, slowBytes: slow?.bytesRead })
        } catch (err) {
          outcomes.push({ label, error: (err as Error).message, rss })
        } finally {
          clearInterval(sampler)
          await slow?.stop()
          await broker.stop()
        }
        const last = outcomes[outcomes.length - 1]!
        console.log(`  ${label}: ` + (last.result
          ? `${last.result.metrics.map((m) => `${Math.round(m.value)} ${m.unit}`).join(', ')}, delivered/sent ${last.result.delivered}/${last.result.sent}` +
            `${last.result.valid ? '' : ` INVALID: ${last.result.invalidReason}`}`
          : `ERROR ${last.error}`))
        console.log(`    broker RSS MB: ${timeline(last.rss)}`)
        console.log(`    RSS max ${Math.round(Math.max(...last.rss.map(([, mb]) => mb)))} MB, at the end ${Math.round(last.rss[last.rss.length - 1]?.[1] ?? NaN)} MB` +
          (withSlow ? `; slow subscriber ${last.droppedAfter !== undefined ? `dropped by the broker ${last.droppedAfter.toFixed(1)} s after the start` : 'NOT dropped'}` +
            (values.mode === 'slow' ? `, read ${last.slowBytes ?? 0} bytes` : '') : ''))
      }
    }
  } finally {
    await generator.close()
  }
  const rate = (label: string) => {
    const values = outcomes.filter((o) => o.label === label && o.result).map((o) => o.result!.metrics[0]!.value).sort((a, b) => a - b)
    return values.length ? values[Math.floor(values.length / 2)]! : Number.NaN
  }
  const base = rate('without (baseline)')
  const slowLabel = outcomes.find((o) => o.label !== 'without (baseline)')?.label ?? ''
  const withSlow = rate(slowLabel)
  console.log(`\nnormal subscribers' delivered rate (msg/s summed over ${values.subscribers}, median of ${values.repeat}): ` +
    `baseline ${Math.round(base)}, ${slowLabel} ${Math.round(withSlow)}: ${(withSlow / base).toFixed(2)}x`)
}

/** RSS every second: "t=0 58, t=1 61, ..." */
function timeline (samples: Array<[number, number]>): string {
  const out: string[] = []
  let next = 0
  for (const [t, mb] of samples) {
    if (t + 1e-9 < next) continue
    out.push(`${Math.round(t)}s ${Math.round(mb)}`)
    next = Math.floor(t) + 1
  }
  return out.join(', ')
}

if (process.argv[2] === '--slow-subscriber') {
  const [, , , host, port, topic, mode, rate, qos] = process.argv
  slowSubscriber(host!, Number(port), topic!, mode!, Number(rate), Number(qos))
} else {
  await main()
}
