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
import { decodeBatch } from '../protocol/telemetry-batch.js';

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

t.test('a broker that takes smaller packets than mqtt.batchMaxBytes: batches are cut to what it advertises, no reconnect loop', async (t) => {
  // Mosquitto closes the connection on a PUBLISH above max_packet_size (it advertises the
  // size in its MQTT 5 CONNACK): a batch leased at the default 256 KiB was re-sent after
  // every reconnect and closed the connection again, forever.
  const broker = await startMosquitto({ listenerConf: (port) => `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_packet_size 4096` });
  t.teardown(() => destroyMosquitto(broker));
  const agent = spawnAgent({ deviceId: 'small-pkt', mqtt: { url: broker.url, telemetryAck: 'broker' } });
  t.teardown(async () => {
    agent.kill('SIGKILL');
    await agent.exited();
    rmSync(agent.dir, { recursive: true, force: true });
  });
  const url = await agent.ready(60_000);
  // 300 records of random hex in one POST: the first lease holds far more than 4 KB encoded.
  const records = Array.from({ length: 300 }, (_, i) => ({ payload: { i, r: randomBytes(40).toString('hex') } }));
  const r = await postJson(`${url}/v1/telemetry/samples`, { records });
  t.equal(r.status, 201, 'accepted');
  const done = await waitFor(async () => {
    const s = (await (await fetch(`${url}/v1/telemetry`)).json()) as { delivered: number; quarantined: number };
    return s.delivered + s.quarantined >= 300 && s;
  }, { timeoutMs: 30_000, intervalMs: 200, what: '300 records delivered or quarantined' }).catch(async (err: Error) => {
    const s = await (await fetch(`${url}/v1/status`)).json();
    throw new Error(`${err.message}; status ${JSON.stringify(s)}; log ${JSON.stringify(agent.logs.filter((l) => (l.level ?? 0) >= 40).slice(-5))}`);
  });
  t.equal(done.quarantined, 0, 'quarantined 0');
  t.equal(done.delivered, 300, 'delivered 300');
  const status = (await (await fetch(`${url}/v1/status`)).json()) as { fleet: { connects: number } };
  t.equal(status.fleet.connects, 1, 'connected once: no batch closed the connection');
  t.ok(agent.logs.some((l) => l.msg === 'the broker takes smaller packets than mqtt.batchMaxBytes: telemetry messages are limited to what it takes'), 'the smaller limit is logged');
});
