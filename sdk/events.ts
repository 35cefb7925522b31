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

// ---- MQTT 5 ----------------------------------------------------------------------------
// Every MQTT 5 field below is optional and absent for MQTT 3.1/3.1.1 clients (and for MQTT 5
// packets that did not carry it), so plugins written for 3.1.1 and tests comparing whole
// payloads see exactly the objects they saw before. Section numbers are the MQTT 5.0 OASIS
// standard's.

/**
 * MQTT 5 User Properties (§3.1.2.11.8, §3.3.2.3.7): name → value, both UTF-8 strings. A name
 * the sender repeated maps to the array of its values in the order sent (mqtt.js and
 * mqtt-packet use the same shape).
 */
export type UserProperties = Readonly<Record<string, string | readonly string[]>>

/** The properties of an MQTT 5 CONNECT packet (§3.1.2.11), as the client sent them. */
export interface ConnectProperties {
  /** §3.1.2.11.2 Session Expiry Interval, seconds the session outlives the connection (0 = ends with it, 0xFFFFFFFF = never) */
  readonly sessionExpiryInterval?: number
  /** §3.1.2.11.3 Receive Maximum: QoS 1/2 PUBLISHes the client takes unacknowledged at once */
  readonly receiveMaximum?: number
  /** §3.1.2.11.4 Maximum Packet Size the client accepts, bytes */
  readonly maximumPacketSize?: number
  /** §3.1.2.11.5 Topic Alias Maximum: the highest topic alias the client accepts from the broker */
  readonly topicAliasMaximum?: number
  /** §3.1.2.11.6 Request Response Information: the client asks for Response Information in the CONNACK */
  readonly requestResponseInformation?: boolean
  /**
   * §3.1.2.11.7 Request Problem Information: `false` when the client sent 0, and then gets no
   * Reason String on acknowledgements [MQTT-3.1.2-29]
   */
  readonly requestProblemInformation?: boolean
  /** §3.1.2.11.8 User Properties of the CONNECT */
  readonly userProperties?: UserProperties
  /** §3.1.2.11.9 Authentication Method (enhanced authentication, which tapmq refuses with CONNACK 0x8C) */
  readonly authenticationMethod?: string
}

