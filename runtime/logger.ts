import { pino, type Logger } from 'pino'
import type { BrokerConfig } from './config/broker-config.ts'

/** Secrets never reach a log line, whichever plugin logs the object. */
const REDACT = ['password', '*.password', 'secret', '*.secret', 'headers.authorization', '*.headers.authorization']

export function createLogger (config: BrokerConfig['log'], destination?: NodeJS.WritableStream): Logger {
  const options = { level: config.level, base: { name: 'tapmq' }, redact: { paths: REDACT, censor: '[redacted]' } }
  if (config.format === 'pretty' && !destination) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname,name' } } })
  }
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options)
}
