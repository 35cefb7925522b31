// What the runtime remembers about each connection, keyed by the aedes client object.
import type { Client } from 'aedes'
import type { ConnectPacket } from 'aedes'
import type { ClientInfo, DisconnectReason, Peer } from '../../sdk/events.ts'

export interface ClientState {
  peer: Peer
  /** the CONNECT packet, once it arrived */
  connect?: ConnectPacket
  info?: ClientInfo
  connectedAt: number
  superuser: boolean
  /** filters admitted by max_subscriptions whose SUBACK is not out yet (aedes adds them after); created on demand */
  subscribing?: Set<string>
  /** the first known cause of the coming disconnect; later causes do not overwrite it */
  cause?: { reason: DisconnectReason, detail?: string }
}

const UNKNOWN_PEER: Peer = Object.freeze({ address: '', port: 0, listenerPort: 0, transport: 'tcp' })

export class ClientStates {
  readonly #states = new WeakMap<Client, ClientState>()

  attach (client: Client, peer: Peer): void {
    this.#states.set(client, { peer, connectedAt: 0, superuser: false })
  }

  get (client: Client): ClientState {
    let state = this.#states.get(client)
    if (!state) {
      // a client handed to broker.handle() by an embedder, not by one of our listeners
      state = { peer: UNKNOWN_PEER, connectedAt: 0, superuser: false }
      this.#states.set(client, state)
    }
    return state
  }

  /** Records why the client is about to go, unless a cause is known already. */
  markCause (client: Client, reason: DisconnectReason, detail?: string): void {
    const state = this.get(client)
    state.cause ??= { reason, detail }
  }
}

export function clientInfo (client: Client, packet: ConnectPacket, peer: Peer): ClientInfo {
  return Object.freeze({
    clientId: client.id ?? packet.clientId,
    username: packet.username,
    protoVer: packet.protocolVersion ?? 4,
    protoName: packet.protocolId ?? 'MQTT',
    keepalive: packet.keepalive ?? 0,
    cleanSession: packet.clean ?? true,
    peer
  })
}
