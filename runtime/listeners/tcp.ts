import { createServer } from 'node:net'
import type { ListenAddress } from '../config/listener-url.ts'
import { acceptConnection, listen, type Listener, type ListenerContext } from './listener.ts'

export function listenTcp (ctx: ListenerContext, address: ListenAddress): Promise<Listener> {
  let port = 0
  const server = createServer((socket) => {
    acceptConnection(ctx, socket, {
      address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, listenerPort: port, transport: 'tcp'
    })
  })
  return listen(server, address).then((listener) => {
    port = listener.port
    return listener
  })
}
