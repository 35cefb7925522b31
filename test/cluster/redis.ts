// Test helpers of the cluster suite: a real redis-server on a free loopback port (no
// persistence), and tapmq nodes as child processes of the real CLI sharing it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import type { ExecutionContext } from 'ava'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { freePort, type RunningCommand, tapmq, type Workspace, workspace } from '../helpers/cli.ts'

/** every wait of this suite; the machine is shared and busy */
export const WAIT_MS = 30_000

export const HAS_REDIS = spawnSync('redis-server', ['--version']).status === 0
export const MISSING = 'redis-server, missing here: apt-get install redis-server'

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly child: ChildProcess
  stop (): Promise<void>
}

/** a redis-server on `port` (default: a free one), killed in teardown */
export async function startRedis (t: ExecutionContext, port?: number): Promise<RedisServer> {
  port ??= await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (chunk) => { out += chunk })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited } }
  t.teardown(stop)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${WAIT_MS} ms:\n${out}`)), WAIT_MS)
    const poll = setInterval(() => {
      if (/Ready to accept connections/.test(out)) { clearInterval(poll); clearTimeout(timer); resolve() }
    }, 25)
    child.once('exit', () => { clearInterval(poll); clearTimeout(timer); reject(new Error(`redis-server exited:\n${out}`)) })
  })
  return { port, url: `redis://127.0.0.1:${port}`, child, stop }
}

export interface Node {
  readonly ws: Workspace
  readonly cmd: RunningCommand
  readonly port: number
  readonly name: string
}

/** starts a tapmq node of the cluster on `redis`; killed and its workspace removed in teardown */
export async function startNode (t: ExecutionContext, redis: RedisServer, name: string, extraConf = '', extraArgs: string[] = [], plugins = ''): Promise<Node> {
  const ws = await workspace([
    'cluster.enable = true',
    `cluster.redis.url = ${redis.url}`,
    `cluster.node_name = ${name}`,
    'heartbeat_interval = 500ms',
    extraConf
  ].join('\n'))
  t.teardown(() => ws.remove())
  if (plugins) await ws.write('plugins.conf', plugins)
  const cmd = tapmq(['start', '--conf', ws.conf, '--plugins', `${ws.dir}/plugins.conf`, ...extraArgs])
  t.teardown(() => { cmd.child.kill('SIGKILL') })
  await cmd.waitFor(/"msg":"tapmq started"/, WAIT_MS)
  return { ws, cmd, port: ws.port, name }
}

export async function connect (t: ExecutionContext, node: Node, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${node.port}`, { reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options })
  client.on('error', () => {})
  t.teardown(() => client.endAsync(true))
  return client
}

/** resolves with the next message on `client` for which `match` holds, or rejects after WAIT_MS */
export function nextMessage (client: MqttClient, match: (topic: string, payload: string) => boolean = () => true):
Promise<{ topic: string, payload: string, qos: number, retain: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.off('message', on); reject(new Error(`no matching message within ${WAIT_MS} ms`)) }, WAIT_MS)
    const on = (topic: string, payload: Buffer, packet: { qos: number, retain: boolean }) => {
      if (!match(topic, payload.toString())) return
      clearTimeout(timer)
      client.off('message', on)
      resolve({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain })
    }
    client.on('message', on)
  })
}

/** waits until `predicate` holds, polling, at most WAIT_MS */
export async function until (predicate: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
