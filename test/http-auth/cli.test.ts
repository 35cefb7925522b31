// End to end through the real CLI: `tapmq start --auth_http <file>` with a NanoMQ-style
// auth_http.conf, a real auth server, mqtt.js clients, SIGTERM, exit code 0; and a bad
// auth_http.conf that stops start-up with file:line.
import { type ChildProcess, spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import test from 'ava'
import { AuthServer, closedPort, connackCode, tmpDir, until, WAIT_MS } from './helpers.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Run {
  readonly child: ChildProcess
  output (): string
  exited (): Promise<number | null>
}

function tapmq (args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  child.stdout!.on('data', (chunk: Buffer) => { text += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { text += chunk.toString() })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return {
    child,
    output: () => text,
    exited: () => Promise.race([exit, new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`tapmq did not exit:\n${text}`)), 4 * WAIT_MS))])
  }
}

async function workspace (t: Parameters<typeof tmpDir>[0], authHttp: string) {
  const dir = await tmpDir(t)
  const port = await closedPort()
  const conf = join(dir, 'tapmq.conf')
  await writeFile(conf, [
    `url = nmq-tcp://127.0.0.1:${port}`,
    'websocket.enable = false',
    'log.format = json',
    `data_dir = ${join(dir, 'data')}`,
    `pid_file = ${join(dir, 'tapmq.pid')}`
  ].join('\n') + '\n')
  const plugins = join(dir, 'plugins.conf')
  await writeFile(plugins, '')
  const auth = join(dir, 'auth_http.conf')
  await writeFile(auth, authHttp)
  return { port, args: ['start', '--conf', conf, '--plugins', plugins, '--auth_http', auth], auth }
}

test('tapmq start --auth_http: accepts and denies through the auth server, SIGTERM exits 0', async (t) => {
  const server = await AuthServer.start(t, (req, res) => {
    res.writeHead(req.fields.username === 'alice' && req.fields.password === 'secret' ? 200 : 403).end()
  })
  const ws = await workspace(t, [
    'auth.http.enable = true',
    `auth.http.auth_req.url = http://127.0.0.1:${server.port}/mqtt/auth`,
    'auth.http.auth_req.method = post',
    'auth.http.auth_req.headers.content-type = application/x-www-form-urlencoded',
    'auth.http.auth_req.params = clientid=%c,username=%u,password=%P',
    'auth.http.timeout = 5s',
    'auth.http.connect_timeout = 5s',
    'auth.http.pool_size = 32'
  ].join('\n') + '\n')
  const broker = tapmq(ws.args)
  t.teardown(() => { broker.child.kill('SIGKILL') })
  await until(() => broker.output().includes('"msg":"tapmq started"'), `"tapmq started" in:\n${broker.output()}`, 4 * WAIT_MS)
  t.regex(broker.output(), /"plugin":"http_auth".*"msg":"plugin started"/)

  const url = `mqtt://127.0.0.1:${ws.port}`
  t.is(await connackCode(t, url, { clientId: 'cli-1', username: 'alice', password: 'secret' }), 0)
  t.is(await connackCode(t, url, { clientId: 'cli-2', username: 'alice', password: 'wrong' }), 5)
  t.deepEqual(server.seen.map((seen) => [seen.method, seen.body]), [
    ['POST', 'clientid=cli-1&username=alice&password=secret'],
    ['POST', 'clientid=cli-2&username=alice&password=wrong']
  ])

  broker.child.kill('SIGTERM')
  t.is(await broker.exited(), 0)
  t.false(broker.output().includes('secret'))
})

test('tapmq start with a bad auth_http.conf stops with file:line and exit code 2', async (t) => {
  const ws = await workspace(t, 'auth.http.enable = true\nauth.http.auth_req.url = http://127.0.0.1:1/auth\nauth.http.auth_req.params = user=%u,cert=%X\n')
  const broker = tapmq(ws.args)
  t.teardown(() => { broker.child.kill('SIGKILL') })
  t.is(await broker.exited(), 2)
  t.true(broker.output().includes(`${ws.auth}:3`), broker.output())
  t.regex(broker.output(), /unknown placeholder %X/)
})
