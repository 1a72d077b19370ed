// The controller on PostgreSQL, end to end: `edge-fleet serve --db postgres://...` (the built
// CLI) with a real Mosquitto, a real PostgreSQL 15 and a real agent. Telemetry is stored once
// and acked after the commit (the agent deletes a batch only on the ack); after a controller
// restart the fleet's picture comes from the database, not from retained statuses; two
// replicas on one database store each record once.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { topics } from '../protocol/topics.js';
import { FleetController } from '../controller/serve.js';
import { PostgresControllerStore } from '../controller/store/postgres.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { startPostgres } from './helpers/postgres.js';
import { waitFor } from './helpers/wait.js';
import { serveReady, spawnServe, type Serve } from './helpers/fleet-serve.js';
import { startAgent } from './fleet-support.js';

t.setTimeout(150_000);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist/controller/cli.js');

async function exitOf(s: Serve): Promise<number | null> {
  if (s.proc.exitCode !== null) return s.proc.exitCode;
  return new Promise((resolve) => s.proc.once('exit', (code) => resolve(code)));
}

const pgServer = await startPostgres();
t.teardown(() => pgServer.stop());

t.test('a bad or unreachable --db URL is a clear error', async (t) => {
  const bad = spawnServe(['--db', 'postgres://', '--broker', 'mqtt://127.0.0.1:1', '--no-rollouts']);
  t.equal(await exitOf(bad), 1, 'a URL without a host exits 1');
  t.match(bad.err(), /--db postgres:\/\/: .*expected a SQLite file path or postgres:\/\/user@host:port\/database/, 'saying what it expected');
  const down = spawnServe(['--db', 'postgres://postgres:pw@127.0.0.1:1/fleet', '--broker', 'mqtt://127.0.0.1:1', '--no-rollouts']);
  t.equal(await exitOf(down), 1, 'an unreachable database exits 1');
  t.match(down.err(), /cannot reach the controller database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/fleet/, 'naming the database, not its password');
});

t.test('edge-fleet serve on PostgreSQL: telemetry stored once and acked; the picture survives a restart without retained statuses', async (t) => {
  const url = await pgServer.createDatabase('e2e');
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const args = ['--db', url, '--broker', broker.url, '--id', 'ctl-pg', '--share', 'none', '--no-rollouts'];
  let serve = spawnServe(args);
  t.teardown(() => { if (serve.proc.exitCode === null) serve.proc.kill('SIGKILL'); });
  await serveReady(serve);
  const db = await PostgresControllerStore.open(url);
  t.teardown(() => db.close());

  const a = await startAgent(broker.url, 'pg-dev-1', { mqtt: { batchMaxBytes: 2048 } });
  t.teardown(() => a.stop());
  const seqs: number[] = [];
  for (let i = 0; i < 300; i++) seqs.push(a.agent.telemetry.record('metrics', { i, cpu: i / 300 }));
  // The agent deletes a batch only on the controller's ack, which comes after the commit.
  await waitFor(() => a.agent.telemetry.stats().depth === 0, { timeoutMs: 30_000, what: 'every batch acked by the controller' });
  const stored = (await db.telemetry('pg-dev-1', { stream: 'metrics' })).map((r) => r.seq);
  t.same(stored, seqs, 'the 300 records are in PostgreSQL, each once, before the agent let go of them');
  await waitFor(async () => (await db.device('pg-dev-1'))?.state === 'online', { what: 'the device online in the database' });

  // The controller goes away; the broker forgets the device's retained status.
  serve.proc.kill('SIGTERM');
  t.equal(await exitOf(serve), 0, 'serve stops cleanly on SIGTERM');
  const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'pg-clear', reconnectPeriod: 0 });
  await c.publishAsync(topics.status('pg-dev-1'), Buffer.alloc(0), { qos: 1, retain: true });
  await c.endAsync();

  serve = spawnServe(args);
  await serveReady(serve);
  const dev = await db.device('pg-dev-1');
  t.equal(dev?.state, 'online', 'after the restart the device is online from the database alone');
  t.equal((dev?.status as { agentVersion?: unknown } | null)?.agentVersion !== undefined, true, 'with its last status');
  for (let i = 300; i < 400; i++) seqs.push(a.agent.telemetry.record('metrics', { i }));
  await waitFor(() => a.agent.telemetry.stats().depth === 0, { timeoutMs: 30_000, what: 'the new batches acked by the restarted controller' });
  t.same((await db.telemetry('pg-dev-1', { stream: 'metrics' })).map((r) => r.seq), seqs, 'all 400 records, each once');
  serve.proc.kill('SIGTERM');
  t.equal(await exitOf(serve), 0, 'and stops again');
  const list = execFileSync(process.execPath, [cli, 'devices', '--db', url, '--json'], { encoding: 'utf8' });
  t.match(JSON.parse(list), [{ deviceId: 'pg-dev-1', state: 'online' }], 'edge-fleet devices --db postgres://... lists it');
  const sum = JSON.parse(execFileSync(process.execPath, [cli, 'telemetry', 'pg-dev-1', '--db', url, '--json'], { encoding: 'utf8' })) as { records: number }[];
  t.equal(sum.reduce((n, r) => n + r.records, 0), 400, 'edge-fleet telemetry --db postgres://... counts the 400 records');
});

t.test('two replicas on one PostgreSQL store every record once', async (t) => {
  const url = await pgServer.createDatabase('replicas');
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const replicas = await Promise.all(['pg-replica-1', 'pg-replica-2'].map(async (clientId) => {
    const store = await PostgresControllerStore.open(url);
    const ctl = new FleetController(store, { broker: broker.url, clientId, share: 'edge-fleet' });
    await ctl.start();
    t.teardown(async () => { await ctl.stop(); await ctl.idle(); await store.close(); });
    return ctl;
  }));
  const agents = await Promise.all(['pg-rep-a', 'pg-rep-b'].map((id) => startAgent(broker.url, id, { mqtt: { batchMaxBytes: 1024 } })));
  for (const a of agents) t.teardown(() => a.stop());
  const want = new Map<string, number[]>();
  for (const a of agents) {
    const id = a.agent.config.deviceId;
    want.set(id, Array.from({ length: 400 }, (_, i) => a.agent.telemetry.record('inference', { i })));
  }
  await waitFor(() => agents.every((a) => a.agent.telemetry.stats().depth === 0), { timeoutMs: 40_000, what: 'every batch acked' });
  const db = replicas[0]!.db;
  for (const [id, seqs] of want) {
    t.same((await db.telemetry(id, { stream: 'inference' })).map((r) => r.seq), seqs, `${id}: every record once`);
  }
  const byReplica = new Map<string, number>();
  for (const b of await db.batches()) byReplica.set(b.replica, (byReplica.get(b.replica) ?? 0) + 1);
  t.ok((byReplica.get('pg-replica-1') ?? 0) > 0 && (byReplica.get('pg-replica-2') ?? 0) > 0, `both replicas stored batches (${JSON.stringify([...byReplica])})`);
  t.equal(replicas[0]!.counters.batches + replicas[1]!.counters.batches, (await db.batches()).length, 'each batch message handled by one replica');
});
