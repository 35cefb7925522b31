// The password-file plugin on a real broker: allow, deny (CONNACK 4), users it does not know
// left to the next auth plugin and to allow_anonymous, NanoMQ plain-text entries, and the
// conf format with its file:line errors.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import passwordFile from '../../plugins/password-file/index.ts'
import { type Options, parseConf } from '../../plugins/password-file/config.ts'
import { hashPassword, parseHash, verifyHash, verifyPlain } from '../../plugins/password-file/hash.ts'
import { Conf, definePlugin } from '../../sdk/index.ts'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, connectRefused, tmpDir } from '../helpers/mqtt.ts'

/** cheap hashes for tests (N = 1024); the format and the check are the same */
const FAST = { ln: 10, r: 8, p: 1 }

async function users (entries: Record<string, string>, hashed = true): Promise<Options['users']> {
  return Promise.all(Object.entries(entries).map(async ([login, password]) =>
    ({ login, password: hashed ? await hashPassword(password, FAST) : password, at: 'test' })))
}

test('a user in the file with the right password is allowed', async (t) => {
  const broker = await testBroker(t, {
    plugins: [{ plugin: passwordFile, options: { users: await users({ alice: 'wonder land' }) } }],
    config: { allow_anonymous: 'false' }
  })
  const client = await connectClient(t, broker.url, { username: 'alice', password: 'wonder land' })
  t.true(client.connected)
  t.like(broker.tapmq.plugins.status('tapmq:password-file').counters, { allow_total: 1, deny_total: 0 })
})

test('a user in the file with a wrong or missing password is refused with CONNACK 4, even when anonymous clients are allowed', async (t) => {
  const broker = await testBroker(t, {
    plugins: [{ plugin: passwordFile, options: { users: await users({ alice: 'right' }) } }],
    config: { allow_anonymous: 'true' }
  })
  t.is((await connectRefused(t, broker.url, { username: 'alice', password: 'wrong' })).code, 4)
  t.is((await connectRefused(t, broker.url, { username: 'alice' })).code, 4)
  t.is((await connectRefused(t, broker.url, { username: 'alice', password: 'RIGHT' })).code, 4)
  t.like(broker.tapmq.plugins.status('tapmq:password-file').counters, { deny_total: 3, allow_total: 0 })
})

test('users not in the file are left to the next auth plugin, then to allow_anonymous', async (t) => {
  // a second plugin that knows only "bob"
  const other = definePlugin({
    name: 'test:other-auth',
    version: '1.0.0',
    setup (host) {
      host.hooks.auth.tapPromise({ name: 'test:other-auth' }, async (request) =>
        request.username === 'bob' && request.password?.toString() === 'builder' ? { result: 'allow' } : { result: 'ignore' })
    }
  })
  const broker = await testBroker(t, {
    plugins: [{ plugin: passwordFile, options: { users: await users({ alice: 'right' }) } }, other],
    config: { allow_anonymous: 'false' }
  })
  t.true((await connectClient(t, broker.url, { username: 'bob', password: 'builder' })).connected, 'the next plugin decided')
  t.is((await connectRefused(t, broker.url, { username: 'carol', password: 'x' })).code, 5, 'nobody decided: allow_anonymous = false')
  t.is((await connectRefused(t, broker.url)).code, 4, 'no user name: allow_anonymous = false')
  t.like(broker.tapmq.plugins.status('tapmq:password-file').counters, { ignore_total: 3 })

  const open = await testBroker(t, {
    plugins: [{ plugin: passwordFile, options: { users: await users({ alice: 'right' }) } }],
    config: { allow_anonymous: 'true' }
  })
  t.true((await connectClient(t, open.url, { username: 'carol', password: 'x' })).connected, 'nobody decided: allow_anonymous = true')
  t.true((await connectClient(t, open.url)).connected)
})

test('NanoMQ plain-text passwords work, with a warning at start-up', async (t) => {
  const broker = await testBroker(t, {
    plugins: [{ plugin: passwordFile, options: { users: await users({ admin: 'public' }, false) } }],
    config: { allow_anonymous: 'false' }
  })
  t.true((await connectClient(t, broker.url, { username: 'admin', password: 'public' })).connected)
  t.is((await connectRefused(t, broker.url, { username: 'admin', password: 'publi' })).code, 4)
  const warning = broker.logs.find((line) => String(line.msg).startsWith('plain-text passwords in the password file'))
  t.deepEqual(warning?.users, ['admin'])
  t.false(JSON.stringify(broker.logs).includes('"public"'), 'the password itself is never logged')
})

