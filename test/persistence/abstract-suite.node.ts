// aedes-persistence 11's own conformance suite (abstract.js, written for node:test) run
// against tapmq's embedded store, each test on a fresh file in a temporary directory.
// abstract-suite.test.ts runs this file in a child process so that ava can report it.
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { SqliteStore } from '../../runtime/persistence/sqlite-store.ts'

const require = createRequire(import.meta.url)
const abstractPersistence = require('aedes-persistence/abstract.js') as (options: object) => void

const dir = mkdtempSync(join(tmpdir(), 'tapmq-abstract-'))
after(() => rmSync(dir, { recursive: true, force: true }))
let n = 0

abstractPersistence({
  test,
  testAsync: true,
  persistence: () => new SqliteStore({
    file: join(dir, `store-${++n}.db`),
    sync: process.env.STORE_SYNC === 'normal' ? 'normal' : 'full',
    commitWindow: Number(process.env.STORE_COMMIT_WINDOW ?? 0)
  })
})
