import test from 'ava'
import { Conf, parseConf } from '../../sdk/conf.ts'

test('parses key = value lines, comments and blanks, keeping line numbers', (t) => {
  const entries = parseConf('# comment\n\nauth.http.timeout = 5s\nweb.hook.url=http://127.0.0.1:80\n  ## indented comment\nk =  a b  \n', 'x.conf')
  t.deepEqual(entries.map(({ key, value, location }) => [key, value, location.line]), [
    ['auth.http.timeout', '5s', 3],
    ['web.hook.url', 'http://127.0.0.1:80', 4],
    ['k', 'a b', 6]
  ])
  t.is(entries[0]!.location.file, 'x.conf')
})

test('values keep inner spaces and JSON (NanoMQ strips them: quirk Q21)', (t) => {
  const [rule] = parseConf('web.hook.rule.message.publish.1={"action": "on_message_publish", "topic": "a b/#"}', 'w.conf')
  t.is(rule!.value, '{"action": "on_message_publish", "topic": "a b/#"}')
})

test('a line that is not key = value is an error naming file and line', (t) => {
  const error = t.throws(() => parseConf('url = nmq-tcp://0.0.0.0:1883\nthis is not a setting\n', '/etc/tapmq.conf'))
  t.is((error as { code?: string }).code, 'TAPMQ_ERR_CONF_SYNTAX')
  t.regex(error!.message, /^\/etc\/tapmq\.conf:2: expected "key = value"/)
})

test('typed getters name file, line, key, value and what is allowed', (t) => {
  const conf = new Conf(parseConf('a.bool = yes\na.int = 12x\na.dur = 5 seconds\na.enum = PUT\na.url = ftp://x\n', 'p.conf'))
  t.throws(() => conf.bool('a.bool', false), { message: 'p.conf:1: invalid value for a.bool: "yes" (allowed: true | false)' })
  t.throws(() => conf.int('a.int', 0, { min: 1 }), { message: /^p\.conf:2: invalid value for a\.int: "12x" \(allowed: an integer from 1 to/ })
  t.throws(() => conf.duration('a.dur', 0), { message: /^p\.conf:3: .*a\.dur.*ms, s, m or h/ })
  t.throws(() => conf.oneOf('a.enum', ['post', 'get'] as const, 'post'), { message: 'p.conf:4: invalid value for a.enum: "PUT" (allowed: post | get)' })
  t.throws(() => conf.url('a.url', ['http', 'https']), { message: /^p\.conf:5: .*scheme http, https/ })
})

test('typed getters convert valid values and fall back to defaults', (t) => {
  const conf = new Conf(parseConf('b = TRUE\ni = 42\nd1 = 5s\nd2 = 2m\nd3 = 1h\nd4 = 250ms\ne = GET\n', 'p.conf'))
  t.true(conf.bool('b', false))
  t.is(conf.int('i', 0), 42)
  t.deepEqual(['d1', 'd2', 'd3', 'd4'].map((key) => conf.duration(key, 0)), [5000, 120_000, 3_600_000, 250])
  t.is(conf.oneOf('e', ['post', 'get'] as const, 'post'), 'get')
  t.is(conf.string('missing', 'fallback'), 'fallback')
  t.is(conf.int('missing', 7), 7)
})

test('prefixed() strips the prefix and unread() lists what no getter asked for', (t) => {
  const conf = new Conf(parseConf('web.hook.headers.content-type = application/json\nweb.hook.headers.x-a = 1\nweb.hook.typo = 1\n', 'w.conf'))
  t.deepEqual(conf.prefixed('web.hook.headers.').map((entry) => [entry.key, entry.value]), [['content-type', 'application/json'], ['x-a', '1']])
  t.deepEqual(conf.unread().map((entry) => [entry.key, entry.location.line]), [['web.hook.typo', 3]])
})
