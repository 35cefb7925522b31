// `tapmq passwd <file> <user> [password]`: adds a user to a password file or changes the
// password of one, keeping every other line and comment. The file is replaced atomically
// (a temporary file renamed over it); a new file is created with mode 600.
import { randomBytes } from 'node:crypto'
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { hashPassword } from './hash.ts'

const LINE = /^\s*auth\.(\d+)\.(login|password)\s*=\s*(.*?)\s*$/

const HEADER = `## tapmq password file (NanoMQ nanomq_auth_username.conf format), for the
## password_file plugin. Add or change users with: tapmq passwd <this file> <user>
## Passwords are stored as scrypt hashes; keep this file mode 600.
`

export class PasswdError extends Error {}

export async function setPassword (file: string, login: string, password: string): Promise<'added' | 'updated'> {
  if (login === '' || login !== login.trim() || /[\r\n]/.test(login)) {
    throw new PasswdError(`invalid user name ${JSON.stringify(login)}: it must be non-empty, without surrounding blanks or line breaks`)
  }
  if (password === '') throw new PasswdError('the password is empty')
  if (/[\r\n]/.test(password)) throw new PasswdError('the password contains a line break')

  let text = ''
  let mode = 0o600
  let exists = true
  try {
    text = readFileSync(file, 'utf8')
    mode = statSync(file).mode & 0o777
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    exists = false
    text = HEADER
  }
  const eol = text.includes('\r\n') ? '\r\n' : '\n'
  const lines = text.split(/\r?\n/)
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()

  let slot: number | undefined
  let highest = 0
  for (const line of lines) {
    const match = LINE.exec(line)
    if (!match) continue
    highest = Math.max(highest, Number(match[1]))
    if (match[2] === 'login' && match[3] === login) slot = Number(match[1])
  }

  const hash = await hashPassword(password)
  const passwordLine = (n: number) => `auth.${n}.password = ${hash}`
  let result: 'added' | 'updated'
  if (slot !== undefined) {
    const n = slot
    const loginAt = lines.findIndex((line) => LINE.exec(line)?.[1] === String(n) && LINE.exec(line)?.[2] === 'login')
    let replaced = false
    for (let i = 0; i < lines.length; i++) {
      const match = LINE.exec(lines[i]!)
      if (match && Number(match[1]) === n && match[2] === 'password') {
        lines[i] = passwordLine(n)
        replaced = true
      }
    }
    if (!replaced) lines.splice(loginAt + 1, 0, passwordLine(n))
    result = 'updated'
  } else {
    const n = highest + 1
    lines.push(`auth.${n}.login = ${login}`, passwordLine(n))
    result = 'added'
  }

  const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`
  try {
    writeFileSync(temporary, lines.join(eol) + eol, { mode: exists ? mode : 0o600, flag: 'wx' })
    renameSync(temporary, file)
  } catch (err) {
    try {
      unlinkSync(temporary)
    } catch {}
    throw err
  }
  return result
}

/**
 * The password for `tapmq passwd` when it is not on the command line: typed twice without
 * echo on a terminal, otherwise the first line of stdin (`echo secret | tapmq passwd f u`).
 */
export async function readPassword (input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): Promise<string> {
  if (!input.isTTY) {
    let text = ''
    for await (const chunk of input) {
      text += String(chunk)
      if (text.includes('\n')) break
    }
    return text.split(/\r?\n/)[0] ?? ''
  }
  const { createInterface } = await import('node:readline')
  const { Writable } = await import('node:stream')
  const ask = async (question: string): Promise<string> => {
    output.write(question)
    // echo off: readline writes what is typed to this sink instead of the terminal
    const muted = new Writable({ write: (_chunk, _encoding, done) => done() })
    const rl = createInterface({ input, output: muted, terminal: true })
    const answer = await new Promise<string>((resolve) => rl.question('', resolve))
    rl.close()
    output.write('\n')
    return answer
  }
  const first = await ask('Password: ')
  const second = await ask('Password again: ')
  if (first !== second) throw new PasswdError('the two passwords differ')
  return first
}
