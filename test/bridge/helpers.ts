// Bridge test kit: a tapmq broker running the bridge plugin, a second broker as the
// upstream (another tapmq, or the Debian mosquitto when it is installed), free ports, and
// bounded waits on the bridge's health and counters.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import mqtt from 'mqtt'
import bridgePlugin from '../../plugins/bridge/index.ts'
import { loadConfig } from '../../runtime/config/load.ts'
import { createLogger } from '../../runtime/logger.ts'
import type { PluginEntry } from '../../runtime/plugins/plugins-file.ts'
import { Tapmq } from '../../runtime/tapmq.ts'
import type { PluginStatus, TapmqPlugin } from '../../sdk/index.ts'
import type { TestBroker, TestBrokerOptions } from '../../sdk/testing.ts'
import { testBroker } from '../helpers/broker.ts'
import { type Teardown, tmpDir, until, WAIT_MS } from '../helpers/mqtt.ts'

export const MOSQUITTO = '/usr/sbin/mosquitto'

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Bridge options as a test wants them: fast reconnects, everything else default. */
export function bridgeConfig (address: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'default', address, reconnect: { minInterval: 20, maxInterval: 200 }, connectTimeout: 2000, ...extra }
}

/** A tapmq broker with the bridge plugin and these bridges; closed at teardown. */
export async function edgeBroker (t: Teardown, bridges: Array<Record<string, unknown>>, options: TestBrokerOptions = {}): Promise<TestBroker> {
  return testBroker(t, { ...options, plugins: [{ plugin: bridgePlugin, options: { bridges } }, ...(options.plugins ?? [])] })
}

/** Anything with a running Tapmq: a TestBroker, or `{ tapmq }`. */
export type WithTapmq = Pick<TestBroker, 'tapmq'>

export function bridgeStatus (broker: WithTapmq): PluginStatus {
  return broker.tapmq.plugins.status('tapmq:bridge')
}

/** Waits until the bridge's health says `<name>: <state>`. */
export function waitBridge (broker: WithTapmq, state: 'connected' | 'connecting' | 'down', name = 'default', timeoutMs = WAIT_MS): Promise<unknown> {
  return until(() => bridgeStatus(broker).health.detail?.split('; ').some((part) => part.startsWith(`${name}: ${state}`)),
    `bridge ${name} ${state} (health: ${bridgeStatus(broker).health.detail})`, timeoutMs)
}

/** Waits until counter `name` of the bridge plugin reaches `value`. */
export function waitCounter (broker: WithTapmq, name: string, value: number, timeoutMs = WAIT_MS): Promise<unknown> {
  return until(() => (bridgeStatus(broker).counters[name] ?? 0) >= value,
    `counter ${name} >= ${value} (is ${bridgeStatus(broker).counters[name]})`, timeoutMs)
}

/** Waits until `count` subscriptions of bridge clients (`tapmq-bridge-*`) exist on a tapmq upstream. */
export function waitSubscribed (upstream: TestBroker, count: number): Promise<unknown> {
  return until(() => upstream.broker.subscriptions().filter((s) => s.clientId.startsWith('tapmq-bridge-')).length >= count,
    `${count} bridge subscriptions upstream`)
}

export interface Mosquitto {
  readonly port: number
  readonly url: string
  stop (): Promise<void>
}

/**
 * The Debian mosquitto on a free 127.0.0.1 port (or `port`) with a temporary config, killed at
 * teardown; `undefined` when it is not installed (the caller skips, naming the install
 * command). With `persistDir` it saves sessions there on SIGTERM and reloads them at start.
 */
export async function startMosquitto (t: Teardown, options: { port?: number, persistDir?: string } = {}): Promise<Mosquitto | undefined> {
  if (!existsSync(MOSQUITTO)) return undefined
  const dir = await tmpDir(t, 'tapmq-mosquitto-')
  const port = options.port ?? await freePort()
  const conf = join(dir, 'mosquitto.conf')
  await writeFile(conf, [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    // started as root, mosquitto would switch to the user "mosquitto", who cannot write our temp dirs
    `user ${userInfo().username}`,
    ...(options.persistDir ? ['persistence true', `persistence_location ${options.persistDir}/`] : ['persistence false']),
    'log_dest none',
    ''
  ].join('\n'))
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr += String(chunk) })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  t.teardown(stop)
  const url = `mqtt://127.0.0.1:${port}`
  // ready when it accepts an MQTT connection
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${stderr}`)
    const ok = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 }).then((c) => c.endAsync().then(() => true), () => false)
    if (ok) break
    if (Date.now() > deadline) throw new Error(`mosquitto did not accept connections on ${port}: ${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { port, url, stop }
}

export const SKIP_MOSQUITTO = `${MOSQUITTO} is missing: apt-get install mosquitto`

/**
 * A Tapmq built the way the CLI builds it, so that plugins' `host.config` sees `settings`
 * (startTestBroker leaves that view empty); stopped at teardown.
 */
export async function brokerWithConfig (t: Teardown, settings: Record<string, string>, plugins: Array<{ plugin: TapmqPlugin, options: unknown }>): Promise<Tapmq> {
  const { broker: config, conf } = loadConfig({
    env: {},
    cli: Object.entries({ url: 'nmq-tcp://127.0.0.1:0', ...settings }).map(([key, value]) => ({ key, value, flag: 'test' }))
  })
  const entries: PluginEntry[] = plugins.map(({ plugin, options }, i) => ({
    id: plugin.name, enabled: true, source: plugin.name, optional: false, inline: [],
    location: { file: 'test', line: i + 1 }, baseDir: process.cwd(), preloaded: { plugin, options }
  }))
  const sink = new Writable({ write (_chunk, _encoding, done) { done() } })
  const tapmq = new Tapmq({ config, conf, plugins: entries, log: createLogger(config.log, sink) })
  await tapmq.start()
  t.teardown(() => tapmq.stop())
  return tapmq
}
