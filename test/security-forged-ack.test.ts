// A forged telemetry ack (issue 26, item 3): anyone who can publish on a device's ack topic
// (a broker ACL mistake, a compromised peer) sends `first: 1, last: 2^53-1` while a batch is
// out. The agent deletes records only on an ack naming exactly the message it sent (its
// sha256, stream, first, last and count): forged acks are refused or ignored and counted, and
// every record answered 201 reaches the controller once it is back. Real parts: the agent
// daemon from dist/, Mosquitto, the controller on its own SQLite file.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { Rig, DEVICE } from '../scripts/reliability/rig.js';
import { topics } from '../protocol/topics.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);

interface DrainStats { acksRefused: number; acksUnmatched: number; awaitingAck: number; batchesAcked: number }

t.test('forged acks delete nothing; every record answered 201 reaches the controller', async (t) => {
  const rig = await new Rig({ noController: true, agent: { mqtt: { telemetryAck: 'controller', ackTimeoutMs: 1500, ackRetryMaxMs: 1500 } } }).start();
  t.teardown(() => rig.stop());
  const drain = async (): Promise<DrainStats> => ((await (await fetch(`${rig.url}/v1/status`)).json()) as { fleet: { telemetry: DrainStats } }).fleet.telemetry;

  // The attacker: subscribes to nothing, publishes on the ack topic.
  const attacker = await mqtt.connectAsync(rig.broker.url, { protocolVersion: 5, clientId: 'forger', reconnectPeriod: 0 });
  t.teardown(() => attacker.endAsync());

  const seqs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${rig.url}/v1/telemetry/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ payload: { i } }) });
    t.equal(res.status, 201, `record ${i} answered 201`);
    seqs.push(...((await res.json()) as { seqs: number[] }).seqs);
  }
  await waitFor(async () => (await drain()).awaitingAck >= 1, { timeoutMs: 15_000, what: 'a batch out, waiting for its ack (no controller yet)' });
  const depth = async (): Promise<number> => ((await rig.telemetryStats()).streams.events?.depth ?? 0) as number;
  const queued = await depth();
  t.equal(queued, 3, 'the three records wait in the buffer');

  const ack = (extra: Record<string, unknown>): string => JSON.stringify({ v: 1, stream: 'events', first: 1, last: Number.MAX_SAFE_INTEGER, count: 1, stored: 1, duplicates: 0, ...extra });
  const forged: [string, string][] = [
    ['the range 1..2^53-1 (the reported attack)', ack({})],
    ['the same with a made-up batch id', ack({ batch: randomBytes(32).toString('hex') })],
    ['a made-up batch id and count 3', ack({ batch: randomBytes(32).toString('hex'), count: 3 })],
  ];
  const before = await drain();
  for (const [what, payload] of forged) {
    await attacker.publishAsync(topics.telemetryAck(DEVICE, 'events'), payload, { qos: 1 });
    t.comment(`forged: ${what}`);
  }
  // Until all three are counted, or the buffer lost records (what the old code did).
  await waitFor(async () => { const d = await drain(); return d.acksRefused + d.acksUnmatched >= before.acksRefused + before.acksUnmatched + forged.length || (await depth()) < queued; },
    { timeoutMs: 10_000, what: 'the three forged acks counted' });
  const after = await drain();
  t.equal(after.acksRefused - before.acksRefused, 1, 'the ack without a batch id is refused as malformed');
  t.equal(after.acksUnmatched - before.acksUnmatched, 2, 'the acks naming no batch that was sent are counted as unmatched');
  t.equal(after.batchesAcked, 0, 'no batch confirmed');
  t.equal(await depth(), queued, 'nothing left the buffer');

  // The controller comes: the batch is sent again, stored and acked for real.
  await rig.startController();
  await waitFor(async () => (await depth()) === 0, { timeoutMs: 30_000, what: 'the buffer drained by real acks' });
  const stored = new Set(rig.store.telemetry(DEVICE, { stream: 'events' }).map((r) => r.seq));
  t.ok(seqs.every((s) => stored.has(s)), `every seq answered 201 is stored at the controller (${seqs.join(', ')})`);
  t.equal(stored.size, 3, 'the three records reached the controller');
  t.ok((await drain()).batchesAcked >= 1, 'the controller\'s ack confirmed the batch');
});
