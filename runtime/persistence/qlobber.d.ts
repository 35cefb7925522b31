// The parts of qlobber 8 (CommonJS, untyped) that the store uses. aedes' own memory
// persistence matches offline subscriptions with the same QlobberSub.
declare module 'qlobber' {
  export interface QlobberOptions {
    separator?: string
    wildcard_one?: string
    wildcard_some?: string
    match_empty_levels?: boolean
  }
  export class QlobberTrue {
    constructor (options?: QlobberOptions)
    add (topic: string): this
    test (topic: string): boolean
  }
}

declare module 'qlobber/aedes/qlobber-sub.js' {
  import type { QlobberOptions } from 'qlobber'
  export interface TrieSubscription {
    clientId: string
    topic: string
    qos: number
    rh?: number
    rap?: boolean
    nl?: boolean
  }
  class QlobberSub {
    constructor (options?: QlobberOptions)
    readonly subscriptionsCount: number
    add (topic: string, value: TrieSubscription): this
    remove (topic: string, value: { clientId: string, topic: string }): this
    match (topic: string): TrieSubscription[]
    clear (): this
  }
  export default QlobberSub
}
