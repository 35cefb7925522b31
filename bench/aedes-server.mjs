// Bare aedes 1.2 with default options: the baseline tapmq is measured against.
// node bench/aedes-server.mjs <port>
import { createServer } from 'node:net'
import { Aedes } from 'aedes'

const broker = new Aedes()
await broker.listen()
const server = createServer(broker.handle).listen(Number(process.argv[2] ?? 1883), '127.0.0.1')
process.on('SIGTERM', () => broker.close(() => server.close(() => process.exit(0))))
process.on('SIGINT', () => process.exit(0))
