// The dashboard's logic without a browser: topic matching, rates from counter samples, the
// tree search, and the plugin counters it derives figures from.
import test from 'ava'
import {
  counterRows, filterRate, formatRate, ratesBetween, searchTree, subscribedFilters, subtreeSubscribers, topicMatches, type TreeNode
} from '../../dashboard/src/model.ts'

test('topicMatches follows MQTT 3.1.1 section 4.7', (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/+/c', 'a/b/c', true],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['+', 'a', true],
    ['+/+', '/a', true],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['a/b', 'a/b/c', false],
    ['', 'a', false]
  ]
  for (const [filter, topic, expected] of cases) t.is(topicMatches(filter, topic), expected, `${filter} vs ${topic}`)
})

test('ratesBetween: per second; new or reset counters count from zero', (t) => {
  const rates = ratesBetween(
    { at: 1000, counts: new Map([['a', 10], ['b', 50], ['gone', 3]]) },
    { at: 3000, counts: new Map([['a', 30], ['b', 4], ['new', 6]]) }
  )
  t.deepEqual([...rates].sort(), [['a', 10], ['b', 2], ['new', 3]])
  t.is(ratesBetween({ at: 5, counts: new Map() }, { at: 5, counts: new Map([['a', 1]]) }).size, 0)
})

test('filterRate sums the topics a filter matches; the root gets all', (t) => {
  const rates = new Map([['s/kitchen/temp', 4], ['s/garage/temp', 1.5], ['s/kitchen/hum', 2], ['$SYS/up', 9]])
  t.is(filterRate('s/+/temp', rates), 5.5)
  t.is(filterRate('s/kitchen/#', rates), 6)
  t.is(filterRate('#', rates), 7.5)
  t.is(filterRate('x', rates), 0)
  t.is(filterRate('', rates), 16.5)
})

const node = (topic: string, filter: string, clientid: string[], children: TreeNode[] = []): TreeNode =>
  ({ topic, filter, clientid, retained: 0, children })

const TREE = node('', '', [], [
  node('#', '#', ['watcher']),
  node('plant', 'plant', [], [
    node('+', 'plant/+', [], [node('temp', 'plant/+/temp', ['sensor-1', 'sensor-2'])]),
    node('boiler', 'plant/boiler', ['boiler-ui'])
  ]),
  node('office', 'office', [], [node('lights', 'office/lights', ['hue'])])
])

test('searchTree keeps matches, their parents and what is below them', (t) => {
  const all = searchTree(TREE, '  ')
  t.is(all.visible.size, 8)
  t.is(all.matched.size, 0)

  const temp = searchTree(TREE, 'TEMP')
  t.deepEqual([...temp.matched], ['plant/+/temp'])
  t.deepEqual([...temp.visible].sort(), ['', 'plant', 'plant/+', 'plant/+/temp'])

  // a client id matches too
  t.deepEqual([...searchTree(TREE, 'hue').visible].sort(), ['', 'office', 'office/lights'])
  // a matching parent shows its whole subtree
  t.deepEqual([...searchTree(TREE, 'plant').visible].sort(), ['', 'plant', 'plant/+', 'plant/+/temp', 'plant/boiler'])
  t.is(searchTree(TREE, 'nothing').visible.size, 0)
})

test('subscription counts over the tree', (t) => {
  t.is(subtreeSubscribers(TREE), 5)
  t.is(subscribedFilters(TREE), 4)
})

test('counterRows: known counters first with short labels, and the cache hit rate', (t) => {
  const rows = counterRows({ zz_custom_total: 1, deny_total: 2, allow_total: 9, cache_hits_total: 30, requests_total: 8, coalesced_total: 2 })
  t.deepEqual(rows.map((row) => row.label), ['allow', 'deny', 'cache hits', 'requests', 'coalesced', 'zz custom', 'cache hit rate'])
  t.deepEqual(rows.at(-1), { label: 'cache hit rate', value: '75%', derived: true, key: true })
  t.deepEqual(rows.filter((row) => !row.key).map((row) => row.label), ['coalesced', 'zz custom'])
  t.deepEqual(counterRows({ cache_hits_total: 0, requests_total: 0 }).at(-1)?.value, '–')
  t.deepEqual(counterRows({ queue_depth: 4, sent_total: 12_345 }), [
    { label: 'queue depth', value: '4', key: true },
    { label: 'sent', value: '12.3k', key: true }
  ])
})

test('formatRate', (t) => {
  t.is(formatRate(undefined), '–')
  t.is(formatRate(0), '0')
  t.is(formatRate(0.04), '<0.1')
  t.is(formatRate(2.345), '2.3')
  t.is(formatRate(1234.4), '1234')
  t.is(formatRate(56_789), '56.8k')
})
