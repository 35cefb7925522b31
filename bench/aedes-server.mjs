// Bare aedes with default options: the baseline tapmq is measured against.
// node bench/aedes-server.mjs <port> [aedes module path]
// Without a module path it runs the aedes tapmq installed; bench/aedes-versions.ts passes
// another (e.g. aedes 1.2.0 installed elsewhere) to compare aedes releases.
import { createServer } from 'node:net'

const { Aedes } = await import(process.argv[3] ?? 'aedes')

const broker = new Aedes()
await broker.listen()
const server = createServer(broker.handle).listen(Number(process.argv[2] ?? 1883), '127.0.0.1')
process.on('SIGTERM', () => broker.close(() => server.close(() => process.exit(0))))
process.on('SIGINT', () => process.exit(0))
