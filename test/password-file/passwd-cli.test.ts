// `tapmq passwd` and `tapmq start --auth <file>` as real processes.
import { spawn } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { tapmq, workspace } from '../helpers/cli.ts'
import { connectClient, connectRefused, until } from '../helpers/mqtt.ts'

const WAIT = 10_000
const MAIN = new URL('../../runtime/cli/main.ts', import.meta.url).pathname

/** `tapmq passwd ...` with `input` on stdin */
function passwdWithStdin (args: readonly string[], input: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'passwd', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), WAIT)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
    child.stdin.end(input)
  })
}

test('tapmq passwd adds and updates users with scrypt hashes, keeps other lines, and refuses bad usage', async (t) => {
  const ws = await workspace()
  t.teardown(() => ws.remove())
  const file = join(ws.dir, 'passwd.conf')

  const add = tapmq(['passwd', file, 'alice', 'first secret'])
  t.is(await add.exited(WAIT), 0, add.stderr())
  t.is(add.output().trim(), `added alice in ${file}`)
  t.is((await stat(file)).mode & 0o777, 0o600, 'a new file is created mode 600')

  const piped = await passwdWithStdin([file, 'bob'], 'from stdin\n')
  t.is(piped.code, 0, piped.stderr)
  t.is(piped.stdout.trim(), `added bob in ${file}`)

  await writeFile(file, (await readFile(file, 'utf8')) + '# a comment of mine\n')
  const update = tapmq(['passwd', file, 'alice', 'second secret'])
  t.is(await update.exited(WAIT), 0, update.stderr())
  t.is(update.output().trim(), `updated alice in ${file}`)

  const text = await readFile(file, 'utf8')
  const lines = text.split('\n').filter((line) => line.startsWith('auth.'))
  t.is(lines.length, 4)
  t.deepEqual(lines.map((line) => line.replace(/\$scrypt\$.*$/, 'HASH')),
    ['auth.1.login = alice', 'auth.1.password = HASH', 'auth.2.login = bob', 'auth.2.password = HASH'])
  t.true(text.includes('# a comment of mine'))
  t.false(text.includes('secret') || text.includes('from stdin'), 'no password in clear')

  const usage = tapmq(['passwd', file])
  t.is(await usage.exited(WAIT), 2)
  t.regex(usage.stderr(), /usage: tapmq passwd <file> <user> \[password\]/)
  const empty = await passwdWithStdin([file, 'carol'], '\n')
  t.is(empty.code, 2)
  t.regex(empty.stderr, /the password is empty/)
})

test('tapmq start --auth <file> authenticates from the file, and a reload picks up a changed password', async (t) => {
  const ws = await workspace('allow_anonymous = false')
  t.teardown(() => ws.remove())
  const file = join(ws.dir, 'nanomq_auth_username.conf')
  // a NanoMQ file with a plain password, then a user added by tapmq passwd
  await writeFile(file, 'auth.1.login = admin\nauth.1.password = public\n', { mode: 0o600 })
  const add = tapmq(['passwd', file, 'alice', 'pw1'])
  t.is(await add.exited(WAIT), 0, add.stderr())

  const broker = tapmq(['start', '--conf', ws.conf, '--plugins', join(ws.dir, 'plugins.conf'), '--auth', file])
  t.teardown(() => { if (broker.child.exitCode === null) broker.child.kill('SIGKILL') })
  await broker.waitFor(/"msg":"tapmq started"/, WAIT)
  t.regex(broker.output(), /plain-text passwords in the password file/)
  const url = `mqtt://127.0.0.1:${ws.port}`

  t.true((await connectClient(t, url, { username: 'alice', password: 'pw1' })).connected)
  t.true((await connectClient(t, url, { username: 'admin', password: 'public' })).connected)
  t.is((await connectRefused(t, url, { username: 'alice', password: 'nope' })).code, 4)
  t.is((await connectRefused(t, url, { username: 'stranger', password: 'x' })).code, 5, 'not in the file, allow_anonymous = false')

  const change = tapmq(['passwd', file, 'alice', 'pw2'])
  t.is(await change.exited(WAIT), 0, change.stderr())
  const loaded = () => broker.output().split('\n').filter((line) => line.includes('"msg":"password file loaded"')).length
  const before = loaded()
  broker.child.kill('SIGHUP')
  await until(() => loaded() > before, 'the password file reloaded', WAIT)
  t.true((await connectClient(t, url, { username: 'alice', password: 'pw2' })).connected)
  t.is((await connectRefused(t, url, { username: 'alice', password: 'pw1' })).code, 4)
})
