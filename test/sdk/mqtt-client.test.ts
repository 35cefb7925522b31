// sdk/mqtt-client.ts: the MQTT client connection keys of a plugin (bridge, zmq-gateway),
// read from a real .conf file, checked by the schema piece, and used by a real mqtt.js client.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import test from 'ava'
import mqtt from 'mqtt'
import { type AuthRequest, Conf, mqttClientOptions, mqttClientSchema, readMqttClient, Type } from '../../sdk/index.ts'
import { tapping, testBroker } from '../helpers/broker.ts'
import { once, Recorder, tmpDir, type Teardown } from '../helpers/mqtt.ts'

const key = (name: string) => `my.mqtt.${name}`

async function confFile (t: Teardown, text: string): Promise<string> {
  const file = join(await tmpDir(t), 'my.conf')
  await writeFile(file, text)
  return file
}

test('reads every connection key under the prefix the plugin names', async (t) => {
  const conf = Conf.fromFile(await confFile(t, [
    '# a client of another broker',
    'my.mqtt.address = tls+mqtt-tcp://broker.example:8883',
    'my.mqtt.proto_ver = 5',
    'my.mqtt.clientid = edge-1',
    'my.mqtt.keepalive = 2m',
    'my.mqtt.clean_start = FALSE',
    'my.mqtt.username = alice',
    'my.mqtt.password = secret',
    'other.mqtt.proto_ver = 3',
    ''
  ].join('\n')))
  t.deepEqual(readMqttClient(conf, key), {
    address: 'tls+mqtt-tcp://broker.example:8883',
    protoVer: 5,
    clientId: 'edge-1',
    keepalive: 120,
    cleanStart: false,
    username: 'alice',
    password: 'secret'
  })
})

test('unset keys take the defaults (NanoMQ\'s, or the plugin\'s own); an empty clientid is no client id', async (t) => {
  const conf = Conf.fromFile(await confFile(t, 'my.mqtt.clientid =\nmy.mqtt.keepalive = 30\n'))
  t.deepEqual(readMqttClient(conf, key), {
    address: undefined, protoVer: 4, clientId: undefined, keepalive: 30, cleanStart: true, username: undefined, password: undefined
  })
  t.like(readMqttClient(conf, key, { protoVer: 3, keepalive: 10, cleanStart: false }), { protoVer: 3, keepalive: 30, cleanStart: false })
})

const BAD: Array<[string, RegExp]> = [
  ['my.mqtt.address = mqtt-quic://h:14567', /my\.mqtt\.address: "mqtt-quic:\/\/h:14567" .*scheme mqtt-tcp, tls\+mqtt-tcp, mqtt, mqtts/],
  ['my.mqtt.proto_ver = 6', /my\.mqtt\.proto_ver: "6" \(allowed: 3 \| 4 \| 5\)/],
  ['my.mqtt.keepalive = 70000', /my\.mqtt\.keepalive: "70000" \(allowed: an integer from 0 to 65535\)/],
  ['my.mqtt.keepalive = 1500ms', /my\.mqtt\.keepalive: "1500ms" \(allowed: whole seconds from 0 to 65535, e\.g\. 60\)/],
  ['my.mqtt.keepalive = 19h', /my\.mqtt\.keepalive: "19h" \(allowed: whole seconds/],
  ['my.mqtt.keepalive = soon', /my\.mqtt\.keepalive: "soon" \(allowed: a whole number with a unit/],
  ['my.mqtt.clean_start = yes', /my\.mqtt\.clean_start: "yes" \(allowed: true \| false\)/]
]
for (const [line, message] of BAD) {
  test(`an error names the file and line: ${line}`, async (t) => {
    const file = await confFile(t, `# line 1\nmy.mqtt.username = u\n${line}\n`)
    const err = t.throws(() => readMqttClient(Conf.fromFile(file), key))
    t.is((err as { code?: string }).code, 'TAPMQ_ERR_CONF_VALUE')
    t.true(err!.message.startsWith(`${file}:3: `), err!.message)
    t.regex(err!.message, message)
  })
}

test('the schema piece: defaults are filled in, what the reader returns passes, bad fields do not', (t) => {
  const Client = Type.Object(mqttClientSchema({ keepalive: 30 }))
  t.deepEqual(Value.Default(Client, { address: 'mqtt-tcp://h:1883' }), { address: 'mqtt-tcp://h:1883', protoVer: 4, keepalive: 30, cleanStart: true })
  const read = readMqttClient(new Conf([{ key: 'my.mqtt.address', value: 'mqtt://h', location: { file: 'inline', line: 1 } }]), key)
  t.true(Value.Check(Client, read))
  t.false(Value.Check(Client, { ...read, address: 'http://h' }))
  t.false(Value.Check(Client, { ...read, protoVer: 6 }))
  t.false(Value.Check(Client, { ...read, keepalive: 65536 }))
  t.false(Value.Check(Client, { ...read, clientId: '' }))
})

test('mqtt.js options: NanoMQ schemes become mqtt.js ones, default ports, MQIsdp for 3.1', (t) => {
  const fields = { protoVer: 3, keepalive: 15, cleanStart: false, username: 'u', password: 'p' } as const
  t.deepEqual(mqttClientOptions({ ...fields, address: 'mqtt-tcp://broker.example' }, 'id-1'), {
    protocol: 'mqtt', host: 'broker.example', port: 1883, protocolVersion: 3, protocolId: 'MQIsdp',
    clientId: 'id-1', keepalive: 15, clean: false, username: 'u', password: 'p'
  })
  t.like(mqttClientOptions({ ...fields, protoVer: 5, address: 'tls+mqtt-tcp://[::1]', clientId: 'own' }), {
    protocol: 'mqtts', host: '::1', port: 8883, protocolVersion: 5, protocolId: 'MQTT', clientId: 'own'
  })
  t.like(mqttClientOptions({ ...fields, protoVer: 4, address: 'mqtts://h:8884' }), { protocol: 'mqtts', port: 8884, protocolId: 'MQTT' })
})

// aedes 1.2 speaks MQTT 3.1 and 3.1.1 only; test/bridge/mosquitto.test.ts covers 5
for (const protoVer of ['3', '4'] as const) {
  test(`a real client connects with what the conf file says (proto_ver ${protoVer})`, async (t) => {
    const auth = new Recorder<AuthRequest>()
    const broker = await testBroker(t, { plugins: [tapping('rec', (hooks) => hooks.auth.tap('rec', auth.push))] })
    const conf = Conf.fromFile(await confFile(t, [
      `my.mqtt.address = mqtt-tcp://127.0.0.1:${broker.port}`,
      `my.mqtt.proto_ver = ${protoVer}`,
      'my.mqtt.keepalive = 1m',
      'my.mqtt.clean_start = true',
      'my.mqtt.username = alice',
      'my.mqtt.password = secret',
      ''
    ].join('\n')))
    const fields = readMqttClient(conf, key)
    const client = mqtt.connect({ ...mqttClientOptions({ ...fields, address: fields.address! }, `sdk-client-${protoVer}`), reconnectPeriod: 0 })
    t.teardown(() => client.endAsync(true).catch(() => {}))
    await once(client, 'connect')
    const request = await auth.find((item) => item.clientId === `sdk-client-${protoVer}`)
    t.like(request, { protoVer: Number(protoVer), protoName: protoVer === '3' ? 'MQIsdp' : 'MQTT', keepalive: 60, cleanSession: true, username: 'alice' })
    t.is(request.password?.toString(), 'secret')
  })
}
