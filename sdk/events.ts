// Hook payloads: plain, typed, read-only objects built once per event and shared by every
// tap. A plugin never sees an aedes object, so it never depends on aedes.

/** 3 = MQTT 3.1, 4 = MQTT 3.1.1, 5 = MQTT 5.0 */
export type ProtocolVersion = number

export type Transport = 'tcp' | 'tls' | 'ws' | 'wss'

export interface PeerCertificate {
  /** the subject's CN (`%C` in http-auth) */
  readonly commonName?: string
  /** the subject DN, `CN=...,O=...` (`%d` in http-auth) */
  readonly subject?: string
}

export interface Peer {
  /** remote IP address, without the port */
  readonly address: string
  readonly port: number
  /** the broker's listener port the client connected to (`%p` in http-auth) */
  readonly listenerPort: number
  readonly transport: Transport
  /** present when the client showed a TLS certificate */
  readonly certificate?: PeerCertificate
}

/** What is known about a client from its CONNECT packet and its socket. */
export interface ClientInfo {
  readonly clientId: string
  /** `undefined` when the client sent no user name */
  readonly username: string | undefined
  readonly protoVer: ProtocolVersion
  /** `MQTT` (3.1.1, 5) or `MQIsdp` (3.1) */
  readonly protoName: string
  readonly keepalive: number
  readonly cleanSession: boolean
  readonly peer: Peer
}

/** `client.connect`: a CONNECT packet arrived, before authentication. */
export interface ConnectEvent extends ClientInfo {
  readonly ts: number
}

/** `auth`: a request to authenticate a connecting client. */
export interface AuthRequest extends ClientInfo {
  /** the password exactly as sent; never log it */
  readonly password: Buffer | undefined
}

/**
 * CONNACK return codes of MQTT 3.1.1: 2 identifier rejected, 3 server unavailable,
 * 4 bad user name or password, 5 not authorized.
 */
export type ConnackRejectCode = 2 | 3 | 4 | 5

/**
 * An `auth` answer. Returning `undefined` (or `{ result: 'ignore' }`) passes the decision
 * to the next plugin; if no plugin decides, `allow_anonymous` does.
 */
export type AuthDecision =
  | { readonly result: 'allow', readonly superuser?: boolean }
  | { readonly result: 'deny', readonly code?: ConnackRejectCode, readonly reason?: string }
  | { readonly result: 'ignore' }

/** EMQX 4 names of the CONNACK outcomes, as webhooks and logs use them. */
export type ConnackResult =
  | 'success'
  | 'unsupported_protocol_version'
  | 'client_identifier_not_valid'
  | 'server_unavailable'
  | 'bad_username_or_password'
  | 'not_authorized'

/** `client.connack`: a CONNACK was written, accepted or not. */
export interface ConnackEvent {
  readonly clientId: string
  readonly username: string | undefined
  readonly protoVer: ProtocolVersion
  readonly keepalive: number
  /** the CONNACK return code (0 = accepted) */
  readonly returnCode: number
  readonly result: ConnackResult
  readonly sessionPresent: boolean
  readonly peer: Peer
  readonly ts: number
}

/** `client.connected`: the client is authenticated and its session is open. */
export interface ConnectedEvent extends ClientInfo {
  readonly connectedAt: number
}

export type DisconnectReason =
  /** the client sent DISCONNECT */
  | 'normal'
  /** no packet within 1.5 × keepalive */
  | 'keepalive_timeout'
  /** another connection with the same client id replaced this one */
  | 'takeover'
  /** the client broke the protocol, or a limit such as max_packet_size */
  | 'protocol_error'
  /** the socket closed without a DISCONNECT */
  | 'peer_closed'
  /** the broker is shutting down */
  | 'shutdown'
  /** the client did not read its socket within drain_timeout */
  | 'slow_consumer'
  /** an administrator or a plugin closed the connection */
  | 'kicked'
  /** an authorization plugin closed the connection */
  | 'not_authorized'

/** `client.disconnected`: the connection of an authenticated client closed. */
export interface DisconnectEvent {
  readonly clientId: string
  readonly username: string | undefined
  readonly protoVer: ProtocolVersion
  readonly reason: DisconnectReason
  /** the underlying error text, when the reason came from an error */
  readonly detail?: string
  readonly peer: Peer
  readonly ts: number
}

/** `session.terminated`: a session ended for good (a clean session's connection closed). */
export interface SessionTerminatedEvent {
  readonly clientId: string
  readonly username: string | undefined
  readonly reason: DisconnectReason
  readonly ts: number
}

export type QoS = 0 | 1 | 2

