// Runs the real `tapmq` command as a child process, for CLI tests.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const MAIN = new URL('../../runtime/cli/main.ts', import.meta.url).pathname

export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface Workspace {
  readonly dir: string
  readonly port: number
  readonly conf: string
  write (name: string, text: string): Promise<string>
  remove (): Promise<void>
}

/** A temp etc/ with a tapmq.conf on a free loopback port, JSON logs, and an empty plugins.conf. */
export async function workspace (extraConf = ''): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'tapmq-cli-'))
  const port = await freePort()
  const write = async (name: string, text: string) => {
    const file = join(dir, name)
    await writeFile(file, text)
    return file
  }
  const conf = await write('tapmq.conf', [
    `url = nmq-tcp://127.0.0.1:${port}`,
    'websocket.enable = false',
    'log.format = json',
    'log.level = info',
    'data_dir = data',
    'pid_file = data/tapmq.pid',
    'shutdown_timeout = 3s',
    extraConf
  ].join('\n'))
  await write('plugins.conf', '')
  return { dir, port, conf, write, remove: () => rm(dir, { recursive: true, force: true }) }
}

export interface RunningCommand {
  readonly child: ChildProcess
  /** stdout so far, one string */
  readonly output: () => string
  readonly stderr: () => string
  /** resolves with the first stdout line matching, or rejects after `ms` */
  waitFor (pattern: RegExp, ms?: number): Promise<string>
  /** resolves with the exit code, or rejects after `ms` */
  exited (ms?: number): Promise<number | null>
}

export function tapmq (args: readonly string[], env: NodeJS.ProcessEnv = {}): RunningCommand {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk) => { stdout += chunk })
  child.stderr!.on('data', (chunk) => { stderr += chunk })
  // 'close', not 'exit': only then has all of stdout and stderr been read
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  return {
    child,
    output: () => stdout,
    stderr: () => stderr,
    waitFor: (pattern, ms = 45_000) => new Promise((resolve, reject) => {
      const check = () => {
        const line = stdout.split('\n').find((candidate) => pattern.test(candidate))
        if (line === undefined) return false
        clearInterval(poll)
        clearTimeout(timer)
        resolve(line)
        return true
      }
      const poll = setInterval(check, 25)
      const timer = setTimeout(() => {
        clearInterval(poll)
        reject(new Error(`no output matching ${pattern} within ${ms} ms; stdout:\n${stdout}\nstderr:\n${stderr}`))
      }, ms)
      check()
    }),
    exited: (ms = 45_000) => Promise.race([
      exit,
      new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms).unref())
    ])
  }
}

/** the log line `tapmq start` writes once its listeners are up (log.format = json) */
export const STARTED = /"msg":"tapmq started"/

/**
 * `tapmq start` on a workspace's files, killed at teardown if still running; resolves once
 * the broker has started.
 */
export async function startTapmq (t: { teardown (fn: () => unknown): void }, ws: Workspace, ms = 45_000): Promise<RunningCommand> {
  const cmd = tapmq(['start', '--conf', ws.conf, '--plugins', `${ws.dir}/plugins.conf`])
  t.teardown(() => { if (cmd.child.exitCode === null) cmd.child.kill('SIGKILL') })
  await cmd.waitFor(STARTED, ms)
  return cmd
}
