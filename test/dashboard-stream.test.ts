// The dashboard's live stream (/api/events) on a real SQLite store: an update follows a
// controller event without waiting for the timer, the timer alone brings a change no event
// announced (what replicas on PostgreSQL rely on), and a read that fails skips one update and
// is logged instead of ending the process.
import t, { type Test } from 'tap';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { FleetStore } from '../controller/store.js';
import { buildDashboard } from '../controller/dashboard/server.js';
import { openStream } from './helpers/dashboard-stream.js';
import { waitFor } from './helpers/wait.js';

// One SQLite file and an in-process server: a few seconds.
t.setTimeout(30_000);

const online = { state: 'online', agentVersion: '0.1.0', models: [{ name: 'digits', version: '1.0.0' }], groups: [] };

async function serve(t: Test, pollMs: number) {
  const store = new FleetStore(path.join(t.testdir(), 'fleet.db'));
  const events = new EventEmitter();
  const logged: string[] = [];
  const app = buildDashboard({ store, events, pollMs, log: (msg, extra) => logged.push(`${msg} ${JSON.stringify(extra)}`) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const stream = openStream<{ counts: { total: number } }>(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
  t.teardown(() => stream.close());
  // With a short timer a second update may follow the first before this looks: at least one.
  await waitFor(() => stream.updates.length >= 1, { what: 'the first document' });
  return { store, events, logged, stream, app };
}

t.test('a controller event brings the next update without the timer', async (t) => {
  const { store, events, stream } = await serve(t, 600_000);
  t.equal(stream.updates[0]!.counts.total, 0, 'no devices at first');
  store.upsertStatus('dev-1', online);
  events.emit('status', 'dev-1', online);
  await waitFor(() => stream.updates.some((u) => u.counts.total === 1), { timeoutMs: 5000, what: 'the update after the status event' });
  t.pass('the device arrived on the stream after the event');
  store.close();
});

t.test('the timer brings a change no event announced', async (t) => {
  const { store, stream } = await serve(t, 100);
  store.upsertStatus('dev-2', online);
  await waitFor(() => stream.updates.some((u) => u.counts.total === 1), { timeoutMs: 5000, what: 'the update from the timer' });
  t.pass('the device written to the database arrived on the stream');
  store.close();
});

t.test('a read that fails skips an update and is logged', async (t) => {
  const { store, logged, stream, app } = await serve(t, 50);
  store.close();
  const failures = () => logged.filter((l) => /dashboard update failed/.test(l)).length;
  await waitFor(() => failures() >= 1, { timeoutMs: 5000, what: 'the failed update logged' });
  t.match(logged.find((l) => /dashboard update failed/.test(l)), /database connection is not open/, 'with the reason');
  // Counted once a read has failed (an update sent before the close may still have been on
  // its way before that): three more failed reads later, nothing more has arrived.
  const sent = stream.updates.length;
  const seen = failures();
  await waitFor(() => failures() >= seen + 3, { timeoutMs: 5000, what: 'three more failed reads' });
  t.equal(stream.updates.length, sent, 'no update sent for a failed read');
  t.equal((await app.inject('/api/device-counts')).statusCode, 500, 'a view request answers 500; the process carries on');
});
