// Fast local HTTP endpoints for plugin targets (webhook receiver, http-auth server): answer
// 200 at once and count requests.
import { createServer, type Server } from 'node:http'

export interface Receiver {
  readonly url: string
  readonly port: number
  /** requests per path so far */
  readonly counts: Map<string, number>
  close (): Promise<void>
}

/** `answer(path)`: status code to reply with (default 200) */
export function startReceiver (answer: (path: string) => number = () => 200): Promise<Receiver> {
  const counts = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    counts.set(path, (counts.get(path) ?? 0) + 1)
    req.resume()
    req.on('end', () => {
      res.writeHead(answer(path), { 'content-type': 'text/plain', 'content-length': '2' })
      res.end('ok')
    })
  })
  server.keepAliveTimeout = 60_000
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        counts,
        close: () => new Promise<void>((done) => {
          server.closeAllConnections()
          server.close(() => done())
        })
      })
    })
  })
}
