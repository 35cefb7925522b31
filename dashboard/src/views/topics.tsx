// The topic tree: the broker's subscription trie, with subscribers, retained messages and the
// rate of messages that match each filter; and the topics clients publish to.
import type { JSX } from 'preact'
import { useMemo, useRef, useState } from 'preact/hooks'
import type { Api, TopicStats } from '../api.ts'
import {
  filterRate, formatCount, formatRate, ratesBetween, type Sample, searchTree, subscribedFilters, subtreeSubscribers, type TreeNode, type TreeSearch
} from '../model.ts'
import { usePoll } from '../poll.ts'
import { Card, Empty, ErrorBanner, Loading } from '../ui.tsx'

interface TopicsData {
  readonly tree: TreeNode
  readonly stats: TopicStats | undefined
  readonly at: number
}

/** nodes this deep or less start expanded */
const OPEN_DEPTH = 2

export function Topics ({ api, onUnauthorized }: { api: Api, onUnauthorized: () => void }) {
  const { data, error } = usePoll<TopicsData>(async () => {
    const [tree, stats] = await Promise.all([
      api.topicTree(),
      // an older API without per-topic counters: no rates, the tree still works
      api.topicStats().catch(() => undefined)
    ])
    return { tree, stats, at: Date.now() }
  }, onUnauthorized)
  const [query, setQuery] = useState('')
  /** filters whose open state the user changed; others follow OPEN_DEPTH */
  const [toggled, setToggled] = useState<ReadonlyMap<string, boolean>>(new Map())

  // rates need two samples: keep the previous one
  const samples = useRef<{ previous?: Sample, current?: Sample }>({})
  const rates = useMemo(() => {
    if (!data?.stats) return undefined
    const sample: Sample = { at: data.at, counts: new Map(data.stats.topics.map((t) => [t.topic, t.messages])) }
    const { current } = samples.current
    samples.current = { previous: current, current: sample }
    return current ? ratesBetween(current, sample) : undefined
  }, [data])

  const search = useMemo<TreeSearch | undefined>(() => (data ? searchTree(data.tree, query) : undefined), [data, query])
  const searching = query.trim() !== ''

  const isOpen = (node: TreeNode, depth: number) => searching || (toggled.get(node.filter) ?? depth < OPEN_DEPTH)
  const toggle = (node: TreeNode, depth: number) =>
    setToggled((prev) => new Map(prev).set(node.filter, !(prev.get(node.filter) ?? depth < OPEN_DEPTH)))
  const setAll = (open: boolean) => {
    if (!data) return
    const next = new Map<string, boolean>()
    const walk = (node: TreeNode) => {
      if (node !== data.tree && node.children.length > 0) next.set(node.filter, open)
      node.children.forEach(walk)
    }
    walk(data.tree)
    setToggled(next)
  }

  const rows: JSX.Element[] = []
  if (data && search) {
    const walk = (node: TreeNode, depth: number) => {
      for (const child of node.children) {
        if (!search.visible.has(child.filter)) continue
        const open = isOpen(child, depth)
        rows.push(
          <TreeRow
            key={child.filter}
            node={child}
            depth={depth}
            open={open}
            matched={search.matched.has(child.filter)}
            rates={rates}
            onToggle={() => toggle(child, depth)}
          />
        )
        if (open) walk(child, depth + 1)
      }
    }
    walk(data.tree, 0)
  }

  const total = data ? subtreeSubscribers(data.tree) : 0
  return (
    <div class="stack">
      <ErrorBanner error={error} />
      <Card
        title={<>Topic filters {data && <span class="count" title="filters with at least one subscriber">{subscribedFilters(data.tree)}</span>}</>}
        actions={
          <>
            <input
              type="search"
              class="search"
              placeholder="Search filters or client ids"
              aria-label="Search the topic tree"
              value={query}
              onInput={(e) => setQuery(e.currentTarget.value)}
            />
            <button type="button" class="btn btn-ghost" onClick={() => setAll(true)} disabled={searching}>Expand all</button>
            <button type="button" class="btn btn-ghost" onClick={() => setAll(false)} disabled={searching}>Collapse all</button>
          </>
        }
      >
        {!data
          ? <Loading />
          : data.tree.children.length === 0
            ? (
              <Empty title="No subscriptions yet">
                When a client subscribes, its topic filters appear here, one level per row.
              </Empty>
              )
            : (
              <div class="tree" role="tree" aria-label="Topic tree">
                <div class="tree-head">
                  <span>Topic filter</span>
                  <span class="num">Subscribers</span>
                  <span class="num">Retained</span>
                  <span class="num" title="messages per second published to topics this filter matches (grey: to topics below a level nobody subscribes to)">Msg / s</span>
                </div>
                {rows.length === 0
                  ? <Empty title="Nothing matches">No topic filter or client id contains “{query.trim()}”.</Empty>
                  : rows}
                <div class="tree-foot muted">
                  {total} subscription{total === 1 ? '' : 's'} · {data.tree.retained} retained message{data.tree.retained === 1 ? '' : 's'}
                  {rates ? ` · ${formatRate(filterRate('', rates))} msg/s published` : data.stats ? ' · measuring rates…' : ''}
                </div>
              </div>
              )}
      </Card>
      <PublishedTopics stats={data?.stats} rates={rates} />
    </div>
  )
}

