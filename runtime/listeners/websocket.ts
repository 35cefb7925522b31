import { createServer } from 'node:http'
import { createWebSocketStream, WebSocketServer } from 'ws'
import type { ListenAddress } from '../config/listener-url.ts'
import { acceptConnection, listen, type Listener, type ListenerContext } from './listener.ts'

export function listenWebSocket (ctx: ListenerContext, address: ListenAddress): Promise<Listener> {
  let port = 0
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('this endpoint speaks MQTT over WebSocket\n')
  })
  const wss = new WebSocketServer({ server, path: address.path, maxPayload: ctx.maxPacketSize + 5 })
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws)
    stream.on('error', () => stream.destroy())
    acceptConnection(ctx, stream, {
      address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0, listenerPort: port, transport: 'ws'
    }, req)
  })
  return listen(server, address).then((listener) => {
    port = listener.port
    return {
      ...listener,
      close: async () => {
        for (const client of wss.clients) client.terminate()
        await new Promise<void>((resolve) => wss.close(() => resolve()))
        await listener.close()
      }
    }
  })
}
