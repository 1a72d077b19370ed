// A controller replica SIGKILLed loses nothing: two `edge-fleet serve --db postgres://...`
// processes share the fleet's messages (MQTT 5 shared subscription on Mosquitto); one is
// killed with SIGKILL mid-stream; the agent re-sends what was not acked and the survivor
// stores it, so PostgreSQL holds every record once. The time from the kill until every
// record is acked is printed.
import t from 'tap';
import { PostgresControllerStore } from '../controller/store/postgres.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { startPostgres } from './helpers/postgres.js';
import { waitFor } from './helpers/wait.js';
import { startServe } from './helpers/fleet-serve.js';
import { startAgent } from './fleet-support.js';

t.setTimeout(120_000);


const serve = startServe;

t.test('a replica killed with SIGKILL: the survivor stores what it did not, each record once', async (t) => {
  const pg = await startPostgres();
  t.teardown(() => pg.stop());
  const url = await pg.createDatabase('kill');
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const common = ['--db', url, '--broker', broker.url, '--share', 'edge-fleet', '--no-rollouts'];
  const r1 = await serve([...common, '--id', 'kill-r1']);
  const r2 = await serve([...common, '--id', 'kill-r2']);
  t.teardown(() => { r1.kill('SIGKILL'); r2.kill('SIGKILL'); });
  const db = await PostgresControllerStore.open(url);
  t.teardown(() => db.close());
  const a = await startAgent(broker.url, 'kill-dev', { mqtt: { batchMaxBytes: 1024, ackTimeoutMs: 1000, ackRetryMaxMs: 2000 } });
  t.teardown(() => a.stop());

  const seqs: number[] = [];
  const record = (n: number): void => { for (let i = 0; i < n; i++) seqs.push(a.agent.telemetry.record('metrics', { i: seqs.length })); };
  record(200);
  await waitFor(async () => (await db.batches()).some((b) => b.replica === 'kill-r1'), { timeoutMs: 20_000, what: 'replica 1 storing its share' });
  r1.kill('SIGKILL');
  const killedAt = Date.now();
  record(300);
  await waitFor(() => a.agent.telemetry.stats().depth === 0, { timeoutMs: 60_000, what: 'every batch acked after the kill' });
  const recovered = Date.now() - killedAt;
  const stored = (await db.telemetry('kill-dev', { stream: 'metrics' })).map((r) => r.seq);
  t.same(stored, seqs, `all ${seqs.length} records stored, each once`);
  const batches = await db.batches();
  t.ok(batches.some((b) => b.replica === 'kill-r2'), 'the survivor stored batches');
  t.comment(`kill → every record acked: ${recovered} ms; duplicates received: ${batches.reduce((n, b) => n + b.duplicates, 0)}`);
});