function TreeRow ({ node, depth, open, matched, rates, onToggle }: {
  node: TreeNode
  depth: number
  open: boolean
  matched: boolean
  rates: ReadonlyMap<string, number> | undefined
  onToggle: () => void
}) {
  const leaf = node.children.length === 0
  const ids = node.clientid
  // where someone subscribes: what they receive; elsewhere: all the traffic below this level
  const branch = ids.length === 0 && !node.filter.endsWith('#')
  const rate = rates ? filterRate(branch ? `${node.filter}/#` : node.filter, rates) : undefined
  const shown = ids.slice(0, 3)
  return (
    <div
      class={`tree-row ${matched ? 'match' : ''}`}
      role="treeitem"
      aria-level={depth + 1}
      aria-expanded={leaf ? undefined : open}
      data-filter={node.filter}
    >
      <span class="tree-topic" style={{ paddingLeft: `${depth * 20}px` }}>
        {leaf
          ? <span class="chevron-space" />
          : (
            <button type="button" class="chevron" aria-label={open ? `Collapse ${node.filter}` : `Expand ${node.filter}`} onClick={onToggle}>
              <span class={open ? 'chevron-open' : ''}>▸</span>
            </button>
            )}
        <span class={`segment ${node.topic === '+' || node.topic === '#' ? 'wildcard' : ''}`} title={node.filter}>{node.topic}</span>
        {!leaf && !open && <span class="muted small"> {node.children.length} below</span>}
      </span>
      <span class="num subscribers" title={ids.join(', ')}>
        {ids.length === 0
          ? <span class="muted">–</span>
          : (
            <>
              {shown.map((id) => <span class="chip" key={id}>{id}</span>)}
              {ids.length > shown.length && <span class="chip chip-more">+{ids.length - shown.length}</span>}
            </>
            )}
      </span>
      <span class="num">{node.retained === 0 ? <span class="muted">0</span> : formatCount(node.retained)}</span>
      <span
        class={`num ${branch ? 'muted' : ''}`}
        title={branch ? `messages per second published to topics under ${node.filter}/` : `messages per second published to topics ${node.filter} matches`}
      >
        {formatRate(rate)}
      </span>
    </div>
  )
}

function PublishedTopics ({ stats, rates }: { stats: TopicStats | undefined, rates: ReadonlyMap<string, number> | undefined }) {
  const [query, setQuery] = useState('')
  if (!stats) return null
  const needle = query.trim().toLowerCase()
  const items = stats.topics
    .filter((t) => needle === '' || t.topic.toLowerCase().includes(needle))
    .map((t) => ({ ...t, rate: rates?.get(t.topic) }))
    .sort((a, b) => (b.rate ?? 0) - (a.rate ?? 0) || b.messages - a.messages || a.topic.localeCompare(b.topic))
    .slice(0, 100)
  return (
    <Card
      title="Published topics"
      actions={
        <input type="search" class="search" placeholder="Filter topics" aria-label="Filter published topics" value={query}
          onInput={(e) => setQuery(e.currentTarget.value)} />
      }
    >
      {stats.topics.length === 0
        ? <Empty title="No messages published yet">Topics appear here when clients publish to them (up to {stats.limit}, the busiest kept).</Empty>
        : (
          <table class="table">
            <thead>
              <tr><th>Topic</th><th class="num">Messages</th><th class="num">Msg / s</th></tr>
            </thead>
            <tbody>
              {items.map((t) => (
                <tr key={t.topic}>
                  <td class="mono">{t.topic}</td>
                  <td class="num">{formatCount(t.messages)}</td>
                  <td class="num">{formatRate(t.rate)}</td>
                </tr>
              ))}
              {items.length === 0 && <tr><td colSpan={3} class="muted center">No topic contains “{query.trim()}”.</td></tr>}
            </tbody>
          </table>
          )}
    </Card>
  )
}
