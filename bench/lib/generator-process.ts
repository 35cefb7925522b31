// Entry point of the load-generator child process. It waits for `run` messages on the IPC
// channel, runs one scenario at a time and answers with its result.
import { SCENARIOS, type ScenarioParams } from './scenarios.ts'
import type { Address } from './wire.ts'

export interface RunRequest {
  readonly type: 'run'
  readonly id: number
  readonly scenario: string
  readonly address: Address
  readonly params: ScenarioParams
}

if (!process.send) throw new Error('generator-process.ts runs as a child with an IPC channel (see generator.ts)')
const reply = (message: unknown) => process.send?.(message)

process.on('message', (message: RunRequest) => {
  if (message?.type !== 'run') return
  const definition = SCENARIOS[message.scenario]
  if (!definition) {
    reply({ type: 'error', id: message.id, message: `unknown scenario ${message.scenario}` })
    return
  }
  definition.run(message.address, { ...definition.defaults, ...message.params }).then(
    (result) => reply({ type: 'result', id: message.id, result }),
    (err: Error) => reply({ type: 'error', id: message.id, message: err.stack ?? err.message }))
})
process.on('disconnect', () => process.exit(0))
reply({ type: 'ready' })
