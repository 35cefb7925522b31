// What the runtime remembers about each connection, keyed by the aedes client object.
import type { Client } from 'aedes'
import type { ConnectPacket } from 'aedes'
import type { ClientInfo, ConnectProperties, DisconnectReason, MessageProperties, Peer, UserProperties } from '../../sdk/events.ts'

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
  /** set at the first delivery this connection's full outbound queue refused (logged once) */
  outboundQueueFull?: boolean
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
  const info: { -readonly [K in keyof ClientInfo]: ClientInfo[K] } = {
    clientId: client.id ?? packet.clientId,
    username: packet.username,
    protoVer: packet.protocolVersion ?? 4,
    protoName: packet.protocolId ?? 'MQTT',
    keepalive: packet.keepalive ?? 0,
    cleanSession: packet.clean ?? true,
    peer
  }
  // MQTT 5 with properties: the two optional fields, never as `undefined` keys, so that
  // payloads of clients without them compare equal to 3.1.1 ones
  const properties = packet.protocolVersion === 5 ? connectProperties(packet.properties) : undefined
  if (properties !== undefined) {
    info.properties = properties
    if (properties.userProperties !== undefined) info.userProperties = properties.userProperties
  }
  return Object.freeze(info)
}

const CONNECT_PROPERTY_NAMES = [
  'sessionExpiryInterval', 'receiveMaximum', 'maximumPacketSize', 'topicAliasMaximum',
  'requestResponseInformation', 'requestProblemInformation', 'userProperties', 'authenticationMethod'
] as const

/**
 * A frozen copy of the CONNECT properties plugins see (§3.1.2.11), or undefined when there
 * are none. Authentication Data stays out: it is a credential.
 */
export function connectProperties (properties: ConnectPacket['properties']): ConnectProperties | undefined {
  if (properties === undefined || properties === null) return undefined
  return frozenCopy(properties, CONNECT_PROPERTY_NAMES) as ConnectProperties | undefined
}

const MESSAGE_PROPERTY_NAMES = [
  'payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic',
  'correlationData', 'userProperties', 'subscriptionIdentifier'
] as const

/** copies made for `message.delivered` / `message.acked`, one per aedes properties object (fan-out shares it) */
const messagePropertyCopies = new WeakMap<object, MessageProperties | null>()

/**
 * The properties of a PUBLISH as plugins see them (§3.3.2.3): a frozen copy of the ones in
 * MessageProperties (a Topic Alias is the connection's business, not the message's), or
 * undefined when there are none. Called only when the packet has a properties object, so
 * MQTT 3.1.1 messages allocate nothing. The copy is shared by every event of one object.
 */
export function messageProperties (properties: object): MessageProperties | undefined {
  const known = messagePropertyCopies.get(properties)
  if (known !== undefined) return known ?? undefined
  const result = frozenCopy(properties, MESSAGE_PROPERTY_NAMES) as MessageProperties | undefined
  messagePropertyCopies.set(properties, result ?? null)
  return result
}

/** The `names` of `source` that are set, in a frozen copy (arrays and user properties frozen too), or undefined if none is. */
function frozenCopy (source: object, names: readonly string[]): object | undefined {
  const from = source as Record<string, unknown>
  const copy: Record<string, unknown> = {}
  let any = false
  for (const name of names) {
    const value = from[name]
    if (value === undefined) continue
    copy[name] = name === 'userProperties' ? frozenUserProperties(value as UserProperties) : Array.isArray(value) ? Object.freeze([...value]) : value
    any = true
  }
  return any ? Object.freeze(copy) : undefined
}

function frozenUserProperties (userProperties: UserProperties): UserProperties {
  // names come from the wire: fromEntries defines each as an own key, so "__proto__" stays a
  // user property instead of replacing the copy's prototype (the GHSA-52qw-whmv-87c5 class)
  return Object.freeze(Object.fromEntries(Object.entries(userProperties).map(([name, value]) =>
    [name, Array.isArray(value) ? Object.freeze([...value]) : value])))
}
