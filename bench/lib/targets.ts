// Brokers the harness can start: tapmq (any conf and plugins), bare aedes, Debian's mosquitto.
// Each runs in its own process on a free 127.0.0.1 port, pinned to its own core when it can be.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, pinToCpu, waitForPort } from './system.ts'
import type { Address } from './wire.ts'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface RunningTarget {
  readonly name: string
  readonly address: Address
  readonly pid: number
  /** stdout + stderr so far (the last 64 KB) */
  output (): string
  stop (): Promise<void>
}

export interface StartOptions {
  /** core to pin the broker to */
  readonly cpu?: number
  /** extra node flags for Node brokers, e.g. ['--cpu-prof', '--cpu-prof-dir', dir] */
  readonly nodeArgs?: readonly string[]
}

export interface Target {
  readonly name: string
  readonly description: string
  /** why this target cannot run here (missing binary, missing plugin), or undefined */
  unavailable (): string | undefined
  start (options?: StartOptions): Promise<RunningTarget>
}

const OUTPUT_LIMIT = 64 * 1024

/**
 * Starts a broker process through `sh` so that the open-files limit can be raised first
 * (the memory scenario holds 10k connections), then waits for its port.
 */
async function startProcess (name: string, command: string, args: readonly string[], port: number,
  options: StartOptions & { cwd?: string, env?: Readonly<Record<string, string>>, cleanup?: () => void }): Promise<RunningTarget> {
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"'
  const child: ChildProcess = spawn('sh', ['-c', script, 'sh', command, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  let exited: string | undefined
  const exit = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    exited = `${name} exited (${signal ?? code}) before it listened:\n${output.slice(-4000)}`
    resolve()
  }))
  const pid = child.pid
  if (pid === undefined) throw new Error(`could not start ${command}`)
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exit
      clearTimeout(timer)
    }
    options.cleanup?.()
  }
  try {
    await waitForPort('127.0.0.1', port, 30_000, () => exited)
  } catch (err) {
    await stop()
    throw err
  }
  // pin after the exec so that every thread of the broker is pinned
  if (options.cpu !== undefined) pinToCpu(pid, options.cpu)
  return { name, address: { host: '127.0.0.1', port }, pid, output: () => output, stop }
}

export interface TapmqTargetOptions {
  /** extra tapmq.conf keys */
  readonly conf?: Readonly<Record<string, string>>
  /** the text of plugins.conf (default: empty, no plugins) */
  readonly plugins?: string
  /** more files next to tapmq.conf (a plugin's .conf), name -> content */
  readonly files?: Readonly<Record<string, string>>
  /** why it cannot run (checked by unavailable()) */
  readonly requires?: () => string | undefined
  /** extra environment variables for the broker process */
  readonly env?: Readonly<Record<string, string>>
  /** started before the broker and stopped after it: local receivers for plugins */
  readonly sidecar?: () => Promise<{ conf?: Record<string, string>, files?: Record<string, string>, close (): Promise<void> }>
}

/** tapmq from this repository, started with its CLI on a temporary conf. */
export function tapmqTarget (name: string, description: string, options: TapmqTargetOptions = {}): Target {
  return {
    name,
    description,
    unavailable: () => options.requires?.(),
    async start (start: StartOptions = {}) {
      const dir = mkdtempSync(join(tmpdir(), `tapmq-bench-${name}-`))
      const sidecar = await options.sidecar?.()
      try {
        const port = await freePort()
        const conf: Record<string, string> = {
          url: `nmq-tcp://127.0.0.1:${port}`,
          'log.level': 'warn',
          'log.format': 'json',
          'websocket.enable': 'false',
          'tls.enable': 'false',
          'http_server.enable': 'false',
          data_dir: join(dir, 'data'),
          pid_file: join(dir, 'tapmq.pid'),
          ...options.conf,
          ...sidecar?.conf
        }
        mkdirSync(join(dir, 'data'))
        writeFileSync(join(dir, 'tapmq.conf'), Object.entries(conf).map(([k, v]) => `${k} = ${v}\n`).join(''))
        writeFileSync(join(dir, 'plugins.conf'), options.plugins ?? '')
        for (const [file, text] of Object.entries({ ...options.files, ...sidecar?.files })) writeFileSync(join(dir, file), text)
        const args = [...(start.nodeArgs ?? []), '--import', 'tsx', join(REPO_ROOT, 'runtime/cli/main.ts'), 'start',
          '--conf', join(dir, 'tapmq.conf'), '--plugins', join(dir, 'plugins.conf')]
        return await startProcess(name, process.execPath, args, port, {
          ...start,
          env: options.env,
          cleanup: () => {
            rmSync(dir, { recursive: true, force: true })
            sidecar?.close().catch(() => {})
          }
        })
      } catch (err) {
        rmSync(dir, { recursive: true, force: true })
        await sidecar?.close()
        throw err
      }
    }
  }
}

/** the installed aedes (2.0.0-beta.1 + patches/) with default options and nothing else: bench/aedes-server.mjs */
export function aedesTarget (name = 'aedes'): Target {
  return {
    name,
    description: 'bare aedes 2.0.0-beta.1 + patches/, default options (bench/aedes-server.mjs)',
    unavailable: () => undefined,
    async start (start: StartOptions = {}) {
      const port = await freePort()
      return startProcess(name, process.execPath, [...(start.nodeArgs ?? []), join(REPO_ROOT, 'bench/aedes-server.mjs'), String(port)], port, start)
    }
  }
}

export const MOSQUITTO_INSTALL = 'apt-get update && apt-get install -y mosquitto'

function mosquittoBinary (): string | undefined {
  for (const candidate of ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto']) {
    if (existsSync(candidate)) return candidate
  }
  const which = spawnSync('sh', ['-c', 'command -v mosquitto'], { encoding: 'utf8' })
  return which.status === 0 ? which.stdout.trim() : undefined
}

export function mosquittoVersion (): string | undefined {
  const binary = mosquittoBinary()
  if (!binary) return undefined
  const out = spawnSync(binary, ['-h'], { encoding: 'utf8' })
  return /mosquitto version (\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1]
}

/**
 * Debian's mosquitto on a spare port: no persistence, anonymous, and a queue long enough that
 * it never drops a QoS 0 or QoS 1 message the harness is waiting for.
 */
export function mosquittoTarget (name = 'mosquitto'): Target {
  return {
    name,
    description: `mosquitto ${mosquittoVersion() ?? ''} (Debian), persistence false, max_queued_messages 1000000`,
    unavailable: () => (mosquittoBinary() ? undefined : `mosquitto is not installed; install it with: ${MOSQUITTO_INSTALL}`),
    async start (start: StartOptions = {}) {
      const binary = mosquittoBinary()
      if (!binary) throw new Error(`mosquitto is not installed; install it with: ${MOSQUITTO_INSTALL}`)
      const dir = mkdtempSync(join(tmpdir(), 'mosquitto-bench-'))
      const port = await freePort()
      writeFileSync(join(dir, 'mosquitto.conf'), [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence false',
        'max_queued_messages 1000000',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        ''
      ].join('\n'))
      return startProcess(name, binary, ['-c', join(dir, 'mosquitto.conf')], port, {
        ...start, cleanup: () => rmSync(dir, { recursive: true, force: true })
      })
    }
  }
}
