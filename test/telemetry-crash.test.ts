// Crash safety with real processes: a child records at full speed and reports each committed
// sequence number; it is SIGKILLed at a random moment, many times. After every kill the
// database passes PRAGMA integrity_check and holds every committed record, in order, without
// gaps, with the payload that was recorded under that number.
import t from 'tap';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { waitFor } from './helpers/wait.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.join(root, 'test/fixtures/telemetry-writer.ts');
const KILLS = Number(process.env.TELEMETRY_CRASH_KILLS ?? 8);

// The writer is bundled once to plain JavaScript (esbuild, the compiler tsx itself uses), so
// each of the many restarts costs a Node start, not a TypeScript compile of the agent.
const bundleDir = mkdtempSync(path.join(tmpdir(), 'telemetry-writer-'));
const bundle = path.join(bundleDir, 'writer.cjs');
buildSync({ entryPoints: [fixture], bundle: true, platform: 'node', format: 'cjs', packages: 'external', outfile: bundle, logLevel: 'error' });
t.teardown(() => rmSync(bundleDir, { recursive: true, force: true }));

function runWriter(dir: string, mode = '') {
  // NODE_PATH: the bundle lives in a temp dir but requires the project's node_modules.
  const env = { ...process.env, NODE_PATH: path.join(root, 'node_modules') };
  const child = spawn(process.execPath, [bundle, dir, mode], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const state = { started: -1, committed: 0, commits: 0, acked: [] as number[], acking: [] as number[], stderr: '', exited: false, signal: null as NodeJS.Signals | null, code: null as number | null };
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const [what, n] = line.split(' ');
      if (what === 'started') state.started = Number(n);
      if (what === 'acked') state.acked.push(...n.split(',').map(Number));
      if (what === 'acking') state.acking.push(...n.split(',').map(Number));
      if (what === 'committed') {
        state.committed = Math.max(state.committed, Number(n));
        state.commits++;
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { state.stderr += d; });
  const exited = new Promise<void>((resolve) => child.on('exit', (code, signal) => {
    state.exited = true;
    state.code = code;
    state.signal = signal;
    resolve();
  }));
  return { child, state, exited };
}

t.test(`SIGKILL at random moments (${KILLS} times): integrity ok, every committed record present, in order, no gaps`, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'telemetry-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'telemetry.db');
  let committedEver = 0;
  const delays: number[] = [];
  for (let round = 0; round < KILLS; round++) {
    const w = runWriter(dir);
    t.teardown(() => { if (!w.state.exited) w.child.kill('SIGKILL'); });
    await waitFor(() => {
      if (w.state.exited) throw new Error(`writer exited early (code ${w.state.code}): ${w.state.stderr}`);
      return w.state.commits > 0;
    }, { timeoutMs: 30_000, what: 'the writer to commit its first batch' });
    t.equal(w.state.started, committedEver, `round ${round}: the restarted buffer resumes right after the last record on disk`);
    // A random moment: anywhere from mid-first-batch to a few hundred ms into the run.
    const delay = Math.floor(Math.random() * 400);
    delays.push(delay);
    await new Promise((r) => setTimeout(r, delay));
    w.child.kill('SIGKILL');
    await w.exited;
    t.equal(w.state.signal, 'SIGKILL', `round ${round}: killed by SIGKILL after ${delay} ms (stderr: ${w.state.stderr.slice(0, 200)})`);
    const reported = w.state.committed;
    t.ok(reported > committedEver, `round ${round}: the writer committed more (${committedEver} -> ${reported})`);

    const db = new Database(file);
    try {
      t.equal(db.pragma('integrity_check', { simple: true }), 'ok', `round ${round}: integrity_check ok`);
      const rows = db.prepare('SELECT seq, payload FROM records ORDER BY seq').all() as { seq: number; payload: string }[];
      const max = rows.length ? rows[rows.length - 1].seq : 0;
      t.ok(max >= reported, `round ${round}: every reported commit is on disk (reported ${reported}, highest on disk ${max})`);
      let gaps = 0;
      let mismatched = 0;
      rows.forEach((r, i) => {
        if (r.seq !== i + 1) gaps++;
        if ((JSON.parse(r.payload) as { expect: number }).expect !== r.seq) mismatched++;
      });
      t.equal(rows[0]?.seq, 1, `round ${round}: starts at 1`);
      t.equal(gaps, 0, `round ${round}: ${rows.length} records, no gaps in sequence numbers`);
      t.equal(mismatched, 0, `round ${round}: each payload was recorded under its sequence number`);
      const nextSeq = Number((db.prepare("SELECT value FROM meta WHERE key = 'next_seq'").get() as { value: string }).value);
      t.equal(nextSeq, max + 1, `round ${round}: the persisted next sequence number follows the last record`);
      committedEver = max;
    } finally {
      db.close();
    }
  }
  t.comment(`kill delays (ms): ${delays.join(', ')}; ${committedEver} records committed in total`);
});

t.test('SIGKILL while delivering: acked records are gone, every other committed record is there, counters add up', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'telemetry-crash-deliver-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'telemetry.db');
  const acked = new Set<number>();
  // Being acked when a kill came: the ack may or may not have committed.
  const inDoubt = new Set<number>();
  let committed = 0;
  for (let round = 0; round < Math.ceil(KILLS / 2); round++) {
    const w = runWriter(dir, 'deliver');
    t.teardown(() => { if (!w.state.exited) w.child.kill('SIGKILL'); });
    await waitFor(() => {
      if (w.state.exited) throw new Error(`writer exited early (code ${w.state.code}): ${w.state.stderr}`);
      return w.state.acked.length > 0;
    }, { timeoutMs: 30_000, what: 'the writer to ack its first lease' });
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
    w.child.kill('SIGKILL');
    await w.exited;
    for (const s of w.state.acked) acked.add(s);
    for (const s of w.state.acking) if (!acked.has(s)) inDoubt.add(s);
    committed = Math.max(committed, w.state.committed);
    const db = new Database(file);
    try {
      t.equal(db.pragma('integrity_check', { simple: true }), 'ok', `round ${round}: integrity_check ok`);
      const onDisk = new Set((db.prepare('SELECT seq FROM records').pluck().all() as number[]));
      let missing = 0;
      for (let s = 1; s <= committed; s++) if (!acked.has(s) && !inDoubt.has(s) && !onDisk.has(s)) missing++;
      t.equal(missing, 0, `round ${round}: every committed record not acked is on disk (${onDisk.size} queued, ${acked.size} acked, ${inDoubt.size} being acked at a kill, committed up to ${committed})`);
      const resurrected = [...acked].filter((s) => onDisk.has(s)).length;
      t.equal(resurrected, 0, `round ${round}: no acked record is back`);
      const sum = (name: string) => (db.prepare('SELECT coalesce(sum(value), 0) FROM counters WHERE name = ?').pluck().get(name) as number);
      t.equal(sum('accepted'), sum('delivered') + onDisk.size, `round ${round}: persisted accepted ${sum('accepted')} = delivered ${sum('delivered')} + queued ${onDisk.size}`);
      t.ok(sum('delivered') >= acked.size, `round ${round}: delivered counts at least the acks reported`);
    } finally {
      db.close();
    }
  }
});
