// Machine facts and process plumbing the harness needs: CPU pinning, free ports, readiness.
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { connect } from 'node:net'

let tasksetChecked: boolean | undefined

export function hasTaskset (): boolean {
  tasksetChecked ??= spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0
  return tasksetChecked
}

/** Pins every thread of a process to one core; false when taskset is missing or fails. */
export function pinToCpu (pid: number, cpu: number): boolean {
  if (!hasTaskset() || availableParallelism() < 2) return false
  try {
    execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** A port that was free on 127.0.0.1 a moment ago; the test suite's helper serves both. */
export { freePort } from '../../test/helpers/cli.ts'

/** Resolves once a TCP connection to host:port succeeds; rejects after `timeoutMs` or when `failed()` says so. */
export async function waitForPort (host: string, port: number, timeoutMs: number, failed?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const problem = failed?.()
    if (problem) throw new Error(problem)
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port })
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export interface MachineInfo {
  readonly cpus: number
  readonly cpuModel: string
  readonly node: string
  readonly platform: string
  readonly kernel: string
  readonly openFilesLimit: number | undefined
  readonly taskset: boolean
}

export function machineInfo (): MachineInfo {
  let cpuModel = 'unknown'
  try {
    cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel
  } catch {}
  let kernel = ''
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()
  } catch {}
  let openFilesLimit: number | undefined
  try {
    openFilesLimit = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1])
  } catch {}
  return { cpus: availableParallelism(), cpuModel, node: process.version, platform: process.platform, kernel, openFilesLimit, taskset: hasTaskset() }
}
