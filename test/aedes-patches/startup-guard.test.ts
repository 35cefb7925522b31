import test from 'ava'
import { Aedes } from 'aedes'
import { assertSecurityPatches } from '../../runtime/broker/aedes-patches.ts'

test('the installed aedes carries the three security patches, so the broker starts', (t) => {
  const broker = new Aedes()
  t.teardown(() => broker.close())
  t.notThrows(() => assertSecurityPatches(broker))
})

test('a broker without a patch is refused with the advisory and what to run', (t) => {
  const broker = new Aedes()
  t.teardown(() => broker.close())
  // what unpatched 2.0.0-beta.1 has: a clients table that inherits Object.prototype's names
  Object.assign(broker, { clients: {}, maxInflightInbound: undefined })
  const err = t.throws(() => assertSecurityPatches(broker))
  t.is((err as Error & { code: string }).code, 'TAPMQ_ERR_AEDES_UNPATCHED')
  t.regex(err.message, /GHSA-52qw-whmv-87c5, GHSA-5jvp-3p2v-5qgf;/)
  t.regex(err.message, /npm install/)
})
