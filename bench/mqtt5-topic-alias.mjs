// Cost of outbound topic aliases (outbound_topic_alias, docs/mqtt5.md): encoding one MQTT 5
// QoS 0 PUBLISH as aedes writes it, without and with the alias (aedes patch 004, lib/write.js).
//   flock /tmp/tapmq-bench.lock node bench/mqtt5-topic-alias.mjs
import mqtt from 'mqtt-packet'
import { prepareOutboundPublish } from '../node_modules/aedes/lib/write.js'
const topic = 'sensors/building-7/floor-3/room-12/temperature'
const packet = { cmd: 'publish', topic, payload: Buffer.alloc(64), qos: 0, retain: false, dup: false, properties: undefined }
const opts = { protocolVersion: 5 }
function run (aliases, n) {
  const client = { _outboundAliases: aliases ? { max: 10, next: 1, byTopic: new Map(), byAlias: [] } : null, maximumPacketSize: undefined }
  let bytes = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const out = aliases ? prepareOutboundPublish(client, packet) : packet
    bytes += mqtt.generate(out, opts).length
  }
  return { ns: Number(process.hrtime.bigint() - t0) / n, bytes: bytes / n }
}
for (let r = 0; r < 3; r++) {
  run(false, 2e5); run(true, 2e5)
  console.log('off', JSON.stringify(run(false, 1e6)), 'on', JSON.stringify(run(true, 1e6)))
}
