// Authorization answers that a plugin let the broker remember (`rememberMs` on an
// `authorize.publish` decision), per connection: a PUBLISH whose answer is remembered asks no
// plugin and costs one Map lookup. An answer is reused only while the tap that gave it is the
// hook's only live tap, until it expires or that plugin reconfigures, and for the same
// connection, QoS and topic.
import type { AuthorizeDecision } from '../../sdk/events.ts'

interface Remembered {
  readonly decision: AuthorizeDecision
  /** Date.now() based */
  readonly until: number
  readonly tap: object
  /** the tap's generation when it answered (runtime/isolation.ts: bumped by an in-place reload) */
  readonly generation: number
}

/** a decision tap as the isolation layer leaves it */
interface AnsweringTap { generation?: () => number }

const generationOf = (tap: object) => (tap as AnsweringTap).generation?.() ?? 0

/** topics remembered per connection and QoS; beyond that the oldest is forgotten */
export const REMEMBERED_PER_CONNECTION = 128

export class RememberedDecisions {
  readonly #byConnection = new WeakMap<object, Array<Map<string, Remembered> | undefined>>()

  get (connection: object, qos: number, topic: string, tap: object): AuthorizeDecision | undefined {
    const found = this.#byConnection.get(connection)?.[qos]?.get(topic)
    if (found === undefined || found.tap !== tap || found.until <= Date.now() || found.generation !== generationOf(tap)) return undefined
    return found.decision
  }

  /** Keeps `decision` if it asks to be remembered (allow or deny with rememberMs > 0). */
  remember (connection: object, qos: number, topic: string, decision: AuthorizeDecision | undefined, tap: object): void {
    if (decision === undefined || decision.result === 'ignore') return
    const ms = decision.rememberMs
    if (ms === undefined || !(ms > 0)) return
    let slots = this.#byConnection.get(connection)
    if (slots === undefined) this.#byConnection.set(connection, slots = [])
    const topics = slots[qos] ??= new Map()
    if (topics.size >= REMEMBERED_PER_CONNECTION && !topics.has(topic)) topics.delete(topics.keys().next().value!)
    topics.set(topic, { decision, until: Date.now() + ms, tap, generation: generationOf(tap) })
  }
}
