// Bare aedes 1.2 on one store, for comparing stores without tapmq around them:
//   node --import tsx bench/persistence-aedes-server.ts <port> memory|sqlite|sqlite-normal|level <dir>
// `level` needs aedes-persistence-level 9 and level 10, which tapmq does not depend on:
//   npm install --no-save aedes-persistence-level@9 level@10
// or installed elsewhere and named by LEVEL_MODULES=/that/dir/node_modules.
// `sqlite` is tapmq's store alone: no PUBACK-after-commit wrapper (see ack-after-store.ts).
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Aedes } from 'aedes'
import { SqliteStore } from '../runtime/persistence/sqlite-store.ts'

const [port, store = 'memory', dir = '.'] = process.argv.slice(2)

async function persistence (): Promise<unknown> {
  switch (store) {
    case 'memory': return undefined
    case 'sqlite': return new SqliteStore({ file: join(dir, 'tapmq.db'), sync: 'full' })
    case 'sqlite-normal': return new SqliteStore({ file: join(dir, 'tapmq.db'), sync: 'normal' })
    case 'level': {
      // optional packages, resolved at run time only: from this repository, or from the
      // node_modules directory named by LEVEL_MODULES (an install kept out of the project)
      const from = createRequire(process.env.LEVEL_MODULES ? join(process.env.LEVEL_MODULES, 'x.js') : import.meta.url)
      const { Level } = await import(pathToFileURL(from.resolve('level')).href) as { Level: new (path: string) => unknown }
      const factory = (await import(pathToFileURL(from.resolve('aedes-persistence-level')).href)).default as (db: unknown) => unknown
      return factory(new Level(join(dir, 'level')))
    }
    default: throw new Error(`unknown store ${store}`)
  }
}

const chosen = await persistence()
const broker = new Aedes(chosen ? { persistence: chosen } : {})
;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => console.error('broker error', err))
await broker.listen()
const server = createServer(broker.handle).listen(Number(port ?? 1883), '127.0.0.1')
process.on('SIGTERM', () => broker.close(() => server.close(() => process.exit(0))))
process.on('SIGINT', () => process.exit(0))
