// npm run bench:fleet-scale -- --devices 10000 [--replicas 2] [--cap MS] [--db sqlite|postgres]
//
// The fleet at scale (issue 20) on one machine: a real Mosquitto, the controller as real
// `edge-fleet serve` processes (MQTT 5 shared subscriptions as replicas, one database), and
// N simulated devices (scripts/fleet-sim.ts) speaking the agent's protocol. Measures: all
// devices online from cold; controller ingest; a broker kill -9 + restart (time until 100%
// reconnected, the peak connect rate against N/cap, the controllers' event-loop lag and
// RSS); a replica SIGKILLed (time until its share is owned again); telemetry accepted vs
// stored. The controller is only ever talked to as a process (stdout stats lines, its
// database read-only, MQTT), never imported.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { startMosquitto, destroyMosquitto } from '../test/helpers/mosquitto.js';
import { waitFor } from '../test/helpers/wait.js';
import { tempDir } from '../test/fleet-support.js';
import { FleetSim } from './fleet-sim.js';
import { openDbReader, startControllerProcess, type ControllerProc } from './fleet-scale-support.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const int = (min: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}`);
  return n;
};
const o = new Command('bench:fleet-scale')
  .option('--devices <n>', 'simulated devices', int(1), 10_000)
  .option('--replicas <n>', 'edge-fleet serve replicas (MQTT 5 shared subscription)', int(1), 2)
  .option('--cap <ms>', 'the devices\' reconnect cap (mqtt.reconnectMaxMs)', int(100), 6000)
  .option('--min <ms>', 'the devices\' first reconnect cap (mqtt.reconnectMinMs)', int(10), 1000)
  .option('--ack-timeout <ms>', 'the devices\' telemetry ack timeout (mqtt.ackTimeoutMs)', int(100), 15_000)
  .addOption(new Option('--db <kind>', 'controller database').choices(['sqlite', 'postgres']).default('sqlite'))
  .option('--workers <n>', 'simulator worker processes', int(1), 4)
  .option('--records <n>', 'records per device for the ingest phase', int(1), 100)
  .parse().opts<{ devices: number; replicas: number; cap: number; min: number; ackTimeout: number; db: 'sqlite' | 'postgres'; workers: number; records: number }>();

const N = o.devices;
const log = (s: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const secs = (ms: number): string => (ms / 1000).toFixed(1);
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function machine(): string {
  const cpus = os.cpus();
  const flags = (/^flags\s*:\s*(.*)$/m.exec(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1] ?? '').split(' ');
  const wanted = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'amx_int8', 'asimd', 'asimddp'].filter((f) => flags.includes(f));
  return `${cpus[0]?.model ?? 'unknown CPU'} x${cpus.length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}, node ${process.version}; CPU features: ${wanted.join(' ') || 'unknown'}`;
}

