// nanomq_gateway.conf: NanoMQ 0.8.0's key names, the later documented ones, and errors.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import gateway from '../../plugins/zmq-gateway/index.ts'
import { Conf } from '../../sdk/index.ts'
import { tmpDir } from '../helpers/mqtt.ts'

const parse = (conf: Conf) => gateway.conf!.parse!(conf)

async function confFile (t: Parameters<typeof tmpDir>[0], text: string): Promise<string> {
  const file = join(await tmpDir(t), 'nanomq_gateway.conf')
  await writeFile(file, text)
  return file
}

/** The keys of NanoMQ 0.8.0's etc/nanomq_gateway.conf, values as shipped. */
const NANOMQ_08 = `gateway.mqtt.address=mqtt-tcp://broker.emqx.io:1883
gateway.zmq.sub.address=tcp://127.0.0.1:5560
gateway.zmq.pub.address=tcp://127.0.0.1:5559
## gateway.zmq.sub_pre=sub_prefix
gateway.mqtt.subscription.topic=topic/sub
gateway.mqtt.proto_ver=4
gateway.mqtt.keepalive=60
gateway.mqtt.clean_start=true
gateway.mqtt.username=username
gateway.mqtt.password=passwd
gateway.mqtt.forward=topic/pub
gateway.mqtt.subscription=topic/sub
gateway.mqtt.parallel=2
`

test('NanoMQ 0.8.0 keys', async (t) => {
  t.deepEqual(parse(Conf.fromFile(await confFile(t, NANOMQ_08))), {
    mqtt: {
      address: 'mqtt-tcp://broker.emqx.io:1883', protoVer: 4, clientId: undefined, keepalive: 60, cleanStart: true,
      username: 'username', password: 'passwd', reconnectInterval: 1000
    },
    pubTopic: 'topic/pub',
    pubQos: 0,
    subTopic: 'topic/sub',
    subQos: 0,
    zmq: { subAddress: 'tcp://127.0.0.1:5560', pubAddress: 'tcp://127.0.0.1:5559', subPrefix: '', pubPrefix: undefined }
  })
})

test('the later documented spellings, prefixes, and no address (in process)', async (t) => {
  const options = parse(Conf.fromFile(await confFile(t, `gateway.zmq.sub_address=tcp://10.0.0.2:6000
gateway.zmq.pub_address=ipc:///tmp/zmq-pub
gateway.zmq.sub_pre=sensor.
gateway.zmq.pub_pre=cmd
gateway.mqtt.pub_topic=zmq/in
gateway.mqtt.sub_topic=zmq/out/#
gateway.mqtt.sub_qos=1
`)))
  t.like(options, {
    mqtt: { address: undefined },
    pubTopic: 'zmq/in',
    subTopic: 'zmq/out/#',
    subQos: 1,
    zmq: { subAddress: 'tcp://10.0.0.2:6000', pubAddress: 'ipc:///tmp/zmq-pub', subPrefix: 'sensor.', pubPrefix: 'cmd' }
  })
})

const BAD: Array<[string, RegExp]> = [
  ['gateway.mqtt.forward=a/#', /gateway\.mqtt\.forward.*without wildcards/],
  ['gateway.zmq.sub.address=127.0.0.1:5560', /gateway\.zmq\.sub\.address.*ZeroMQ endpoint/],
  ['gateway.mqtt.proto_ver=2', /proto_ver.*3 \| 4 \| 5/]
]
for (const [line, message] of BAD) {
  test(`an error names file and line: ${line}`, async (t) => {
    const file = await confFile(t, `gateway.mqtt.subscription=x\n${line}\n`)
    const err = t.throws(() => parse(Conf.fromFile(file)))
    t.true(err!.message.startsWith(`${file}:2: `), err!.message)
    t.regex(err!.message, message)
  })
}

test('a gateway with neither a pub nor a sub topic is refused', async (t) => {
  const file = await confFile(t, 'gateway.zmq.sub.address=tcp://127.0.0.1:5560\n')
  t.throws(() => parse(Conf.fromFile(file)), { code: 'TAPMQ_ERR_CONF_MISSING', message: /gateway\.mqtt\.forward is required/ })
})

test('the stock etc/gateway.conf parses: in process, NanoMQ topics and endpoints', (t) => {
  const options = parse(Conf.fromFile(new URL('../../etc/gateway.conf', import.meta.url).pathname))
  t.like(options, {
    mqtt: { address: undefined },
    pubTopic: 'topic/pub',
    subTopic: 'topic/sub',
    zmq: { subAddress: 'tcp://127.0.0.1:5560', pubAddress: 'tcp://127.0.0.1:5559', subPrefix: '' }
  })
})
