// tapmq's public plugin SDK: the only module a plugin imports.
export { definePlugin, STAGE } from './plugin.ts'
export type {
  BrokerControl, BrokerNode, BrokerStats, BrokerView, ClientSummary, ConfigView, Counter, DecisionTapOptions, Gauge, Histogram, Hooks, Logger,
  PluginConfFile, PluginHealth, PluginHost, PluginInstance, PluginMetrics, PluginState, PluginStatus, PluginsControl, PublishRequest, SubscriptionInfo,
  TapmqPlugin, Telemetry, TopicTreeNode
} from './plugin.ts'
export type * from './events.ts'
export { isThenable, tapDecision, type DecisionTap, type MaybePromise } from './decisions.ts'
export { Conf, parseConf, readConfFile, type ConfEntry } from './conf.ts'
export { compileTopicFilter, isValidTopicFilter, topicMatches } from './topic.ts'
export { MQTT_ADDRESS_SCHEMES, MQTT_CLIENT_DEFAULTS, mqttClientOptions, mqttClientSchema, readMqttClient, type MqttClientDefaults, type MqttClientFields, type MqttClientKey } from './mqtt-client.ts'
export * from './errors.ts'
export { Type, type Static, type TSchema } from '@sinclair/typebox'
