// The delivery worker: owns the Sender, reports stats at most every STATS_INTERVAL_MS,
// forwards its log lines to the broker's logger. Messages: see protocol.ts.
import { getPriority, setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import { Sender } from './sender.mjs'

/**
 * @typedef {import('./protocol.ts').FromWorker} FromWorker
 * @typedef {import('./protocol.ts').ToWorker} ToWorker
 * @typedef {import('./protocol.ts').WorkerData} WorkerData
 */

const STATS_INTERVAL_MS = 50
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort)
/** @param {FromWorker} message */
const post = (message) => port.postMessage(message)

// a failing receiver must not flood the log: the first 10 of each message, then every 1000th
/** @type {Map<string, number>} */
const logged = new Map()
/** @type {import('./sender.mjs').SenderLog} */
const log = (level, message, data) => {
  const count = (logged.get(message) ?? 0) + 1
  logged.set(message, count)
  if (count <= 10 || count % 1000 === 0) post({ type: 'log', level, message, data: { ...data, occurrences: count } })
}

let receivedBytes = 0
/** @type {NodeJS.Timeout | undefined} */
let statsTimer
const postStats = () => {
  clearTimeout(statsTimer)
  statsTimer = undefined
  post({ type: 'stats', stats: sender.stats, receivedBytes })
}
const changed = () => {
  statsTimer ??= setTimeout(postStats, STATS_INTERVAL_MS)
}

/**
 * Lowers this thread's priority (web.hook.worker_nice), so that the broker's thread wins
 * the CPU. Linux only: there a nice value belongs to a thread; elsewhere setPriority(0, n)
 * would lower the whole broker. Raising a priority again needs privileges: then it stays.
 * @param {number} nice
 */
function renice (nice) {
  if (process.platform !== 'linux' || getPriority(0) === nice) return
  try {
    setPriority(0, nice)
  } catch (err) {
    log('warn', 'webhook worker priority unchanged', { nice, err: /** @type {Error} */ (err).message })
  }
}

/** @type {Sender} */
let sender
try {
  renice(/** @type {WorkerData} */ (workerData).config.workerNice)
  sender = new Sender(/** @type {WorkerData} */ (workerData).config, changed, log)
} catch (err) {
  post({ type: 'fatal', message: /** @type {Error} */ (err).message })
  process.exit(1)
}

port.on('message', (/** @type {ToWorker} */ message) => {
  switch (message.type) {
    case 'events':
      receivedBytes += message.byteLength
      sender.push(Buffer.from(message.data, 0, message.byteLength), message.count)
      break
    case 'configure':
      try {
        renice(message.config.workerNice)
        sender.configure(message.config)
      } catch (err) {
        log('error', 'webhook settings not applied', { err: /** @type {Error} */ (err).message })
      }
      break
    case 'drain':
      sender.drain(Math.max(0, message.deadline - Date.now())).then(({ lost }) => {
        postStats()
        post({ type: 'drained', lost })
      }, (/** @type {Error} */ err) => {
        log('error', 'webhook drain failed', { err: err.message })
        post({ type: 'drained', lost: sender.stats.depth })
      })
      break
  }
})
post({ type: 'ready' })
