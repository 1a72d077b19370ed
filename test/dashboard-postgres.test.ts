// The fleet dashboard on PostgreSQL: two `edge-fleet serve --db postgres://... --http 0`
// replicas share one database and a real Mosquitto, whose shared subscription gives each
// replica only its share of the device messages. Simulated devices (scripts/fleet-sim.ts:
// real MQTT clients speaking the agent's protocol) report; each replica's dashboard (JSON
// views, live stream, the page in a browser) shows every device, including those whose
// messages only the other replica received.
import t from 'tap';
import { FleetSim } from '../scripts/fleet-sim.js';
import { PostgresControllerStore } from '../controller/store/postgres.js';
import { DEFAULT_GATES } from '../controller/rollout/plan.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { startPostgres } from './helpers/postgres.js';
import { serveReady, spawnServe, type Serve } from './helpers/fleet-serve.js';
import { launchBrowser } from './helpers/browser.js';
import { openStream } from './helpers/dashboard-stream.js';
import { waitFor } from './helpers/wait.js';

// Two replicas, a PostgreSQL, a broker, one simulator worker and a browser: about 30 s alone,
// several times that on a loaded CI machine.
t.setTimeout(240_000);

const N = 24;
const REPLICAS = ['dash-r1', 'dash-r2'];

interface Replica { id: string; serve: Serve; url: string }

const getJson = async (url: string): Promise<any> => {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return res.json();
};