/** The properties of an MQTT 5 PUBLISH (§3.3.2.3), as they stand for this event. */
export interface MessageProperties {
  /** §3.3.2.3.2 Payload Format Indicator: `true` (1) the payload is UTF-8 text, `false` (0) unspecified bytes */
  readonly payloadFormatIndicator?: boolean
  /** §3.3.2.3.3 Message Expiry Interval, seconds (on delivery: what is left of it, [MQTT-3.3.2-6]) */
  readonly messageExpiryInterval?: number
  /** §3.3.2.3.9 Content Type, a UTF-8 string such as a MIME type */
  readonly contentType?: string
  /** §3.3.2.3.5 Response Topic: where the receiver should publish its response */
  readonly responseTopic?: string
  /** §3.3.2.3.6 Correlation Data: opaque bytes the requester uses to match the response */
  readonly correlationData?: Buffer
  /** §3.3.2.3.7 User Properties, forwarded unchanged to subscribers [MQTT-3.3.2-17] */
  readonly userProperties?: UserProperties
  /** §3.3.2.3.8 Subscription Identifier(s) of the matching subscription; only on delivery (`message.delivered`, `message.acked`) */
  readonly subscriptionIdentifier?: number | readonly number[]
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
  /** MQTT 5 only: the CONNECT properties (§3.1.2.11); absent for 3.1/3.1.1 and for a CONNECT without properties */
  readonly properties?: ConnectProperties
  /** MQTT 5 only: `properties.userProperties`, when the CONNECT carried any (§3.1.2.11.8) */
  readonly userProperties?: UserProperties
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

/**
 * EMQX names of the CONNACK outcomes, as webhooks and logs use them. The names after
 * `not_authorized` come only from MQTT 5 reason codes (§3.2.2.2) that have no 3.1.1 return code.
 */
export type ConnackResult =
  | 'success'
  | 'unsupported_protocol_version'
  | 'client_identifier_not_valid'
  | 'server_unavailable'
  | 'bad_username_or_password'
  | 'not_authorized'
  | 'unspecified_error'
  | 'malformed_packet'
  | 'protocol_error'
  | 'implementation_specific_error'
  | 'server_busy'
  | 'banned'
  | 'bad_authentication_method'
  | 'topic_name_invalid'
  | 'packet_too_large'
  | 'quota_exceeded'
  | 'payload_format_invalid'
  | 'retain_not_supported'
  | 'qos_not_supported'
  | 'use_another_server'
  | 'server_moved'
  | 'connection_rate_exceeded'

/** `client.connack`: a CONNACK was written, accepted or not. */
export interface ConnackEvent {
  readonly clientId: string
  readonly username: string | undefined
  readonly protoVer: ProtocolVersion
  readonly keepalive: number
  /**
   * the CONNACK return code of MQTT 3.1.1 (0 = accepted); for an MQTT 5 client, the 3.1.1
   * code nearest to `reasonCode` (0x86 → 4, 0x87 → 5, 0x84 → 1, 0x85 → 2, 0x88 → 3, as
   * EMQX's emqx_reason_codes:compat/2)
   */
  readonly returnCode: number
  /** MQTT 5 only: the CONNACK reason code as written (§3.2.2.2): 0x00 success, 0x86 bad user name or password, 0x87 not authorized, … */
  readonly reasonCode?: number
  readonly result: ConnackResult
  readonly sessionPresent: boolean
  readonly peer: Peer
  readonly ts: number
  /** MQTT 5 only: the client's CONNECT properties (§3.1.2.11), as on `ClientInfo` */
  readonly properties?: ConnectProperties
  /** MQTT 5 only: the CONNECT's User Properties (§3.1.2.11.8) */
  readonly userProperties?: UserProperties
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
  /**
   * MQTT 5 only: the reason code of the DISCONNECT packet that ended the connection (§3.14.2.1),
   * the client's (0x00 normal, 0x04 with will message, …) or the broker's (0x8E session taken
   * over, 0x8B server shutting down, 0x87 not authorized, …); absent when none was sent
   */
  readonly reasonCode?: number
  readonly peer: Peer
  readonly ts: number
}

/**
 * Why a session ended: its connection's reason (a clean session, or MQTT 5 Session Expiry
 * Interval 0), or `expired`: an MQTT 5 session outlived its connection by its Session Expiry
 * Interval (§3.1.2.11.2), also when that happened while the broker was stopped.
 */
export type SessionEndReason = DisconnectReason | 'expired'

/** `session.terminated`: a session ended for good (a clean session's connection closed, or an MQTT 5 session expired). */
export interface SessionTerminatedEvent {
  readonly clientId: string
  /** absent for a session that expired after a restart: the user name was not stored */
  readonly username: string | undefined
  readonly reason: SessionEndReason
  readonly ts: number
}

export type QoS = 0 | 1 | 2

export interface SubscriptionRequest {
  readonly topic: string
  readonly qos: QoS
  /** MQTT 5 only: No Local (§3.8.3.1): the client's own messages are not sent back to it [MQTT-3.8.3-3] */
  readonly nl?: boolean
  /** MQTT 5 only: Retain As Published (§3.8.3.1): forwarded messages keep their RETAIN flag [MQTT-3.3.1-12] */
  readonly rap?: boolean
  /** MQTT 5 only: Retain Handling (§3.8.3.1): 0 send retained messages at subscribe, 1 only for a new subscription, 2 never [MQTT-3.3.1-9..11] */
  readonly rh?: 0 | 1 | 2
}

/** `client.subscribe`: one topic filter of a SUBSCRIBE packet, before authorization. */
export interface SubscribeEvent extends SubscriptionRequest {
  readonly clientId: string
  readonly username: string | undefined
  readonly ts: number
}

/** What a `client.subscribe` tap may do with the subscription. */
export interface SubscribeControl {
  /**
   * Refuse the subscription: SUBACK 0x80 for this filter (MQTT 5: 0x87 Not authorized, with
   * `reason` as the SUBACK's Reason String [MQTT-3.9.2.1.2]); the client stays connected.
   */
  deny (reason: string): void
  /**
   * Replace the filter and/or QoS; later taps see the rewritten subscription. The MQTT 5
   * options (`nl`, `rap`, `rh`) stay as the client asked.
   */
  rewrite (subscription: Partial<Pick<SubscriptionRequest, 'topic' | 'qos'>>): void
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
  /** MQTT 5 only, on `session.subscribed`: No Local (§3.8.3.1) [MQTT-3.8.3-3] */
  readonly nl?: boolean
  /** MQTT 5 only, on `session.subscribed`: Retain As Published (§3.8.3.1) */
  readonly rap?: boolean
  /** MQTT 5 only, on `session.subscribed`: Retain Handling 0/1/2 (§3.8.3.1) */
  readonly rh?: 0 | 1 | 2
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
  /**
   * `disconnect` closes the publisher's connection instead of dropping the one message. To an
   * MQTT 5 publisher a denied PUBLISH is answered with PUBACK/PUBREC 0x87 Not authorized (QoS
   * 1/2) and `disconnect` sends DISCONNECT 0x87; both carry `reason` as their Reason String.
   */
  | { readonly result: 'deny', readonly reason?: string, readonly disconnect?: boolean, readonly rememberMs?: number }
  | { readonly result: 'ignore' }

export interface Message {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: QoS
  readonly retain: boolean
  /**
   * MQTT 5 only: the PUBLISH properties (§3.3.2.3); absent when the message has none (every
   * message of an MQTT 3.1.1 publisher, unless a plugin added some)
   */
  readonly properties?: MessageProperties
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
  /**
   * Drop the message: it is acknowledged to the publisher but routed to nobody. An MQTT 5
   * publisher's PUBACK/PUBREC says 0x10 No matching subscribers, with `reason` as its Reason
   * String (as EMQX, a drop is not an error to the publisher).
   */
  drop (reason: string): void
  /**
   * Change topic, payload, retain or (MQTT 5) properties before routing. `properties`
   * replaces the message's properties whole (spread `current.properties` to keep the others;
   * `undefined` removes them all); subscribers get what the last rewrite left. QoS is not
   * rewritable: the publisher's acknowledgement already depends on it.
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
  /** MQTT 5 only: the delivered message's properties (§3.3.2.3), when it had any */
  readonly properties?: MessageProperties
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
