// The protocol's pure parts: topic parsing, artifact frames, desired-state validation and how a
// device combines its own desired state with its groups'.
import t from 'tap';
import { decodeFrame, encodeFrame } from '../protocol/frame.js';
import { effectiveDesired, parseDesired, type DesiredDoc } from '../agent/fleet/desired.js';
import { addressedTo, parseTopic, topics } from '../protocol/topics.js';

const sha = (c: string): string => c.repeat(64);

t.test('topics round-trip through parseTopic', async (t) => {
  t.same(parseTopic(topics.telemetry('dev-1', 'metrics')), { kind: 'telemetry', device: 'dev-1', stream: 'metrics' });
  t.same(parseTopic(topics.telemetryAck('dev-1', 'metrics')), { kind: 'telemetryAck', device: 'dev-1', stream: 'metrics' }, 'the ack topic of a stream');
  t.same(parseTopic(topics.telemetry('dev-1', 'ack')), { kind: 'telemetry', device: 'dev-1', stream: 'ack' }, 'a stream named "ack" is still a stream');
  t.equal(parseTopic('edge/v1/dev-1/telemetry/metrics/nack'), undefined, 'nothing else under a stream');
  t.same(parseTopic(topics.groupDesired('lab')), { kind: 'groupDesired', group: 'lab' });
  t.same(parseTopic(topics.cmdReply('dev-1', 'edge-fleet-cli')), { kind: 'cmdReply', device: 'dev-1' }, 'an MQTT 5 reply to one requester');
  t.same(parseTopic(topics.cmdRes('dev-1')), { kind: 'cmdRes', device: 'dev-1' });
  t.same(parseTopic(topics.artifactReq('d')), { kind: 'artifactReq', device: 'd' });
  t.equal(parseTopic('edge/v2/dev-1/status'), undefined, 'another protocol version is not ours');
  t.equal(parseTopic('edge/v1/dev-1/telemetry/a/b'), undefined, 'a stream is one level');
  t.equal(parseTopic('edge/v1/dev-1/whatever'), undefined);
});

t.test('a device acts only on its own topics and its groups', async (t) => {
  const mine = (topic: string): boolean => addressedTo(parseTopic(topic)!, 'dev-1', ['lab']);
  t.ok(mine(topics.cmd('dev-1')));
  t.notOk(mine(topics.cmd('dev-2')), "another device's command");
  t.notOk(mine(topics.desired('dev-2')), "another device's desired state");
  t.notOk(mine(topics.artifactRes('dev-2')), "another device's artifact chunks");
  t.notOk(mine(topics.telemetryAck('dev-2', 'metrics')), "another device's acks");
  t.ok(mine(topics.groupDesired('lab')));
  t.notOk(mine(topics.groupDesired('field')), 'a group it is not in');
});

t.test('artifact frames', async (t) => {
  const body = Buffer.from([1, 2, 3, 250]);
  const f = decodeFrame<{ id: string; index: number }>(encodeFrame({ id: 'x', index: 7 }, body));
  t.same(f.header, { id: 'x', index: 7 });
  t.same([...f.body], [...body]);
  t.throws(() => decodeFrame(Buffer.from([0, 0])), /shorter than its 4-byte length prefix/);
  t.throws(() => decodeFrame(Buffer.from([0, 0, 0, 9, 0x7b])), /exceeds/);
  t.throws(() => decodeFrame(Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('[]')])), /not a JSON object/);
});

t.test('desired state: validation', async (t) => {
  const good = { v: 1, models: [{ name: 'digits', version: '1.0.0', sha256: sha('a'), size: 10 }] };
  t.same(parseDesired(Buffer.from(JSON.stringify(good))), good);
  t.equal(parseDesired(Buffer.alloc(0)), null, 'an empty retained message clears');
  const bad = (doc: unknown): string => (parseDesired(Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc))) as { problems: string }).problems;
  t.match(bad('{'), /not valid JSON/);
  t.match(bad({ v: 2, models: [] }), /\/v/);
  t.match(bad({ v: 1, models: [{ name: 'digits', version: '1', sha256: 'XYZ', size: 1 }] }), /sha256/);
  t.match(bad({ v: 1, models: [{ name: 'digits', version: '1', sha256: sha('a'), size: -1 }] }), /size/);
  t.match(bad({ v: 1, models: [{ name: '../x', version: '1', sha256: sha('a'), size: 1 }] }), /name/);
  t.match(bad({ v: 1, models: [good.models[0], good.models[0]] }), /listed twice/);
});

t.test('desired state: the device document wins, then groups in config order', async (t) => {
  const doc = (models: [string, string][]): DesiredDoc => ({ v: 1, models: models.map(([name, version]) => ({ name, version, sha256: sha('b'), size: 1 })) });
  const device = doc([['digits', '3.0.0']]);
  const lab = doc([['digits', '2.0.0'], ['ocr', '1.0.0']]);
  const all = doc([['ocr', '0.9.0'], ['kws', '1.1.0']]);
  const eff = effectiveDesired(device, [lab, all]);
  t.same([...eff.values()].map((m) => `${m.name}@${m.version}`).sort(), ['digits@3.0.0', 'kws@1.1.0', 'ocr@1.0.0']);
  t.same([...effectiveDesired(undefined, [lab, all]).values()].map((m) => `${m.name}@${m.version}`).sort(), ['digits@2.0.0', 'kws@1.1.0', 'ocr@1.0.0']);
  t.equal(effectiveDesired(undefined, [undefined]).size, 0);
});