t.test('each replica\'s dashboard shows the devices reported to either replica', async (t) => {
  const pg = await startPostgres();
  t.teardown(() => pg.stop());
  const db = await pg.createDatabase('dashboard');
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  // --no-rollouts: the rollout below is only read, never carried out (its status is what the
  // dashboard computes from the shared rollout book and the devices' reports).
  const replicas: Replica[] = [];
  for (const id of REPLICAS) {
    const serve = spawnServe(['--db', db, '--broker', broker.url, '--share', 'edge-fleet', '--id', id, '--http', '0', '--no-rollouts']);
    t.teardown(() => serve.proc.kill('SIGKILL'));
    await serveReady(serve);
    const ready = JSON.parse(serve.out().split('\n').find((l) => l.includes('"ready":true'))!) as { dashboard?: string };
    t.match(ready.dashboard, /^http:\/\/127\.0\.0\.1:\d+$/, `${id} serves its dashboard on its own port`);
    t.notMatch(serve.err(), /ignored/, `${id} does not ignore --http`);
    replicas.push({ id, serve, url: ready.dashboard! });
  }
  const store = await PostgresControllerStore.open(db);
  t.teardown(() => store.close());
  const logs = (): string => replicas.map((r) => `${r.id} stderr (tail): ${r.serve.err().slice(-1500)}`).join('\n');

  const sim = new FleetSim({ url: broker.url, devices: N, workers: 1, prefix: 'dash-', minMs: 500, capMs: 4000, ackTimeoutMs: 4000, batchRecords: 50 });
  t.teardown(() => sim.stop());
  await sim.start();
  // Five metrics records each (one batch per device, stored and acked by whichever replica
  // got it), besides the drift report every simulated device sends at start.
  sim.record(5);
  await waitFor(() => {
    if (sim.failure) throw new Error(sim.failure);
    const s = sim.totals();
    return s.devices === N && s.recordsAcked === N * 6 && s.openBatches === 0;
  }, { timeoutMs: 60_000, what: 'every device\'s records acked' }).catch((err: Error) => {
    throw new Error(`${err.message} (${JSON.stringify(sim.totals())})\n${logs()}`);
  });
  await waitFor(async () => (await store.deviceCounts()).byState.online === N, { timeoutMs: 30_000, what: `${N} devices online in the database` });

  // Which replica stored each device's metrics batch: the test needs devices on both sides.
  const storedBy = new Map<string, string>();
  for (const b of await store.batches()) if (b.stream === 'metrics') storedBy.set(b.deviceId, b.replica);
  const mine = REPLICAS.map((replica) => sim.ids.filter((id) => storedBy.get(id) === replica));
  t.ok(mine.every((ids) => ids.length > 0), `the broker shared the devices' telemetry between the replicas (${mine.map((m, i) => `${REPLICAS[i]}: ${m.length}`).join(', ')})`);

  // A rollout of the version the devices run, every device assigned: its status comes from
  // the rollout book and the devices' reports, both in the shared database.
  const now = Date.now();
  await store.rollouts.create({ id: 'dash-ro', model: 'digits', version: '1.0.0', group: 'sim', stages: [100], gates: DEFAULT_GATES, stageIndex: 0, stageStartedAt: now, state: 'running', createdAt: now });
  for (const id of sim.ids) await store.rollouts.assign('dash-ro', { deviceId: id, stage: 0, assignedAt: now });

  for (const r of replicas) {
    const counts = await getJson(`${r.url}/api/device-counts`);
    t.same(counts, { total: N, byState: { online: N }, byVersion: { 'digits@1.0.0': N }, failedDeploys: 0 }, `${r.id}: /api/device-counts counts every device`);
    const page = await getJson(`${r.url}/api/device-page?limit=100&sort=deviceId`);
    t.equal(page.total, N, `${r.id}: /api/device-page total`);
    t.same(page.rows.map((d: { deviceId: string }) => d.deviceId).sort(), [...sim.ids].sort(), `${r.id}: /api/device-page lists every device`);
    t.ok(page.rows.every((d: { online: boolean; models: unknown[] }) => d.online && JSON.stringify(d.models) === '[{"name":"digits","version":"1.0.0"}]'), `${r.id}: each row with its state and models`);
    for (const [k, ids] of mine.entries()) {
      const id = ids[0]!;
      const detail = await getJson(`${r.url}/api/devices/${id}`);
      t.match(detail, { deviceId: id, state: 'online', models: [{ name: 'digits', version: '1.0.0' }] }, `${r.id}: the detail of ${id}, whose metrics ${REPLICAS[k]} stored`);
      t.match(detail.telemetry.find((s: { stream: string }) => s.stream === 'metrics'), { deviceId: id, records: 5 }, `${r.id}: with ${id}'s telemetry summary`);
    }
    const rollouts = await getJson(`${r.url}/api/rollouts`);
    t.match(rollouts, [{ id: 'dash-ro', model: 'digits', version: '1.0.0', state: 'running', stage: 1, stages: [{ percent: 100, current: true, total: N, counts: { active: N } }] }],
      `${r.id}: the rollout's status counts every assigned device by what it reports`);
  }

  // The live stream: devices that join later reach both replicas' streams, though each of
  // their messages went to one replica only (the other reads them from the database).
  const streams = replicas.map((r) => openStream(r.url));
  t.teardown(() => { for (const s of streams) s.close(); });
  await waitFor(() => streams.every((s) => (s.updates[0]?.counts as { total?: number } | undefined)?.total === N), { timeoutMs: 15_000, what: 'each stream\'s first update' });
  const late = new FleetSim({ url: broker.url, devices: 6, workers: 1, prefix: 'late-', minMs: 500, capMs: 4000 });
  t.teardown(() => late.stop());
  await late.start();
  // Every message of theirs handled (the drift batch each sends at start acked, the models
  // reported): after this no device sends anything, so no controller event fires.
  await waitFor(async () => {
    if (late.failure) throw new Error(late.failure);
    const s = late.totals();
    return s.devices === 6 && s.recordsAcked === 6 && s.openBatches === 0 && (await store.deviceCounts()).byVersion['digits@1.0.0'] === N + 6;
  }, { timeoutMs: 60_000, what: 'the late devices\' messages handled' });
  for (const [i, s] of streams.entries()) {
    await waitFor(() => s.updates.some((u) => (u.counts as { total: number }).total === N + 6), { timeoutMs: 30_000, what: () => `${REPLICAS[i]}'s stream counting the 6 late devices (last: ${JSON.stringify(s.updates.at(-1)?.counts)})` });
  }
  t.pass('both streams counted the late devices');
  // A change no replica received as a message (written straight to the database): only the
  // streams' timer can bring it.
  await store.upsertStatus('db-only', { state: 'online', agentVersion: '0.1.0', models: [{ name: 'digits', version: '1.0.0' }], groups: [] });
  await store.flush();
  for (const [i, s] of streams.entries()) {
    await waitFor(() => s.updates.some((u) => (u.counts as { total: number }).total === N + 7), { timeoutMs: 30_000, what: () => `${REPLICAS[i]}'s stream counting a device written to the database (last: ${JSON.stringify(s.updates.at(-1)?.counts)})` });
  }
  t.pass('both streams read the database on their timer');

  // One page load per replica: the table lists devices whose telemetry the other replica stored.
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  for (const [k, r] of replicas.entries()) {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${r.url}/?live=0`);
    const rows = page.locator('#devices tbody tr');
    await rows.first().waitFor({ timeout: 15_000 });
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.device));
    const other = mine[1 - k]!;
    t.ok(other.every((id) => shown.includes(id)), `${r.id}'s page lists the devices only ${REPLICAS[1 - k]} received (${other.join(', ')})`);
    t.equal(shown.length, N + 7, `${r.id}'s page lists all ${N + 7} devices`);
    t.match(await page.locator('#summary').innerText(), new RegExp(`${N + 7} devices: ${N + 7} online`), `${r.id}'s summary counts the whole fleet`);
    t.same(errors, [], 'no page errors');
    await page.close();
  }
});
