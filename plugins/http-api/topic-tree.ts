// The subscription trie in NanoMQ's flat format (rest_api.c get_tree: an array of levels,
// breadth first) and in tapmq's nested format, which also counts retained messages.
import type { TopicTreeNode } from '../../sdk/index.ts'

/** `client_id` in API v1, `clientid` in API v4. */
export type ClientIdKey = 'client_id' | 'clientid'

export interface FlatNode {
  readonly topic: string
  readonly cld_cnt: number
  readonly client_id?: readonly string[]
  readonly clientid?: readonly string[]
}

/**
 * Level i lists the nodes at depth i, left to right; each node owns the next `cld_cnt`
 * entries of level i + 1. The client id key is absent where nobody subscribes exactly.
 * `nanomq08` reproduces NanoMQ 0.8's trailing empty level when the depth is odd (Q15).
 */
export function flatTopicTree (root: TopicTreeNode, key: ClientIdKey, nanomq08 = false): FlatNode[][] {
  const levels: FlatNode[][] = []
  let row: readonly TopicTreeNode[] = [root]
  while (row.length > 0) {
    levels.push(row.map((node) => (node.clientIds.length > 0
      ? { topic: node.topic, cld_cnt: node.children.length, [key]: node.clientIds }
      : { topic: node.topic, cld_cnt: node.children.length })))
    row = row.flatMap((node) => node.children)
  }
  if (nanomq08 && levels.length % 2 === 1) levels.push([])
  return levels
}

export interface NestedNode {
  /** this level */
  readonly topic: string
  /** the whole filter from the root; `""` at the root */
  readonly filter: string
  /** clients subscribed to exactly `filter` */
  readonly clientid: readonly string[]
  /** retained messages a new subscriber to `filter` receives; at the root, all of them */
  readonly retained: number
  readonly children: readonly NestedNode[]
}

export function nestedTopicTree (root: TopicTreeNode, retainedTopics: readonly string[]): NestedNode {
  const counts = countRetained(root, retainedTopics)
  const build = (node: TopicTreeNode, filter: string): NestedNode => ({
    topic: node.topic,
    filter,
    clientid: node.clientIds,
    retained: node === root ? retainedTopics.length : counts.get(node) ?? 0,
    children: node.children.map((child) => build(child, filter === '' && node === root ? child.topic : `${filter}/${child.topic}`))
  })
  return build(root, '')
}

/**
 * For each node, how many of `topics` its filter matches (MQTT 3.1.1 section 4.7: `+` one
 * level, `#` the rest including the parent level, no first-level wildcard match on `$`
 * topics). One walk of the trie per topic, so the cost is topics × matching paths.
 */
export function countRetained (root: TopicTreeNode, topics: readonly string[]): Map<TopicTreeNode, number> {
  const counts = new Map<TopicTreeNode, number>()
  const bump = (node: TopicTreeNode) => counts.set(node, (counts.get(node) ?? 0) + 1)
  for (const topic of topics) {
    const levels = topic.split('/')
    const system = topic.startsWith('$')
    const walk = (node: TopicTreeNode, depth: number): void => {
      if (depth === levels.length) {
        bump(node)
        // `a/#` matches `a`
        for (const child of node.children) if (child.topic === '#') bump(child)
        return
      }
      for (const child of node.children) {
        const wildcardBlocked = depth === 0 && system
        if (child.topic === '#') {
          if (!wildcardBlocked) bump(child)
        } else if (child.topic === '+') {
          if (!wildcardBlocked) walk(child, depth + 1)
        } else if (child.topic === levels[depth]) {
          walk(child, depth + 1)
        }
      }
    }
    walk(root, 0)
  }
  counts.delete(root)
  return counts
}
