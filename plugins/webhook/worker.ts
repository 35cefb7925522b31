// The delivery worker: owns the Sender, reports stats at most every STATS_INTERVAL_MS,
// forwards its log lines to the broker's logger.
import { parentPort, workerData } from 'node:worker_threads'
import type { FromWorker, ToWorker, WorkerData } from './protocol.ts'
import { Sender, type SenderLog } from './sender.ts'

const STATS_INTERVAL_MS = 50
const port = parentPort!
const post = (message: FromWorker) => port.postMessage(message)

// a failing receiver must not flood the log: the first 10 of each message, then every 1000th
const logged = new Map<string, number>()
const log: SenderLog = (level, message, data) => {
  const count = (logged.get(message) ?? 0) + 1
  logged.set(message, count)
  if (count <= 10 || count % 1000 === 0) post({ type: 'log', level, message, data: { ...data, occurrences: count } })
}

let receivedChars = 0
let statsTimer: NodeJS.Timeout | undefined
const postStats = () => {
  clearTimeout(statsTimer)
  statsTimer = undefined
  post({ type: 'stats', stats: sender.stats, receivedChars })
}
const changed = () => {
  statsTimer ??= setTimeout(postStats, STATS_INTERVAL_MS)
}

let sender: Sender
try {
  sender = new Sender((workerData as WorkerData).config, changed, log)
} catch (err) {
  post({ type: 'fatal', message: (err as Error).message })
  process.exit(1)
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'events':
      receivedChars += message.data.length
      sender.push(message.data.split('\n'))
      break
    case 'configure':
      try {
        sender.configure(message.config)
      } catch (err) {
        log('error', 'webhook settings not applied', { err: (err as Error).message })
      }
      break
    case 'drain':
      sender.drain(message.timeoutMs).then(({ lost }) => {
        postStats()
        post({ type: 'drained', lost })
      }, (err: Error) => {
        log('error', 'webhook drain failed', { err: err.message })
        post({ type: 'drained', lost: sender.stats.depth })
      })
      break
  }
})
post({ type: 'ready' })
