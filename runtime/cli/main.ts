// The tapmq command. Exit codes: 0 ok, 1 runtime failure, 2 bad command line or config.
import { spawn } from 'node:child_process'
import { TapmqError } from '../../sdk/errors.ts'
import { type BootOptions, boot, readConfigs } from '../boot.ts'
import type { Tapmq } from '../tapmq.ts'
import { HELP, IGNORED_FLAGS, type ParsedArgs, parseCommandLine } from './args.ts'
import { livePid, removePidFile, waitForExit, writePidFile } from './pidfile.ts'

function bootOptions (args: ParsedArgs): BootOptions {
  const files: Array<{ id: string, aliases: string[], file: string, flag: string }> = []
  if (args.values.webhook) files.push({ id: 'webhook', aliases: ['web_hook', 'web-hook'], file: args.values.webhook, flag: '--webhook' })
  if (args.values.auth_http) files.push({ id: 'http_auth', aliases: ['http-auth', 'auth_http'], file: args.values.auth_http, flag: '--auth_http' })
  const passwords = args.values.auth ?? process.env.NANOMQ_AUTH_CONF_PATH
  if (passwords) files.push({ id: 'password_file', aliases: ['password-file', 'auth_username'], file: passwords, flag: args.values.auth ? '--auth' : 'NANOMQ_AUTH_CONF_PATH' })
  const bridge = args.values.bridge ?? process.env.NANOMQ_BRIDGE_CONF_PATH
  if (bridge) files.push({ id: 'bridge', aliases: [], file: bridge, flag: args.values.bridge ? '--bridge' : 'NANOMQ_BRIDGE_CONF_PATH' })
  if (args.values.gateway) files.push({ id: 'zmq_gateway', aliases: ['zmq-gateway', 'gateway'], file: args.values.gateway, flag: '--gateway' })
  return { confFile: args.values.conf, pluginsFile: args.values.plugins, pluginFiles: files, overrides: args.overrides }
}

/** Stops gracefully, then starts a detached copy of this process with the same command line. */
function restartSelf (pidFile: string, stop: () => Promise<void>): () => Promise<void> {
  return async () => {
    await stop()
    removePidFile(pidFile)
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { detached: true, stdio: 'inherit' })
    child.unref()
    process.exit(0)
  }
}

async function start (args: ParsedArgs): Promise<void> {
  const base = bootOptions(args)
  const { config } = readConfigs(base)
  const pidFile = config.broker.pidFile
  let current: Tapmq | undefined
  const options: BootOptions = { ...base, restart: restartSelf(pidFile, async () => current?.stop()) }
  const running = livePid(pidFile)
  if (running !== undefined && running !== process.pid) {
    throw new TapmqError('TAPMQ_ERR_RUNNING', `tapmq is already running with pid ${running} (pid file ${pidFile}); run "tapmq stop" first`)
  }
  // handlers go in before the broker says it started, so no signal can find them missing
  let stopRequested: string | undefined
  let stop = (signal: string) => { stopRequested = signal }
  let reload = () => {}
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => reload())

  // the pid file is there before the broker says it started, so "tapmq stop" right after
  // that line finds it (a stop during start-up is handled once the broker is up)
  writePidFile(pidFile)
  let booted: Awaited<ReturnType<typeof boot>>
  try {
    booted = await boot(options)
  } catch (err) {
    removePidFile(pidFile)
    throw err
  }
  const { tapmq } = booted
  current = tapmq
  for (const flag of IGNORED_FLAGS) {
    if (args.values[flag] !== undefined) tapmq.log.warn({ flag }, 'NanoMQ flag accepted for compatibility; it has no effect in tapmq')
  }

  let stopping = false
  stop = (signal: string) => {
    if (stopping) {
      tapmq.log.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(1)
    }
    stopping = true
    tapmq.log.info({ signal }, 'shutting down')
    tapmq.stop().catch(() => {})
  }
  // however the stop was asked for (a signal, the HTTP API's ctrl/stop), the process ends here
  tapmq.stopped().then(() => {
    removePidFile(pidFile)
    process.exit(0)
  }, (err) => {
    tapmq.log.error({ err }, 'tapmq stopped on an error')
    removePidFile(pidFile)
    process.exit(1)
  })
  reload = () => {
    tapmq.reload(() => readConfigs(options)).catch((err) => tapmq.log.error({ err: (err as Error).message }, 'reload failed; the running config is unchanged'))
  }
  if (stopRequested) stop(stopRequested)
}

async function signalRunning (args: ParsedArgs, signal: 'SIGTERM' | 'SIGHUP'): Promise<number | undefined> {
  const { config } = readConfigs(bootOptions(args))
  const pid = livePid(config.broker.pidFile)
  if (pid === undefined) return undefined
  process.kill(pid, signal)
  if (signal === 'SIGTERM' && !(await waitForExit(pid, config.broker.shutdownTimeout * 3 + 5000))) {
    throw new TapmqError('TAPMQ_ERR_STOP', `tapmq (pid ${pid}) did not stop in time`)
  }
  return pid
}

/** `tapmq passwd <file> <user> [password]`; the password comes from stdin when not given. */
async function passwd (args: ParsedArgs): Promise<void> {
  const [file, user, given, ...rest] = args.positionals
  if (!file || !user || rest.length > 0) {
    throw new TapmqError('TAPMQ_ERR_USAGE', 'usage: tapmq passwd <file> <user> [password] (without a password it is read from stdin)')
  }
  const { PasswdError, readPassword, setPassword } = await import('../../plugins/password-file/passwd-file.ts')
  try {
    const done = await setPassword(file, user, given ?? await readPassword())
    console.log(`${done} ${user} in ${file}`)
  } catch (err) {
    // bad input is a usage error (exit 2); a file that cannot be written is not (exit 1)
    throw new TapmqError(err instanceof PasswdError ? 'TAPMQ_ERR_USAGE' : 'TAPMQ_ERR_PASSWD', (err as Error).message, { cause: err })
  }
}

async function main (argv: readonly string[]): Promise<void> {
  const args = parseCommandLine(argv)
  if (args.values.version) {
    const { TAPMQ_VERSION } = await import('../tapmq.ts')
    console.log(TAPMQ_VERSION)
    return
  }
  switch (args.command) {
    case 'help':
      process.stdout.write(HELP)
      return
    case 'start':
      if (args.values.help) return void process.stdout.write(HELP)
      return start(args)
    case 'stop': {
      const pid = await signalRunning(args, 'SIGTERM')
      console.log(pid === undefined ? 'tapmq is not running' : `tapmq (pid ${pid}) stopped`)
      return
    }
    case 'restart':
      await signalRunning(args, 'SIGTERM')
      return start(args)
    case 'passwd':
      return passwd(args)
    case 'reload': {
      const pid = await signalRunning(args, 'SIGHUP')
      if (pid === undefined) throw new TapmqError('TAPMQ_ERR_NOT_RUNNING', 'tapmq is not running (no live pid in the pid file)')
      console.log(`tapmq (pid ${pid}) is reloading its configuration`)
      return
    }
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`tapmq: ${err.message}\n`)
  const code = (err as NodeJS.ErrnoException).code ?? ''
  const isUsage = /^TAPMQ_ERR_(CONF|PLUGIN|USAGE)/.test(code) || code.startsWith('ERR_PARSE_ARGS')
  process.exit(isUsage ? 2 : 1)
})
