// Issue 17, case 1: a record that compresses badly (3,000 random bytes in base64) accepted
// with 201 while the drain's token bucket runs low must reach the broker, not be quarantined
// as "too large": the bucket shapes how much goes now, only mqtt.batchMaxBytes makes a record
// poison. The real daemon (dist/) as a child process, a real Mosquitto, the real SQLite file.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import mqtt from 'mqtt';
import { spawnAgent } from './helpers/agent.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { postJson } from './helpers/model-packages.js';
import { waitFor } from './helpers/wait.js';
import { decodeBatch } from '../agent/telemetry/encoding.js';

t.setTimeout(120_000);

const DEVICE = 'big-rec';

t.test('a 3 KB incompressible record among small ones at 10 records/s is delivered, not quarantined', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  // What the broker passes on, decoded: the big record must arrive whole.
  const seen = new Map<number, unknown>();
  const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'big-rec-watch' });
  t.teardown(() => sub.endAsync());
  sub.on('message', (_topic, payload) => {
    for (const r of decodeBatch(payload).records) seen.set(r.seq, r.payload);
  });
  await sub.subscribeAsync(`edge/v1/${DEVICE}/telemetry/+`, { qos: 1 });

  const agent = spawnAgent({ deviceId: DEVICE, mqtt: { url: broker.url, drainRecordsPerSecond: 10, telemetryAck: 'broker' } });
  t.teardown(async () => {
    agent.kill('SIGKILL');
    await agent.exited();
    rmSync(agent.dir, { recursive: true, force: true });
  });
  const url = await agent.ready(60_000);
  await waitFor(async () => (await (await fetch(`${url}/v1/status`)).json() as { fleet: { state: string } }).fleet.state === 'connected',
    { timeoutMs: 20_000, what: 'the agent connected to the broker' });

  const statuses: number[] = [];
  const post = async (payload: unknown): Promise<number> => {
    const r = await postJson(`${url}/v1/telemetry/samples`, { payload });
    statuses.push(r.status);
    return r.body.seqs?.[0] as number;
  };
  for (let i = 0; i < 40; i++) await post({ n: i });
  const big = randomBytes(3000).toString('base64');
  const bigSeq = await post(big);
  for (let i = 40; i < 60; i++) await post({ n: i });
  t.same(new Set(statuses), new Set([201]), 'all 61 records answered 201');

  const stats = async (): Promise<{ accepted: number; delivered: number; quarantined: number; depth: number }> => (await fetch(`${url}/v1/telemetry`)).json() as never;
  // Delivered or quarantined: either way the record left the queue; then the counts say which.
  const done = await waitFor(async () => {
    const s = await stats();
    return s.delivered + s.quarantined >= 61 && s;
  }, { timeoutMs: 60_000, intervalMs: 200, what: '61 records delivered or quarantined' });
  t.equal(done.accepted, 61, 'accepted 61');
  t.equal(done.quarantined, 0, 'quarantined 0: the big record was not set aside');
  t.equal(done.delivered, 61, 'delivered 61');
  const quarantineLog = agent.logs.find((l) => /quarantined/.test(String(l.msg)));
  t.equal(quarantineLog, undefined, `no quarantine in the log${quarantineLog ? `: ${JSON.stringify(quarantineLog)}` : ''}`);
  await waitFor(() => seen.has(bigSeq), { timeoutMs: 10_000, what: `seq ${bigSeq} at the subscriber` });
  t.equal(seen.get(bigSeq), big, 'the big record reached the broker intact');
});
