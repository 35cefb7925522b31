// The load generator as seen from the harness: a separate Node process (pinned to its own
// core when taskset exists) that runs scenarios on request. One generator serves many runs.
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { RunRequest } from './generator-process.ts'
import { pinToCpu } from './system.ts'
import type { ScenarioParams, ScenarioResult } from './scenarios.ts'
import type { Address } from './wire.ts'

const ENTRY = fileURLToPath(new URL('./generator-process.ts', import.meta.url))

export class LoadGenerator {
  readonly #child: ChildProcess
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (r: ScenarioResult) => void, reject: (e: Error) => void }>()
  readonly #ready: Promise<void>

  /** `cpu`: the core to pin the generator to (none: no pinning) */
  constructor (options: { cpu?: number } = {}) {
    this.#child = fork(ENTRY, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    if (options.cpu !== undefined && this.#child.pid) pinToCpu(this.#child.pid, options.cpu)
    this.#ready = new Promise((resolve, reject) => {
      this.#child.once('error', reject)
      this.#child.once('exit', (code) => {
        const err = new Error(`load generator exited (code ${code})`)
        reject(err)
        for (const pending of this.#pending.values()) pending.reject(err)
        this.#pending.clear()
      })
      this.#child.on('message', (message: { type: string, id?: number, result?: ScenarioResult, message?: string }) => {
        if (message.type === 'ready') { resolve(); return }
        const pending = this.#pending.get(message.id ?? -1)
        if (!pending) return
        this.#pending.delete(message.id ?? -1)
        if (message.type === 'result' && message.result) pending.resolve(message.result)
        else pending.reject(new Error(message.message ?? 'generator error'))
      })
    })
  }

  get pid (): number | undefined {
    return this.#child.pid
  }

  /** Runs one scenario (a name from SCENARIOS) against a broker; `params` override its defaults. */
  async run (scenario: string, address: Address, params: ScenarioParams): Promise<ScenarioResult> {
    await this.#ready
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      const request: RunRequest = { type: 'run', id, scenario, address, params }
      this.#child.send(request)
    })
  }

  close (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return Promise.resolve()
    return new Promise((resolve) => {
      this.#child.once('exit', () => resolve())
      this.#child.disconnect()
      setTimeout(() => this.#child.kill('SIGKILL'), 5000).unref()
    })
  }
}