async function main(): Promise<void> {
  const nofile = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  if (Number.isFinite(nofile) && nofile < N + 1000) {
    throw new Error(`ulimit -n is ${nofile}; the broker needs one descriptor per device: run "ulimit -n ${N + 2000}" (or raise the hard limit) first`);
  }
  log(`building (npm run -s build:ts)`);
  const b = spawnSync('npm', ['run', '-s', 'build:ts'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (b.status !== 0) throw new Error('npm run -s build:ts failed');

  // The broker's per-client queue (default 1,000) would drop a controller's backlog after a
  // storm; the devices would re-send, but the run measures the product, not the queue limit.
  const broker = await startMosquitto({
    listenerConf: (port) => `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 1000\nmax_connections -1`,
  });
  const work = tempDir('edge-bench-scale-');
  let stopPg: (() => Promise<void>) | undefined;
  let dbArg = path.join(work.dir, 'fleet.db');
  if (o.db === 'postgres') {
    const helper = path.join(root, 'test/helpers/postgres.ts');
    if (!existsSync(helper)) throw new Error('--db postgres needs the PostgreSQL store (test/helpers/postgres.ts and edge-fleet serve --db postgres://...), not merged on this branch yet; run with --db sqlite');
    const { startPostgres } = await import(helper) as { startPostgres(): Promise<{ url: string; stop(): Promise<void> }> };
    const pg = await startPostgres();
    dbArg = pg.url;
    stopPg = () => pg.stop();
  }
  const ctls: ControllerProc[] = [];
  const sim = new FleetSim({ url: broker.url, devices: N, workers: o.workers, capMs: o.cap, minMs: o.min, ackTimeoutMs: o.ackTimeout, batchRecords: 50 });
  const db = await openDbReader(dbArg);
  const rows: [string, string, string][] = [];
  const row = (what: string, value: string, target = ''): void => { rows.push([what, value, target]); log(`${what}: ${value} ${target}`); };
  try {
    for (let r = 0; r < o.replicas; r++) ctls.push(await startControllerProcess(root, { broker: broker.url, db: dbArg, id: `bench-ctl-${r}`, rollouts: r === 0 }));
    const ctlSum = (k: string): number => ctls.reduce((n, c) => n + c.sumCounter(k), 0);
    const simCheck = (): void => { if (sim.failure) throw new Error(sim.failure); };

    // ---- 1. cold start ----
    const t0 = Date.now();
    await sim.start();
    await waitFor(() => { simCheck(); return sim.totals().connected === N; }, { timeoutMs: 300_000, intervalMs: 200, what: `all ${N} devices connected` });
    const tConnected = Date.now() - t0;
    await waitFor(async () => (await db.online()) === N, { timeoutMs: 300_000, intervalMs: 500, what: `all ${N} devices online in the controller's database` });
    const tOnline = Date.now() - t0;
    row('cold start: all devices connected (simulator)', `${secs(tConnected)} s`, `${fmt(N)} devices`);
    row('cold start: all devices online in the controller DB', `${secs(tOnline)} s`, `${fmt(await db.online())} of ${fmt(N)}`);
    await waitFor(() => sim.totals().openBatches === 0, { timeoutMs: 120_000, intervalMs: 250, what: 'every drift report acked' });

    // ---- 2. ingest: every device sends a backlog of records ----
    const before = { b: ctlSum('batches'), r: await db.telemetryRows() };
    const made0 = sim.totals().recordsMade;
    const tI = Date.now();
    sim.record(o.records);
    await waitFor(() => { const t = sim.totals(); return t.recordsMade >= made0 + N * o.records && t.recordsAcked === t.recordsMade; }, { timeoutMs: 600_000, intervalMs: 250, what: 'the ingest backlog acked' });
    const ingestS = (Date.now() - tI) / 1000;
    await new Promise((r) => setTimeout(r, 1200)); // a stats line from every replica after the last commit
    // Records: counted in the database; batches (re-sent ones among them): the replicas' counters.
    const dB = ctlSum('batches') - before.b, dR = (await db.telemetryRows()) - before.r;
    row(`ingest: records/s committed (${fmt(N)} devices, ${o.replicas} replica(s), ${o.db})`, `${fmt(dR / ingestS)} records/s`, `${fmt(dR)} records in ${ingestS.toFixed(1)} s`);
    row('ingest: batches/s committed', `${fmt(dB / ingestS)} batches/s`, `${fmt(dB)} batches of <= 50 records`);

    // ---- 3. broker kill -9 + restart, with a backlog waiting on every device ----
    const made1 = sim.totals().recordsMade;
    sim.record(20);
    await waitFor(() => sim.totals().recordsMade >= made1 + 20 * N, { timeoutMs: 60_000, intervalMs: 50, what: 'a backlog on every device before the broker kill' });
    for (const c of ctls) c.mark();
    const exited = new Promise((r) => broker.proc.once('exit', r));
    const tKill = Date.now();
    broker.proc.kill('SIGKILL');
    await exited;
    await broker.restart();
    const tUp = Date.now();
    await waitFor(() => { const t = sim.totals(); return t.connected === N && t.minLastConnectAt > tKill; }, { timeoutMs: 300_000, intervalMs: 100, what: 'every device reconnected' });
    const tBack = Date.now();
    const reconnectS = (tBack - tUp) / 1000;
    await waitFor(() => { const t = sim.totals(); return t.recordsAcked === t.recordsMade; }, { timeoutMs: 300_000, intervalMs: 250, what: 'the backlog acked after the broker restart' });
    await waitFor(async () => (await db.online()) === N, { timeoutMs: 120_000, intervalMs: 500, what: 'all online in the DB after the broker restart' });
    const tDrained = Date.now();
    await new Promise((r) => setTimeout(r, 1500)); // one more stats line from every replica
    const { peak, at } = sim.peakConnectRate(tUp);
    const rate = N / (o.cap / 1000);
    row('broker kill -9 -> restarted (same port)', `${secs(tUp - tKill)} s`);
    row('broker restart: 100% reconnected after', `${reconnectS.toFixed(1)} s`, `target <= cap + 10 s = ${secs(o.cap + 10_000)} s: ${reconnectS <= (o.cap + 10_000) / 1000 ? 'PASS' : 'FAIL'}`);
    row('broker restart: peak CONNACKs/s (simulator histogram, first second skipped)', `${fmt(peak)}/s at +${at ? at - Math.floor(tUp / 1000) : 0} s`, `N/cap = ${fmt(rate)}/s; ${(peak / rate).toFixed(2)}x; target <= 2x: ${peak <= 2 * rate ? 'PASS' : 'FAIL'}`);
    row('broker restart: CONNACKs in each second from the restart', sim.connectHistogram(tUp, Math.ceil(reconnectS) + 1).join(' '));
    row('broker restart: backlog and every status stored after', `${secs(tDrained - tUp)} s`);
    const rec = ctls.map((c) => c.sinceMark());
    row('controller event-loop lag p99 during recovery (worst replica, worst second)', `${Math.max(...rec.map((x) => x.lagP99)).toFixed(1)} ms`, `max ${Math.max(...rec.map((x) => x.lagMax)).toFixed(1)} ms`);
    row('controller RSS during recovery (largest replica)', `${Math.max(...rec.map((x) => x.rssMb))} MB`);

    // ---- 4. a replica SIGKILLed while every device has a batch in flight ----
    if (ctls.length > 1) {
      const victim = ctls[ctls.length - 1];
      const acked = sim.totals().recordsAcked;
      sim.record(100);
      await waitFor(() => sim.totals().recordsAcked >= acked + 10 * N, { timeoutMs: 120_000, intervalMs: 50, what: 'the replicas busy with a backlog before the kill' });
      const tK = Date.now();
      victim.kill();
      const took = await waitFor(() => ctls.some((c) => c.tookOverAt() > 0), { timeoutMs: 120_000, intervalMs: 20, what: 'a surviving replica taking over the dead one\'s session' })
        .catch(() => { log(`no takeover; survivor's log:\n${ctls[0].output().slice(-4000)}`); return false; });
      const ownedS = took ? (Math.max(...ctls.map((c) => c.tookOverAt())) - tK) / 1000 : Infinity;
      row('replica SIGKILL: its session (its share) taken over by a survivor', `${ownedS.toFixed(1)} s`, `target <= 15 s: ${ownedS <= 15 ? 'PASS' : 'FAIL'}`);
      await waitFor(() => { const t = sim.totals(); return t.openBatches === 0 || t.oldestOpenSentAt > tK; }, { timeoutMs: 600_000, intervalMs: 100, what: 'every batch in flight at the kill acked' });
      const drainedS = (Date.now() - tK) / 1000;
      row('replica SIGKILL: every batch in flight at the kill stored and acked', `${drainedS.toFixed(1)} s`, `(one replica left; device ack timeout ${secs(o.ackTimeout)} s)`);
      await waitFor(() => { const t = sim.totals(); return t.recordsAcked === t.recordsMade; }, { timeoutMs: 300_000, intervalMs: 250, what: 'all acked after the replica kill' });
    }

    // ---- 5. accepted vs stored ----
    const t = await sim.fresh();
    const stored = await db.telemetryRows();
    const lost = t.recordsAcked - stored;
    row('telemetry accepted (acked end to end) vs stored', `${fmt(t.recordsAcked)} vs ${fmt(stored)}`, `lost ${fmt(Math.max(0, lost))}: ${lost <= 0 ? 'PASS' : 'FAIL'}; duplicates ${fmt(await db.duplicates())} (re-sends ${fmt(t.resends)})`);
    row('simulator totals', `${fmt(t.connects)} CONNACKs, ${fmt(t.reconnects)} reconnects, ${fmt(t.busy)} busy, ${fmt(t.batchesAcked)} batches acked, ${fmt(t.cmdReplies)} command replies`);
  } finally {
    await sim.stop();
    for (const c of ctls) await c.stop();
    await db.close();
    await destroyMosquitto(broker);
    await stopPg?.();
    work.remove?.();
  }
  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length))];
  const out = [
    `bench:fleet-scale — ${fmt(N)} devices, ${o.replicas} replica(s), ${o.db}, reconnect cap ${secs(o.cap)} s (min ${secs(o.min)} s), ${o.workers} simulator workers`,
    `machine: ${machine()}`,
    `storm scaled by rate: ${fmt(N)} devices with cap ${secs(o.cap)} s reconnect at the rate of ${fmt(10 * N)} devices with cap ${secs(10 * o.cap)} s (N/cap = ${fmt(N / (o.cap / 1000))}/s)`,
    `broker: mosquitto ${spawnSync('mosquitto', ['-h'], { encoding: 'utf8' }).stdout.split('\n')[0]?.replace(/^mosquitto version /, '') ?? '?'} with max_queued_messages 1000000, max_inflight_messages 1000, max_connections -1; ulimit -n ${nofile}`,
    '',
    ...rows.map(([a, v, tg]) => `${a.padEnd(w[0])}  ${v.padEnd(w[1])}  ${tg}`),
  ];
  process.stdout.write(out.join('\n') + '\n');
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`bench:fleet-scale: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