export interface SubscriptionRequest {
  readonly topic: string
  readonly qos: QoS
}

/** `client.subscribe`: one topic filter of a SUBSCRIBE packet, before authorization. */
export interface SubscribeEvent extends SubscriptionRequest {
  readonly clientId: string
  readonly username: string | undefined
  readonly ts: number
}

/** What a `client.subscribe` tap may do with the subscription. */
export interface SubscribeControl {
  /** Refuse the subscription: SUBACK 0x80 for this filter; the client stays connected. */
  deny (reason: string): void
  /** Replace the filter and/or QoS; later taps see the rewritten subscription. */
  rewrite (subscription: Partial<SubscriptionRequest>): void
  /** the subscription as it stands after earlier taps */
  readonly current: SubscriptionRequest
}

/** `client.unsubscribe`: one topic filter of an UNSUBSCRIBE packet. */
export interface UnsubscribeEvent {
  readonly clientId: string
  readonly username: string | undefined
  readonly topic: string
  readonly ts: number
}

/** `session.subscribed` / `session.unsubscribed`: the session's subscriptions changed. */
export interface SessionSubscriptionEvent {
  readonly clientId: string
  readonly username: string | undefined
  readonly topic: string
  /** granted QoS (absent for unsubscribes) */
  readonly qos?: QoS
  readonly ts: number
}

export type AccessKind = 'publish' | 'subscribe'

/** `authorize.publish` / `authorize.subscribe`: may this client use this topic? */
export interface AuthorizeRequest {
  readonly access: AccessKind
  readonly topic: string
  readonly qos: QoS
  readonly client: ClientInfo
  /** set when an `auth` plugin marked the client as a superuser */
  readonly superuser: boolean
}

/**
 * `undefined` (or `ignore`) passes to the next plugin; if none decides, access is allowed.
 * `rememberMs` (publish only): the broker may give the same answer to the same connection's
 * PUBLISHes with the same topic and QoS for this long without asking again, as long as the
 * answering plugin is the only `authorize.publish` tap and stays enabled.
 */
export type AuthorizeDecision =
  | { readonly result: 'allow', readonly rememberMs?: number }
  /** `disconnect` closes the publisher's connection instead of dropping the one message */
  | { readonly result: 'deny', readonly reason?: string, readonly disconnect?: boolean, readonly rememberMs?: number }
  | { readonly result: 'ignore' }

export interface Message {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: QoS
  readonly retain: boolean
}

/** `message.publish`: a client's PUBLISH (or will), before it is routed. */
export interface PublishEvent extends Message {
  /** client id of the publisher */
  readonly from: string
  readonly fromUsername: string | undefined
  /** epoch milliseconds when the broker received it */
  readonly ts: number
  /** true for a will message published on the client's behalf */
  readonly isWill: boolean
}

/** What a `message.publish` tap may do with the message. */
export interface PublishControl {
  /** Drop the message: it is acknowledged to the publisher but routed to nobody. */
  drop (reason: string): void
  /**
   * Change topic, payload or retain before routing. QoS is not rewritable: the publisher's
   * acknowledgement already depends on it.
   */
  rewrite (message: Partial<Omit<Message, 'qos'>>): void
  /** the message as it stands after earlier taps */
  readonly current: Message
  /** the reason an earlier tap gave to `drop`, if one dropped the message (later taps still run) */
  readonly dropped: string | undefined
}

/** `message.delivered`: a message is being written to a subscriber. */
export interface DeliveredEvent extends Message {
  readonly clientId: string
  readonly username: string | undefined
  readonly from: string | undefined
  readonly fromUsername: string | undefined
  readonly ts: number
}

/** `message.acked`: a subscriber acknowledged a QoS 1/2 message. */
export interface AckedEvent {
  readonly clientId: string
  readonly username: string | undefined
  readonly topic: string
  readonly qos: QoS
  readonly messageId: number
  readonly ts: number
  /** the acknowledged message, when the persistence still holds it */
  readonly payload?: Buffer
  readonly retain?: boolean
  /** client id of the original publisher, when known */
  readonly from?: string
  readonly fromUsername?: string
}

export type DropReason = 'dropped_by_plugin' | 'not_authorized'

/** `message.dropped`: a message from a client was not routed. */
export interface DroppedEvent extends Message {
  readonly from: string
  readonly fromUsername: string | undefined
  readonly reason: DropReason
  readonly detail?: string
  readonly ts: number
}

export interface BrokerInfo {
  /** the aedes broker id, unique per process */
  readonly id: string
  readonly version: string
  /** the listeners that are open, as URLs with the real ports */
  readonly listeners: readonly string[]
}
