// A replica SIGKILLed loses nothing and its share moves at once (issue 20, controller/takeover.ts):
// Mosquitto keeps routing a dead replica's share of a shared subscription into its persistent
// session, so without the takeover the batches sent after the kill wait there (for the
// devices' ack timeout, set here to a minute, and then half of them go there again). With it,
// the surviving replica takes that session over and stores them within seconds; when the
// killed replica starts again it takes its session (and its share) back.
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { tempDir } from './fleet-support.js';
import { FleetSim } from '../scripts/fleet-sim.js';
import { openDbReader, startControllerProcess, type ControllerProc } from '../scripts/fleet-scale-support.js';

t.setTimeout(150_000);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const N = 60;

t.test('a SIGKILLed replica\'s share is taken over by the survivor and given back when it returns', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const work = tempDir('edge-fleet-takeover-');
  t.teardown(() => work.remove());
  const dbFile = path.join(work.dir, 'fleet.db');
  const start = (id: string): Promise<ControllerProc> => startControllerProcess(root, { broker: broker.url, db: dbFile, id, fromSource: true, rollouts: id === 'rep-a' });
  const a = await start('rep-a');
  t.teardown(() => a.stop());
  let b = await start('rep-b');
  t.teardown(() => b.stop());
  const db = await openDbReader(dbFile);
  t.teardown(() => db.close());
  const sim = new FleetSim({ url: broker.url, devices: N, workers: 1, ackTimeoutMs: 60_000, backlogSpreadMs: 0, batchRecords: 5 });
  t.teardown(() => sim.stop());
  await sim.start();
  const totals = (): ReturnType<FleetSim['totals']> => {
    if (sim.failure) throw new Error(sim.failure);
    return sim.totals();
  };
  await waitFor(async () => (await db.online()) === N && totals().openBatches === 0 && totals().recordsAcked === N, { timeoutMs: 60_000, what: 'all devices online, their drift reports stored' });
  const byReplica = (since: number): Map<string, number> => {
    const h = new Database(dbFile, { readonly: true });
    try {
      const rows = h.prepare('SELECT replica, count(*) AS n FROM batches WHERE received_at >= ? GROUP BY replica').all(since) as { replica: string; n: number }[];
      return new Map(rows.map((r) => [r.replica, r.n]));
    } finally {
      h.close();
    }
  };
  t.ok((byReplica(0).get('rep-b') ?? 0) > 0, 'both replicas share the work before the kill');

  const tKill = Date.now();
  b.kill();
  await waitFor(() => b.proc.signalCode !== null, { what: 'replica b killed' });
  // Batches sent now go, by the broker's round robin, partly into b's session.
  sim.record(20);
  await waitFor(() => { const s = totals(); return s.recordsMade === N * 21 && s.recordsAcked === s.recordsMade; },
    { timeoutMs: 30_000, intervalMs: 100, what: 'every batch sent after the kill stored and acked (the devices re-send only after 60 s)' });
  t.ok(a.tookOverAt() > 0 && a.tookOverAt() - tKill < 15_000, `replica a took over b's session ${a.tookOverAt() - tKill} ms after the kill`);
  t.equal(totals().resends, 0, 'no batch needed a re-send');
  t.equal(await db.telemetryRows(), N * 21, 'every acked record is stored');

  // b comes back: its session (and share) is its own again.
  b = await start('rep-b');
  const tBack = Date.now();
  await waitFor(async () => {
    // New batches keep coming while waiting: the broker gives b its share of them.
    sim.record(5);
    return (byReplica(tBack).get('rep-b') ?? 0) > 0;
  }, { timeoutMs: 30_000, intervalMs: 500, what: 'replica b storing batches again' });
  t.pass('the returned replica stores its share again');
  await waitFor(() => { const s = totals(); return s.recordsAcked === s.recordsMade; }, { timeoutMs: 30_000, what: 'every record acked' });
  t.equal(await db.telemetryRows(), totals().recordsAcked, 'every acked record is stored: lost = 0');
});
