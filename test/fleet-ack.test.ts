// The controller's end-to-end telemetry ack (docs/protocol.md, "Telemetry acknowledgements"),
// seen from the agent: a batch stays in the buffer until its ack; without one it is sent
// again after mqtt.ackTimeoutMs, then one batch at a time with a pause; acks that match no
// open batch are ignored, malformed ones refused with a log line. Real SQLite buffers, a real
// Mosquitto, and a plain MQTT client in the controller's place.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { TelemetryBuffer } from '../agent/telemetry/buffer.js';
import { telemetryConfig } from '../agent/telemetry/defaults.js';
import { decodeBatch, type DecodedBatch } from '../protocol/telemetry-batch.js';
import { TelemetryDrain, type DrainStats } from '../agent/fleet/drain.js';
import { batchId, encodeAck, parseAck } from '../protocol/telemetry-ack.js';
import { parseTopic, topics } from '../protocol/topics.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, watcher } from './fleet-support.js';

function logCapture(): { log: pino.Logger; lines: { level: number; msg: string; [k: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as { level: number; msg: string });
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

function buffer(t: Test): TelemetryBuffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleet-ack-'));
  const b = new TelemetryBuffer({ dir, config: telemetryConfig({}) });
  b.startSync();
  t.teardown(() => {
    b.stopSync();
    rmSync(dir, { recursive: true, force: true });
  });
  return b;
}

t.test('ack payloads: what parseAck refuses, and why', async (t) => {
  const batch = batchId(Buffer.from('a message'));
  const good = encodeAck({ stream: 'metrics', batch, first: 4, last: 9, count: 6, stored: 5, duplicates: 1 });
  t.same(parseAck(good, 'metrics'), { v: 1, stream: 'metrics', batch, first: 4, last: 9, count: 6, stored: 5, duplicates: 1 }, 'a well-formed ack');
  const B = `"batch":"${batch}"`;
  const cases: [string, string | Buffer, RegExp][] = [
    ['not JSON', 'ack!', /not valid JSON/],
    ['an array', '[1,2]', /not a JSON object/],
    ['another version', '{"v":2,"stream":"metrics","first":1,"last":1,"count":1}', /version 2 is not 1/],
    ['the stream of another topic', '{"v":1,"stream":"events","first":1,"last":1,"count":1}', /does not match the topic's stream "metrics"/],
    ['no batch id', '{"v":1,"stream":"metrics","first":1,"last":1,"count":1}', /"batch" must be the sha256/],
    ['a batch id that is not a sha256', '{"v":1,"stream":"metrics","batch":"abc","first":1,"last":1,"count":1}', /"batch" must be the sha256/],
    ['a seq that is not an integer', `{"v":1,"stream":"metrics",${B},"first":"1","last":2,"count":1}`, /"first" and "last" must be positive integers/],
    ['first above last', `{"v":1,"stream":"metrics",${B},"first":5,"last":2,"count":1}`, /"first" 5 is above "last" 2/],
    ['more records than the range holds', `{"v":1,"stream":"metrics",${B},"first":1,"last":2,"count":3}`, /"count" must be 1..2/],
    ['too large', Buffer.alloc(5000, 32), /exceeds 4096/],
  ];
  for (const [what, payload, problem] of cases) {
    const r = parseAck(Buffer.from(payload), 'metrics');
    t.match(r, { problem }, `refused: ${what}`);
  }
});

t.test('drain with controller acks: PUBACK keeps the batch, a timeout re-sends it, an unknown ack is ignored', async (t) => {
  const b = buffer(t);
  const { log, lines } = logCapture();
  const sent: DecodedBatch[] = [];
  const raw: Buffer[] = [];
  // Every publish is PUBACKed at once: only the controller's ack may delete.
  const drain = new TelemetryDrain(b, async (_stream, payload) => { sent.push(decodeBatch(payload)); raw.push(payload); }, {
    inflight: 4, recordsPerSecond: 10_000, batchMaxBytes: 64 * 1024, idlePollMs: 20, ack: 'controller', ackTimeoutMs: 200, ackRetryMaxMs: 300,
  }, log);
  t.teardown(() => drain.pause());
  const seqs = [1, 2, 3].map((i) => b.record('metrics', { i }));
  await b.flush();
  drain.resume();
  await waitFor(() => drain.stats().awaitingAck === 1, { what: 'the batch PUBACKed and waiting for its ack' });
  t.equal(b.stats().depth, 3, 'a PUBACK alone deletes nothing');
  t.same(sent[0]!.records.map((r) => r.seq), seqs, 'the batch holds the three records');

  const id0 = batchId(raw[0]!);
  t.equal(drain.onAck({ stream: 'metrics', batch: id0, first: seqs[2]! + 1, last: seqs[2]! + 10, count: 3 }), 0, 'an ack for records not out confirms nothing');
  t.equal(drain.onAck({ stream: 'events', batch: id0, first: seqs[0]!, last: seqs[2]!, count: 3 }), 0, 'nor an ack of another stream');
  t.equal(drain.onAck({ stream: 'metrics', batch: id0, first: 1, last: Number.MAX_SAFE_INTEGER, count: 3 }), 0, 'nor one whose range only covers the batch');
  t.equal(drain.onAck({ stream: 'metrics', batch: batchId(Buffer.from('other')), first: seqs[0]!, last: seqs[2]!, count: 3 }), 0, 'nor one naming another message');
  t.equal(drain.stats().acksUnmatched, 4, 'all counted as unmatched');
  t.equal(b.stats().depth, 3, 'and ignored');

  await waitFor(() => sent.length >= 2, { timeoutMs: 5000, what: 'the batch sent again after the ack timeout' });
  t.same(sent[1]!.records.map((r) => r.seq), seqs, 'the same records go again');
  t.ok(drain.stats().ackTimeouts >= 1, 'counted as an ack timeout');
  t.ok(lines.some((l) => l.level === 40 && /no ack from the controller/.test(l.msg)), 'and logged as a warning');
  t.equal(b.stats().depth, 3, 'still in the buffer');

  const parsed = parseAck(Buffer.from('{"v":1,"stream":"metrics"'), 'metrics');
  t.ok('problem' in parsed);
  if ('problem' in parsed) drain.refuseAck(topics.telemetryAck('dev', 'metrics'), parsed.problem);
  t.equal(drain.stats().acksRefused, 1, 'a malformed ack is counted');
  t.match(lines.find((l) => /refused a telemetry ack/.test(l.msg)), { level: 40, msg: 'refused a telemetry ack: ack is not valid JSON', topic: 'edge/v1/dev/telemetry/metrics/ack' },
    'and logged with the reason and topic');

  await waitFor(() => drain.stats().inflight === 1, { what: 'the re-sent batch out' });
  t.equal(drain.onAck({ stream: 'metrics', batch: batchId(raw[raw.length - 1]!), first: seqs[0]!, last: seqs[2]!, count: 3 }), 1, 'the ack naming the open batch confirms it');
  t.equal(b.stats().depth, 0, 'its records leave the buffer');
  t.match(drain.stats(), { batchesAcked: 1, recordsAcked: 3, inflight: 0, resendAfter: null }, 'confirmed once; no pause pending');
});

t.test('drain with broker acks: the PUBACK deletes, controller acks are not used', async (t) => {
  const b = buffer(t);
  const { log } = logCapture();
  const drain = new TelemetryDrain(b, async () => undefined, { inflight: 4, recordsPerSecond: 10_000, batchMaxBytes: 64 * 1024, idlePollMs: 20, ack: 'broker' }, log);
  t.teardown(() => drain.pause());
  b.record('metrics', { i: 1 });
  await b.flush();
  drain.resume();
  await waitFor(() => b.stats().depth === 0, { what: 'deleted on PUBACK' });
  t.equal(drain.onAck({ stream: 'metrics', batch: batchId(Buffer.from('x')), first: 1, last: 1, count: 1 }), 0, 'acks are ignored in broker mode');
  t.match(drain.stats(), { ackMode: 'broker', batchesAcked: 1, ackTimeouts: 0 });
});

t.test('over a real broker: no ack means re-sends one at a time, spaced; bad acks are refused; acks drain the buffer', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const ackTimeoutMs = 400;
  const a = await startAgent(broker.url, 'ack-dev', { mqtt: { ackTimeoutMs, ackRetryMaxMs: 800 } });
  t.teardown(() => a.stop());
  // The controller's place: sees every batch, acks only when told to.
  const w = await watcher(broker.url, [topics.telemetry('ack-dev', '+')]);
  t.teardown(() => w.close());
  const arrivals: { at: number; batch: DecodedBatch }[] = [];
  let acking = false;
  w.client.on('message', (topic, payload) => {
    if (parseTopic(topic)?.kind !== 'telemetry') return;
    const batch = decodeBatch(payload);
    arrivals.push({ at: Date.now(), batch });
    if (acking) {
      void w.client.publishAsync(topics.telemetryAck('ack-dev', batch.stream),
        encodeAck({ stream: batch.stream, batch: batchId(payload), first: batch.first, last: batch.last, count: batch.count, stored: batch.count, duplicates: 0 }), { qos: 1 });
    }
  });
  const stats = (): DrainStats => a.link.status().telemetry as DrainStats;
  const tel = a.agent.telemetry;
  for (const stream of ['metrics', 'events', 'logs']) for (let i = 0; i < 2; i++) tel.record(stream, { i });
  await tel.flush();
  a.link.kickTelemetry();

  await waitFor(() => arrivals.length >= 3 + 4, { timeoutMs: 20_000, what: () => `the three batches and four re-sends (have ${arrivals.length})` });
  const first = arrivals.slice(0, 3);
  t.same(first.map((x) => x.batch.stream).sort(), ['events', 'logs', 'metrics'], 'one batch per stream went out at once');
  const resends = arrivals.slice(3);
  const original = new Set(first.map((x) => `${x.batch.stream}:${x.batch.first}-${x.batch.last}`));
  t.ok(resends.every((x) => original.has(`${x.batch.stream}:${x.batch.first}-${x.batch.last}`)), 'the re-sends carry the same records');
  t.ok(resends[0]!.at - first[2]!.at >= ackTimeoutMs - 50, `the first re-send waited for the ack timeout (${resends[0]!.at - first[2]!.at} ms)`);
  const gaps = resends.slice(1).map((x, k) => x.at - resends[k]!.at);
  t.ok(gaps.every((g) => g >= ackTimeoutMs - 50), `one batch at a time, each waiting for its own timeout: gaps ${gaps.join(', ')} ms`);
  t.equal(tel.stats().depth, 6, 'nothing left the buffer without an ack');
  t.ok(stats().ackTimeouts >= 4, `ack timeouts counted (${stats().ackTimeouts})`);
  t.equal(stats().batchesAcked, 0, 'nothing confirmed');

  const ackTopic = topics.telemetryAck('ack-dev', 'metrics');
  await w.client.publishAsync(ackTopic, encodeAck({ stream: 'metrics', batch: batchId(Buffer.from('unknown')), first: 900_000, last: 900_001, count: 2, stored: 2, duplicates: 0 }), { qos: 1 });
  await waitFor(() => stats().acksUnmatched >= 1, { what: 'the ack for an unknown batch counted' });
  t.equal(tel.stats().depth, 6, 'an ack for an unknown batch deletes nothing');

  for (const bad of ['{', '[]', '{"v":1,"stream":"events","first":1,"last":2,"count":2}', '{"v":1,"stream":"metrics","first":3,"last":1,"count":1}']) {
    await w.client.publishAsync(ackTopic, bad, { qos: 1 });
  }
  await waitFor(() => stats().acksRefused >= 4, { what: 'four malformed acks refused' });
  t.equal(a.link.state, 'connected', 'the link stays up');
  t.equal(tel.stats().depth, 6, 'malformed acks delete nothing');

  acking = true;
  await waitFor(() => tel.stats().depth === 0, { timeoutMs: 20_000, what: 'the buffer drained by the acks' });
  t.ok(stats().batchesAcked >= 3, `every stream confirmed (${stats().batchesAcked} batches)`);
  t.equal(stats().resendAfter, null, 'an ack ends the pause');
});