test('scrypt hashes: PHC format, random salt, verification', async (t) => {
  const stored = await hashPassword('s3cret')
  t.regex(stored, /^\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
  t.not(await hashPassword('s3cret'), stored, 'a new salt every time')
  const parsed = parseHash(stored)
  if (typeof parsed === 'string') return t.fail(parsed)
  t.true(await verifyHash(Buffer.from('s3cret'), parsed))
  t.false(await verifyHash(Buffer.from('s3cret '), parsed))
  t.false(await verifyHash(Buffer.from(''), parsed))
  // a flipped bit in the stored hash fails the check
  const tampered = { ...parsed, hash: Buffer.from(parsed.hash) }
  tampered.hash[0] = tampered.hash[0]! ^ 1
  t.false(await verifyHash(Buffer.from('s3cret'), tampered))
  t.true(verifyPlain(Buffer.from('public'), 'public'))
  t.false(verifyPlain(Buffer.from('public'), 'publicx'))
  t.regex(parseHash('$scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA') as string, /ln=40 is outside/)
  t.regex(parseHash('$scrypt$N=16384$x$y') as string, /unknown scrypt parameter/)
})

test('the file format: NanoMQ auth.<n>.login / auth.<n>.password, errors name file and line', async (t) => {
  const dir = await tmpDir(t)
  const read = async (text: string) => {
    const file = join(dir, `p${Math.random().toString(16).slice(2)}.conf`)
    await writeFile(file, text)
    return { file, parse: () => parseConf(Conf.fromFile(file)) }
  }
  const hash = await hashPassword('x', FAST)
  const good = await read(`# users\nauth.1.login = admin\nauth.1.password = public\nauth.2.login = client\nauth.2.password = ${hash}\nauth.cache_ttl = 30s\n`)
  t.deepEqual(good.parse(), {
    users: [{ login: 'admin', password: 'public', at: `${good.file}:3` }, { login: 'client', password: hash, at: `${good.file}:5` }],
    cacheTtl: 30_000
  })
  const missing = await read('auth.1.login = admin\n\nauth.2.login = b\nauth.2.password = y\n')
  t.throws(missing.parse, { message: `${missing.file}:1: invalid value for auth.1.login: "admin" (allowed: a login with an auth.1.password line)` })
  const twice = await read('auth.1.login = admin\nauth.1.password = a\nauth.2.login = admin\nauth.2.password = b\n')
  t.throws(twice.parse, { message: `${twice.file}:3: invalid value for auth.2.login: "admin" (allowed: a user name not already given at ${twice.file}:1)` })
  const broken = await read('auth.1.login = admin\nauth.1.password = $scrypt$ln=14$abc\n')
  t.throws(broken.parse, { message: /:2: invalid value for auth\.1\.password: "\$scrypt\$…" \(allowed: a hash from "tapmq passwd"/ })
  const typo = await read('auth.1.login = admin\nauth.1.pasword = a\n')
  t.throws(typo.parse, { message: `${typo.file}:2: invalid value for auth.1.pasword: "a" (allowed: auth.<n>.login, auth.<n>.password or auth.cache_ttl)` })
})

test('a stored hash is checked once per cache_ttl for a reconnecting client, and never cached when wrong', async (t) => {
  const broker = await testBroker(t, {
    plugins: [{ plugin: passwordFile, options: { users: await users({ alice: 'right' }), cacheTtl: 60_000 } }],
    config: { allow_anonymous: 'false' }
  })
  for (let i = 0; i < 3; i++) {
    const client = await connectClient(t, broker.url, { username: 'alice', password: 'right', clientId: `c${i}` })
    await client.endAsync()
  }
  t.is((await connectRefused(t, broker.url, { username: 'alice', password: 'wrong' })).code, 4)
  t.is((await connectRefused(t, broker.url, { username: 'alice', password: 'wrong' })).code, 4)
  t.like(broker.tapmq.plugins.status('tapmq:password-file').counters, { allow_total: 3, deny_total: 2, hash_checks_total: 3 },
    'one scrypt for the three good CONNECTs, one for each wrong one')

  const uncached = await testBroker(t, {
    plugins: [{ plugin: passwordFile, options: { users: await users({ alice: 'right' }), cacheTtl: 0 } }],
    config: { allow_anonymous: 'false' }
  })
  for (let i = 0; i < 3; i++) {
    const client = await connectClient(t, uncached.url, { username: 'alice', password: 'right', clientId: `u${i}` })
    await client.endAsync()
  }
  t.like(uncached.tapmq.plugins.status('tapmq:password-file').counters, { allow_total: 3, hash_checks_total: 3 }, 'cache_ttl = 0: every time')
})
