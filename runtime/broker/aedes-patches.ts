// tapmq runs aedes 2.0.0-beta.1, which predates three security fixes of aedes 1.1.3/1.2.0.
// They are carried as patch-package patches (patches/, docs/mqtt5.md), applied by
// `npm install`. An install that skipped them (`--ignore-scripts`, a copied node_modules)
// would run a broker open to those advisories without saying so; this refuses to start it.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Aedes } from 'aedes'
import { TapmqError } from '../../sdk/errors.ts'

interface SecurityPatch {
  readonly advisory: string
  readonly applied: (broker: Aedes) => boolean
}

function aedesSource (path: string): string {
  return readFileSync(fileURLToPath(new URL(path, import.meta.resolve('aedes'))), 'utf8')
}

const SECURITY_PATCHES: readonly SecurityPatch[] = [
  {
    advisory: 'GHSA-52qw-whmv-87c5',
    applied: (broker) => Object.getPrototypeOf((broker as unknown as { clients: object }).clients) === null
  },
  {
    advisory: 'GHSA-5jvp-3p2v-5qgf',
    applied: (broker) => typeof (broker as unknown as { maxInflightInbound?: number }).maxInflightInbound === 'number'
  },
  {
    // nothing on the instance shows it: the fix adds a step to the CONNECT handler
    advisory: 'GHSA-p8r9-qf8w-p73r',
    applied: () => aedesSource('./lib/handlers/connect.js').includes('persistence.cleanIncoming(client)')
  }
]

export const ERR_AEDES_UNPATCHED = (advisories: readonly string[]) => new TapmqError('TAPMQ_ERR_AEDES_UNPATCHED',
  `the installed aedes lacks tapmq's security patches for ${advisories.join(', ')}; run \`npm install\` ` +
  '(its postinstall step, patch-package, applies patches/) and do not install with --ignore-scripts')

/** Throws ERR_AEDES_UNPATCHED unless every security patch is in the aedes that `broker` comes from. */
export function assertSecurityPatches (broker: Aedes): void {
  const missing = SECURITY_PATCHES.filter((patch) => !patch.applied(broker)).map((patch) => patch.advisory)
  if (missing.length > 0) throw ERR_AEDES_UNPATCHED(missing)
}
